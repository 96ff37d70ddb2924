"""Chat Completions (``POST /v1/chat/completions``), minimally: text and function tool calls.

Shapes follow ``openai.types.chat.ChatCompletion`` and ``ChatCompletionChunk``.
"""

from __future__ import annotations

import time
from typing import Any

from .records import RecordedRequest
from .responses_api import reply_usage
from .script import Reply, argument_deltas
from .wire import Frame, new_call_id, new_id, sse


class ChatCompletionBuilder:
    """Builds one chat completion for one request, streamed or whole."""

    def __init__(self, request: RecordedRequest, reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.id = new_id("chatcmpl", separator="-")
        self.created = int(time.time())
        self.model = reply.model or request.model or "gpt-4o"
        self.calls = [(call.call_id or new_call_id(), call) for call in reply.tool_calls]
        self.finish_reason = "tool_calls" if self.calls else "stop"

    def usage(self) -> dict[str, Any]:
        usage = reply_usage(self.request, self.reply)
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        }

    def final(self) -> dict[str, Any]:
        """The whole completion, as ``stream: false`` returns it."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.reply.text or None,
            "refusal": None,
        }
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call_id, call in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(),
            "system_fingerprint": None,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def frames(self) -> list[Frame]:
        """The chunks of the stream, ending with ``data: [DONE]``; a usage chunk (no choices)
        comes last when the request asked for ``stream_options.include_usage``."""
        frames = [sse(self.chunk({"role": "assistant", "content": "", "refusal": None}))]
        for delta in self.reply.text_deltas():
            frames.append(sse(self.chunk({"content": delta}), is_delta=True))
        for index, (call_id, call) in enumerate(self.calls):
            head = {"index": index, "id": call_id, "type": "function"}
            function = {"name": call.name, "arguments": ""}
            frames.append(sse(self.chunk({"tool_calls": [{**head, "function": function}]})))
            for delta in argument_deltas(call.arguments_json):
                piece = {"index": index, "function": {"arguments": delta}}
                frames.append(sse(self.chunk({"tool_calls": [piece]}), is_delta=True))
        if self.reply.fail is not None:
            error = {"message": self.reply.fail, "type": "server_error", "param": None}
            frames.append(sse({"error": {**error, "code": None}}, is_final=True))
            return frames
        frames.append(sse(self.chunk({}, self.finish_reason), is_final=True))
        options = self.request.json.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage_chunk = {**self.chunk({}), "choices": [], "usage": self.usage()}
            frames.append(sse(usage_chunk))
        frames.append(sse("[DONE]"))
        return frames
