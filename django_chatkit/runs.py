"""Run records: one row per model call, written by Agents SDK lifecycle hooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from agents import Agent, Model, ModelProvider, RunContextWrapper, RunHooks
from agents.items import ModelResponse
from django.db import DatabaseError
from django.utils import timezone

from django_chatkit import models, quotas, signals
from django_chatkit.context import ChatKitContext
from django_chatkit.db import in_thread

logger = logging.getLogger("django_chatkit")


def _create_run(**values: Any) -> int:
    return models.Run.objects.create(**values).pk


def _create_run_again(**values: Any) -> int:
    """The retry of a create whose connection dropped: its commit may have happened.

    A run is identified by its thread, kind and start time to the microsecond.
    """
    found = (
        models.Run.objects.filter(
            thread_id=values["thread_id"], kind=values["kind"], started_at=values["started_at"]
        )
        .order_by()
        .values_list("pk", flat=True)[:1]
    )
    existing = next(iter(found), None)
    return existing if existing is not None else _create_run(**values)


def _update_run(pk: int, **values: Any) -> None:
    models.Run.objects.filter(pk=pk).update(**values)


def _announce_finished(pk: int, status: str, context: ChatKitContext) -> None:
    # Sent from this synchronous code, in the request's thread, like every signal of
    # django_chatkit.signals: receivers may use the ORM.
    signals.run_finished.send(sender=models.Run, run_id=pk, status=status, context=context)


def _create_finished_run(context: ChatKitContext, **values: Any) -> int:
    pk = _create_run(**values)
    _announce_finished(pk, values["status"], context)
    return pk


def _create_finished_run_again(context: ChatKitContext, **values: Any) -> int:
    pk = _create_run_again(**values)
    _announce_finished(pk, values["status"], context)
    return pk


# A model call starts right after (or, for a title, is still streaming the answer): the stream
# then holds no connection while the model talks.
create_run_before_call = in_thread(_create_run, before_wait=True, on_retry=_create_run_again)
create_finished_run = in_thread(
    _create_finished_run, before_wait=True, on_retry=_create_finished_run_again
)
update_run = in_thread(_update_run)
announce_finished = in_thread(_announce_finished)


class RunTracker(RunHooks[Any]):
    """Follows one turn: opens a Run when a model call starts and closes it when it ends.

    The first token's time is noted by :class:`TimedModel` as the model's stream delivers it
    (stream events reach the ChatKit layer later, through a queue, sometimes after the call has
    ended), so latency is recorded without any query per token.
    """

    def __init__(self, thread_id: str, context: ChatKitContext, model: str) -> None:
        self.thread_id = thread_id
        self.context = context
        self.model = model
        self.run_pk: int | None = None  # the run of the model call under way
        self.last_run_pk: int | None = None  # the last run closed
        self.first_token_at: datetime | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        # Text of assistant messages the model has started but not finished, by item id, as
        # the model delivered it: on a fault, the Agents SDK drops events still queued for the
        # ChatKit layer, so this is the only complete record of what was said.
        self.unfinished_text: dict[str, list[str]] = {}

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[Any],
    ) -> None:
        self.first_token_at = None
        self.run_pk = await create_run_before_call(
            thread_id=self.thread_id,
            kind=models.RunKind.ANSWER,
            model=self.model,
            started_at=timezone.now(),
            **self.context.owner.fields(),
        )

    def saw_model_event(self, event: Any) -> None:
        kind = str(getattr(event, "type", ""))
        if kind.endswith(".delta") and self.first_token_at is None:
            self.first_token_at = timezone.now()
        if kind == "response.output_text.delta":
            self.unfinished_text.setdefault(event.item_id, []).append(event.delta)
        elif kind == "response.output_item.done":
            self.unfinished_text.pop(str(getattr(event.item, "id", "")), None)

    def unfinished_answers(self) -> dict[str, str]:
        texts = {item_id: "".join(parts) for item_id, parts in self.unfinished_text.items()}
        return {item_id: text for item_id, text in texts.items() if text.strip()}

    def timed(self, agent: Agent[Any], provider: ModelProvider) -> tuple[Agent[Any], ModelProvider]:
        """The agent and provider to run with, so that model streams report their first token."""
        if isinstance(agent.model, Model):
            return agent.clone(model=TimedModel(agent.model, self)), provider
        return agent, TimedModelProvider(provider, self)

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        usage = response.usage
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        await self._close(
            models.RunStatus.COMPLETED,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            response_id=response.response_id or "",
        )
        await quotas.add_tokens(self.context, usage.input_tokens + usage.output_tokens)

    async def failed(self, code: str, message: str) -> None:
        await self._close(models.RunStatus.FAILED, error_code=code, error_message=message)

    async def cancelled(self) -> None:
        await self._close(models.RunStatus.CANCELLED, error_code="cancelled")

    async def stopped(self) -> None:
        """A moderator stopped the answer: who is on the run already (django_chatkit.stops)."""
        await self._close(
            models.RunStatus.CANCELLED,
            error_code="stopped",
            error_message="Stopped by a moderator.",
        )

    async def abandoned(self, code: str, message: str) -> None:
        """The turn ended without its answer stored (the store failed, the stream was dropped
        unexpectedly): whichever run is open, or else the one that produced the answer, is
        marked failed. Best effort: with the database down, ``chatkit_close_stale_runs``
        closes a run left running later."""
        pk = self.run_pk or self.last_run_pk
        self.run_pk = self.last_run_pk = None
        if pk is None:
            return
        try:
            await update_run(
                pk,
                status=models.RunStatus.FAILED,
                finished_at=timezone.now(),
                error_code=code,
                error_message=message[:500],
            )
        except DatabaseError as exc:
            logger.error("ChatKit could not mark run %s failed (%s): %s", pk, code, exc)
            return
        await self._finished(pk, models.RunStatus.FAILED)

    async def _close(self, status: str, **values: Any) -> None:
        pk = self.run_pk
        if pk is None:
            return
        await update_run(
            pk,
            status=status,
            finished_at=timezone.now(),
            first_token_at=self.first_token_at,
            **values,
        )
        self.run_pk, self.last_run_pk = None, pk
        await self._finished(pk, status)

    async def _finished(self, pk: int, status: str) -> None:
        # A hop of its own, after the run's state is settled: a receiver that raises fails the
        # turn, but cannot make the run look still open. No hop at all without receivers.
        if signals.run_finished.has_listeners(models.Run):
            await announce_finished(pk, status, self.context)


class TimedModel(Model):
    """Delegates to a model, showing the tracker each event of its stream as it arrives."""

    def __init__(self, inner: Model, tracker: RunTracker) -> None:
        self.inner = inner
        self.tracker = tracker

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return await self.inner.get_response(*args, **kwargs)

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for event in self.inner.stream_response(*args, **kwargs):
            self.tracker.saw_model_event(event)
            yield event

    async def close(self) -> None:
        await self.inner.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)


class TimedModelProvider(ModelProvider):
    def __init__(self, inner: ModelProvider, tracker: RunTracker) -> None:
        self.inner = inner
        self.tracker = tracker

    def get_model(self, model_name: str | None) -> Model:
        return TimedModel(self.inner.get_model(model_name), self.tracker)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def record_title_run(
    context: ChatKitContext,
    thread_id: str,
    *,
    model: str,
    started_at: datetime,
    status: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    error_code: str = "",
) -> None:
    """A title call, written once when it is over (usually while the answer still streams)."""
    await create_finished_run(
        context,
        thread_id=thread_id,
        kind=models.RunKind.TITLE,
        model=model,
        status=status,
        started_at=started_at,
        finished_at=timezone.now(),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        error_code=error_code,
        **context.owner.fields(),
    )
    await quotas.add_tokens(context, input_tokens + output_tokens)
