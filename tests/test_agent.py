"""AgentChatKitServer end to end: the real openai + openai-agents clients against the fake
OpenAI server over loopback, through the real view."""

from __future__ import annotations

import asyncio

import pytest
from agents.tracing import TracingProcessor
from asgiref.sync import sync_to_async
from django.test import override_settings

from django_chatkit import models
from django_chatkit.testing import ChatKitTestClient, RecordedRequest, Reply, ToolCall, Usage
from tests import agent_tools

pytestmark = pytest.mark.django_db(transaction=True)

AGENT_SETTINGS = {
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    "AGENT": {
        "model": "answer-model",
        "instructions": "Be brief.",
        "tools": ["tests.agent_tools.get_weather"],
    },
    "TITLE_MODEL": "title-model",
    "OPENAI_MAX_RETRIES": 0,
    "OPENAI_READ_TIMEOUT": 1.5,
}


def is_title(request: RecordedRequest) -> bool:
    return request.model == "title-model"


def is_answer(request: RecordedRequest) -> bool:
    return request.model == "answer-model"


@pytest.fixture
def fake(fake_openai):
    fake_openai.default_reply = lambda request: (
        Reply(text="Weather in Paris", usage=Usage(30, 4)) if is_title(request) else None
    )
    with override_settings(CHATKIT=AGENT_SETTINGS):
        yield fake_openai


@pytest.fixture
def chat(alice):
    return ChatKitTestClient(user=alice)


def answer(text: str, **kwargs) -> Reply:
    return Reply(text=text, when=is_answer, **kwargs)


def event_types(reply) -> list[str]:
    return [event.type for event in reply.events]


async def stored(thread_id: str) -> list[tuple[str, str]]:
    return [
        (row.type, row.text)
        async for row in models.ThreadItem.objects.filter(thread_id=thread_id).order_by(
            "created_at", "id"
        )
    ]


async def runs(thread_id: str, kind: str = "answer") -> list[models.Run]:
    return [
        run
        async for run in models.Run.objects.filter(thread_id=thread_id, kind=kind).order_by("id")
    ]


class TestOneTurn:
    async def test_streams_persists_titles_and_records_usage(self, fake, chat):
        fake.queue(answer("It is sunny in Paris today.", usage=Usage(120, 7)))
        reply = await chat.create_thread("What's the weather in Paris?")

        assert reply.status_code == 200 and reply.error is None
        types = event_types(reply)
        assert types[:4] == [
            "thread.created",
            "thread.item.done",
            "stream_options",
            "thread.item.added",
        ]
        deltas = [
            e
            for e in reply.events
            if e.type == "thread.item.updated"
            and e.update.type == "assistant_message.content_part.text_delta"
        ]
        assert "".join(d.update.delta for d in deltas) == "It is sunny in Paris today."
        assert len(deltas) == 6  # word by word, as streamed by the fake
        assert types[-2:] == ["thread.item.done", "thread.updated"]
        assert reply.answer == "It is sunny in Paris today."
        assert reply.thread.title == "Weather in Paris"

        thread_id = reply.thread_id
        assert await stored(thread_id) == [
            ("user_message", "What's the weather in Paris?"),
            ("assistant_message", "It is sunny in Paris today."),
        ]
        thread = await models.Thread.objects.aget(id=thread_id)
        assert thread.title == "Weather in Paris"

        [run] = await runs(thread_id)
        assert (run.model, run.status, run.input_tokens, run.output_tokens) == (
            "answer-model",
            "completed",
            120,
            7,
        )
        assert run.first_token_at is not None and run.finished_at is not None
        assert run.started_at <= run.first_token_at <= run.finished_at
        [title_run] = await runs(thread_id, "title")
        assert (title_run.model, title_run.status, title_run.input_tokens) == (
            "title-model",
            "completed",
            30,
        )

        [request] = [r for r in fake.requests if is_answer(r)]
        assert request.instructions == "Be brief." and request.stream
        assert request.tool_names == ["get_weather"]
        assert request.last_user_text == "What's the weather in Paris?"

    async def test_the_answer_does_not_wait_for_the_title(self, fake, chat):
        fake.default_reply = lambda request: (
            Reply(text="Slow title", first_token_delay=1.0) if is_title(request) else None
        )
        fake.queue(answer("Quick.", usage=Usage(5, 1)))
        reply = await chat.create_thread("Hello")
        [answer_request] = [r for r in fake.requests if is_answer(r)]
        [title_request] = [r for r in fake.requests if is_title(r)]
        assert answer_request.finished_at < title_request.finished_at  # answered first
        assert reply.answer == "Quick." and reply.thread.title == "Slow title"

    async def test_a_title_the_user_chose_is_kept(self, fake, chat):
        fake.queue(answer("One."), answer("Two."))
        first = await chat.create_thread("Plan my trip to Lyon")
        await chat.request("threads.update", thread_id=first.thread_id, title="My trip")
        second = await chat.send(first.thread_id, "And Paris?")
        assert "thread.updated" not in event_types(second)
        assert (await models.Thread.objects.aget(id=first.thread_id)).title == "My trip"
        assert len([r for r in fake.requests if is_title(r)]) == 1

    async def test_a_failed_title_call_falls_back_to_the_message(self, fake, chat):
        fake.default_reply = lambda request: Reply(status=500) if is_title(request) else None
        fake.queue(answer("Sure."))
        reply = await chat.create_thread(
            "Could you   help me write a cover letter for a job as a baker in Lyon, please?"
        )
        title = reply.thread.title
        assert title == "Could you help me write a cover letter for a job as a baker…"
        [title_run] = await runs(reply.thread_id, "title")
        assert (title_run.status, title_run.error_code) == ("failed", "upstream_500")


