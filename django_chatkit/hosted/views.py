"""``POST hosted/session/`` (``chatkit:hosted-session``): a client secret for a hosted widget.

The bootstrap module's ``api.getClientSecret`` posts ``{"workflow": "wf_..."}`` here, with the
session cookie and Django's CSRF token, when the widget starts and again each time its secret
is about to expire. The answer is ``{"client_secret", "expires_at"}``, never cached; every
refusal is a JSON error (docs/hosted.md lists them).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_chatkit.body_limits import declared_length
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import OWNER_KEY_HEADER, context_from_request, remember_anonymous_owner
from django_chatkit.csrf import csrf_failure_reason
from django_chatkit.errors import (
    RequestRejected,
    error_response,
    method_not_allowed,
    rejection_response,
)
from django_chatkit.hosted.sessions import mint_client_secret
from django_chatkit.hosted.signout import remember_session
from django_chatkit.unavailable import answer_503_when_database_down

# {"workflow": "wf_..."} and room to spare: anything larger is not from the bootstrap.
MAX_BODY_BYTES = 4096


def _workflow_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    workflow = data.get("workflow") if isinstance(data, dict) else None
    return workflow if isinstance(workflow, str) and workflow else None


# Answers a JSON 401 itself: see ChatKitView on LoginRequiredMiddleware.
@method_decorator(login_not_required, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")  # enforced in post() so failures answer in JSON
class HostedSessionView(View):
    http_method_names = ["post"]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return method_not_allowed("Use POST to ask for a ChatKit client secret.")

    @answer_503_when_database_down
    async def post(self, request: HttpRequest) -> HttpResponseBase:
        context = await context_from_request(
            request, allow_anonymous=chatkit_settings.ALLOW_ANONYMOUS
        )
        if context is None:
            return error_response(401, "not_authenticated", gettext("Sign in to use the chat."))
        reason = await csrf_failure_reason(request)
        if reason is not None:
            return error_response(403, "csrf_failed", f"CSRF verification failed: {reason}")
        too_large = error_response(
            413, "request_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes."
        )
        if declared_length(request) > MAX_BODY_BYTES:
            return too_large
        try:
            body = request.body
        except RequestDataTooBig:
            return too_large
        if len(body) > MAX_BODY_BYTES:
            return too_large
        workflow_id = _workflow_id(body)
        if workflow_id is None:
            return error_response(
                400,
                "invalid_request",
                'Send a JSON object naming the workflow: {"workflow": "wf_..."}.',
            )
        try:
            secret = await mint_client_secret(context, workflow_id)
        except RequestRejected as exc:
            return rejection_response(exc, streaming=False)
        await remember_anonymous_owner(context)
        await remember_session(request.session, secret.session_id, secret.expires_at)
        return JsonResponse(
            {"client_secret": secret.client_secret, "expires_at": secret.expires_at},
            headers={
                # A secret: no cache (the browser's, a proxy's) may keep it.
                "Cache-Control": "no-store",
                # The widget's thread memory is keyed by this (a new visitor's page had none).
                OWNER_KEY_HEADER: context.owner.memory_key(),
            },
        )
