"""The fake OpenAI server, driven by the real ``openai`` client, Agents SDK and ChatKit SDK.

Everything here runs against 127.0.0.1: Agents SDK tracing is off (its exporter would call
api.openai.com) and ``OPENAI_BASE_URL`` points at the fake for every test.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import httpx2
import openai
import pytest
from agents import (
    Agent,
    ModelBehaviorError,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    TResponseInputItem,
    function_tool,
)
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response
from chatkit.store import NotFoundError, Store
from chatkit.types import (
    AssistantMessageItem,
    InferenceOptions,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
    WorkflowItem,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)
from pydantic import TypeAdapter

from django_chatkit.testing import FakeOpenAI, Reply, ToolCall, Usage
from django_chatkit.testing.pytest_plugin import fake_openai as fake_openai
from tests.waiting import await_condition

STREAM_EVENT = TypeAdapter[Any](ResponseStreamEvent)


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with fake.async_client() as client:
        yield client


def model(client: openai.AsyncOpenAI) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model="gpt-test", openai_client=client)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def raw_events(fake: FakeOpenAI, path: str, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """(event name, decoded data) for each SSE frame, read with a plain HTTP client."""
    events: list[tuple[str | None, Any]] = []
    with httpx.stream("POST", fake.url + path, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in response.read().decode().split("\n\n"):
            if not frame:
                continue
            fields = dict(line.split(": ", 1) for line in frame.split("\n"))
            data = fields["data"]
            events.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


async def collect_text_deltas(stream: AsyncIterator[Any], into: list[str]) -> None:
    async for event in stream:
        if isinstance(event, ResponseTextDeltaEvent):
            into.append(event.delta)


# -- the raw openai client, Responses API ----------------------------------------------------


async def test_streamed_text_reaches_the_openai_client_with_usage(fake, client):
    fake.queue(Reply(text="Hello there!", chunks=4, usage=Usage(input_tokens=12, output_tokens=5)))

    stream = await client.responses.create(model="gpt-test", input="Hi", stream=True)
    events = [event async for event in stream]

    deltas = [e.delta for e in events if isinstance(e, ResponseTextDeltaEvent)]
    assert deltas == ["Hel", "lo ", "the", "re!"]
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.output_text == "Hello there!"
    assert completed.response.model == "gpt-test"
    assert completed.response.usage is not None
    assert completed.response.usage.input_tokens == 12
    assert completed.response.usage.output_tokens == 5
    assert completed.response.usage.total_tokens == 17
    [request] = fake.wait_for_requests(1)
    assert request.path == "/v1/responses"
    assert request.headers["authorization"] == "Bearer test"
    assert request.stream
    assert request.last_user_text == "Hi"
    assert request.completed
    assert not request.disconnected


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="Plain words, streamed as word-like tokens."),
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Reply(
            text="Let me check both.",
            tool_calls=[ToolCall("get_weather", {"city": "Paris"}), ToolCall("now", "{}")],
        ),
        Reply(text="Half an answer", fail="The model crashed."),
        Reply(reasoning=["Think first.", "Then answer."], text="Answer."),
    ],
    ids=["text", "tool-call", "text-and-two-calls", "failed", "reasoning"],
)
def test_every_streamed_event_validates_against_the_openai_types(fake, reply):
    fake.queue(reply)
    tools = [{"type": "function", "name": "get_weather", "parameters": {}, "strict": True}]
    body = {"model": "gpt-echo", "input": "Hi", "instructions": "Be brief", "tools": tools}

    frames = raw_events(fake, "/v1/responses", body)

    events = [STREAM_EVENT.validate_python(data) for _, data in frames]
    assert [name for name, _ in frames] == [event.type for event in events]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    created, final = events[0], events[-1]
    assert created.type == "response.created"
    assert created.response.status == "in_progress"
    assert final.type == ("response.failed" if reply.fail else "response.completed")
    assert final.response.id == created.response.id
    assert final.response.id.startswith("resp_")
    assert final.response.model == "gpt-echo"
    assert final.response.instructions == "Be brief"
    assert [tool.name for tool in final.response.tools] == ["get_weather"]
    assert final.response.usage is not None
    assert final.response.usage.total_tokens == (
        final.response.usage.input_tokens + final.response.usage.output_tokens
    )
    # The completed output is exactly what output_item.done announced, in output_index order.
    done = [e for e in events if e.type == "response.output_item.done"]
    assert [e.output_index for e in done] == list(range(len(done)))
    assert final.response.output == [e.item for e in done]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.id for e in added] == [e.item.id for e in done]
    messages = [item for item in final.response.output if item.type == "message"]
    assert [m.id[:4] for m in messages] == ["msg_"] * bool(reply.text)
    text_deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text_deltas == reply.text
    reasoning = [item for item in final.response.output if item.type == "reasoning"]
    assert [[part.text for part in item.summary] for item in reasoning] == (
        [list(reply.reasoning)] if reply.reasoning else []
    )
    calls = [item for item in final.response.output if item.type == "function_call"]
    assert [(c.name, c.arguments) for c in calls] == [
        (call.name, call.arguments_json) for call in reply.tool_calls
    ]
    for call in calls:
        assert call.id is not None and call.id.startswith("fc_")
        assert call.call_id.startswith("call_")
        arguments = [
            e.delta
            for e in events
            if e.type == "response.function_call_arguments.delta" and e.item_id == call.id
        ]
        assert "".join(arguments) == call.arguments


async def test_a_non_streamed_request_gets_a_whole_response_object(fake, client):
    fake.queue(Reply(text="A short title", usage=Usage(input_tokens=30, output_tokens=3)))

    response = await client.responses.create(model="gpt-cheap", input="Name this chat")

    assert response.output_text == "A short title"
    assert response.model == "gpt-cheap"
    assert response.status == "completed"
    Response.model_validate(response.model_dump())
    [request] = fake.wait_for_requests(1)
    assert not request.stream


def test_text_is_cut_into_chunks_or_explicit_tokens():
    assert Reply(text="Hello there!").text_deltas() == ["Hello", " there!"]
    assert Reply(text="abcdefg", chunks=3).text_deltas() == ["abc", "def", "g"]
    assert Reply(text="ab", chunks=20).text_deltas() == ["a", "b"]
    tokens = Reply(tokens=["Hel", "lo", "!"])
    assert tokens.text == "Hello!"
    assert tokens.text_deltas() == ["Hel", "lo", "!"]
    with pytest.raises(ValueError, match="not both"):
        Reply(text="x", chunks=2, tokens=["x"])


# -- Chat Completions ------------------------------------------------------------------------


async def test_chat_completions_stream_and_whole(fake, client):
    fake.queue(
        Reply(text="Hi!", usage=Usage(input_tokens=4, output_tokens=2)),
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
        Reply(text="Whole"),
    )

    frames = raw_events(
        fake,
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "Hey"}],
         "stream_options": {"include_usage": True}},
    )  # fmt: skip
    assert frames[-1] == (None, "[DONE]")
    chunks = [ChatCompletionChunk.model_validate(data) for _, data in frames[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 6

    stream = await client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Weather?"}], stream=True
    )
    arguments = ""
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            arguments += call.function.arguments or "" if call.function else ""
    assert json.loads(arguments) == {"city": "Oslo"}

    completion = await client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Again"}]
    )
    ChatCompletion.model_validate(completion.model_dump())
    assert completion.choices[0].message.content == "Whole"
    assert [r.last_user_text for r in fake.wait_for_requests(3)] == ["Hey", "Weather?", "Again"]


# -- the openai-agents Runner ----------------------------------------------------------------


async def test_the_agents_runner_streams_the_scripted_text(fake, client):
    fake.queue(Reply(text="Bonjour from the fake.", usage=Usage(input_tokens=9, output_tokens=4)))
    agent = Agent(name="Greeter", instructions="Greet.", model=model(client))

    result = Runner.run_streamed(agent, "Hello")
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]

    assert "".join(deltas) == "Bonjour from the fake."
    assert len(deltas) == 4
    assert result.final_output == "Bonjour from the fake."
    assert result.context_wrapper.usage.input_tokens == 9
    assert result.context_wrapper.usage.output_tokens == 4
    [request] = fake.wait_for_requests(1)
    assert request.model == "gpt-test"
    assert request.instructions == "Greet."


async def test_the_agents_runner_calls_the_tool_and_sends_its_output_back(fake, client):
    fake.queue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, call_id="call_weather1")]),
        Reply(text="It is sunny in Paris."),
    )
    agent = Agent(name="Forecaster", model=model(client), tools=[get_weather])

    result = Runner.run_streamed(agent, "Weather in Paris?")
    items = [e.name async for e in result.stream_events() if e.type == "run_item_stream_event"]

    assert items == ["tool_called", "tool_output", "message_output_created"]
    assert result.final_output == "It is sunny in Paris."
    first, second = fake.wait_for_requests(2)
    assert first.tool_names == ["get_weather"]
    assert second.function_call_outputs == [
        {"type": "function_call_output", "call_id": "call_weather1", "output": "Sunny in Paris"}
    ]
    [call] = [item for item in second.input if item.get("type") == "function_call"]
    assert json.loads(call["arguments"]) == {"city": "Paris"}


async def test_the_history_of_a_multi_turn_conversation_is_sent(fake, client):
    fake.queue(Reply(text="Paris is the capital."), Reply(text="About 2 million people."))
    agent = Agent(name="Geo", model=model(client))

    first = await Runner.run(agent, "Capital of France?")
    second_input: list[TResponseInputItem] = [
        *first.to_input_list(),
        {"role": "user", "content": "Population?"},
    ]
    await Runner.run(agent, second_input)

    _, request = fake.wait_for_requests(2)
    roles = [item.get("role") for item in request.input]
    assert roles == ["user", "assistant", "user"]
    assert request.input[0]["content"] == "Capital of France?"
    assert request.input[1]["content"][0]["text"] == "Paris is the capital."
    assert request.last_user_text == "Population?"


async def test_the_default_model_provider_reaches_the_fake_through_the_environment(fake):
    fake.queue(Reply(text="Configured by OPENAI_BASE_URL."))
    agent = Agent(name="Env", model="gpt-test")  # no client: built from the environment

    result = await Runner.run(agent, "Hi")

    assert result.final_output == "Configured by OPENAI_BASE_URL."
    assert fake.wait_for_requests(1)[0].path == "/v1/responses"


async def test_the_agents_runner_works_on_chat_completions(fake, client):
    fake.queue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Rome"})]),
        Reply(text="Sunny in Rome, apparently."),
    )
    chat_model = OpenAIChatCompletionsModel(model="gpt-test", openai_client=client)
    agent = Agent(name="Chat", model=chat_model, tools=[get_weather])

    result = Runner.run_streamed(agent, "Rome?")
    [_ async for _ in result.stream_events()]

    assert result.final_output == "Sunny in Rome, apparently."
    _, second = fake.wait_for_requests(2)
    assert second.path == "/v1/chat/completions"
    assert [m["content"] for m in second.function_call_outputs] == ["Sunny in Rome"]


# -- faults ----------------------------------------------------------------------------------


async def test_429_is_a_rate_limit_error_with_retry_after(fake, client):
    fake.queue(Reply(status=429, retry_after=2))

    with pytest.raises(openai.RateLimitError) as caught:
        await client.responses.create(model="gpt-test", input="Hi", stream=True)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "2000"
    assert caught.value.type == "requests"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


async def test_retry_after_drives_the_clients_own_retries(fake):
    fake.queue(
        Reply(status=429, retry_after=0.05),
        Reply(status=503, retry_after=0.05),
        Reply(text="Third time."),
    )

    async with fake.async_client(max_retries=2) as client:
        response = await client.responses.create(model="gpt-test", input="Hi")

    assert response.output_text == "Third time."
    statuses = [r.status for r in fake.wait_for_requests(3)]
    assert statuses == [429, 503, 200]


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_internal_server_errors(fake, client, status):
    fake.queue(Reply(status=status))

    with pytest.raises(openai.InternalServerError) as caught:
        await client.responses.create(model="gpt-test", input="Hi", stream=True)

    assert caught.value.status_code == status
    assert caught.value.type == "server_error"


async def test_a_connection_dropped_mid_stream_is_a_connection_error(fake, client):
    fake.queue(Reply(text="one two three four five six", drop_after=3))
    stream = await client.responses.create(model="gpt-test", input="Hi", stream=True)
    deltas: list[str] = []

    with pytest.raises(openai.APIConnectionError) as caught:
        await collect_text_deltas(stream, deltas)

    assert type(caught.value) is openai.APIConnectionError
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert deltas == ["one", " two", " three"]
    [request] = fake.wait_for_requests(1)
    assert (request.status, request.completed, request.disconnected) == (200, False, False)


async def test_a_hanging_request_hits_the_clients_read_timeout(fake):
    fake.queue(Reply(hang=True))

    async with fake.async_client(timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError) as caught:
            await client.responses.create(model="gpt-test", input="Hi", stream=True)

    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)
    [request] = await fake.await_requests(1, timeout=2)
    assert request.status is None
    assert request.disconnected


async def test_a_client_closing_the_stream_early_is_recorded_as_disconnected(fake, client):
    fake.queue(Reply(tokens=[f"t{i} " for i in range(200)], token_delay=0.02))
    stream = await client.responses.create(model="gpt-test", input="Hi", stream=True)
    deltas = 0
    async for event in stream:
        deltas += isinstance(event, ResponseTextDeltaEvent)
        if deltas == 3:
            break
    await stream.close()
    closed_at = time.monotonic()

    [request] = await fake.await_requests(1, timeout=2)

    assert request.disconnected
    assert not request.completed
    assert request.finished_at is not None
    assert request.finished_at - closed_at < 0.5


async def test_cancelling_an_agents_run_closes_the_upstream_request(fake, client):
    fake.queue(Reply(tokens=[f"t{i} " for i in range(200)], token_delay=0.02))
    agent = Agent(name="Cancelled", model=model(client))
    result = Runner.run_streamed(agent, "Hi")
    deltas = 0
    async for event in result.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas += 1
            if deltas == 3:
                result.cancel()
                cancelled_at = time.monotonic()

    [request] = await fake.await_requests(1, timeout=2)

    assert (request.disconnected, request.completed) == (True, False)
    assert request.finished_at is not None
    assert request.finished_at - cancelled_at < 0.5


async def test_faults_surface_from_the_agents_runner(fake, client):
    agent = Agent(name="Fragile", model=model(client))
    fake.queue(
        Reply(status=429),
        Reply(text="cut short here", drop_after=1),
        Reply(text="partial", fail="Model crashed."),
    )

    for expected in (openai.RateLimitError, openai.APIConnectionError, ModelBehaviorError):
        result = Runner.run_streamed(agent, "Hi")
        with pytest.raises(expected):
            [_ async for _ in result.stream_events()]

    assert len(fake.wait_for_requests(3)) == 3  # no hidden retries


async def test_delays_are_applied_before_and_between_tokens(fake, client):
    fake.queue(Reply(text="a b c", first_token_delay=0.2, token_delay=0.05))
    started = time.monotonic()
    stream = await client.responses.create(model="gpt-test", input="Hi", stream=True)
    arrivals = [
        time.monotonic() - started
        async for event in stream
        if isinstance(event, ResponseTextDeltaEvent)
    ]

    assert arrivals[0] >= 0.2
    assert arrivals[2] - arrivals[0] >= 0.09


def test_stop_returns_promptly_with_a_hanging_request():
    fake = FakeOpenAI().start()
    fake.queue(Reply(hang=True))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with fake.client(timeout=30) as client:
                client.responses.create(model="gpt-test", input="Hi")
        except openai.APIError as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    fake.wait_for_requests(1, finished=False)
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=5)

    assert time.monotonic() - started < 1
    assert not caller.is_alive()
    assert [type(e) for e in errors] == [openai.APIConnectionError]
    assert not fake.running


# -- scripting -------------------------------------------------------------------------------


async def test_a_request_with_nothing_queued_fails_loudly_unless_a_default_is_set(fake, client):
    with pytest.raises(openai.BadRequestError, match="no reply"):
        await client.responses.create(model="gpt-test", input="Hi")

    fake.default_reply = lambda request: Reply(text=f"You said: {request.last_user_text}")
    response = await client.responses.create(model="gpt-test", input="Echo me")

    assert response.output_text == "You said: Echo me"


@pytest.mark.parametrize("first", ["answer", "title"])
async def test_when_picks_the_reply_for_each_of_concurrent_requests(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, first: str
) -> None:
    # The answer's reply is queued first: a title request arriving before the answer's must
    # pass it by. Delayed, so that the first request is still being answered when the second
    # arrives.
    fake.queue(
        Reply(text="The answer.", first_token_delay=0.2, when=lambda request: request.stream),
        Reply(text="A title", first_token_delay=0.2, when=lambda request: not request.stream),
    )

    async def answer() -> str:
        stream = await client.responses.create(model="gpt-main", input="Q", stream=True)
        return "".join([e.delta async for e in stream if isinstance(e, ResponseTextDeltaEvent)])

    async def title() -> str:
        response = await client.responses.create(model="gpt-cheap", input="Q")
        return response.output_text

    calls = {"answer": answer, "title": title}
    [second] = set(calls) - {first}
    first_call = asyncio.create_task(calls[first]())
    # The second request leaves once the fake has picked the first one's reply: the order of
    # arrival is the one this case is about, however slow the machine.
    await await_condition(lambda: len(fake.pending) == 1, describe=lambda: repr(fake.requests))
    second_result = await calls[second]()

    assert {first: await first_call, second: second_result} == {
        "answer": "The answer.",
        "title": "A title",
    }
    assert fake.pending == []


async def test_unknown_endpoints_are_404s_and_are_recorded(fake, client):
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="text-embedding-3-small", input="x")

    [request] = fake.wait_for_requests(1)
    assert (request.path, request.status, request.reply) == ("/v1/embeddings", 404, None)


# -- ChatKit's stream_agent_response ---------------------------------------------------------


class MemoryStore(Store[dict[str, Any]]):
    """Just enough of a ChatKit store for stream_agent_response: thread items in a list."""

    def __init__(self) -> None:
        self.items: list[ThreadItem] = []

    async def load_thread_items(self, thread_id, after, limit, order, context):
        items = [i for i in self.items if i.thread_id == thread_id]
        if order == "desc":
            items.reverse()
        return Page(data=items[:limit], has_more=len(items) > limit)

    async def add_thread_item(self, thread_id, item, context):
        self.items.append(item)

    async def load_thread(self, thread_id, context):
        raise NotFoundError(thread_id)

    async def save_thread(self, thread, context):
        raise NotImplementedError

    async def save_attachment(self, attachment, context):
        raise NotImplementedError

    async def load_attachment(self, attachment_id, context):
        raise NotImplementedError

    async def delete_attachment(self, attachment_id, context):
        raise NotImplementedError

    async def load_threads(self, limit, after, order, context):
        raise NotImplementedError

    async def save_item(self, thread_id, item, context):
        raise NotImplementedError

    async def load_item(self, thread_id, item_id, context):
        raise NotImplementedError

    async def delete_thread(self, thread_id, context):
        raise NotImplementedError

    async def delete_thread_item(self, thread_id, item_id, context):
        raise NotImplementedError


async def test_stream_agent_response_maps_the_fake_stream_to_chatkit_events(fake, client):
    fake.queue(Reply(text="Hello from ChatKit.", chunks=3), Reply(text="Second answer."))
    store = MemoryStore()
    thread = ThreadMetadata(id="thr_test", created_at=datetime.now())
    agent = Agent(name="Assistant", model=model(client))

    async def turn(user_text: str) -> list[Any]:
        store.items.append(
            UserMessageItem(
                id=f"msg_user_{len(store.items)}",
                thread_id=thread.id,
                created_at=datetime.now(),
                content=[UserMessageTextContent(text=user_text)],
                inference_options=InferenceOptions(),
            )
        )
        history = await ThreadItemConverter().to_agent_input(store.items)
        context = AgentContext(thread=thread, store=store, request_context={})
        result = Runner.run_streamed(agent, history, context=context)
        events = [event async for event in stream_agent_response(context, result)]
        store.items.extend(e.item for e in events if e.type == "thread.item.done")
        return events

    events = await turn("Hi")

    assert [e.type for e in events] == ["thread.item.added"] + ["thread.item.updated"] * 5 + [
        "thread.item.done"
    ]
    added, done = events[0], events[-1]
    updates = [e.update for e in events[1:-1]]
    assert [u.type for u in updates] == (
        ["assistant_message.content_part.added"]
        + ["assistant_message.content_part.text_delta"] * 3
        + ["assistant_message.content_part.done"]
    )
    assert "".join(u.delta for u in updates[1:4]) == "Hello from ChatKit."
    assert isinstance(done.item, AssistantMessageItem)
    assert done.item.id == added.item.id
    assert done.item.id.startswith("msg_")  # the Responses message id, reused
    assert done.item.content[0].text == "Hello from ChatKit."

    await turn("And again?")

    _, request = fake.wait_for_requests(2)
    assert [item.get("role") for item in request.input] == ["user", "assistant", "user"]
    assert request.last_user_text == "And again?"
    assert "Hello from ChatKit." in json.dumps(request.input)


async def test_reasoning_becomes_a_chatkit_workflow(fake, client):
    fake.queue(Reply(reasoning=["Looking it up."], text="Found it."))
    thread = ThreadMetadata(id="thr_reasoning", created_at=datetime.now())
    context = AgentContext(thread=thread, store=MemoryStore(), request_context={})
    result = Runner.run_streamed(Agent(name="Thinker", model=model(client)), "Find it")

    events = [event async for event in stream_agent_response(context, result)]

    done = [e.item for e in events if e.type == "thread.item.done"]
    assert [item.type for item in done] == ["workflow", "assistant_message"]
    workflow = done[0]
    assert isinstance(workflow, WorkflowItem)
    assert [task.content for task in workflow.workflow.tasks if task.type == "thought"] == [
        "Looking it up."
    ]
