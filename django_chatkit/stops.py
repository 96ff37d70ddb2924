"""Stopping an answer in progress, whichever worker streams it.

The truth is a flag on the running answer's Run (``stop_requested_at``, ``stopped_by``), set by
:func:`request_stop` (the admin's stop button, a lock or a close). The worker streaming the
answer watches for it (:class:`StopWatch`) three ways, so that a stop lands within a second
whatever is configured or broken:

- in the same process, the request wakes the watch at once (no layer needed);
- with a channel layer, the request is published, after commit, to the thread's stop group,
  which the watch listens to for the length of the turn (another worker: milliseconds);
- and every ``POLL_SECONDS`` one poller per process (per event loop) reads the flags of all the
  answers it streams in one indexed query, never per token nor per stream: a layer that is
  down, or a message it lost, delays a stop by at most that. It runs only while an answer
  streams, outside any request, on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from django_chatkit import models
from django_chatkit.db import close_dropped_connections, release_connections
from django_chatkit.live.groups import THREAD_PREFIX, thread_group
from django_chatkit.live.layer import live_enabled
from django_chatkit.live.notices import SEND_TIMEOUT_SECONDS, send_soon
from django_chatkit.live.progress import WATCHING_TYPE, AnswerProgress

logger = logging.getLogger("django_chatkit")

MESSAGE_TYPE: Final = "chatkit.stop"
STOP_PREFIX: Final = "chatkit.stop."
# How often a streaming worker reads the flag: the bound on a stop's delay without a layer.
POLL_SECONDS: Final = 0.5
# A turn's stop listener is ended by a message of this type on its own channel
# (StopWatch._end); cancelled when it has not ended this long after.
CLOSE_TYPE: Final = "chatkit.stop.closed"
LISTENER_GRACE_SECONDS: Final = 1.0


def stop_group(thread_id: str) -> str:
    """The group the workers streaming ``thread_id``'s answers listen to for stops."""
    return STOP_PREFIX + thread_group(thread_id).removeprefix(THREAD_PREFIX)


# -- asking ------------------------------------------------------------------------------------


def request_stop(thread_ids: list[str], user_id: Any, *, using: str | None = None) -> list[str]:
    """Flag the running answers of ``thread_ids`` as stopped by ``user_id``; the threads that
    had one. Their workers are told when the current transaction commits."""
    running = models.Run.objects.using(using).filter(
        thread_id__in=thread_ids,
        kind=models.RunKind.ANSWER,
        status=models.RunStatus.RUNNING,
        stop_requested_at__isnull=True,
    )
    with transaction.atomic(using=using):
        stopped = sorted({str(pk) for pk in running.values_list("thread_id", flat=True)})
        if not stopped:
            return []
        running.update(stop_requested_at=timezone.now(), stopped_by_id=user_id)
        transaction.on_commit(lambda: _tell_workers(stopped), using=using, robust=True)
    return stopped


def _tell_workers(thread_ids: list[str]) -> None:
    for thread_id in thread_ids:
        _wake_local(thread_id)
    if live_enabled():
        send_soon(lambda: _publish(thread_ids))


async def _publish(thread_ids: list[str]) -> None:
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for thread_id in thread_ids:
            message = {"type": MESSAGE_TYPE, "thread_id": thread_id}
            await asyncio.wait_for(
                layer.group_send(stop_group(thread_id), message), SEND_TIMEOUT_SECONDS
            )
    except Exception:
        # The flag is set: the workers read it within POLL_SECONDS anyway.
        logger.warning("Could not publish a ChatKit stop for %s", thread_ids, exc_info=True)


# -- watching ----------------------------------------------------------------------------------

# The watches of this process, by thread id. Woken from any thread (an admin view runs in a
# worker thread), so guarded by a lock and woken through the watch's own loop.
_local: dict[str, set[StopWatch]] = {}
_local_lock = threading.Lock()


def _wake_local(thread_id: str) -> None:
    with _local_lock:
        watches = list(_local.get(thread_id, ()))
    for watch in watches:
        watch.loop.call_soon_threadsafe(watch.wake.set)


def _flagged(run_pks: Iterable[int]) -> set[int]:
    """Of ``run_pks``, the runs stopped, or whose thread staff took over since the request
    loaded it (the server decides on the thread as loaded, without a query of its own:
    django_chatkit.server)."""
    try:
        return set(
            models.Run.objects.filter(pk__in=list(run_pks))
            .filter(Q(stop_requested_at__isnull=False) | Q(thread__taken_over_at__isnull=False))
            .values_list("pk", flat=True)
        )
    except (OperationalError, InterfaceError):
        close_dropped_connections()  # the next poll reads on a new connection
        raise
    finally:
        # The poller holds no connection between reads (pooled ones go back to the pool).
        release_connections(unpooled=True)


# The pollers' reads run here, never in a request's thread: a poll serves every stream of the
# process, and must not queue behind (or hold up) one request's database work.
_poll_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatkit-stop-poll")
flagged = sync_to_async(_flagged, thread_sensitive=False, executor=_poll_executor)


