"""Answers growing on the admin transcript while they stream (docs/live.md, "Watching an answer").

The SDK stores an assistant message only when it is complete. So that staff watching a thread
see its answer grow, the worker streaming the turn publishes the text so far to the thread's
**watch group** (``chatkit.watch.<thread>``), which only staff transcript sockets join (staff
with ``view_thread``, django_chatkit.live.consumers): never the owner-facing thread group, whose
notices carry ids only.

Nothing is published unless someone watches, and nothing at all per token:

1. the turn's stop watch (django_chatkit.stops.StopWatch), which listens on the thread's stop
   group for the turn's length when a channel layer is configured, announces the turn to the
   watch group (``chatkit.watch.started``, one message per turn, from a task of its own);
2. a staff socket watching the thread answers, as it does when it opens during a turn, with
   ``chatkit.watching`` to the stop group;
3. the stop watch hands that to :meth:`AnswerProgress.watched`, which starts a task publishing,
   every ``INTERVAL_SECONDS`` while the text grew, what was added since it last published
   (``chatkit.progress``: the item id, the offset in UTF-16 code units, as the browser counts,
   and the delta); a new watcher makes the next message start again from offset 0. The text is
   the one :class:`~django_chatkit.runs.RunTracker` already keeps for a stop or a fault: the
   stream loop does no work for it.
4. when the turn ends, ``chatkit.progress.ended`` names the items published, so the page drops
   provisional text the stored items did not replace.

Without a channel layer the stop watch does not listen: nothing of this runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from django_chatkit.live.groups import THREAD_PREFIX, thread_group
from django_chatkit.live.notices import SEND_TIMEOUT_SECONDS

logger = logging.getLogger("django_chatkit")

WATCH_PREFIX: Final = "chatkit.watch."
# Turn -> watch group: an answer starts streaming (watchers say so, step 2).
STARTED_TYPE: Final = "chatkit.watch.started"
# Staff socket -> the thread's stop group: someone watches.
WATCHING_TYPE: Final = "chatkit.watching"
# Turn -> watch group: text added to an answer.
PROGRESS_TYPE: Final = "chatkit.progress"
# Turn -> watch group: the turn ended.
ENDED_TYPE: Final = "chatkit.progress.ended"
# What the staff socket sends the browser for the last two.
PROGRESS_EVENT: Final = "answer.progress"
ENDED_EVENT: Final = "answer.ended"
# At most this often per turn: a transcript grows smoothly enough, and a fast model's hundred
# tokens a second make four messages, not a hundred.
INTERVAL_SECONDS: Final = 0.25


def watch_group(thread_id: str) -> str:
    """The staff-only group a thread's streaming answers are published to."""
    return WATCH_PREFIX + thread_group(thread_id).removeprefix(THREAD_PREFIX)


def utf16_length(text: str) -> int:
    """``text``'s length as JavaScript counts it (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


# Tasks sending, kept referenced until done (the loop holds tasks weakly).
_sending: set[asyncio.Task[None]] = set()


def _spawn(send: Any) -> None:
    task = asyncio.get_running_loop().create_task(send)
    _sending.add(task)
    task.add_done_callback(_sending.discard)


async def _send(layer: Any, group: str, message: dict[str, Any]) -> None:
    try:
        await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_SECONDS)
    except Exception:
        # Staff see the answer once stored anyway.
        logger.warning("ChatKit could not publish an answer's progress", exc_info=True)


class AnswerProgress:
    """One turn's publisher: idle until a watcher shows up, then throttled deltas until
    :meth:`close`.

    ``texts()`` returns the text so far of the answers the model is writing, by the model's item
    id (``RunTracker.unfinished_text``: lists of deltas, appended to, never changed); ``item_id``
    maps such an id to the ChatKit item id the store will use, or None while there is none yet.
    """

    def __init__(
        self,
        thread_id: str,
        texts: Callable[[], Mapping[str, list[str]]],
        item_id: Callable[[str], str | None],
    ) -> None:
        self.thread_id = thread_id
        self.group = watch_group(thread_id)
        self.texts = texts
        self.item_id = item_id
        self.layer: Any = None
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        # Per model item id: its list of deltas (a placeholder id is reused by the next item,
        # with a new list), how many of them were published, and their UTF-16 length.
        self._sent: dict[str, tuple[list[str], int, int]] = {}
        self._published: dict[str, None] = {}  # ChatKit item ids published, in order

    # -- called by the stop watch's listener ----------------------------------------------------

    def listening(self, layer: Any) -> None:
        """The turn listens on its stop group: tell watchers it streams (they answer there)."""
        if self.closed:
            return
        self.layer = layer
        _spawn(_send(layer, self.group, {"type": STARTED_TYPE, "thread_id": self.thread_id}))

    def watched(self) -> None:
        """Someone watches: publish from the start of the text, then keep publishing."""
        if self.closed or self.layer is None:
            return
        self._sent.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._publish_loop())

    # -- the turn ---------------------------------------------------------------------------------

    def close(self) -> None:
        """The turn ended. Waits for nothing; says so to watchers if any were told anything."""
        if self.closed:
            return
        self.closed = True
        if self._task is None:
            return
        self._task.cancel()
        if self._published and self.layer is not None:
            message = {
                "type": ENDED_TYPE,
                "thread_id": self.thread_id,
                "item_ids": list(self._published),
            }
            _spawn(_send(self.layer, self.group, message))

    async def _publish_loop(self) -> None:
        while not self.closed:
            for message in self.pending():
                await _send(self.layer, self.group, message)
            await asyncio.sleep(INTERVAL_SECONDS)

    def pending(self) -> list[dict[str, Any]]:
        """The messages saying what was added since the last ones (and marks it published)."""
        messages = []
        for model_id, parts in list(self.texts().items()):
            known, sent, offset = self._sent.get(model_id, (parts, 0, 0))
            if known is not parts:
                sent = offset = 0
            count = len(parts)  # the model's stream may append meanwhile: up to here
            if count <= sent:
                continue
            item_id = self.item_id(model_id)
            if item_id is None:
                continue
            delta = "".join(parts[sent:count])
            self._sent[model_id] = (parts, count, offset + utf16_length(delta))
            self._published[item_id] = None
            messages.append(
                {
                    "type": PROGRESS_TYPE,
                    "thread_id": self.thread_id,
                    "item_id": item_id,
                    "offset": offset,
                    "delta": delta,
                }
            )
        return messages


async def announce_watching(layer: Any, thread_id: str) -> None:
    """A staff socket watches ``thread_id``: tell the worker streaming its answer, if any."""
    from django_chatkit.stops import stop_group  # stops imports this module

    await _send(layer, stop_group(thread_id), {"type": WATCHING_TYPE})
