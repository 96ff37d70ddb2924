"""ChatKitView: the protocol endpoint. HTTP concerns only; the server does the protocol."""

from __future__ import annotations

import logging
from typing import Any

from chatkit.server import StreamingResult
from chatkit.store import NotFoundError
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError

from django_chatkit.body_limits import declared_length
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import (
    OWNER_KEY_HEADER,
    context_from_request,
    remember_anonymous_owner,
)
from django_chatkit.csrf import csrf_failure_reason
from django_chatkit.errors import (
    SERVER_FAULT,
    SSE_CONTENT_TYPE,
    RequestRejected,
    StoredDataInvalid,
    error_response,
    method_not_allowed,
    rejection_response,
)
from django_chatkit.loading import get_server
from django_chatkit.request_body import STREAMING_OPS, vet_body
from django_chatkit.streaming import cancellable
from django_chatkit.unavailable import answer_503_when_database_down

logger = logging.getLogger("django_chatkit")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


_warned_not_asgi = False


def _warn_if_not_asgi(request: HttpRequest) -> None:
    global _warned_not_asgi
    if not _warned_not_asgi and not isinstance(request, ASGIRequest):
        _warned_not_asgi = True
        logger.warning(
            "ChatKit is served over WSGI: streamed answers are buffered until complete. "
            "Serve the site with an ASGI server (daphne, uvicorn); see check chatkit.W001."
        )


# It answers a JSON 401 itself (or serves anonymous visitors): LoginRequiredMiddleware would
# redirect the widget's fetch() to a login page.
@method_decorator(login_not_required, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")  # enforced in post() so failures answer in JSON
class ChatKitView(View):
    """POST-only ChatKit endpoint: JSON ops answer JSON, streaming ops answer SSE."""

    http_method_names = ["post"]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return method_not_allowed("Use POST for ChatKit requests.")

    @answer_503_when_database_down
    async def post(self, request: HttpRequest) -> HttpResponseBase:
        return await self.answer(request)

    async def answer(self, request: HttpRequest) -> HttpResponseBase:
        _warn_if_not_asgi(request)
        limit = chatkit_settings.MAX_REQUEST_BYTES
        if declared_length(request) > limit:
            return error_response(413, "request_too_large", f"The body exceeds {limit} bytes.")

        context = await context_from_request(
            request, allow_anonymous=chatkit_settings.ALLOW_ANONYMOUS
        )
        if context is None:
            return error_response(401, "not_authenticated", gettext("Sign in to use the chat."))

        reason = await csrf_failure_reason(request)
        if reason is not None:
            return error_response(403, "csrf_failed", f"CSRF verification failed: {reason}")

        try:
            body = request.body
        except RequestDataTooBig:
            return error_response(413, "request_too_large", f"The body exceeds {limit} bytes.")
        if len(body) > limit:
            return error_response(413, "request_too_large", f"The body exceeds {limit} bytes.")

        op = ""
        try:
            op = vet_body(body)
            result = await get_server().process(body, context)
        except RequestRejected as exc:  # the body's validation included (parse_request)
            return rejection_response(exc, streaming=op in STREAMING_OPS)
        except NotFoundError as exc:
            return error_response(404, "not_found", str(exc) or "Not found.")
        except NotImplementedError as exc:
            return error_response(400, "unsupported_operation", str(exc) or "Not supported.")
        except StoredDataInvalid as exc:
            logger.error("ChatKit could not answer %s: %s", op, exc, exc_info=exc)
            return error_response(500, "internal_error", gettext(SERVER_FAULT))
        except ValidationError as exc:
            # The body was validated already: this is data the server made or loaded.
            logger.error("ChatKit could not answer %s: invalid data", op, exc_info=exc)
            return error_response(500, "internal_error", gettext(SERVER_FAULT))
        except ValueError as exc:
            # The SDK raises ValueError for requests that are well-formed but make no sense
            # (audio that is not base64, a non-widget action sender, ...), and so may the
            # actions and dictation a site implements.
            return error_response(400, "invalid_request", str(exc))

        await remember_anonymous_owner(context)
        # The widget's thread memory is keyed by this; a new visitor's page could not show it.
        headers = {OWNER_KEY_HEADER: context.owner.memory_key()}
        if isinstance(result, StreamingResult):
            return StreamingHttpResponse(
                cancellable(result),
                content_type=SSE_CONTENT_TYPE,
                headers={**SSE_HEADERS, **headers},
            )
        return HttpResponse(result.json, content_type="application/json", headers=headers)
