"""The Responses API (``POST /v1/responses``): the response object and its event stream.

Shapes follow the ``openai`` package's types (``openai.types.responses.Response``,
``ResponseStreamEvent``, ``ResponseUsage``): the test suite validates every event against them.
"""

from __future__ import annotations

import time
from typing import Any

from .records import RecordedRequest
from .script import Reply, Usage, argument_deltas, estimate_tokens
from .wire import Frame, new_call_id, new_id, sse


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def reply_usage(request: RecordedRequest, reply: Reply) -> Usage:
    """The reply's usage, or a rough estimate from the input and the streamed deltas."""
    if reply.usage is not None:
        return reply.usage
    reasoning = sum(estimate_tokens(part) for part in reply.reasoning)
    output = (
        len(reply.text_deltas())
        + sum(estimate_tokens(call.arguments_json) for call in reply.tool_calls)
        + reasoning
    )
    return Usage(
        input_tokens=estimate_tokens(request.all_text()),
        output_tokens=output,
        reasoning_tokens=reasoning,
    )


class ResponseBuilder:
    """Builds one response for one request: the final object and the events leading to it.

    Ids are made once, so the streamed items and the completed response agree.
    """

    def __init__(self, request: RecordedRequest, reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.response_id = new_id("resp")
        self.message_id = new_id("msg")
        self.reasoning_id = new_id("rs")
        self.created_at = int(time.time())
        self.calls = [
            (new_id("fc"), call.call_id or new_call_id(), call) for call in reply.tool_calls
        ]

    # -- objects ---------------------------------------------------------------------------

    def response(self, status: str, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body = self.request.json
        done = status in ("completed", "failed")
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": (
                {"code": "server_error", "message": self.reply.fail} if status == "failed" else None
            ),
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {},
            "model": self.reply.model or self.request.model or "gpt-4o",
            "output": output or [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage_json(reply_usage(self.request, self.reply)) if done else None,
            "user": body.get("user"),
        }

    def text_part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def message_item(self, status: str) -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [self.text_part(self.reply.text)] if done else [],
        }

    def call_item(self, index: int, status: str) -> dict[str, Any]:
        item_id, call_id, call = self.calls[index]
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": call.name,
            "arguments": call.arguments_json if status == "completed" else "",
        }

    def reasoning_item(self, status: str) -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": self.reasoning_id,
            "type": "reasoning",
            "summary": [self.summary_part(part) for part in self.reply.reasoning] if done else [],
        }

    def summary_part(self, text: str) -> dict[str, Any]:
        return {"type": "summary_text", "text": text}

    def output(self) -> list[dict[str, Any]]:
        items = [self.reasoning_item("completed")] if self.reply.reasoning else []
        items += [self.message_item("completed")] if self.reply.text else []
        items += [self.call_item(i, "completed") for i in range(len(self.calls))]
        return items

    def final(self) -> dict[str, Any]:
        """The completed response, as ``stream: false`` returns it."""
        return self.response("completed", self.output())

    # -- stream ----------------------------------------------------------------------------

    def frames(self) -> list[Frame]:
        """Every event of the stream, in order, with consecutive sequence numbers."""
        events = _Events()
        events.emit("response.created", response=self.response("in_progress"))
        events.emit("response.in_progress", response=self.response("in_progress"))
        output_index = 0
        if self.reply.reasoning:
            self._reasoning_events(events, output_index)
            output_index += 1
        if self.reply.text:
            self._message_events(events, output_index)
            output_index += 1
        for index in range(len(self.calls)):
            self._call_events(events, index, output_index)
            output_index += 1
        if self.reply.fail is not None:
            events.emit("response.failed", response=self.response("failed", self.output()))
        else:
            events.emit("response.completed", response=self.final())
        return events.frames()

    def _reasoning_events(self, events: _Events, output_index: int) -> None:
        ids = {"item_id": self.reasoning_id, "output_index": output_index}
        item = self.reasoning_item("in_progress")
        events.emit("response.output_item.added", item=item, output_index=output_index)
        for index, text in enumerate(self.reply.reasoning):
            part = {"summary_index": index, **ids}
            empty = self.summary_part("")
            events.emit("response.reasoning_summary_part.added", part=empty, **part)
            for delta in Reply(text=text).text_deltas():
                events.delta("response.reasoning_summary_text.delta", delta=delta, **part)
            events.emit("response.reasoning_summary_text.done", text=text, **part)
            full = self.summary_part(text)
            events.emit("response.reasoning_summary_part.done", part=full, **part)
        item = self.reasoning_item("completed")
        events.emit("response.output_item.done", item=item, output_index=output_index)

    def _message_events(self, events: _Events, output_index: int) -> None:
        text = self.reply.text
        ids = {"item_id": self.message_id, "output_index": output_index, "content_index": 0}
        item = self.message_item("in_progress")
        events.emit("response.output_item.added", item=item, output_index=output_index)
        events.emit("response.content_part.added", part=self.text_part(""), **ids)
        for delta in self.reply.text_deltas():
            events.delta("response.output_text.delta", delta=delta, logprobs=[], **ids)
        events.emit("response.output_text.done", text=text, logprobs=[], **ids)
        events.emit("response.content_part.done", part=self.text_part(text), **ids)
        item = self.message_item("completed")
        events.emit("response.output_item.done", item=item, output_index=output_index)

    def _call_events(self, events: _Events, index: int, output_index: int) -> None:
        item_id, _, call = self.calls[index]
        ids = {"item_id": item_id, "output_index": output_index}
        item = self.call_item(index, "in_progress")
        events.emit("response.output_item.added", item=item, output_index=output_index)
        for delta in argument_deltas(call.arguments_json):
            events.delta("response.function_call_arguments.delta", delta=delta, **ids)
        arguments = call.arguments_json
        events.emit("response.function_call_arguments.done", arguments=arguments, **ids)
        item = self.call_item(index, "completed")
        events.emit("response.output_item.done", item=item, output_index=output_index)


class _Events:
    """Collects a stream's events, then numbers them and frames them as SSE."""

    def __init__(self) -> None:
        self._events: list[tuple[dict[str, Any], bool]] = []

    def emit(self, type_: str, **fields: Any) -> None:
        self._events.append(({"type": type_, **fields}, False))

    def delta(self, type_: str, **fields: Any) -> None:
        self._events.append(({"type": type_, **fields}, True))

    def frames(self) -> list[Frame]:
        last = len(self._events) - 1
        return [
            sse(
                {**event, "sequence_number": number},
                event=event["type"],
                is_delta=is_delta,
                is_final=number == last,
            )
            for number, (event, is_delta) in enumerate(self._events)
        ]
