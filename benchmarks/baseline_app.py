"""The baseline: the bare ChatKit SDK as a minimal ASGI app, with an in-memory store.

    uvicorn benchmarks.baseline_app:app

It answers the same protocol with the same agent, through the same path as
``django_chatkit.agent_server.AgentChatKitServer``: the newest ``HISTORY_ITEMS`` items become model
input through the SDK's ``ThreadItemConverter``, ``Runner.run_streamed`` calls the Responses API
(the fake, at ``OPENAI_BASE_URL``), and ``chatkit.agents.stream_agent_response`` turns the run
into ChatKit events, which ``ChatKitServer.process`` serialises as Server-Sent Events.

What it does not do is everything our layer adds: no Django (request handling, middleware,
sessions, authentication, CSRF), no ORM store (threads and items live in dicts), no ownership
checks or thread-status policy, no Run records, no signals, no quotas, no titles. Whatever costs
more in ``benchmarks.asgi`` (our app) than here is what our layer costs.

Configuration comes from the environment (``BENCH_AGENT_MODEL``, ``BENCH_HISTORY_ITEMS``,
``OPENAI_*``), set by the harness to the values our server gets through ``CHATKIT``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import openai
from agents import Agent, RunConfig, Runner
from agents.models.openai_provider import OpenAIProvider
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response
from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import NotFoundError, Store
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata, UserMessageItem

HISTORY_ITEMS = int(os.environ.get("BENCH_HISTORY_ITEMS", "40"))
AGENT = Agent(
    name="Assistant",
    instructions=os.environ.get("BENCH_AGENT_INSTRUCTIONS", "Be brief."),
    model=os.environ.get("BENCH_AGENT_MODEL", "answer-model"),
)
CLIENT = openai.AsyncOpenAI(
    timeout=openai.Timeout(60.0, connect=10.0),
    max_retries=int(os.environ.get("BENCH_OPENAI_MAX_RETRIES", "0")),
)


Row = TypeVar("Row", ThreadItem, ThreadMetadata)


def _page(rows: list[Row], after: str | None, limit: int, order: str) -> Page[Row]:
    """One page of ``rows`` (oldest first), as the SDK's stores page: after an id, in an order."""
    if order == "desc":
        rows.reverse()
    if after is not None:
        ids = [row.id for row in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    page = rows[:limit]
    return Page(data=page, has_more=len(rows) > limit, after=page[-1].id if page else None)


class MemoryStore(Store[dict[str, Any]]):
    """Threads and items in dicts, in insertion order: the simplest store the SDK can use."""

    def __init__(self) -> None:
        self.threads: dict[str, ThreadMetadata] = {}
        self.items: dict[str, dict[str, ThreadItem]] = {}
        self.attachments: dict[str, Attachment] = {}

    async def load_thread(self, thread_id: str, context: dict[str, Any]) -> ThreadMetadata:
        try:
            return self.threads[thread_id].model_copy(deep=True)
        except KeyError:
            raise NotFoundError(f"Thread {thread_id} not found") from None

    async def save_thread(self, thread: ThreadMetadata, context: dict[str, Any]) -> None:
        self.threads[thread.id] = ThreadMetadata.model_validate(
            thread.model_dump(exclude={"items"})
        )
        self.items.setdefault(thread.id, {})

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: dict[str, Any],
    ) -> Page[ThreadItem]:
        if thread_id not in self.items:
            raise NotFoundError(f"Thread {thread_id} not found")
        return _page(list(self.items[thread_id].values()), after, limit, order)

    async def save_attachment(self, attachment: Attachment, context: dict[str, Any]) -> None:
        self.attachments[attachment.id] = attachment

    async def load_attachment(self, attachment_id: str, context: dict[str, Any]) -> Attachment:
        try:
            return self.attachments[attachment_id]
        except KeyError:
            raise NotFoundError(f"Attachment {attachment_id} not found") from None

    async def delete_attachment(self, attachment_id: str, context: dict[str, Any]) -> None:
        self.attachments.pop(attachment_id, None)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: dict[str, Any]
    ) -> Page[ThreadMetadata]:
        return _page(sorted(self.threads.values(), key=lambda t: t.created_at), after, limit, order)

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: dict[str, Any]
    ) -> None:
        self.items.setdefault(thread_id, {})[item.id] = item.model_copy(deep=True)

    async def save_item(self, thread_id: str, item: ThreadItem, context: dict[str, Any]) -> None:
        self.items.setdefault(thread_id, {})[item.id] = item.model_copy(deep=True)

    async def load_item(self, thread_id: str, item_id: str, context: dict[str, Any]) -> ThreadItem:
        try:
            return self.items[thread_id][item_id]
        except KeyError:
            raise NotFoundError(f"Item {item_id} not found") from None

    async def delete_thread(self, thread_id: str, context: dict[str, Any]) -> None:
        self.threads.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: dict[str, Any]
    ) -> None:
        self.items.get(thread_id, {}).pop(item_id, None)


class BaselineServer(ChatKitServer[dict[str, Any]]):
    converter = ThreadItemConverter()

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: dict[str, Any],
    ) -> AsyncIterator[Any]:
        recent = await self.store.load_thread_items(thread.id, None, HISTORY_ITEMS, "desc", context)
        model_input = await self.converter.to_agent_input(list(reversed(recent.data)))
        agent_context: AgentContext[dict[str, Any]] = AgentContext(
            thread=thread, store=self.store, request_context=context
        )
        result = Runner.run_streamed(
            AGENT,
            model_input,
            context=agent_context,
            run_config=RunConfig(model_provider=OpenAIProvider(openai_client=CLIENT)),
        )
        async for event in stream_agent_response(agent_context, result):
            yield event


server = BaselineServer(store=MemoryStore())


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


if os.environ.get("BENCH_GC_FREEZE"):
    gc.freeze()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    try:
        result = await server.process(body, {})
    except NotFoundError as exc:
        await _send(send, 404, b'{"error": "%s"}' % str(exc).encode())
        return
    except Exception as exc:  # a bad request: the benchmark never sends one
        await _send(send, 400, repr(exc).encode())
        return
    if isinstance(result, StreamingResult):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        async for chunk in result:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await _send(send, 200, result.json)


async def _send(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
