"""A deterministic responder for protocol tests: what it does is chosen by the user's text.

- ``/slow N`` streams N words, 50 ms apart (for disconnect tests);
- ``/words N`` streams N words at once (for query counts that must not depend on N);
- ``/client_tool`` asks the client for a tool output (a pending client tool call);
- ``/widget`` answers with a widget (so actions have a sender);
- ``/form`` answers with a structured input request;
- ``/fail`` raises mid-stream;
- anything else is echoed back as ``echo: <text>`` in three deltas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from chatkit.actions import Action
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    AudioInput,
    ClientToolCallItem,
    StructuredInputFreeform,
    StructuredInputItem,
    SyncCustomActionResponse,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    TranscriptionResult,
    UserMessageItem,
    WidgetItem,
)
from chatkit.widgets import WidgetRoot

from django_chatkit.context import ChatKitContext
from django_chatkit.server import DjangoChatKitServer

WIDGET = {"type": "Card", "children": [{"type": "Text", "id": "t", "value": "Pick one"}]}


def user_text(item: UserMessageItem | None) -> str:
    if item is None:
        return ""
    return " ".join(part.text for part in item.content if part.type == "input_text")


class ScriptedServer(DjangoChatKitServer):
    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatKitContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        text = user_text(input_user_message)
        command, _, rest = text.partition(" ")
        if command == "/slow":
            words = [f"w{i} " for i in range(int(rest or 100))]
            async for event in self.stream_words(thread, words, delay=0.05):
                yield event
        elif command == "/words":
            async for event in self.stream_words(thread, [f"w{i} " for i in range(int(rest))]):
                yield event
        elif command == "/client_tool":
            yield ThreadItemDoneEvent(
                item=ClientToolCallItem(
                    id=self.store.generate_item_id("tool_call", thread, context),
                    thread_id=thread.id,
                    created_at=datetime.now(),
                    call_id="call_1",
                    name="get_location",
                    arguments={"precise": True},
                )
            )
        elif command == "/widget":
            yield ThreadItemDoneEvent(
                item=WidgetItem(
                    id=self.store.generate_item_id("message", thread, context),
                    thread_id=thread.id,
                    created_at=datetime.now(),
                    widget=_widget(),
                )
            )
        elif command == "/form":
            yield ThreadItemDoneEvent(
                item=StructuredInputItem(
                    id=self.store.generate_item_id("message", thread, context),
                    thread_id=thread.id,
                    created_at=datetime.now(),
                    inputs=[StructuredInputFreeform(id="q1", question="Your name?")],
                )
            )
        elif command == "/fail":
            raise RuntimeError("scripted failure")
        else:
            reply = f"echo: {text}" if input_user_message else "continued"
            async for event in self.stream_words(thread, [reply[:5], reply[5:10], reply[10:]]):
                yield event

    async def stream_words(
        self, thread: ThreadMetadata, words: list[str], delay: float = 0.0
    ) -> AsyncIterator[ThreadStreamEvent]:
        item = AssistantMessageItem(
            # No context at hand: DjangoStore's ids do not depend on it.
            id=self.store.generate_item_id("message", thread, None),  # type: ignore[arg-type]
            thread_id=thread.id,
            created_at=datetime.now(),
            content=[],
        )
        yield ThreadItemAddedEvent(item=item)
        yield ThreadItemUpdatedEvent(
            item_id=item.id,
            update=AssistantMessageContentPartAdded(
                content_index=0, content=AssistantMessageContent(text="")
            ),
        )
        for word in words:
            if delay:
                await asyncio.sleep(delay)
            yield ThreadItemUpdatedEvent(
                item_id=item.id,
                update=AssistantMessageContentPartTextDelta(content_index=0, delta=word),
            )
        content = AssistantMessageContent(text="".join(words))
        yield ThreadItemUpdatedEvent(
            item_id=item.id,
            update=AssistantMessageContentPartDone(content_index=0, content=content),
        )
        yield ThreadItemDoneEvent(item=item.model_copy(update={"content": [content]}))

    async def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: ChatKitContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        async for event in self.stream_words(thread, [f"action {action.type}"]):
            yield event

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: ChatKitContext,
    ) -> SyncCustomActionResponse:
        return SyncCustomActionResponse(updated_item=sender)


class DictatingServer(ScriptedServer):
    """Takes dictation: answers with the size of the audio it was sent."""

    async def transcribe(
        self, audio_input: AudioInput, context: ChatKitContext
    ) -> TranscriptionResult:
        return TranscriptionResult(text=f"{len(audio_input.data)} bytes")


def _widget() -> WidgetRoot:
    from pydantic import TypeAdapter

    return TypeAdapter(WidgetRoot).validate_python(WIDGET)
