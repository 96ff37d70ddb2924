"""``ChatKitTestClient``: speak the ChatKit protocol to your endpoint, as the widget does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from chatkit.types import (
    AssistantMessageItem,
    ErrorEvent,
    Thread,
    ThreadCreatedEvent,
    ThreadItemDoneEvent,
    ThreadStreamEvent,
    ThreadUpdatedEvent,
)
from django.test import AsyncClient
from django.urls import reverse
from pydantic import TypeAdapter

EVENT_ADAPTER: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)
CSRF_TOKEN = "chatkittestclientcsrftoken012345"  # 32 characters, as Django's tokens are


def parse_sse(body: bytes) -> list[ThreadStreamEvent]:
    """Split a ChatKit SSE body (``data: <json>\\n\\n`` frames) into SDK event objects."""
    events = []
    for frame in body.split(b"\n\n"):
        if not frame.strip():
            continue
        if not frame.startswith(b"data: "):
            raise ValueError(f"Not a ChatKit SSE frame: {frame[:80]!r}")
        events.append(EVENT_ADAPTER.validate_json(frame[len(b"data: ") :]))
    return events


@dataclass
class ChatKitResponse:
    """One protocol response: ``events`` for streaming ops, ``data`` for JSON ones."""

    status_code: int
    headers: dict[str, str]
    data: Any = None
    events: list[ThreadStreamEvent] = field(default_factory=list)

    @property
    def thread(self) -> Thread | None:
        """The thread as last sent in this stream (``thread.created`` / ``thread.updated``)."""
        threads = [
            e.thread for e in self.events if isinstance(e, ThreadCreatedEvent | ThreadUpdatedEvent)
        ]
        return threads[-1] if threads else None

    @property
    def thread_id(self) -> str | None:
        for event in self.events:
            if isinstance(event, ThreadCreatedEvent):
                return event.thread.id
        return None

    @property
    def error(self) -> ErrorEvent | None:
        return next((e for e in self.events if isinstance(e, ErrorEvent)), None)

    @property
    def done_items(self) -> list[Any]:
        return [e.item for e in self.events if isinstance(e, ThreadItemDoneEvent)]

    @property
    def answer(self) -> str:
        """The text of the last assistant message completed in this stream."""
        answers = [i for i in self.done_items if isinstance(i, AssistantMessageItem)]
        return "".join(part.text for part in answers[-1].content) if answers else ""


class ChatKitTestClient:
    """Sends ChatKit requests through Django's ``AsyncClient`` with a session and CSRF token.

    ::

        client = ChatKitTestClient(user=user)
        reply = await client.create_thread("Hello")
        assert reply.answer == "Hi!"
        page = await client.request("items.list", thread_id=reply.thread_id)
    """

    def __init__(
        self,
        user: Any = None,
        *,
        client: AsyncClient | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.client = client or AsyncClient(enforce_csrf_checks=True)
        self.user = user
        self._signed_in = user is None  # signing in touches the database: done on first use
        self.client.cookies["csrftoken"] = CSRF_TOKEN
        self.endpoint = endpoint or reverse("chatkit:endpoint")

    async def request(self, op: str, **params: Any) -> ChatKitResponse:
        return await self.post({"type": op, "params": params})

    async def post(self, body: dict[str, Any] | bytes) -> ChatKitResponse:
        if not self._signed_in:
            await self.client.aforce_login(self.user)
            self._signed_in = True
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await self.client.post(
            self.endpoint,
            data=data,
            content_type="application/json",
            headers={"X-CSRFToken": CSRF_TOKEN},
        )
        headers = dict(response.items())
        if response.streaming:
            # Declared on the streaming response classes only, not on HttpResponseBase.
            content = response.streaming_content  # type: ignore[attr-defined]
            body_bytes = b"".join([chunk async for chunk in _chunks(content)])
            return ChatKitResponse(response.status_code, headers, events=parse_sse(body_bytes))
        return ChatKitResponse(response.status_code, headers, data=json.loads(response.content))

    async def create_thread(self, text: str, **input_options: Any) -> ChatKitResponse:
        return await self.request("threads.create", input=user_input(text, **input_options))

    async def send(self, thread_id: str, text: str, **input_options: Any) -> ChatKitResponse:
        return await self.request(
            "threads.add_user_message", thread_id=thread_id, input=user_input(text, **input_options)
        )

    async def items(self, thread_id: str, limit: int = 100) -> list[dict[str, Any]]:
        response = await self.request("items.list", thread_id=thread_id, order="asc", limit=limit)
        return list(response.data["data"])


def user_input(
    text: str, attachments: list[str] | None = None, quoted_text: str | None = None
) -> dict[str, Any]:
    """The ``input`` of ``threads.create`` / ``threads.add_user_message`` for plain text."""
    value: dict[str, Any] = {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments or [],
        "inference_options": {},
    }
    if quoted_text is not None:
        value["quoted_text"] = quoted_text
    return value


async def _chunks(content: Any) -> AsyncIterator[bytes]:
    async for chunk in content:
        yield bytes(chunk)
