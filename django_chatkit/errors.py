"""Client-facing errors: an HTTP status, a stable code and a readable message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from chatkit.types import ErrorEvent
from django.http import HttpResponseBase, JsonResponse, StreamingHttpResponse


class RequestRejected(Exception):
    """A request the server refuses before doing anything; becomes a 4xx JSON response."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # Seconds after which the same request may succeed (sent as Retry-After), for refusals
        # that are not the client's mistake: quotas, an unavailable dependency.
        self.retry_after = retry_after


def error_response(status: int, code: str, message: str, **details: Any) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error.update(details)
    return JsonResponse({"error": error}, status=status)


async def _one_frame(data: bytes) -> AsyncIterator[bytes]:
    yield b"data: " + data + b"\n\n"


def rejection_response(exc: RequestRejected, *, streaming: bool) -> HttpResponseBase:
    """The response refusing a request: a JSON error, with ``Retry-After`` when it may pass later.

    A retryable refusal of a streaming op (a quota, the quota cache down) is answered as the
    stream it asked for, holding one ``error`` event: the ChatKit widget shows an error event's
    message in the conversation, with a retry button when ``allow_retry`` is set, whereas a
    failed HTTP status only reaches its ``chatkit.error`` DOM event and shows a generic error.
    """
    response: HttpResponseBase
    if streaming and exc.retry_after is not None:
        event = ErrorEvent(code="custom", message=exc.message, allow_retry=True)
        response = StreamingHttpResponse(
            _one_frame(event.model_dump_json(by_alias=True, exclude_none=True).encode()),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    else:
        response = error_response(exc.status, exc.code, exc.message)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response
