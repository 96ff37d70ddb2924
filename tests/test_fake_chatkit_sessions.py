"""The fake OpenAI's ChatKit sessions, through the real openai client: what it parses, what the
fake records, and the failures tests script."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from django_chatkit.testing import FakeOpenAI, Reply
from django_chatkit.testing.fake_openai.chatkit_sessions import (
    is_cancel_request,
    is_session_request,
)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def test_a_session_is_what_the_openai_client_parses(fake: FakeOpenAI) -> None:
    client = fake.client()
    before = int(time.time())
    session = client.beta.chatkit.sessions.create(
        user="dck_someone",
        workflow={"id": "wf_a", "version": "2", "state_variables": {"plan": "pro"}},
        chatkit_configuration={"file_upload": {"enabled": True}},
        rate_limits={"max_requests_per_1_minute": 30},
    )
    assert session.object == "chatkit.session"
    assert session.id.startswith("cksess_") and session.client_secret.startswith("ek_")
    assert session.status == "active" and session.user == "dck_someone"
    assert before + 600 <= session.expires_at <= int(time.time()) + 600
    assert session.workflow.id == "wf_a" and session.workflow.version == "2"
    assert session.workflow.state_variables == {"plan": "pro"}
    assert session.rate_limits.max_requests_per_1_minute == 30
    assert session.chatkit_configuration.file_upload.enabled is True
    assert session.chatkit_configuration.history.enabled is True

    [request] = fake.wait_for_requests(1)
    assert (request.method, request.path) == ("POST", "/v1/chatkit/sessions")
    assert request.headers["openai-beta"] == "chatkit_beta=v1"
    assert request.user == "dck_someone" and request.workflow_id == "wf_a"
    assert fake.chatkit_sessions.minted[0]["client_secret"] == session.client_secret


def test_expiries_are_short_when_asked(fake: FakeOpenAI) -> None:
    client = fake.client()
    now = int(time.time())
    asked = client.beta.chatkit.sessions.create(
        user="u", workflow={"id": "wf_a"}, expires_after={"anchor": "created_at", "seconds": 3}
    )
    fake.chatkit_sessions.expires_in = 1
    default = client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf_a"})
    assert now + 3 <= asked.expires_at <= now + 5
    assert now + 1 <= default.expires_at <= now + 3
    assert asked.client_secret != default.client_secret


def test_cancel_ends_a_session(fake: FakeOpenAI) -> None:
    client = fake.client()
    session = client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf_a"})
    cancelled = client.beta.chatkit.sessions.cancel(session.id)
    assert cancelled.status == "cancelled" and cancelled.id == session.id
    assert fake.chatkit_sessions.minted[0]["status"] == "cancelled"
    with pytest.raises(openai.NotFoundError):
        client.beta.chatkit.sessions.cancel("cksess_missing")
    assert is_cancel_request(fake.requests[1]) and not is_session_request(fake.requests[1])


def test_scripted_faults_answer_the_requests_they_accept(fake: FakeOpenAI) -> None:
    client = fake.client()
    fake.chatkit_sessions.queue(
        Reply(status=401, when=is_cancel_request),
        Reply(status=429, retry_after=4),
        Reply(),  # served normally
        Reply(status=500),
    )
    with pytest.raises(openai.RateLimitError) as limited:
        client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf_a"})
    assert limited.value.response.headers["retry-after"] == "4"
    served = client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf_a"})
    with pytest.raises(openai.InternalServerError):
        client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf_a"})
    with pytest.raises(openai.AuthenticationError):
        client.beta.chatkit.sessions.cancel(served.id)
    assert fake.chatkit_sessions.pending == []
    assert [s["id"] for s in fake.chatkit_sessions.minted] == [served.id]
    assert [r.status for r in fake.requests] == [429, 200, 500, 401]


def test_the_model_queue_is_not_taken_by_sessions(fake: FakeOpenAI) -> None:
    fake.queue(Reply(text="for the conversation"))
    fake.client().beta.chatkit.sessions.create(user="u", workflow={"id": "wf_a"})
    assert [r.text for r in fake.pending] == ["for the conversation"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "param"),
    [
        ({"user": "u", "workflow": {"id": "wf_a"}}, {}, 400, None),  # no beta header
        ({"workflow": {"id": "wf_a"}}, {"OpenAI-Beta": "chatkit_beta=v1"}, 400, "user"),
        ({"user": "u"}, {"OpenAI-Beta": "chatkit_beta=v1"}, 400, "workflow"),
        ({"user": "u", "workflow": {}}, {"OpenAI-Beta": "chatkit_beta=v1"}, 400, "workflow.id"),
        (
            {"user": "u", "workflow": {"id": "wf_a"}, "expires_after": {"seconds": 5}},
            {"OpenAI-Beta": "chatkit_beta=v1"},
            400,
            "expires_after",
        ),
    ],
)
def test_malformed_requests_are_refused_as_the_api_would(
    fake: FakeOpenAI,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    param: str | None,
) -> None:
    response = httpx.post(f"{fake.base_url}/chatkit/sessions", json=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["param"] == param
    assert fake.chatkit_sessions.minted == []


def test_reset_forgets_sessions_and_faults(fake: FakeOpenAI) -> None:
    fake.client().beta.chatkit.sessions.create(user="u", workflow={"id": "wf_b"})
    fake.chatkit_sessions.queue(Reply(status=500))
    fake.chatkit_sessions.expires_in = 1
    fake.reset()
    assert fake.chatkit_sessions.pending == [] and fake.chatkit_sessions.minted == []
    assert fake.chatkit_sessions.expires_in == 600
