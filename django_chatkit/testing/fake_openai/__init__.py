"""A fake OpenAI API for offline tests: a real HTTP server on loopback.

It speaks the Responses API (``POST /v1/responses``) and, minimally, Chat Completions
(``POST /v1/chat/completions``), streamed or not, well enough for the unmodified ``openai``
client and the ``openai-agents`` Runner, and ChatKit's hosted-mode sessions
(``POST /v1/chatkit/sessions``: ``fake.chatkit_sessions``, chatkit_sessions.py). Answers are
scripted with :class:`Reply`::

    from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
    from django_chatkit.testing import FakeOpenAI, Reply, ToolCall

    set_tracing_disabled(True)
    with FakeOpenAI() as fake:
        fake.queue(
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
            Reply(text="Sunny in Paris."),
        )
        model = OpenAIResponsesModel("gpt-test", fake.async_client())
        result = Runner.run_streamed(Agent(name="a", model=model, tools=[get_weather]), "Hi")
        ...
        first, second = fake.wait_for_requests(2)
        assert second.function_call_outputs[0]["output"] == "sunny"

Everything is standard library: no dependency beyond what the project already has.
"""

from .records import RecordedRequest
from .script import Reply, ToolCall, Usage
from .server import DefaultReply, FakeOpenAI

__all__ = ["DefaultReply", "FakeOpenAI", "RecordedRequest", "Reply", "ToolCall", "Usage"]
