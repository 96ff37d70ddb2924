from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import AsyncClient

from django_chatkit.context import ChatKitContext
from django_chatkit.loading import get_server
from django_chatkit.store import DjangoStore

CSRF_TOKEN = "t" * 32
ENDPOINT = "/chatkit/"


@pytest.fixture(autouse=True)
def _close_worker_thread_connections_after_async_tests(request: pytest.FixtureRequest) -> None:
    # Autouse, because fixtures a hook adds to items after collection never run. Sync tests
    # skip it: their database work happens on pytest's own thread, which pytest-django manages.
    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        request.getfixturevalue("close_worker_thread_connections")


@pytest.fixture
async def close_worker_thread_connections() -> AsyncIterator[None]:
    """Async tests reach the database from asgiref's worker thread; close its connections so
    that the test database can be dropped at the end of the run (PostgreSQL refuses while a
    connection is open)."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="pw")


@pytest.fixture
def alice_ctx(alice) -> ChatKitContext:
    return ChatKitContext.for_user(alice)


@pytest.fixture
def bob_ctx(bob) -> ChatKitContext:
    return ChatKitContext.for_user(bob)


@pytest.fixture
def store() -> DjangoStore:
    return DjangoStore()


@pytest.fixture
def server():
    return get_server()


class ChatKitHttp:
    """Posts protocol requests through the real view, with the session and CSRF a browser has."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        client.cookies["csrftoken"] = CSRF_TOKEN

    async def post(self, body: Any, *, raw: bytes | None = None, **headers: str):
        data = raw if raw is not None else json.dumps(body).encode()
        return await self.client.post(
            ENDPOINT,
            data=data,
            content_type="application/json",
            headers={"X-CSRFToken": CSRF_TOKEN, **headers},
        )

    async def json(self, op: str, **params: Any) -> tuple[int, Any]:
        response = await self.post({"type": op, "params": params})
        return response.status_code, json.loads(response.content)

    async def stream(self, op: str, **params: Any) -> tuple[int, list[dict[str, Any]]]:
        response = await self.post({"type": op, "params": params})
        if not response.streaming:
            return response.status_code, [json.loads(response.content)]
        return response.status_code, await read_events(response.streaming_content)


async def read_events(chunks: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
    events = []
    for frame in buffer.split(b"\n\n"):
        if frame:
            assert frame.startswith(b"data: "), frame
            events.append(json.loads(frame[len(b"data: ") :]))
    return events


def user_input(text: str, attachments: list[str] | None = None) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments or [],
        "inference_options": {},
    }


@pytest.fixture
def http_alice(alice) -> ChatKitHttp:
    client = AsyncClient(enforce_csrf_checks=True)
    client.force_login(alice)
    return ChatKitHttp(client)


@pytest.fixture
def http_bob(bob) -> ChatKitHttp:
    client = AsyncClient(enforce_csrf_checks=True)
    client.force_login(bob)
    return ChatKitHttp(client)


@pytest.fixture
def http_anonymous(db) -> ChatKitHttp:
    return ChatKitHttp(AsyncClient(enforce_csrf_checks=True))