class TestHistoryAndTools:
    async def test_the_model_receives_the_multi_turn_history(self, fake, chat):
        fake.queue(answer("Lyon is in France."), answer("About 520,000 people."))
        first = await chat.create_thread("Where is Lyon?")
        await chat.send(first.thread_id, "How many people live there?")
        second = [r for r in fake.requests if is_answer(r)][1]
        conversation = [(m.get("role"), _text(m)) for m in second.input]
        assert conversation == [
            ("user", "Where is Lyon?"),
            ("assistant", "Lyon is in France."),
            ("user", "How many people live there?"),
        ]

    @override_settings(CHATKIT={**AGENT_SETTINGS, "HISTORY_ITEMS": 2})
    async def test_history_is_the_newest_items_only(self, fake, chat):
        fake.queue(answer("A1"), answer("A2"))
        first = await chat.create_thread("Q1")
        await chat.send(first.thread_id, "Q2")
        second = [r for r in fake.requests if is_answer(r)][1]
        assert [_text(m) for m in second.input] == ["A1", "Q2"]

    async def test_a_tool_call_runs_the_tool_and_answers_with_its_output(self, fake, chat):
        agent_tools.CALLS.clear()
        fake.queue(
            Reply(
                tool_calls=[ToolCall("get_weather", {"city": "Paris"})],
                when=is_answer,
                usage=Usage(40, 10),
            ),
            answer("Sunny, 21°C.", usage=Usage(60, 5)),
        )
        reply = await chat.create_thread("Weather in Paris?")
        assert agent_tools.CALLS == ["Paris"]
        assert reply.answer == "Sunny, 21°C."
        second = [r for r in fake.requests if is_answer(r)][1]
        assert [o["output"] for o in second.function_call_outputs] == ["Sunny and 21°C in Paris"]
        model_runs = await runs(reply.thread_id)
        assert [(r.status, r.input_tokens, r.output_tokens) for r in model_runs] == [
            ("completed", 40, 10),
            ("completed", 60, 5),
        ]


