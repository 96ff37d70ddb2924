"""When the database is down: a 503 JSON answer the client can retry, never an HTML 500 page.

Every view of ours wraps its handlers with :func:`answer_503_when_database_down`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError
from django.http import HttpResponseBase, JsonResponse
from django.utils.translation import gettext

from django_chatkit.db import close_dropped_connections
from django_chatkit.errors import error_response

logger = logging.getLogger("django_chatkit")

P = ParamSpec("P")

RETRY_AFTER_SECONDS = 1


def database_unavailable() -> JsonResponse:
    response = error_response(
        503,
        "database_unavailable",
        gettext("The chat is unavailable for a moment. Retry soon."),
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def answer_503_when_database_down(
    handler: Callable[P, Awaitable[HttpResponseBase]],
) -> Callable[P, Coroutine[Any, Any, HttpResponseBase]]:
    """Wrap an async view (or view method): a lost or refused database connection (down,
    restarting, out of connections) answers 503 ``database_unavailable`` with ``Retry-After``,
    which the widget shows as a message, instead of Django's HTML 500 page."""

    @functools.wraps(handler)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        try:
            return await handler(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            logger.warning("ChatKit request failed: database unavailable: %s", exc)
            # A restarted database leaves dead connections behind (in the pool too): drop them
            # now, so that the client's retry gets a live one.
            await sync_to_async(close_dropped_connections)()
            return database_unavailable()

    return answer
