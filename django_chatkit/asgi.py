"""``BodyLimitMiddleware``: oversized request bodies to ChatKit's views are refused as they arrive.

Django's ASGI handler reads a request's whole body before any middleware or view runs (into
memory, then into a temporary file past ``FILE_UPLOAD_MAX_MEMORY_SIZE``), so the views' own size
checks come once every byte is on the server: a client could make it store any amount, signed in
or not. Wrap the application in the site's ``asgi.py``::

    from django.core.asgi import get_asgi_application

    from django_chatkit.asgi import BodyLimitMiddleware

    application = BodyLimitMiddleware(get_asgi_application())

For a request to the protocol endpoint or an upload URL (found by resolving its path against the
URLconf), a declared ``Content-Length`` over the limit is answered 413 at once, without reading
the body; a chunked body is counted as it comes and refused at the first chunk past the limit:
Django is handed ``http.disconnect`` (it drops what it read, temporary file included) and the
middleware answers the 413 itself. Every other request goes through untouched, and responses,
streamed ones included, pass through as they are sent.

Under daphne the body has already been read in full before any ASGI application runs: use
``python -m django_chatkit.daphne`` (:mod:`django_chatkit.daphne`), or a proxy, to refuse it as
it arrives. docs/deployment.md says more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.core.handlers.asgi import get_script_prefix

from django_chatkit.body_limits import BodyLimit, body_limit, media_type

logger = logging.getLogger("django_chatkit")

# As django-stubs types Django's ASGIHandler, so that it fits.
Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimitMiddleware:
    """ASGI middleware refusing request bodies over the limit of ChatKit's views as they arrive."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = _limit_of(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await _refuse(scope, send, limit)
            return
        counted = _CountedBody(receive, limit.max_bytes)
        answered = _Answered(send)
        await self.app(scope, counted, answered)
        if counted.refused and not answered.started:
            await _refuse(scope, send, limit)


class _CountedBody:
    """The ``receive`` of a request, cut off at the first ``http.request`` past ``max_bytes``."""

    def __init__(self, receive: Receive, max_bytes: int) -> None:
        self.receive = receive
        self.max_bytes = max_bytes
        self.received = 0
        self.refused = False

    async def __call__(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                # Django's handler drops the body it has read so far (closing its temporary
                # file) and returns without answering, as for a client gone away.
                self.refused = True
                return {"type": "http.disconnect"}
        return message


class _Answered:
    """The ``send`` of a request, remembering whether the application started its response."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses it; if not, the body is counted as it comes


def _may_have_body(scope: Scope) -> bool:
    # An HTTP/1 request without Content-Length or Transfer-Encoding has no body; HTTP/2 and 3
    # frame bodies without either.
    if not str(scope.get("http_version", "1.1")).startswith("1"):
        return True
    length = _header(scope, b"content-length")
    return (length is not None and length.strip() != b"0") or (
        _header(scope, b"transfer-encoding") is not None
    )


def _limit_of(scope: Scope) -> BodyLimit | None:
    if not _may_have_body(scope):
        return None
    path_info = scope["path"].removeprefix(get_script_prefix(scope))
    content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
    origin = (_header(scope, b"origin") or b"").decode("latin-1")
    try:
        return body_limit(path_info, media_type(content_type), origin)
    except Exception:
        # An URLconf that fails to load fails the same way in Django, which reports it properly.
        logger.debug("No body limit for %s: resolving the path failed", path_info, exc_info=True)
        return None


async def _refuse(scope: Scope, send: Send, limit: BodyLimit) -> None:
    logger.warning(
        "Refused a request body over %d bytes: %s %s",
        limit.max_bytes,
        scope.get("method", ""),
        scope["path"],
    )
    response = limit.refusal()
    headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()
    ]
    headers.append((b"content-length", str(len(response.content)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
