from __future__ import annotations

import inspect
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
from django_chatkit.testing import ChatKitTestClient

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


@pytest.fixture
def http_alice(alice) -> ChatKitTestClient:
    return signed_in_client(alice)


@pytest.fixture
def http_bob(bob) -> ChatKitTestClient:
    return signed_in_client(bob)


@pytest.fixture
def http_anonymous(db) -> ChatKitTestClient:
    return ChatKitTestClient()


def signed_in_client(user: Any) -> ChatKitTestClient:
    """The public test client, with ``user`` signed in now (in the fixture, on pytest's thread)
    rather than lazily inside the first request."""
    client = AsyncClient(enforce_csrf_checks=True)
    client.force_login(user)
    return ChatKitTestClient(client=client)
