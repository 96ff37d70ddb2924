"""AgentChatKitServer: answers with an OpenAI Agents SDK agent, streamed token by token.

Per turn (quotas were counted before anything was stored, in ``check_request``): the newest
history items are loaded in one query and converted to model input, the agent runs streamed
through ``chatkit.agents.stream_agent_response``, every model call is recorded as a Run, and an
untitled thread gets a title written concurrently (the answer's first token never waits for it).

Upstream faults (429, 5xx, timeouts, a stream dropped halfway) end the turn with an error event
that says what happened and allows a retry; the user's message and the partial answer are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import agents
import openai
from agents import RunConfig, Runner
from agents.models.openai_provider import OpenAIProvider
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ChatKitReq,
    NoticeEvent,
    SDKHiddenContextItem,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
)
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from django_chatkit import models
from django_chatkit.agent_config import get_agent, model_name
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.converter import DjangoThreadItemConverter
from django_chatkit.errors import SERVER_FAULT, StoredDataInvalid
from django_chatkit.fake_ids import FakeIdRewriter, is_fake, store_type
from django_chatkit.live.progress import AnswerProgress
from django_chatkit.openai_client import get_openai_client
from django_chatkit.runs import RunTracker, record_title_run
from django_chatkit.serialization import item_text
from django_chatkit.server import DjangoChatKitServer
from django_chatkit.stops import StopWatch
from django_chatkit.store import HISTORY_PREFETCH
from django_chatkit.titles import TITLE_INSTRUCTIONS, clean_model_title, truncate_title

logger = logging.getLogger("django_chatkit")

INTERRUPTED_NOTE = "The previous answer was interrupted by an error before it was complete."
# For the model (hidden context), so that it does not carry on with the stopped answer.
STOPPED_NOTE = "A moderator stopped the previous answer before it was complete. Do not continue it."
# For the user, shown by the widget when a moderator stops the answer it is streaming.
STOPPED_NOTICE = gettext_noop("A moderator stopped this answer.")
TITLE_WAIT_SECONDS = 10.0


def describe_upstream_error(exc: BaseException) -> tuple[str, str] | None:
    """(error code, message for the user) for a fault of the model service, else None."""
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited", "The assistant is receiving too many requests. Retry in a moment."
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", "The assistant took too long to answer. Retry in a moment."
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error", "The connection to the assistant was lost. Retry in a moment."
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return (
                f"upstream_{exc.status_code}",
                f"The assistant's service failed (HTTP {exc.status_code}). Retry in a moment.",
            )
        return f"upstream_{exc.status_code}", "The assistant could not answer this request."
    if isinstance(exc, agents.exceptions.ModelBehaviorError | agents.exceptions.MaxTurnsExceeded):
        return "model_error", "The assistant could not finish its answer."
    return None


def _known_id(ids: FakeIdRewriter, model_item_id: str) -> str | None:
    """The ChatKit id of the item the model writes as ``model_item_id``; None while it has
    none (a placeholder id before its item was added)."""
    item_id = ids.resolve(model_item_id)
    return None if is_fake(item_id) else item_id


class AgentChatKitServer(DjangoChatKitServer):
    """The default server: an agent from ``CHATKIT["AGENT"]`` answers each turn."""

    converter = DjangoThreadItemConverter()

    async def check_request(self, request: ChatKitReq, context: ChatKitContext) -> str | None:
        # Every answer starts by reading the history: the user's message, stored just before,
        # is written and the history read in one trip to the database thread.
        context.extra[HISTORY_PREFETCH] = chatkit_settings.HISTORY_ITEMS
        return await super().check_request(request, context)

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatKitContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        try:
            client = get_openai_client()
        except openai.OpenAIError as exc:
            logger.error("ChatKit cannot reach OpenAI: %s", exc)
            raise CustomStreamError(
                "The assistant is not configured (no OpenAI API key).", allow_retry=False
            ) from exc

        agent = await get_agent(context)
        try:
            history = await self.store.load_recent_items(
                thread.id, chatkit_settings.HISTORY_ITEMS, context
            )
        except StoredDataInvalid as exc:
            # Retrying cannot help, and the model must not answer a history with a hole in it.
            logger.error("ChatKit cannot load the history: %s", exc, exc_info=exc)
            raise CustomStreamError(gettext(SERVER_FAULT), allow_retry=False) from exc
        model_input = await self.converter.to_agent_input(history)

        tracker = RunTracker(thread.id, context, model_name(agent))
        agent_context: AgentContext[ChatKitContext] = AgentContext(
            thread=thread, store=self.store, request_context=context
        )
        timed_agent, provider = tracker.timed(agent, OpenAIProvider(openai_client=client))
        result = Runner.run_streamed(
            timed_agent,
            model_input,
            context=agent_context,
            hooks=tracker,
            run_config=RunConfig(
                model_provider=provider, tracing_disabled=not chatkit_settings.TRACING
            ),
        )
        started_items: dict[str, ThreadItem] = {}
        ids = FakeIdRewriter(
            lambda item: self.store.generate_item_id(store_type(item), thread, context)
        )
        title_task = self.start_title(thread, input_user_message, model_name(agent), context)
        answered = stopped = still_publishing = False
        # Staff watching the thread's transcript see the answer grow: published from the text
        # the tracker keeps anyway, only once the stop watch hears that someone watches
        # (django_chatkit.live.progress). Nothing is added to the loop below.
        progress = AnswerProgress(
            thread.id, lambda: tracker.unfinished_text, lambda model_id: _known_id(ids, model_id)
        )
        # A moderator's stop (django_chatkit.stops) cancels the model's run: its stream then
        # ends early, as if complete, and the partial answer is stored below.
        watch = StopWatch(thread.id, lambda: tracker.run_pk, result.cancel, progress)
        watch.start()
        try:
            async for streamed in stream_agent_response(agent_context, result):
                for event in ids.rewrite(streamed):
                    if isinstance(event, ThreadItemAddedEvent):
                        started_items[event.item.id] = event.item
                    yield event
            # Read at once: a stop landing after the answer's end is moot.
            stopped = watch.stopped
            watch.close()
            if stopped:
                await tracker.stopped()
                # Its partial answer is stored below: watchers are told the end after that.
                still_publishing = True
            else:
                answered = True
        except asyncio.CancelledError:
            # The client went away: stop the upstream request; the SDK stores the partial text.
            result.cancel()
            await tracker.cancelled()
            raise
        except GeneratorExit:
            # The SDK stopped reading: storing the event last yielded failed (it sends the
            # client an error event instead), so this answer is not stored.
            result.cancel()
            await tracker.abandoned("not_stored", "The answer could not be stored.")
            raise
        except Exception as exc:
            result.cancel()
            described = describe_upstream_error(exc)
            if described is None:
                await tracker.failed("error", repr(exc)[:500])
                raise
            code, message = described
            logger.warning("ChatKit answer failed upstream (%s): %s", code, exc)
            await tracker.failed(code, str(exc)[:500])
            await self.keep_partial_answer(thread, tracker, started_items, ids, context)
            raise CustomStreamError(message, allow_retry=True) from exc
        finally:
            watch.close()
            if not still_publishing:
                progress.close()
            if not answered and title_task is not None:
                # However the turn ended without its answer, nobody will wait for the title:
                # left running, it would call the model and write its Run after the turn.
                title_task.cancel()
            if tracker.run_pk is not None:
                # Whatever ended the turn with a model call still open (a failing hook, a run
                # that could not be closed above), the Run must not stay "running".
                await tracker.abandoned("interrupted", "The turn ended during the model call.")

        if stopped:
            try:
                stopping = await self.stopped_answer(thread, tracker, started_items, ids, context)
                for event in stopping:
                    yield event  # the SDK stores it before asking for the next
            finally:
                progress.close()
            if title_task is not None and input_user_message is not None:
                # The title call was cancelled with the answer: the message, cut short, is one.
                cut = truncate_title(item_text(input_user_message))
                if cut and await self.store.set_title_if_untitled(thread.id, cut, context):
                    thread.title = cut
            return

        if title_task is not None:
            title = await self.finish_title(title_task, input_user_message)
            if title and await self.store.set_title_if_untitled(thread.id, title, context):
                thread.title = title  # the SDK then saves it and sends thread.updated

    async def keep_partial_answer(
        self,
        thread: ThreadMetadata,
        tracker: RunTracker,
        started_items: dict[str, ThreadItem],
        ids: FakeIdRewriter,
        context: ChatKitContext,
    ) -> None:
        """Store what the model said before a fault, as the SDK does on cancellation."""
        partial = tracker.unfinished_answers()
        for model_item_id, text in partial.items():
            item_id = ids.resolve(model_item_id)  # the id the client was shown
            if is_fake(item_id):
                item_id = self.store.generate_item_id("message", thread, context)
            started = started_items.get(item_id)
            await self.store.add_thread_item(
                thread.id,
                AssistantMessageItem(
                    id=item_id,
                    thread_id=thread.id,
                    created_at=started.created_at if started else datetime.now(),
                    content=[AssistantMessageContent(text=text)],
                ),
                context,
            )
        if partial:
            note = SDKHiddenContextItem(
                id=self.store.generate_item_id("sdk_hidden_context", thread, context),
                thread_id=thread.id,
                created_at=datetime.now(),
                content=INTERRUPTED_NOTE,
            )
            await self.store.add_thread_item(thread.id, note, context)

    async def stopped_answer(
        self,
        thread: ThreadMetadata,
        tracker: RunTracker,
        started_items: dict[str, ThreadItem],
        ids: FakeIdRewriter,
        context: ChatKitContext,
    ) -> list[ThreadStreamEvent]:
        """The end of an answer a moderator stopped: what the model said so far, finished as it
        is (the SDK stores it and the client shows it as final), a note for the model's next
        turn (stored, never shown) and a notice for the user."""
        events: list[ThreadStreamEvent] = []
        for model_item_id, text in tracker.unfinished_answers().items():
            item_id = ids.resolve(model_item_id)
            if is_fake(item_id):
                item_id = self.store.generate_item_id("message", thread, context)
            started = started_items.get(item_id)
            item = AssistantMessageItem(
                id=item_id,
                thread_id=thread.id,
                created_at=started.created_at if started else datetime.now(),
                content=[AssistantMessageContent(text=text)],
            )
            events.append(ThreadItemDoneEvent(item=item))
        note = SDKHiddenContextItem(
            id=self.store.generate_item_id("sdk_hidden_context", thread, context),
            thread_id=thread.id,
            created_at=datetime.now(),
            content=STOPPED_NOTE,
        )
        events.append(ThreadItemDoneEvent(item=note))
        events.append(NoticeEvent(level="info", message=gettext(STOPPED_NOTICE)))
        return events

    # -- titles ---------------------------------------------------------------------------------

    def start_title(
        self,
        thread: ThreadMetadata,
        message: UserMessageItem | None,
        agent_model: str,
        context: ChatKitContext,
    ) -> asyncio.Task[str | None] | None:
        """Start writing a title for an untitled thread, concurrently with the answer."""
        if thread.title or message is None:
            return None
        text = item_text(message)
        if not text.strip():
            return None
        if not chatkit_settings.GENERATE_TITLES:
            return asyncio.create_task(asyncio.sleep(0, result=truncate_title(text)))
        model = chatkit_settings.TITLE_MODEL or agent_model
        return asyncio.create_task(self.generate_title(thread.id, text, model, context))

    async def generate_title(
        self, thread_id: str, text: str, model: str, context: ChatKitContext
    ) -> str | None:
        started = timezone.now()
        try:
            response = await get_openai_client().responses.create(
                model=model,
                instructions=TITLE_INSTRUCTIONS,
                input=text[:2000],
                max_output_tokens=32,
            )
        except openai.OpenAIError as exc:
            logger.info("ChatKit title generation failed: %s", exc)
            code = (describe_upstream_error(exc) or ("error", ""))[0]
            await record_title_run(
                context,
                thread_id,
                model=model,
                started_at=started,
                status=models.RunStatus.FAILED,
                error_code=code,
            )
            return None
        usage = response.usage
        await record_title_run(
            context,
            thread_id,
            model=model,
            started_at=started,
            status=models.RunStatus.COMPLETED,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        )
        return clean_model_title(response.output_text) or None

    async def finish_title(
        self, task: asyncio.Task[str | None], message: UserMessageItem | None
    ) -> str | None:
        try:
            title = await asyncio.wait_for(task, TITLE_WAIT_SECONDS)
        except Exception:  # a timeout, or anything the title call raised: fall back
            logger.info("ChatKit title generation gave up; truncating the message instead")
            title = None
        if title:
            return title
        return truncate_title(item_text(message)) if message is not None else None
