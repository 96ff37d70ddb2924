"""``ChatKitTestClient``: speak the ChatKit protocol to your endpoint, as the widget does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chatkit.types import (
    AssistantMessageItem,
    ErrorEvent,
    Thread,
    ThreadCreatedEvent,
    ThreadItemDoneEvent,
    ThreadStreamEvent,
    ThreadUpdatedEvent,
)
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import AsyncClient
from django.urls import reverse

from .sse import parse_sse_json, to_event

# 32 characters, as Django's tokens are. Public: clients built by hand (httpx against a live
# server, say) can send the same cookie and header.
CSRF_TOKEN = "chatkittestclientcsrftoken012345"


@dataclass
class ChatKitResponse:
    """One protocol response: ``events`` for streaming ops, ``data`` for JSON ones (errors
    included: ``data["error"]["code"]``)."""

    status_code: int
    headers: dict[str, str]
    data: Any = None
    events: list[ThreadStreamEvent] = field(default_factory=list)
    #: The events as the JSON the server sent, for assertions on the wire format itself.
    json_events: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the answer was an event stream (``events``) rather than one body (``data``).
    streaming: bool = False
    #: The whole body, as received (``data`` is ``None`` when it is not JSON).
    content: bytes = b""

    @property
    def thread(self) -> Thread | None:
        """The thread as last sent in this stream (``thread.created`` / ``thread.updated``)."""
        threads = [
            e.thread for e in self.events if isinstance(e, ThreadCreatedEvent | ThreadUpdatedEvent)
        ]
        return threads[-1] if threads else None

    @property
    def thread_id(self) -> str | None:
        """The id of the thread this stream created (``threads.create``), else ``None``."""
        for event in self.events:
            if isinstance(event, ThreadCreatedEvent):
                return event.thread.id
        return None

    @property
    def error(self) -> ErrorEvent | None:
        """The stream's first ``error`` event, if any (a JSON error is in ``data`` instead)."""
        return next((e for e in self.events if isinstance(e, ErrorEvent)), None)

    @property
    def done_items(self) -> list[Any]:
        """The items completed in this stream (``thread.item.done``), in order."""
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
        """Send ``{"type": op, "params": params}`` and read the whole answer."""
        return await self.post({"type": op, "params": params})

    async def post(
        self, body: dict[str, Any] | bytes, *, headers: Mapping[str, str] | None = None
    ) -> ChatKitResponse:
        """Send a request body (a dict, or bytes sent as they are) and read the whole answer."""
        response = await self.raw_post(body, headers=headers)
        content_type = response.get("Content-Type", "")
        if response.streaming:
            chunks = response.streaming_content  # type: ignore[attr-defined]
            body_bytes = b"".join([bytes(chunk) async for chunk in chunks])
            json_events = parse_sse_json(body_bytes)
            return ChatKitResponse(
                response.status_code,
                dict(response.items()),
                events=[to_event(event) for event in json_events],
                json_events=json_events,
                streaming=True,
                content=body_bytes,
            )
        content = bytes(response.content)  # type: ignore[attr-defined]
        data = json.loads(content) if content_type.startswith("application/json") else None
        return ChatKitResponse(response.status_code, dict(response.items()), data, content=content)

    async def raw_post(
        self, body: dict[str, Any] | bytes, *, headers: Mapping[str, str] | None = None
    ) -> HttpResponseBase:
        """Send a request body and return Django's response unread (a stream stays unconsumed),
        for tests about the HTTP layer itself: headers, a stream read chunk by chunk, a crash."""
        if not self._signed_in:
            await self.client.aforce_login(self.user)
            self._signed_in = True
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response: HttpResponseBase = await self.client.post(
            self.endpoint,
            data=data,
            content_type="application/json",
            headers={"X-CSRFToken": CSRF_TOKEN, **(headers or {})},
        )
        return response

    async def create_thread(self, text: str, **input_options: Any) -> ChatKitResponse:
        """``threads.create`` with a text message (``attachments=``, ``quoted_text=``)."""
        return await self.request("threads.create", input=user_input(text, **input_options))

    async def send(self, thread_id: str, text: str, **input_options: Any) -> ChatKitResponse:
        """``threads.add_user_message`` with a text message (options as :meth:`create_thread`)."""
        return await self.request(
            "threads.add_user_message", thread_id=thread_id, input=user_input(text, **input_options)
        )

    async def attach(self, name: str, mime_type: str, data: bytes) -> dict[str, Any]:
        """Upload a file as the widget does; return the ready attachment's JSON, whose ``id``
        a message can name (``create_thread(text, attachments=[id])``).

        ``attachments.create`` goes through the endpoint with this client's session; the bytes
        go to the descriptor's URL, with its method and headers, from a client without the
        site's cookies (as from ChatKit's iframe). Needs attachments enabled with uploads to
        this site (not presigned to a bucket). Asserts that both steps succeed.
        """
        created = await self.request(
            "attachments.create", name=name, size=len(data), mime_type=mime_type
        )
        assert created.status_code == 200, created.data
        descriptor = created.data["upload_descriptor"]
        assert descriptor is not None, "attachments.create gave no upload descriptor"
        url = urlsplit(descriptor["url"])
        path = f"{url.path}?{url.query}" if url.query else url.path
        headers = dict(descriptor.get("headers") or {})
        iframe = AsyncClient()  # no session, no CSRF: the token in the URL is the credential
        if descriptor["method"] == "PUT":
            response = await iframe.put(path, data=data, content_type=mime_type, headers=headers)
        else:
            upload = SimpleUploadedFile(name, data, content_type=mime_type)
            response = await iframe.post(path, {"file": upload}, headers=headers)
        assert response.status_code == 200, response.content
        ready: dict[str, Any] = json.loads(response.content)
        return ready

    async def items(self, thread_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The thread's first ``limit`` items, oldest first, as JSON (asserting a 200)."""
        response = await self.request("items.list", thread_id=thread_id, order="asc", limit=limit)
        assert response.status_code == 200, response.data
        return list(response.data["data"])


def request_body(op: str, **params: Any) -> bytes:
    """The encoded body of one protocol request, ``{"type": op, "params": params}``, for
    clients that send bytes themselves (httpx against a live server, say)."""
    return json.dumps({"type": op, "params": params}).encode()


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
