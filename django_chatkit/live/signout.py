"""Signing out closes the sockets of the browser session that signed out.

A socket is admitted for whoever its session said at the handshake (django_chatkit.live
.consumers), and Channels never looks at the session again: without this, a page left open after
signing out (or a staff member's admin tab) would go on hearing the notices of threads that are
no longer its visitor's. Each socket therefore joins its session's group (the session key,
hashed: it is as good as a password), and Django's ``user_logged_out`` signal sends that group
``chatkit.signed_out``: the consumers close with 4401. Other browsers of the same user have
other sessions and keep their sockets; a session that ends otherwise (expiry, a password change
elsewhere) is noticed at the next handshake only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Final

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from django_chatkit.live.layer import live_enabled
from django_chatkit.live.notices import SEND_TIMEOUT_SECONDS, send_soon

logger = logging.getLogger("django_chatkit")

MESSAGE_TYPE: Final = "chatkit.signed_out"
SESSION_PREFIX: Final = "chatkit.session."


def session_group(session_key: str) -> str:
    """The group of the sockets opened with the session ``session_key`` (56 characters)."""
    return SESSION_PREFIX + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def session_key_of(scope: dict[str, Any]) -> str | None:
    """The key of a socket's session (Channels' SessionMiddleware), None without one."""
    session = scope.get("session")
    key = getattr(session, "session_key", None) if session is not None else None
    return str(key) if key else None


@receiver(user_logged_out, dispatch_uid="django_chatkit.live.signout")
def close_sockets_of_session(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Sent before Django flushes the session: its key is still the one the sockets know."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if not key or not live_enabled():
        return
    group = session_group(str(key))
    send_soon(lambda: _publish(group))


async def _publish(group: str) -> None:
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        if layer is not None:
            await asyncio.wait_for(
                layer.group_send(group, {"type": MESSAGE_TYPE}), SEND_TIMEOUT_SECONDS
            )
    except Exception:
        # The sign-out itself went through; the sockets are refused at their next handshake.
        logger.warning("Could not tell a session's ChatKit sockets it signed out", exc_info=True)
