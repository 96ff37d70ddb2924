"""Whether this process serves the live websocket, and at which path.

``django_chatkit.routing`` calls :func:`mark_served` when the site's ``asgi.py`` imports it;
``{% chatkit %}`` then renders the websocket's path for the widget (``data-chatkit-live``), when
a channel layer is configured too. A process that never imported the routing (WSGI, runserver
without daphne, a management command) renders none, and the widget opens no socket.
"""

from __future__ import annotations

import logging
from typing import Final

from django.urls import get_script_prefix

from django_chatkit.live.layer import live_enabled

# The socket of thread T is THREAD_PATH + T + "/", from the site's root.
THREAD_PATH: Final = "/ws/chatkit/threads/"
# Every thread's notices, for staff (the admin's live list).
STAFF_PATH: Final = "/ws/chatkit/staff/"

logger = logging.getLogger("django_chatkit")

_served = False


def mark_served() -> None:
    global _served
    _served = True
    if not live_enabled():
        # chatkit.W006 cannot see this (the checks do not import asgi.py): said at startup.
        logger.warning(
            "django_chatkit.routing is served but CHANNEL_LAYERS has no default layer (or "
            "Channels is not installed): live sockets are refused and nothing is published."
        )


def live_path() -> str | None:
    """The path prefix of the thread sockets, for the widget; None when there is no socket."""
    if not (_served and live_enabled()):
        return None
    return get_script_prefix().rstrip("/") + THREAD_PATH


def staff_live_path() -> str | None:
    """The staff socket's path, for the admin's live list; None when there is no socket."""
    if not (_served and live_enabled()):
        return None
    return get_script_prefix().rstrip("/") + STAFF_PATH
