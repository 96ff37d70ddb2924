"""What the fake saw: one record per HTTP request."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .script import Reply


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received, and what became of it.

    Records are snapshots: ``FakeOpenAI.requests`` returns fresh ones, so read it again (or use
    ``FakeOpenAI.wait_for_requests``) to see a request finish. Times come from
    ``time.monotonic()``.

    Attributes:
        index: position among all requests the fake received, from 0 (``reset()`` forgets
            records but does not restart the count).
        method, path: e.g. ``"POST"``, ``"/v1/responses"``.
        headers: request headers, names lowercased.
        json: the decoded JSON body (``{}`` when the body is not a JSON object).
        query: the query string's parameters (the last value of a repeated one).
        first_delta_at: when the first delta (of text, tool arguments or reasoning) was written.
        started_at, finished_at: when the request arrived and when the fake was done with it
            (``None`` while it is still being answered).
        status: the HTTP status sent, ``None`` when no response was started (hang, drop).
        reply: the scripted reply used, ``None`` for requests the fake could not route.
        completed: the whole response was written.
        disconnected: the client went away before the response was complete.
    """

    index: int
    method: str
    path: str
    headers: Mapping[str, str]
    json: Mapping[str, Any]
    started_at: float
    finished_at: float | None = None
    first_delta_at: float | None = None
    status: int | None = None
    reply: Reply | None = field(default=None, repr=False)
    completed: bool = False
    disconnected: bool = False
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def duration(self) -> float | None:
        """Seconds between arrival and the end of the answer, once finished."""
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def model(self) -> str | None:
        model = self.json.get("model")
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return self.json.get("stream") is True

    @property
    def user(self) -> str | None:
        """The ``user`` a ChatKit session was asked for (``POST /v1/chatkit/sessions``)."""
        user = self.json.get("user")
        return user if isinstance(user, str) else None

    @property
    def workflow_id(self) -> str | None:
        """The ``workflow.id`` a ChatKit session was asked for."""
        workflow = self.json.get("workflow")
        found = workflow.get("id") if isinstance(workflow, Mapping) else None
        return found if isinstance(found, str) else None

    @property
    def input(self) -> list[Any]:
        """The conversation sent: Responses ``input`` (a string becomes one user message) or
        Chat Completions ``messages``."""
        raw = self.json.get("input", self.json.get("messages"))
        if isinstance(raw, str):
            return [{"role": "user", "content": raw}]
        return list(raw) if isinstance(raw, list) else []

    @property
    def instructions(self) -> str | None:
        instructions = self.json.get("instructions")
        return instructions if isinstance(instructions, str) else None

    @property
    def last_user_text(self) -> str:
        """The text of the last user message in the input (``""`` when there is none)."""
        for item in reversed(self.input):
            if isinstance(item, Mapping) and item.get("role") == "user":
                return "".join(_texts(item.get("content")))
        return ""

    @property
    def function_call_outputs(self) -> list[Mapping[str, Any]]:
        """Tool results sent back: Responses ``function_call_output`` items or Chat Completions
        ``tool`` messages, in order."""
        return [
            item
            for item in self.input
            if isinstance(item, Mapping)
            and (item.get("type") == "function_call_output" or item.get("role") == "tool")
        ]

    @property
    def tool_names(self) -> list[str]:
        """Names of the function tools offered to the model."""
        names = []
        for tool in self.json.get("tools") or []:
            if not isinstance(tool, Mapping):
                continue
            function = tool.get("function")  # Chat Completions nests the definition
            source = function if isinstance(function, Mapping) else tool
            if isinstance(source.get("name"), str):
                names.append(source["name"])
        return names

    def all_text(self) -> str:
        """Instructions and every text in the input, for rough token estimates."""
        parts = [self.instructions or ""]
        for item in self.input:
            if isinstance(item, Mapping):
                parts.extend(_texts(item.get("content")))
                if isinstance(item.get("output"), str):
                    parts.append(item["output"])
        return " ".join(part for part in parts if part)


def _texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]
