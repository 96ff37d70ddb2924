"""What the fake answers: scripted replies, tool calls and token usage."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import RecordedRequest

# Roughly how a tokenizer cuts English: words with their leading space.
_WORDISH = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True)
class Usage:
    """Token usage reported in ``response.completed`` (or the last Chat Completions chunk).

    ``total_tokens`` is always ``input_tokens + output_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ToolCall:
    """A function tool call the model makes.

    ``arguments`` is a mapping (sent as JSON) or a raw string, sent as is: use a string to test
    how your code copes with malformed arguments. ``call_id`` is generated (``call_...``) when
    not given.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    call_id: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake, for one HTTP request.

    A successful reply (``status=200``) streams the ``reasoning`` summary parts (Responses API
    only; ChatKit shows them as a workflow), then ``text`` as an assistant message, then each of
    ``tool_calls`` as a function call. The text is cut into word-like deltas, into ``chunks``
    deltas of about equal length, or into the explicit ``tokens``. ``usage`` defaults to a rough
    estimate from the request and the deltas; ``model`` overrides the model name reported,
    which is otherwise the request's.

    Faults:
        status: an HTTP error status instead of an answer, with an OpenAI-shaped error body
            (``error_message``/``error_type``/``error_code`` override the defaults for the status).
        retry_after: seconds sent as ``retry-after`` and ``retry-after-ms`` with an error status,
            which the ``openai`` client's own retries honour; a 429 says 1 second by default.
        headers: extra response headers.
        drop_after: close the connection after this many deltas (of text, tool arguments or
            reasoning), without finishing the HTTP response.
        stall_after: stop sending after this many deltas and keep the connection open until the
            client gives up (bounded by ``FakeOpenAI.max_hang``).
        hang: accept the request and never answer (bounded by ``FakeOpenAI.max_hang``).
        fail: end the stream with ``response.failed`` (Chat Completions: an ``error`` chunk)
            carrying this message instead of ``response.completed``.

    Timing: ``first_token_delay`` seconds before the first delta (the whole answer, for
    non-streaming requests), ``token_delay`` seconds between deltas.

    ``when`` restricts the reply to the requests it accepts: the fake answers each request with
    the first queued reply whose ``when`` is ``None`` or true, so concurrent requests (an answer
    and a title, say) get the right reply whatever order they arrive in.
    """

    text: str = ""
    chunks: int | None = None
    tokens: Sequence[str] | None = None
    tool_calls: Sequence[ToolCall] = ()
    reasoning: Sequence[str] = ()
    usage: Usage | None = None
    model: str | None = None
    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    stall_after: int | None = None
    hang: bool = False
    fail: str | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    when: Callable[[RecordedRequest], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.tokens is not None:
            if self.chunks is not None:
                raise ValueError("Give chunks or tokens, not both.")
            joined = "".join(self.tokens)
            if self.text and self.text != joined:
                raise ValueError("text must equal ''.join(tokens) when both are given.")
            object.__setattr__(self, "tokens", tuple(self.tokens))
            object.__setattr__(self, "text", joined)
        if self.chunks is not None and self.chunks < 1:
            raise ValueError("chunks must be at least 1.")
        if self.status != 200 and not 400 <= self.status <= 599:
            raise ValueError(f"status must be 200 or an error status (4xx/5xx): {self.status}.")
        for name in ("drop_after", "stall_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative.")
        for name in ("first_token_delay", "token_delay", "retry_after"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"{name} must not be negative.")
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        reasoning = (self.reasoning,) if isinstance(self.reasoning, str) else self.reasoning
        object.__setattr__(self, "reasoning", tuple(reasoning))

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def text_deltas(self) -> list[str]:
        """The text cut into the deltas the fake streams (no empty deltas)."""
        if self.tokens is not None:
            return [token for token in self.tokens if token]
        if not self.text:
            return []
        if self.chunks is None:
            return _WORDISH.findall(self.text)
        size = math.ceil(len(self.text) / self.chunks)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


def argument_deltas(arguments: str) -> list[str]:
    """Tool arguments cut into a few deltas, as the API streams them."""
    if not arguments:
        return []
    size = max(8, math.ceil(len(arguments) / 4))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def estimate_tokens(text: str) -> int:
    """A rough, deterministic token count (word-like pieces), for default usage."""
    return len(_WORDISH.findall(text))