class TestUpstreamFaults:
    FAULTS = {
        "rate_limited": (Reply(status=429, when=is_answer), "too many requests"),
        "upstream_500": (Reply(status=500, when=is_answer), "HTTP 500"),
        "connection_error": (
            Reply(text="Partial answer that will be cut", drop_after=3, when=is_answer),
            "connection to the assistant was lost",
        ),
        "timeout": (
            Reply(text="Stalled answer never finishing", stall_after=2, when=is_answer),
            "took too long",
        ),
    }

    @pytest.mark.parametrize("code", list(FAULTS))
    async def test_fault_keeps_message_and_partial_and_allows_retry(self, fake, chat, code):
        fault, message = self.FAULTS[code]
        fake.queue(fault)
        reply = await chat.create_thread("Tell me about Lyon")
        error = reply.error
        assert error is not None and error.allow_retry is True
        assert message in error.message
        thread_id = reply.thread_id
        items = await stored(thread_id)
        assert items[0] == ("user_message", "Tell me about Lyon")
        if code in ("connection_error", "timeout"):
            partial = items[1]
            assert partial[0] == "assistant_message" and partial[1]
            assert items[2][0] == "sdk_hidden_context"
        else:
            assert len(items) == 1
        [run] = await runs(thread_id)
        assert (run.status, run.error_code) == ("failed", code)

        # The thread is usable: retrying the user's message replaces whatever was kept.
        fake.queue(answer("Lyon is lovely."))
        user_id = reply.done_items[0].id
        retry = await chat.request("threads.retry_after_item", thread_id=thread_id, item_id=user_id)
        assert retry.status_code == 200 and retry.error is None
        assert retry.answer == "Lyon is lovely."
        assert await stored(thread_id) == [
            ("user_message", "Tell me about Lyon"),
            ("assistant_message", "Lyon is lovely."),
        ]

    async def test_a_failed_answer_cancels_the_title_under_way(self, fake, chat):
        def reply(request: RecordedRequest) -> Reply:
            if is_title(request):
                return Reply(text="Late title", first_token_delay=1.0)
            # The answer fails once the title call is under way, so that there is one to stop.
            fake.wait_for_requests(2, finished=False)
            return Reply(status=500)

        fake.default_reply = reply
        turn = await chat.create_thread("Tell me about Lyon")
        assert turn.error is not None and "HTTP 500" in turn.error.message
        [title_request] = [r for r in await fake.await_requests(2) if is_title(r)]
        assert title_request.disconnected and not title_request.completed
        # Nothing is left running that could still write a title or its Run.
        title_tasks = [
            task
            for task in asyncio.all_tasks()
            if "generate_title" in getattr(task.get_coro(), "__qualname__", "")
        ]
        if title_tasks:
            await asyncio.wait(title_tasks, timeout=5)
        assert await runs(str(turn.thread_id), "title") == []
        assert (await models.Thread.objects.aget(id=turn.thread_id)).title == ""


class TestQuotas:
    @override_settings(CHATKIT={**AGENT_SETTINGS, "REQUESTS_PER_MINUTE": 1})
    async def test_rate_limit_refuses_without_calling_upstream(self, fake, chat):
        fake.queue(answer("First."))
        first = await chat.create_thread("one")
        assert first.answer == "First."
        calls = len([r for r in fake.requests if is_answer(r)])
        second = await chat.send(first.thread_id, "two")
        assert "limit of 1 message per minute" in second.error.message
        assert second.error.allow_retry is True
        assert len([r for r in fake.requests if is_answer(r)]) == calls

    @override_settings(CHATKIT={**AGENT_SETTINGS, "TOKENS_PER_DAY": 100})
    async def test_token_budget_counts_usage_and_refuses_when_spent(self, fake, chat):
        fake.queue(answer("Expensive.", usage=Usage(90, 20)))
        first = await chat.create_thread("one")
        assert first.answer == "Expensive."
        calls = len(fake.requests)
        second = await chat.send(first.thread_id, "two")
        assert (
            "budget of 100 tokens" in second.error.message and "resets at" in second.error.message
        )
        assert len(fake.requests) == calls


