"""Exports as HTTP downloads, streamed under both of Django's handlers.

Each handler reads the other kind of iterator to the end before sending anything (with a
warning): an export of thousands of threads would sit in memory. So under WSGI the export's
generator is the response's content as it is; under ASGI it is pulled through
``sync_to_async`` (its queries run on the thread-sensitive executor, one connection), about
``CHUNK_BYTES`` at a time, into an asynchronous iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

CHUNK_BYTES = 256 * 1024
JSONL_TYPE = "application/x-ndjson; charset=utf-8"
TAR_TYPE = "application/x-tar"


def _pull(pieces: Iterator[bytes]) -> bytes:
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            break
    return b"".join(buffer)


async def _stream(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await sync_to_async(_pull)(pieces):
            yield chunk
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            await sync_to_async(close)()


def filename(stem: str, archive: bool) -> str:
    return f"{stem}-{timezone.now().strftime('%Y%m%d-%H%M%S')}.{'tar' if archive else 'jsonl'}"


def download(
    request: HttpRequest, pieces: Iterator[bytes], name: str, archive: bool
) -> StreamingHttpResponse:
    content = _stream(pieces) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(content, content_type=TAR_TYPE if archive else JSONL_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
