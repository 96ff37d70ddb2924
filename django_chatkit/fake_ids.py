"""Real ids for items the Agents SDK marks with its placeholder id.

Through Chat Completions (and LiteLLM / any-llm models) the Agents SDK gives every assistant
message the id ``__fake_id__``; ``chatkit.agents`` reuses a message's model id as the ChatKit
item id. Items are unique per thread, so each answer would overwrite the previous one. The
agent server rewrites the stream's events (so the widget and the store agree on the new id),
and the store replaces any such id that still reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from agents.models.fake_id import FAKE_RESPONSES_ID
from chatkit.store import StoreItemType
from chatkit.types import (
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemReplacedEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)

# The store's id prefix for each ChatKit item type (anything else is a message).
_STORE_TYPES: dict[str, StoreItemType] = {
    "client_tool_call": "tool_call",
    "workflow": "workflow",
    "task": "task",
    "sdk_hidden_context": "sdk_hidden_context",
    "hidden_context_item": "sdk_hidden_context",
}


def is_fake(item_id: str) -> bool:
    return item_id == FAKE_RESPONSES_ID


def store_type(item: ThreadItem) -> StoreItemType:
    return _STORE_TYPES.get(item.type, "message")


class FakeIdRewriter:
    """Gives each item streamed under the placeholder id an id of its own.

    An item lives from its ``thread.item.added`` to its ``thread.item.done`` (or ``replaced``);
    the updates in between carry the placeholder too and are sent to the current item.
    """

    def __init__(self, new_id: Callable[[ThreadItem], str]) -> None:
        self._new_id = new_id
        self._current: str | None = None
        self._assigned: list[str] = []

    def resolve(self, item_id: str) -> str:
        """The id an event or a model stream's ``item_id`` now stands for."""
        if is_fake(item_id) and self._current is not None:
            return self._current
        return item_id

    def _replace(self, item: ThreadItem, *, starts: bool) -> ThreadItem:
        if not is_fake(item.id):
            return item
        if starts or self._current is None:
            self._current = self._new_id(item)
            self._assigned.append(self._current)
        return item.model_copy(update={"id": self._current})

    def rewrite(self, event: ThreadStreamEvent) -> Iterator[ThreadStreamEvent]:
        match event:
            case ThreadItemAddedEvent():
                yield event.model_copy(update={"item": self._replace(event.item, starts=True)})
            case ThreadItemUpdatedEvent() if is_fake(event.item_id):
                yield event.model_copy(update={"item_id": self.resolve(event.item_id)})
            case ThreadItemDoneEvent() | ThreadItemReplacedEvent() if is_fake(event.item.id):
                yield event.model_copy(update={"item": self._replace(event.item, starts=False)})
                self._current = None
            case ThreadItemRemovedEvent() if is_fake(event.item_id):
                # A guardrail removes everything the turn produced: every id given out.
                for item_id in self._assigned:
                    yield ThreadItemRemovedEvent(item_id=item_id)
            case _:
                yield event
