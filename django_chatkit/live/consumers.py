"""The websocket of one thread: ``ws/chatkit/threads/<thread_id>/`` (django_chatkit.routing).

Accepted for the thread's owner (the signed-in user, or the anonymous visitor whose session
holds the owner token) and for staff with ``django_chatkit.view_thread``; refused otherwise with
a close code of ``CloseCode``. A refusal is sent after accepting, so that the browser sees the
code (a handshake refused before accepting reaches it only as 1006). To anyone but such staff,
a thread that does not exist and another owner's thread are the same refusal, 4404: the socket
tells nobody which thread ids exist.

Once accepted, the socket joins the thread's group, says ``{"event": "subscribed", "thread_id":
...}``, and forwards each notice to the browser as ``{"event": ..., "thread_id": ...,
"item_id": ...}``. It reads nothing: what the browser sends is ignored.

A staff socket opened with ``?watch=1`` (the admin transcript page's) also joins the thread's
staff-only watch group and forwards the text of answers as they stream (``answer.progress``,
``answer.ended``: django_chatkit.live.progress). Only staff with ``view_thread`` get there; the
owner's socket never joins that group, whatever it asks.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from django_chatkit import models
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ANONYMOUS_SESSION_KEY, Owner
from django_chatkit.live import progress
from django_chatkit.live.connections import ConnectionSlot, who
from django_chatkit.live.groups import STAFF_GROUP, thread_group
from django_chatkit.live.signout import session_group, session_key_of

logger = logging.getLogger("django_chatkit")

VIEW_PERMISSION = "django_chatkit.view_thread"
# The first message of an accepted socket.
SUBSCRIBED = "subscribed"


class CloseCode(enum.IntEnum):
    """Close codes of a refused socket (docs/live.md). The widget retries none but 4429."""

    # Not a refusal: the session that opened the socket signed out (django_chatkit.live.signout).
    SIGNED_OUT = 4401
    # The staff socket: not active staff with view_thread.
    FORBIDDEN = 4403
    # No such thread, or not this visitor's (the same answer for both), or nobody signed in.
    NOT_FOUND = 4404
    # The visitor has LIVE_MAX_CONNECTIONS_PER_USER sockets open already.
    TOO_MANY = 4429
    # The site has no channel layer: there would never be a notice to forward.
    UNAVAILABLE = 4503


def _owner(user: Any, session: Any) -> Owner | None:
    if user is not None and user.is_authenticated:
        return Owner(user_id=user.pk)
    if not chatkit_settings.ALLOW_ANONYMOUS or session is None:
        return None
    token = session.get(ANONYMOUS_SESSION_KEY)
    return Owner(anonymous_key=str(token)) if token else None


def _is_reviewer(user: Any) -> bool:
    return bool(
        user is not None and user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION)
    )


@dataclass(frozen=True)
class Admission:
    """Who the socket is counted against and whether they review threads; or why not."""

    subject: str | None = None
    reviewer: bool = False
    refusal: CloseCode | None = None


def _admit(thread_id: str, user: Any, session: Any) -> Admission:
    """Who may follow the thread (its owner, a reviewer), else the close code. One query of its
    own (the thread), after those reading the session, the user and, for staff, their
    permissions."""
    reviewer = _is_reviewer(user)
    owner = _owner(user, session)
    refused = Admission(refusal=CloseCode.NOT_FOUND)
    if owner is None and not reviewer:
        return refused
    row = next(
        iter(
            models.Thread.objects.filter(id=thread_id)
            .order_by()
            .values("user_id", "anonymous_key", "deleted_by_owner_at")[:1]
        ),
        None,
    )
    if row is None:
        return refused
    if owner is None:  # unreachable: a reviewer is signed in
        return refused
    if reviewer or (row["deleted_by_owner_at"] is None and owner.owns(dict(row))):
        return Admission(subject=who(owner), reviewer=reviewer)
    return refused


def _asks_to_watch(scope: Mapping[str, Any]) -> bool:
    query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
    return query.get("watch") == ["1"]


class SessionBoundConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """A socket that closes when the browser session that opened it signs out (4401)."""

    session_group: str | None = None

    async def join_session_group(self) -> None:
        key = session_key_of(self.scope)
        if key is not None and self.channel_layer is not None:
            self.session_group = session_group(key)
            await self.channel_layer.group_add(self.session_group, self.channel_name)

    async def leave_session_group(self) -> None:
        if self.session_group is not None and self.channel_layer is not None:
            await self.channel_layer.group_discard(self.session_group, self.channel_name)
            self.session_group = None

    async def chatkit_signed_out(self, message: dict[str, Any]) -> None:
        """Channels hands ``chatkit.signed_out`` (live.signout.MESSAGE_TYPE) here."""
        await self.close(code=CloseCode.SIGNED_OUT)


class ThreadNoticesConsumer(SessionBoundConsumer):
    """Forwards a thread's notices to its owner's or a reviewer's browser."""

    group: str | None = None
    watching: str | None = None  # the thread's watch group, for reviewers who asked
    thread_id: str = ""
    slot: ConnectionSlot | None = None

    async def connect(self) -> None:
        await self.accept()
        if self.channel_layer is None:
            logger.warning("ChatKit live socket refused: no channel layer (CHANNEL_LAYERS).")
            await self.close(code=CloseCode.UNAVAILABLE)
            return
        thread_id = str(self.scope["url_route"]["kwargs"]["thread_id"])
        # Channels' wrapper closes stale connections around the call, as Django does per request.
        admitted = cast(
            Admission,
            await database_sync_to_async(_admit)(
                thread_id, self.scope.get("user"), self.scope.get("session")
            ),
        )
        if admitted.subject is None:
            await self.close(code=admitted.refusal or CloseCode.NOT_FOUND)
            return
        slot = ConnectionSlot(admitted.subject)
        if not await slot.acquire():
            await self.close(code=CloseCode.TOO_MANY)
            return
        self.slot = slot
        self.thread_id = thread_id
        await self.join_session_group()
        self.group = thread_group(thread_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        if admitted.reviewer and _asks_to_watch(self.scope):
            self.watching = progress.watch_group(thread_id)
            await self.channel_layer.group_add(self.watching, self.channel_name)
            # An answer streaming already starts publishing (the next ones ask: watch_started).
            await progress.announce_watching(self.channel_layer, thread_id)
        # Tells the browser that notices flow from now on (it catches up on what it missed
        # while it was not subscribed, and resets its reconnection delay).
        await self.send_json({"event": SUBSCRIBED, "thread_id": thread_id})

    async def disconnect(self, code: int) -> None:
        await self.leave_session_group()
        if self.group is not None and self.channel_layer is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
        if self.watching is not None and self.channel_layer is not None:
            await self.channel_layer.group_discard(self.watching, self.channel_name)
            self.watching = None
        if self.slot is not None:
            await self.slot.release()
            self.slot = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The browser has nothing to say: ignored, not even decoded (so that what is not JSON
        is no error either)."""

    async def chatkit_notice(self, message: dict[str, Any]) -> None:
        """A notice from the group: Channels hands a message of type ``chatkit.notice``
        (notices.MESSAGE_TYPE) to this method. Sent on without its type."""
        await self.send_json({key: value for key, value in message.items() if key != "type"})

    # The watch group's messages (reviewers who asked only: nobody else joins it).

    async def chatkit_watch_started(self, message: dict[str, Any]) -> None:
        """An answer of the thread starts streaming: say that this socket watches it."""
        if self.watching is not None:
            await progress.announce_watching(self.channel_layer, self.thread_id)

    async def chatkit_progress(self, message: dict[str, Any]) -> None:
        """Text added to a streaming answer: ``{"event": "answer.progress", "thread_id",
        "item_id", "offset", "delta"}`` (offset in UTF-16 code units)."""
        if self.watching is None:
            return
        await self.send_json(
            {
                "event": progress.PROGRESS_EVENT,
                "thread_id": self.thread_id,
                "item_id": str(message.get("item_id", "")),
                "offset": int(message.get("offset", 0)),
                "delta": str(message.get("delta", "")),
            }
        )

    async def chatkit_progress_ended(self, message: dict[str, Any]) -> None:
        """The turn ended: ``{"event": "answer.ended", "thread_id", "item_ids"}``."""
        if self.watching is None:
            return
        item_ids = [str(item_id) for item_id in message.get("item_ids", [])]
        await self.send_json(
            {"event": progress.ENDED_EVENT, "thread_id": self.thread_id, "item_ids": item_ids}
        )


class StaffNoticesConsumer(SessionBoundConsumer):
    """``ws/chatkit/staff/``: every thread's notices, for the admin's live list.

    Accepted for active staff with ``view_thread`` only (4403 for anyone else, signed in or
    not; 4503 without a channel layer; 4429 over the connection bound, counted as their thread
    sockets are). Joins the staff group (``chatkit.staff``), says ``{"event": "subscribed"}``
    and forwards each notice as the thread socket does: ids, never content (the page fetches
    its rows through a permission-checked view). Reads nothing.
    """

    joined = False
    slot: ConnectionSlot | None = None

    async def connect(self) -> None:
        await self.accept()
        if self.channel_layer is None:
            logger.warning("ChatKit staff socket refused: no channel layer (CHANNEL_LAYERS).")
            await self.close(code=CloseCode.UNAVAILABLE)
            return
        user = self.scope.get("user")
        # has_perm reads the user's permissions from the database (once per user object).
        if not await database_sync_to_async(_is_reviewer)(user):
            await self.close(code=CloseCode.FORBIDDEN)
            return
        slot = ConnectionSlot(who(Owner(user_id=user.pk)))
        if not await slot.acquire():
            await self.close(code=CloseCode.TOO_MANY)
            return
        self.slot = slot
        await self.join_session_group()
        await self.channel_layer.group_add(STAFF_GROUP, self.channel_name)
        self.joined = True
        await self.send_json({"event": SUBSCRIBED})

    async def disconnect(self, code: int) -> None:
        await self.leave_session_group()
        if self.joined and self.channel_layer is not None:
            await self.channel_layer.group_discard(STAFF_GROUP, self.channel_name)
            self.joined = False
        if self.slot is not None:
            await self.slot.release()
            self.slot = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Ignored, as on the thread socket."""

    async def chatkit_notice(self, message: dict[str, Any]) -> None:
        await self.send_json({key: value for key, value in message.items() if key != "type"})
