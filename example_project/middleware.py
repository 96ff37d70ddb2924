"""A readable 503 page while the database is down, instead of Django's HTML 500.

django_chatkit's own views already answer a JSON 503 the widget shows; this covers the site's
pages (home, login, admin), which reach the database for the session and the signed-in user.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("example_project")

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("Page %s failed: database unavailable: %s", request.path, exception)
        # Rendered without the request: context processors would ask the database for the user.
        page = loader.get_template("503.html").render({"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
