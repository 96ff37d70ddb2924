"""Notices: what changed in a thread, published after commit to the channel layer.

A notice names what changed and the ids, never content: ``{"type": "chatkit.notice", "event":
"item.added", "thread_id": "thr_...", "item_id": "msg_..."}``. A subscriber fetches what it may
see through the usual, permission-checked way (the widget's ``fetchUpdates()``, the admin page).
Each is sent to the thread's group and to the staff group, except staff-only events (legal
hold), which only the staff group gets: the owner is not told their thread is held.

Published once per write, when its transaction commits (``transaction.on_commit``; nothing when
it rolls back), and only when a channel layer is configured (``layer.live_enabled``, one cached
check): without one, :func:`publish_on_commit` returns at once and the store's hot path does
nothing more than before. A layer that fails is logged and ignored: a notice is never worth a
failed turn.

Sending never holds up the turn: from a worker thread that asgiref runs for an event loop (the
store's ORM work, an admin view under ASGI), the send becomes a task on that loop and the write
returns at once; from plain sync code (WSGI, a management command) it is sent before returning.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final

from asgiref.sync import SyncToAsync, async_to_sync
from django.db import transaction

from django_chatkit.live.groups import STAFF_GROUP, thread_group
from django_chatkit.live.layer import live_enabled

logger = logging.getLogger("django_chatkit")

MESSAGE_TYPE: Final = "chatkit.notice"

# The events (docs/live.md lists who publishes each).
THREAD_CREATED: Final = "thread.created"
THREAD_UPDATED: Final = "thread.updated"
THREAD_TITLE: Final = "thread.title"
THREAD_STATUS: Final = "thread.status"
THREAD_DELETED: Final = "thread.deleted"
THREAD_HOLD: Final = "thread.hold"
THREAD_TAKEOVER: Final = "thread.takeover"  # taken over by staff, or handed back
ITEM_ADDED: Final = "item.added"
ITEM_UPDATED: Final = "item.updated"
ITEM_DELETED: Final = "item.deleted"
FEEDBACK: Final = "item.feedback"

# Only the staff group hears these.
STAFF_ONLY: Final = frozenset({THREAD_HOLD})

# A send taking longer is abandoned (and logged): a layer that hangs must not pile up tasks, nor
# hold a sync caller (an admin action under WSGI) for long.
SEND_TIMEOUT_SECONDS: Final = 2.0

# Tasks sending notices, kept referenced until done (the loop holds tasks weakly).
_pending: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class Notice:
    event: str
    thread_id: str
    item_id: str | None = None

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "event": self.event,
            "thread_id": self.thread_id,
        }
        if self.item_id is not None:
            message["item_id"] = self.item_id
        return message

    def groups(self) -> tuple[str, ...]:
        if self.event in STAFF_ONLY:
            return (STAFF_GROUP,)
        return (thread_group(self.thread_id), STAFF_GROUP)


def publish_on_commit(notices: Iterable[Notice], *, using: str | None = None) -> None:
    """Publish ``notices`` once the current transaction on ``using`` commits (at once in
    autocommit). Call it inside the atomic block of the write, so that a rollback drops them."""
    if not live_enabled():
        return
    batch = tuple(notices)
    if batch:
        transaction.on_commit(lambda: _dispatch(batch), using=using, robust=True)


def notice(event: str, thread_id: str, item_id: str | None = None) -> Notice:
    return Notice(event, thread_id, item_id)


def _dispatch(batch: tuple[Notice, ...]) -> None:
    send_soon(lambda: _send(batch))


def send_soon(send: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``send()`` (a coroutine that handles its own errors) without holding up the caller
    when an event loop can run it, else before returning (see the module's docstring)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        _spawn(send)
        return
    # The loop that asgiref's sync_to_async runs this thread for (the store's writes, views
    # under ASGI). asgiref keeps it in a thread-local of its own; without it, sent in place.
    # The same test as asgiref's AsyncToSync makes before using it.
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if (
        isinstance(loop, asyncio.AbstractEventLoop)
        and getattr(local, "main_event_loop_pid", None) == os.getpid()
        and loop.is_running()
        and not loop.is_closed()
    ):
        loop.call_soon_threadsafe(_spawn, send)
        return
    async_to_sync(_await)(send)


async def _await(send: Callable[[], Coroutine[Any, Any, None]]) -> None:
    await send()


def _spawn(send: Callable[[], Coroutine[Any, Any, None]]) -> None:
    task = asyncio.get_running_loop().create_task(send())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _send(batch: tuple[Notice, ...]) -> None:
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for item in batch:
            message = item.message()
            for group in item.groups():
                await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_SECONDS)
    except Exception:
        # Never worth a failed turn or admin action: subscribers catch up on their next fetch.
        logger.warning(
            "Could not publish %d ChatKit notice(s), the first %r",
            len(batch),
            batch[0],
            exc_info=True,
        )


async def drain() -> None:
    """Wait until every notice scheduled so far on this loop has been sent (tests, shutdown)."""
    await asyncio.sleep(0)  # lets callbacks handed over by worker threads create their tasks
    loop = asyncio.get_running_loop()
    while mine := [task for task in _pending if task.get_loop() is loop and not task.done()]:
        await asyncio.gather(*mine, return_exceptions=True)