class TestStoreFailures:
    async def test_an_answer_that_cannot_be_stored_fails_its_run(self, fake, chat, monkeypatch):
        # The database is gone by the time the answer is complete (retries included).
        from django.db import OperationalError

        from django_chatkit.store import DjangoStore

        upsert = DjangoStore._upsert_item

        def failing_upsert(self, thread_id, item, context):
            if item.type == "assistant_message":
                raise OperationalError("the database went away")
            return upsert(self, thread_id, item, context)

        monkeypatch.setattr(DjangoStore, "_upsert_item", failing_upsert)
        fake.queue(answer("Lost words."))
        reply = await chat.create_thread("hi")
        assert reply.error is not None and reply.error.allow_retry is True
        thread_id = str(reply.thread_id)
        assert await stored(thread_id) == [("user_message", "hi")]
        [run] = await runs(thread_id)
        assert (run.status, run.error_code) == ("failed", "not_stored")

    async def test_stale_runs_are_closed_by_the_sweep(self, alice):
        from datetime import timedelta

        from django.core.management import call_command
        from django.utils import timezone

        thread = await models.Thread.objects.acreate(
            id="thr_sweep", user=alice, created_at=timezone.now(), updated_at=timezone.now()
        )
        old = timezone.now() - timedelta(hours=2)
        stale = await models.Run.objects.acreate(
            thread=thread, user=alice, model="m", started_at=old
        )
        recent = await models.Run.objects.acreate(
            thread=thread, user=alice, model="m", started_at=timezone.now()
        )
        done = await models.Run.objects.acreate(
            thread=thread, user=alice, model="m", started_at=old, status="completed"
        )
        await sync_to_async(call_command)("chatkit_close_stale_runs", "--older-than", "3600")
        for run in (stale, recent, done):
            await run.arefresh_from_db()
        assert (stale.status, stale.error_code) == ("failed", "abandoned")
        assert stale.finished_at is not None
        assert (recent.status, done.status) == ("running", "completed")


