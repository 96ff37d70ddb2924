"""pytest fixtures for projects that use django_chatkit.

Registered through the ``pytest11`` entry point, so installing the package is enough; without
it, add ``pytest_plugins = ["django_chatkit.testing.pytest_plugin"]`` to your root conftest.
Imports happen inside the fixtures, so the plugin costs nothing to test runs that don't use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .client import ChatKitTestClient
    from .fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI`, stopped after the test.

    For the test's duration ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` point at the fake, so
    clients built from the environment (the Agents SDK's default provider and django_chatkit's
    own client included) talk to it, and Agents SDK tracing is disabled, since its exporter
    would call api.openai.com.

    Thread-title requests skip the queue (``side_requests``) and are answered by
    ``default_reply``, which starts as the first words of the user's message: queued replies
    script the conversation alone, in order.
    """
    from agents import set_tracing_disabled

    from .fake_openai import FakeOpenAI
    from .titles import is_title_request, title_from_message

    set_tracing_disabled(True)
    with FakeOpenAI(default_reply=title_from_message) as fake:
        fake.side_requests = is_title_request
        for name, value in fake.env.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def chatkit_client(django_user_model: Any) -> ChatKitTestClient:
    """A :class:`ChatKitTestClient` signed in as a new user (``chatkit_client.user``)."""
    from .client import ChatKitTestClient

    user = django_user_model.objects.create_user(username="chatkit-test-user", password="x")
    return ChatKitTestClient(user=user)
