"""Reading ChatKit event streams: whole bodies, chunk iterators and async chunk iterators.

ChatKit's stream is a strict subset of Server-Sent Events: every event is exactly one
``data: <json object>\\n\\n`` frame, with no comments, ids, retries or multi-line data. These
readers hold the stream to that, so a test fails on a malformed frame or on a stream that stops
halfway through one, rather than silently skipping it.

The chunk readers yield each event as soon as its frame is complete, so they suit live
servers as well as Django's test client::

    with httpx_client.stream("POST", "/chatkit/", content=request_body("threads.list")) as r:
        for event in iter_sse(r.iter_raw()):
            ...  # breaking out here closes the connection: a disconnect mid-stream

Events come as the JSON the server sent (``dict``); :func:`parse_sse` and :func:`to_event`
give the SDK's typed events instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from chatkit.types import ThreadStreamEvent
from pydantic import TypeAdapter

__all__ = [
    "SSEFormatError",
    "aiter_sse",
    "iter_sse",
    "parse_sse",
    "parse_sse_json",
    "to_event",
]

_EVENT_ADAPTER: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)
_PREFIX = b"data: "
_SEPARATOR = b"\n\n"


class SSEFormatError(ValueError):
    """The bytes are not a well-formed ChatKit event stream."""


class _Frames:
    """Splits chunks into frames; chunk boundaries may fall anywhere, even inside a separator."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        *frames, self._buffer = (self._buffer + bytes(chunk)).split(_SEPARATOR)
        return [_decode(frame) for frame in frames]

    def close(self) -> None:
        if self._buffer:
            raise SSEFormatError(f"The stream ended inside a frame: {self._buffer[:200]!r}")


def _decode(frame: bytes) -> dict[str, Any]:
    if not frame.startswith(_PREFIX):
        raise SSEFormatError(f"Not a ChatKit frame (data: <json>): {frame[:200]!r}")
    payload = frame[len(_PREFIX) :]
    if b"\n" in payload or b"\r" in payload:
        raise SSEFormatError(f"A frame with more than one line: {frame[:200]!r}")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise SSEFormatError(f"A frame that is not JSON: {frame[:200]!r}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise SSEFormatError(f"A frame that is not an event (no type): {frame[:200]!r}")
    return event


def iter_sse(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Yield each event of a stream read in ``chunks`` (e.g. httpx's ``response.iter_raw()``)
    as soon as its frame is complete; raise :class:`SSEFormatError` on a malformed one."""
    frames = _Frames()
    for chunk in chunks:
        yield from frames.feed(chunk)
    frames.close()


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[dict[str, Any]]:
    """:func:`iter_sse` for async chunks: httpx's ``aiter_raw()``, or the
    ``streaming_content`` of a response from Django's ``AsyncClient``."""
    frames = _Frames()
    async for chunk in chunks:
        for event in frames.feed(chunk):
            yield event
    frames.close()


def parse_sse_json(body: bytes) -> list[dict[str, Any]]:
    """Every event of a whole stream body, as the JSON the server sent."""
    return list(iter_sse([body]))


def to_event(event: dict[str, Any]) -> ThreadStreamEvent:
    """The SDK's typed event for one event's JSON (pydantic validation: fails on bad fields)."""
    return _EVENT_ADAPTER.validate_python(event)


def parse_sse(body: bytes) -> list[ThreadStreamEvent]:
    """Every event of a whole stream body, as the SDK's typed events."""
    return [to_event(event) for event in iter_sse([body])]