class TestChatCompletionsModels:
    """Chat Completions messages all carry the Agents SDK's placeholder id ``__fake_id__``."""

    @override_settings(
        CHATKIT={**AGENT_SETTINGS, "AGENT": "tests.agent_tools.chat_completions_agent"}
    )
    async def test_every_answer_gets_an_id_of_its_own(self, fake, chat):
        fake.queue(answer("First answer."), answer("Second answer."))
        first = await chat.create_thread("one")
        thread_id = str(first.thread_id)
        fake.queue(
            answer("", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
            answer("Third answer, after a tool."),
        )
        second = await chat.send(thread_id, "two")
        third = await chat.send(thread_id, "three")
        assert [r.answer for r in (first, second, third)] == [
            "First answer.",
            "Second answer.",
            "Third answer, after a tool.",
        ]
        assert all(r.path == "/v1/chat/completions" for r in fake.requests if is_answer(r))
        items = await chat.items(thread_id)
        answers = [item for item in items if item["type"] == "assistant_message"]
        assert [a["content"][0]["text"] for a in answers] == [
            "First answer.",
            "Second answer.",
            "Third answer, after a tool.",
        ]
        ids = [a["id"] for a in answers]
        assert len(set(ids)) == 3 and all(i.startswith("msg_") for i in ids)
        # The client was shown the ids that were stored: every event of the stream agrees.
        streamed = [
            (getattr(event, "item", None) and event.item.id) or getattr(event, "item_id", "")
            for reply in (first, second, third)
            for event in reply.events
            if event.type.startswith("thread.item.")
        ]
        assert "__fake_id__" not in streamed
        assert set(ids) <= set(streamed)
        vote = await chat.request(
            "items.feedback", thread_id=thread_id, item_ids=[ids[0]], kind="positive"
        )
        assert vote.status_code == 200


class RecordingTraces(TracingProcessor):
    """A trace processor that keeps the names of traces started (and exports nothing)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_trace_start(self, trace) -> None:
        self.started.append(trace.name)

    def on_trace_end(self, trace) -> None: ...
    def on_span_start(self, span) -> None: ...
    def on_span_end(self, span) -> None: ...
    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


class TestTracing:
    @pytest.fixture
    def traces(self, fake):
        """Tracing enabled in the Agents SDK, with our recorder as its only processor (the
        default one would export to OpenAI): only the TRACING setting decides."""
        from agents import set_trace_processors, set_tracing_disabled
        from agents.tracing import get_trace_provider

        recorder = RecordingTraces()
        provider = get_trace_provider()
        previous = list(provider._multi_processor._processors)  # type: ignore[attr-defined]
        set_trace_processors([recorder])
        set_tracing_disabled(False)
        yield recorder
        set_tracing_disabled(True)
        set_trace_processors(previous)

    async def test_off_by_default(self, fake, traces, chat):
        fake.queue(answer("Hello."))
        reply = await chat.create_thread("hi")
        assert reply.error is None
        assert traces.started == []

    @override_settings(CHATKIT={**AGENT_SETTINGS, "TRACING": True})
    async def test_on_when_the_site_turns_it_on(self, fake, traces, chat):
        fake.queue(answer("Hello."))
        reply = await chat.create_thread("hi")
        assert reply.error is None
        assert traces.started == ["Agent workflow"]


class TestConfiguration:
    @override_settings(CHATKIT={**AGENT_SETTINGS, "AGENT": "tests.test_agent.make_agent"})
    async def test_agent_from_a_callable_taking_the_context(self, fake, chat, alice):
        fake.queue(answer("Hi Alice."))
        reply = await chat.create_thread("hi")
        assert reply.answer == "Hi Alice."
        [request] = [r for r in fake.requests if is_answer(r)]
        assert request.instructions == "The user is alice."

    async def test_no_api_key_is_a_clear_error(self, fake, chat, monkeypatch):
        monkeypatch.delenv("OPENAI_API_KEY")
        reply = await chat.create_thread("hi")
        assert reply.error.message == "The assistant is not configured (no OpenAI API key)."
        assert await sync_to_async(models.ThreadItem.objects.count)() == 1


def make_agent(context):
    from agents import Agent

    return Agent(
        name="Personal", model="answer-model", instructions=f"The user is {context.user.username}."
    )


def _text(message) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


async def test_the_pytest_plugin_fixtures_work_together(chatkit_client, fake_openai):
    """How a site tests its own agent: the two fixtures the package's pytest plugin provides."""
    fake_openai.queue(Reply(text="Plugin says hi.", when=lambda r: r.stream))
    fake_openai.default_reply = Reply(text="Plugin title")
    with override_settings(CHATKIT={**AGENT_SETTINGS, "AGENT": {"model": "m"}}):
        reply = await chatkit_client.create_thread("hi")
    assert reply.answer == "Plugin says hi."
    items = await chatkit_client.items(reply.thread_id)
    assert [item["type"] for item in items] == ["user_message", "assistant_message"]


async def test_the_readme_testing_example(chatkit_client, fake_openai, settings):
    # The README's "Testing your agent offline" example, verbatim but for the agent's path.
    settings.CHATKIT = {"AGENT": "tests.agent_tools.agent_for"}
    fake_openai.queue(
        Reply(tool_calls=[ToolCall("lookup_order", {"number": 42})]),
        Reply(text="Order 42 shipped yesterday.", usage=Usage(120, 9)),
    )
    fake_openai.default_reply = Reply(text="Order status")  # the title request
    reply = await chatkit_client.create_thread("Where is order 42?")
    assert reply.answer == "Order 42 shipped yesterday."
    first, second = [r for r in fake_openai.requests if r.stream]  # the title call is not streamed
    assert second.function_call_outputs[0]["output"] == "Order 42: shipped"
    assert first.instructions == "The user's name is chatkit-test-user."
