"""Client-facing errors: an HTTP status, a stable code and a readable message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpResponseBase, JsonResponse, StreamingHttpResponse


def gettext_noop(message: str) -> str:
    """Marks ``message`` for makemessages, as Django's does, without touching the settings:
    this module is imported by ``asgi.py`` before ``DJANGO_SETTINGS_MODULE`` is set."""
    return message


# What a client is told when the server fails: never what failed (that goes to the log).
# Marked for makemessages only: translated where it is sent (gettext(SERVER_FAULT)), in the
# language of that request.
SERVER_FAULT = gettext_noop("The server failed to answer this request. The fault has been logged.")
# Streamed answers. The charset is said: a client that is not a browser (curl, requests, an
# HTTP library) otherwise decodes the events' UTF-8 text as Latin-1 or ASCII.
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


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


class StoredDataInvalid(Exception):
    """A stored row no longer validates as the SDK object it holds: a fault of this server
    (a hand-edited row, a failed migration, an SDK upgrade), never the client's.

    Deliberately not a ``ValueError`` (pydantic's ``ValidationError``, which it wraps, is one)
    so that it cannot pass for a request that makes no sense. Its message names the row for
    the log; a client is only ever told that the server failed.
    """

    def __init__(self, kind: str, row_id: str | None, thread_id: str | None) -> None:
        super().__init__(kind, row_id, thread_id)
        self.kind = kind  # "thread", "item" or "attachment"
        self.row_id = row_id
        self.thread_id = thread_id  # filled in from the request when the row did not say

    def __str__(self) -> str:
        if self.kind == "thread":
            return f"Stored thread {self.thread_id or '(unknown id)'} does not validate"
        return (
            f"Stored {self.kind} {self.row_id or '(unknown id)'} of thread "
            f"{self.thread_id or '(unknown)'} does not validate"
        )


def error_response(status: int, code: str, message: str, **details: Any) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error.update(details)
    return JsonResponse({"error": error}, status=status)


async def method_not_allowed(message: str) -> HttpResponseBase:
    """A POST-only async view's answer to any other method: a JSON 405 naming POST. Async, as
    Django awaits whatever an async view's ``http_method_not_allowed`` returns."""
    response = error_response(405, "method_not_allowed", message)
    response["Allow"] = "POST"
    return response


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
        # Imported here: the attachment settings' system check imports this module, and checks
        # load no SDK.
        from chatkit.types import ErrorEvent

        event = ErrorEvent(code="custom", message=exc.message, allow_retry=True)
        response = StreamingHttpResponse(
            _one_frame(event.model_dump_json(by_alias=True, exclude_none=True).encode()),
            content_type=SSE_CONTENT_TYPE,
            headers={"Cache-Control": "no-cache"},
        )
    else:
        response = error_response(exc.status, exc.code, exc.message)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response
