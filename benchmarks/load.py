"""A small, cheap ChatKit client for load: raw asyncio sockets, HTTP/1.1 keep-alive, SSE.

Hundreds of streams at tens of events per second each would cost a general-purpose HTTP client
(httpx) a good part of a core on a 2-core machine that also runs the server and the fake. This
one parses chunked framing and SSE with bytes operations only, notes ``time.monotonic()`` when
each text delta arrives, and parses JSON for just the few events it needs (``thread.created``,
the finished assistant message, errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

TEXT_DELTA = b'"assistant_message.content_part.text_delta"'
THREAD_CREATED = b'"type":"thread.created"'
ITEM_DONE = b'"type":"thread.item.done"'
ERROR_EVENT = b'"type":"error"'


@dataclass
class Turn:
    """One request and what came back."""

    marker: str
    sent_at: float = 0.0
    status: int | None = None
    deltas: list[float] = field(default_factory=list)  # arrival time of each text delta
    done_at: float | None = None
    events: int = 0
    text: str = ""  # the finished assistant message, from thread.item.done
    thread_id: str | None = None
    error: str | None = None
    body: bytes = b""  # JSON responses only

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and self.done_at is not None

    @property
    def first_delta_at(self) -> float | None:
        return self.deltas[0] if self.deltas else None

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.deltas, self.deltas[1:], strict=False)]


class ProtocolError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection to the server under test."""

    def __init__(
        self, host: str, port: int, headers: dict[str, str], *, keep_alive: bool = True
    ) -> None:
        self.host = host
        self.port = port
        # Without keep-alive every request is a new connection, which the kernel hands to
        # whichever uvicorn worker accepts first: kept-alive connections opened at once can all
        # land on one worker and stay there.
        if not keep_alive:
            headers = {**headers, "Connection": "close"}
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buffer = bytearray()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None
        self.buffer.clear()

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20
        )
        self.buffer.clear()

    async def _fill(self) -> float:
        assert self.reader is not None
        data = await self.reader.read(1 << 16)
        if not data:
            raise ConnectionResetError("server closed the connection")
        self.buffer += data
        return time.monotonic()

    async def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            await self._fill()

    async def post(self, path: str, body: bytes, turn: Turn) -> Turn:
        """Send ``body``; read the whole answer (SSE or JSON) into ``turn``."""
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                await self._open()
            assert self.writer is not None
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{self.extra}\r\n"
            ).encode()
            turn.sent_at = time.monotonic()
            self.writer.write(head + body)
            try:
                status_line = await self._line()
            except (ConnectionError, OSError):
                await self.close()
                if fresh or attempt == 2:
                    raise
                continue  # the server closed an idle keep-alive connection: reconnect once
            break
        parts = status_line.split(b" ", 2)
        turn.status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        while True:
            line = await self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get(b"connection", b"").lower() != b"close"
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            await self._read_chunked(turn, headers.get(b"content-type", b""))
        elif b"content-length" in headers:
            length = int(headers[b"content-length"])
            while len(self.buffer) < length:
                await self._fill()
            turn.body = bytes(self.buffer[:length])
            del self.buffer[:length]
            turn.done_at = time.monotonic()
        else:  # read to the end of the connection
            try:
                while True:
                    await self._fill()
            except ConnectionError:
                pass
            turn.body = bytes(self.buffer)
            turn.done_at = time.monotonic()
            keep_alive = False
        if not keep_alive:
            await self.close()
        return turn

    async def _read_chunked(self, turn: Turn, content_type: bytes) -> None:
        sse = content_type.startswith(b"text/event-stream")
        pending = bytearray()  # SSE bytes not yet cut into frames
        body = bytearray()
        arrived = time.monotonic()
        while True:
            # Cut every complete chunk out of the buffer; read more only when none is complete.
            end = self.buffer.find(b"\r\n")
            if end < 0:
                arrived = await self._fill()
                continue
            size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
            if len(self.buffer) < end + 2 + size + 2:
                arrived = await self._fill()
                continue
            data = bytes(self.buffer[end + 2 : end + 2 + size])
            del self.buffer[: end + 2 + size + 2]
            if size == 0:
                turn.done_at = arrived
                if not sse:
                    turn.body = bytes(body)
                return
            if not sse:
                body += data
                continue
            pending += data
            while True:
                cut = pending.find(b"\n\n")
                if cut < 0:
                    break
                frame = bytes(pending[:cut])
                del pending[: cut + 2]
                self._frame(frame, arrived, turn)

    @staticmethod
    def _frame(frame: bytes, arrived: float, turn: Turn) -> None:
        turn.events += 1
        if TEXT_DELTA in frame:
            turn.deltas.append(arrived)
        elif THREAD_CREATED in frame:
            turn.thread_id = json.loads(frame[6:])["thread"]["id"]
        elif ITEM_DONE in frame and b'"assistant_message"' in frame:
            item = json.loads(frame[6:])["item"]
            turn.text = "".join(part["text"] for part in item["content"])
        elif ERROR_EVENT in frame:
            event = json.loads(frame[6:])
            turn.error = f"error event: {event.get('code')}: {event.get('message', '')}"


def user_input(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


def create_body(text: str) -> bytes:
    return json.dumps({"type": "threads.create", "params": {"input": user_input(text)}}).encode()


def add_message_body(thread_id: str, text: str) -> bytes:
    return json.dumps(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input(text)},
        }
    ).encode()


async def send_turn(
    connection: Connection,
    path: str,
    marker: str,
    thread_id: str | None,
    timeout: float,  # noqa: ASYNC109 - one bound for connect, send and the whole answer
) -> Turn:
    """One chat turn (a new thread when ``thread_id`` is None); errors end up in ``turn.error``."""
    turn = Turn(marker=marker)
    body = create_body(marker) if thread_id is None else add_message_body(thread_id, marker)
    try:
        await asyncio.wait_for(connection.post(path, body, turn), timeout)
    except TimeoutError:
        turn.error = f"timed out after {timeout}s"
        await connection.close()
    except (ConnectionError, OSError, ValueError, IndexError) as exc:
        turn.error = f"{type(exc).__name__}: {exc}"
        await connection.close()
    if turn.status is not None and turn.status != 200 and turn.error is None:
        turn.error = f"HTTP {turn.status}: {turn.body[:200]!r}"
    if thread_id is not None:
        turn.thread_id = thread_id
    return turn
