"""Django's CSRF check, run inside our views so that a failure answers JSON, not an HTML page.

The views are ``csrf_exempt`` for the middleware and call :func:`csrf_failure_reason` where
the check belongs in their order (after authentication: a visitor who may not chat at all is
told so first).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, reporting the failure reason instead of rendering a 403 page."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def csrf_failure(request: HttpRequest) -> str | None:
    """Why ``request`` fails Django's CSRF check; None when it passes."""
    check = _CsrfCheck(lambda req: HttpResponse())
    check.process_request(request)
    reason = check.process_view(request, lambda req: HttpResponse(), (), {})
    return reason if isinstance(reason, str) else None


async def csrf_failure_reason(request: HttpRequest) -> str | None:
    """:func:`csrf_failure` from async code: the token kept in the session (``CSRF_USE_SESSIONS``)
    is read through the database, hence on a thread."""
    if settings.CSRF_USE_SESSIONS:
        return await sync_to_async(csrf_failure)(request)
    return csrf_failure(request)