class _Poller:
    """Reads the flags of every watch of one event loop, one query each ``POLL_SECONDS``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watches: set[StopWatch] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, watch: StopWatch) -> None:
        self.watches.add(watch)
        if self.task is None or self.task.done():
            # In an empty context: the poller belongs to no request (a request's context
            # would, say, count its queries as that request's, or carry its locale).
            self.task = self.loop.create_task(self._run(), context=contextvars.Context())

    def discard(self, watch: StopWatch) -> None:
        self.watches.discard(watch)  # the task ends on its own once none is left

    async def _run(self) -> None:
        while self.watches:
            await asyncio.sleep(POLL_SECONDS)
            by_run: dict[int, list[StopWatch]] = {}
            for watch in list(self.watches):
                run_pk = watch.run_pk()
                if run_pk is not None:
                    by_run.setdefault(run_pk, []).append(watch)
            if not by_run:
                continue
            try:
                stopped = await flagged(by_run)
            except Exception:
                logger.warning("ChatKit could not read the stop flags", exc_info=True)
                continue
            for run_pk in stopped:
                for watch in by_run[run_pk]:
                    watch.wake.set()


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Poller] = (
    weakref.WeakKeyDictionary()
)


def _poller(loop: asyncio.AbstractEventLoop) -> _Poller:
    poller = _pollers.get(loop)
    if poller is None:
        poller = _pollers[loop] = _Poller(loop)
    return poller


class StopWatch:
    """For the length of one turn, calls ``on_stop`` once when a moderator stops it.

    ``async with StopWatch(thread_id, run_pk, on_stop) as watch:`` ... ``watch.stopped``.

    ``progress``: the turn's answer publisher (django_chatkit.live.progress), told through the
    stop group's listener when staff watch the thread.
    """

    def __init__(
        self,
        thread_id: str,
        run_pk: Callable[[], int | None],
        on_stop: Callable[[], None],
        progress: AnswerProgress | None = None,
    ) -> None:
        self.thread_id = thread_id
        # The run of the model call under way, whose flag is read (None between calls): an
        # older run left "running" by a dead worker must not stop this turn.
        self.run_pk = run_pk
        self.on_stop = on_stop
        self.progress = progress
        self.stopped = False
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cancelled = False
        self._closing = False
        self._channel = ""  # the listener's, once it has one

    def start(self) -> None:
        with _local_lock:
            _local.setdefault(self.thread_id, set()).add(self)
        _poller(self.loop).add(self)
        self._task = asyncio.create_task(self._watch())

    def close(self) -> None:
        """Stop watching. Waits for nothing: a turn's end (a client gone, a failed write
        handled in a generator being closed) must not take one more trip through the loop."""
        with _local_lock:
            watches = _local.get(self.thread_id)
            if watches is not None:
                watches.discard(self)
                if not watches:
                    del _local[self.thread_id]
        _poller(self.loop).discard(self)
        if self._task is not None and not self._task.done() and not self._cancelled:
            # Once: a second cancellation would cut short the ending of the listener.
            self._cancelled = True
            self._task.cancel()

    async def __aenter__(self) -> StopWatch:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def _watch(self) -> None:
        # Woken by this process's stop request, by the layer (_listen) or by the poller.
        listener = asyncio.create_task(self._listen()) if live_enabled() else None
        try:
            await self.wake.wait()
        finally:
            if listener is not None:
                await self._end(listener)
        self.stopped = True
        self.on_stop()

    async def _end(self, listener: asyncio.Task[None]) -> None:
        """End the listener with a message on its own channel rather than a cancellation.

        With channels_redis, the receive of whichever channel holds the process's receive lock
        reads for every channel of the process: cancelled in the middle of that read, it drops
        the message it was taking off Redis, which may be a notice for one of the process's
        sockets. And on Python 3.11 the cancellation itself can be lost (asyncio.wait_for
        returns what it waited for when a cancellation comes just as that finishes, and
        redis-py sends every command through it when the connection has a socket_timeout, as
        docs/live.md asks): the receive then waits on for good, with the group membership. A
        listener with no channel yet, or whose message cannot be sent, is cancelled."""
        self._closing = True
        if listener.done():
            return
        if self._channel and await self._send_close():
            done, _ = await asyncio.wait([listener], timeout=LISTENER_GRACE_SECONDS)
            if done:
                return
        listener.cancel()
        await asyncio.wait([listener], timeout=LISTENER_GRACE_SECONDS)

    async def _send_close(self) -> bool:
        from channels.layers import get_channel_layer

        try:
            layer = get_channel_layer()
            await asyncio.wait_for(
                layer.send(self._channel, {"type": CLOSE_TYPE}), SEND_TIMEOUT_SECONDS
            )
        except Exception:
            return False
        return True

    async def _listen(self) -> None:
        """Wake the watch when the thread's stop group hears of a stop (another worker's); tell
        the progress publisher when staff watch."""
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        group = stop_group(self.thread_id)
        channel = ""
        try:
            # The layer's default prefix, as every consumer's channel: channels_redis reads all
            # of a process's channels through one receive lock, from the inbox their prefix
            # names. A prefix of its own gave this channel an inbox of its own, and while the
            # watch held the lock waiting there, no socket of the process heard a notice.
            channel = self._channel = await layer.new_channel()
            await layer.group_add(group, channel)
            if self.progress is not None:
                self.progress.listening(layer)
            while True:
                message = await layer.receive(channel)
                if self._closing:
                    return
                kind = message.get("type")
                if kind == MESSAGE_TYPE:
                    self.wake.set()
                    return
                if kind == WATCHING_TYPE and self.progress is not None:
                    self.progress.watched()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The poller still sees the flag.
            logger.warning("ChatKit could not listen for stops", exc_info=True)
        finally:
            if channel:
                # Left in a task of its own: the turn's end never waits for the layer (a
                # membership left behind only expires, its messages unread).
                task = asyncio.get_running_loop().create_task(_discard(layer, group, channel))
                _discarding.add(task)
                task.add_done_callback(_discarding.discard)


# Tasks leaving a stop group, kept referenced until done (the loop holds tasks weakly).
_discarding: set[asyncio.Task[None]] = set()


async def _discard(layer: Any, group: str, channel: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(layer.group_discard(group, channel), SEND_TIMEOUT_SECONDS)
