"""How many body bytes a request to one of our views may carry, known from its path alone.

The protocol endpoint takes ``MAX_REQUEST_BYTES``; the upload view takes ``ATTACHMENTS
["MAX_BYTES"]`` plus the multipart envelope. The views check these themselves, but only once the
server has handed Django the whole body: :mod:`django_chatkit.asgi` and
:mod:`django_chatkit.daphne` ask :func:`body_limit` before the body arrives, so they can refuse it
as it comes. Settings are read on every call, so ``override_settings`` works.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve

from django_chatkit.conf import chatkit_settings
from django_chatkit.errors import error_response


@dataclass(frozen=True)
class BodyLimit:
    """The largest body a request may send, and the 413 that answers a larger one."""

    max_bytes: int
    code: str
    message: str
    # Answer headers beyond the JSON ones (CORS for an upload from an allowed origin).
    headers: tuple[tuple[str, str], ...] = ()

    def refusal(self) -> JsonResponse:
        response = error_response(413, self.code, self.message)
        for name, value in self.headers:
            response[name] = value
        # The rest of the body is not read: the connection cannot carry another request.
        response["Connection"] = "close"
        return response


def declared_length(request: HttpRequest) -> int:
    """The body size the request's ``Content-Length`` announces; 0 when absent or not a number
    (the body is then measured as it is read)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def body_limit(path_info: str, content_type: str = "", origin: str = "") -> BodyLimit | None:
    """The limit of a request to ``path_info`` (the path below the script prefix), or None when
    no view of ours answers that path.

    ``content_type`` is the request's media type (lower case, without parameters); ``origin``
    its Origin header.
    """
    # Imported here: the views import the models, and this module is imported by ASGI entry
    # points before Django is set up.
    from django_chatkit.attachments.options import limits
    from django_chatkit.attachments.receiving import too_large
    from django_chatkit.attachments.views import UploadView, upload_body_limit
    from django_chatkit.hosted.views import MAX_BODY_BYTES, HostedSessionView
    from django_chatkit.urls import DeferredView
    from django_chatkit.views import ChatKitView

    try:
        match = resolve(path_info)
    except Resolver404:
        return None
    view = match.func
    view_class = (
        view.load_view_class()
        if isinstance(view, DeferredView)
        else getattr(view, "view_class", None)
    )
    if not isinstance(view_class, type):
        return None
    if issubclass(view_class, ChatKitView):
        limit = chatkit_settings.MAX_REQUEST_BYTES
        return BodyLimit(limit, "request_too_large", f"The body exceeds {limit} bytes.")
    if issubclass(view_class, HostedSessionView):
        return BodyLimit(
            MAX_BODY_BYTES, "request_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes."
        )
    if issubclass(view_class, UploadView):
        max_bytes = limits().max_bytes
        refused = too_large(max_bytes)
        headers: tuple[tuple[str, str], ...] = ()
        if origin and origin in chatkit_settings.UPLOAD_ALLOWED_ORIGINS:
            # As the view would answer: the ChatKit iframe's fetch can then read the 413.
            headers = (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"))
        limit = upload_body_limit(max_bytes, content_type)
        return BodyLimit(limit, refused.code, refused.message, headers)
    return None


def media_type(content_type: str) -> str:
    """``multipart/form-data`` of ``Multipart/Form-Data; boundary=x``, as Django reads it."""
    return content_type.partition(";")[0].strip().lower()
