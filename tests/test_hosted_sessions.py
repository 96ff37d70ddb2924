"""The hosted-mode session endpoint (issue #16): client secrets minted through the real openai
client against the fake OpenAI server, for allowed workflows only, per owner under a keyed hash,
rate limited, with upstream failures answered as clear JSON errors."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, override_settings
from django.urls import reverse

from django_chatkit import models, quotas
from django_chatkit.context import ANONYMOUS_SESSION_KEY, OWNER_KEY_HEADER, Owner
from django_chatkit.testing import CSRF_TOKEN, FakeOpenAI, Reply
from django_chatkit.testing.fake_openai.chatkit_sessions import is_session_request
from tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)

WORKFLOW = "wf_68df4b13b3588190a09d19288d4610ec0df388c6a3bd0a67"
OTHER_WORKFLOW = "wf_support"
SETTINGS: dict[str, Any] = {
    "SERVER": "tests.servers.ScriptedServer",
    "HOSTED_WORKFLOWS": {
        WORKFLOW: {},
        OTHER_WORKFLOW: {
            "version": "3",
            "state_variables": {"plan": "pro", "seats": 5},
            "expires_after": 30,
            "max_requests_per_minute": 20,
            "chatkit_configuration": {"history": {"enabled": False}},
            "tracing": False,
        },
    },
    "OPENAI_MAX_RETRIES": 0,  # scripted faults reach the endpoint at once
    "QUOTA_CACHE": "hosted",
}
URL = "/chatkit/hosted/session/"


def hosted(**changes: Any) -> Any:
    """These tests' CHATKIT, with a quota cache of the test's own."""
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "hosted": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "hosted-session-tests",
            "KEY_PREFIX": uuid.uuid4().hex,
        },
    }
    return override_settings(CHATKIT={**SETTINGS, **changes}, CACHES=caches)


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    window = quotas.current_window()  # every request of a test in one rate window
    monkeypatch.setattr(quotas, "current_window", lambda: window)
    with hosted():
        yield


@pytest.fixture
def carol(db: None) -> Any:
    return get_user_model().objects.create_user(
        "carol", email="carol@example.com", password="carol-pw"
    )


@pytest.fixture
def dave(db: None) -> Any:
    return get_user_model().objects.create_user(
        "dave", email="dave@example.com", password="dave-pw"
    )


async def client_for(user: Any = None) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = CSRF_TOKEN
    if user is not None:
        await client.aforce_login(user)
    return client


async def ask(
    client: AsyncClient, workflow: Any = WORKFLOW, *, csrf: bool = True, body: Any = None
) -> Any:
    data = body if body is not None else json.dumps({"workflow": workflow})
    return await client.post(
        URL,
        data=data,
        content_type="application/json",
        headers={"X-CSRFToken": CSRF_TOKEN} if csrf else {},
    )


def session_requests(fake: FakeOpenAI) -> list[Any]:
    return [r for r in fake.requests if is_session_request(r)]


def test_the_url_is_named() -> None:
    assert reverse("chatkit:hosted-session") == URL


async def test_a_signed_in_user_gets_a_secret_minted_under_a_keyed_hash(
    fake_openai: FakeOpenAI, carol: Any
) -> None:
    client = await client_for(carol)
    before = int(time.time())
    response = await ask(client)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert set(answer) == {"client_secret", "expires_at"}
    [minted] = fake_openai.chatkit_sessions.minted
    assert answer == {"client_secret": minted["client_secret"], "expires_at": minted["expires_at"]}
    assert before + 600 <= answer["expires_at"] <= int(time.time()) + 600  # OpenAI's default
    assert response["Cache-Control"] == "no-store"
    assert response[OWNER_KEY_HEADER] == Owner(user_id=carol.pk).memory_key()

    [sent] = session_requests(fake_openai)
    assert sent.headers["openai-beta"] == "chatkit_beta=v1"
    assert sent.headers["authorization"] == "Bearer test"
    assert sent.workflow_id == WORKFLOW
    assert sent.json["workflow"] == {"id": WORKFLOW}
    recorded = await models.HostedUser.objects.aget(user=carol)
    assert sent.user == recorded.upstream_user
    assert sent.user is not None and sent.user.startswith("dck_") and len(sent.user) == 48
    # Nothing that identifies carol went upstream: not her pk, name or email.
    raw = json.dumps(dict(sent.json))
    for secret in ("carol", "example.com", f"user:{carol.pk}"):
        assert secret not in raw
    assert f'"{carol.pk}"' not in raw and f": {carol.pk}" not in raw
    assert recorded.last_session_at is not None
    # The API key never reaches the browser.
    assert b"test" not in response.content.replace(minted["client_secret"].encode(), b"")
    assert "Bearer" not in str(response.headers)


async def test_each_secret_is_new_and_the_identifier_is_stable_per_owner(
    fake_openai: FakeOpenAI, carol: Any, dave: Any
) -> None:
    carols, daves = await client_for(carol), await client_for(dave)
    first = (await ask(carols)).json()
    second = (await ask(carols)).json()  # the widget refreshing an expiring secret
    other = (await ask(daves)).json()

    assert len({first["client_secret"], second["client_secret"], other["client_secret"]}) == 3
    users = [r.user for r in session_requests(fake_openai)]
    assert users[0] == users[1] != users[2]
    assert await models.HostedUser.objects.acount() == 2
    # Cross-user: dave's identifier is his own, recorded for him.
    assert (await models.HostedUser.objects.aget(user=dave)).upstream_user == users[2]


async def test_a_workflows_options_come_from_the_settings(
    fake_openai: FakeOpenAI, carol: Any
) -> None:
    before = int(time.time())
    response = await ask(await client_for(carol), OTHER_WORKFLOW)

    assert response.status_code == 200, response.content
    [sent] = session_requests(fake_openai)
    assert sent.json["workflow"] == {
        "id": OTHER_WORKFLOW,
        "version": "3",
        "state_variables": {"plan": "pro", "seats": 5},
        "tracing": {"enabled": False},
    }
    assert sent.json["expires_after"] == {"anchor": "created_at", "seconds": 30}
    assert sent.json["rate_limits"] == {"max_requests_per_1_minute": 20}
    assert sent.json["chatkit_configuration"] == {"history": {"enabled": False}}
    assert before + 30 <= response.json()["expires_at"] <= int(time.time()) + 30


@pytest.mark.parametrize(
    "workflow", ["wf_not_configured", "wf_68df4b13b3588190a09d19288d4610ec0df388c6a3bd0a6"]
)
async def test_a_workflow_off_the_allow_list_is_refused(
    fake_openai: FakeOpenAI, carol: Any, workflow: str
) -> None:
    response = await ask(await client_for(carol), workflow)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "workflow_not_allowed"
    assert session_requests(fake_openai) == []


async def test_the_widget_default_workflow_is_allowed(fake_openai: FakeOpenAI, carol: Any) -> None:
    with hosted(HOSTED_WORKFLOWS=[], WIDGET={"workflow": "wf_everywhere"}):
        allowed = await ask(await client_for(carol), "wf_everywhere")
        refused = await ask(await client_for(carol), WORKFLOW)
    assert allowed.status_code == 200, allowed.content
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", "{}", '{"workflow": 7}', '{"workflow": ""}', '{"workflow": {"id": "wf_a"}}'],
)
async def test_a_body_that_names_no_workflow_is_a_400(
    fake_openai: FakeOpenAI, carol: Any, body: str
) -> None:
    response = await ask(await client_for(carol), body=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert session_requests(fake_openai) == []


async def test_a_large_body_is_a_413(fake_openai: FakeOpenAI, carol: Any) -> None:
    body = json.dumps({"workflow": WORKFLOW, "padding": "x" * 5000})
    response = await ask(await client_for(carol), body=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_anonymous_visitors_get_401_unless_allowed(fake_openai: FakeOpenAI) -> None:
    response = await ask(await client_for())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert session_requests(fake_openai) == []
    assert await models.HostedUser.objects.acount() == 0


async def test_anonymous_visitors_are_served_when_allowed(fake_openai: FakeOpenAI) -> None:
    client = await client_for()
    with hosted(ALLOW_ANONYMOUS=True):
        first = await ask(client)
        second = await ask(client)
        stranger = await ask(await client_for())

    assert first.status_code == second.status_code == stranger.status_code == 200
    users = [r.user for r in session_requests(fake_openai)]
    assert users[0] == users[1] != users[2]
    session = await client.session.aget(ANONYMOUS_SESSION_KEY)
    assert session
    recorded = await models.HostedUser.objects.aget(anonymous_key=session)
    assert recorded.upstream_user == users[0] and recorded.user_id is None
    assert session not in users[0]  # the token, as good as a password, never leaves
    assert first[OWNER_KEY_HEADER] == Owner(anonymous_key=session).memory_key()


async def test_a_new_anonymous_visitor_refused_upstream_leaves_nothing_behind(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.chatkit_sessions.queue(Reply(status=500))
    client = await client_for()
    with hosted(ALLOW_ANONYMOUS=True):
        response = await ask(client)
    assert response.status_code == 502
    assert await models.HostedUser.objects.acount() == 0
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # no session was made


async def test_a_request_without_the_csrf_token_is_a_403(
    fake_openai: FakeOpenAI, carol: Any
) -> None:
    response = await ask(await client_for(carol), csrf=False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert session_requests(fake_openai) == []


@pytest.mark.parametrize("method", ["get", "put", "delete"])
async def test_other_methods_are_a_405(fake_openai: FakeOpenAI, carol: Any, method: str) -> None:
    response = await getattr(await client_for(carol), method)(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("fault", "status", "code", "retry_after"),
    [
        (Reply(status=429, retry_after=7), 503, "upstream_rate_limited", "7"),
        (Reply(status=429, retry_after=3600), 503, "upstream_rate_limited", "60"),
        (Reply(status=500), 502, "upstream_error", "5"),
        (Reply(status=503), 502, "upstream_error", "5"),
        (Reply(status=401), 502, "hosted_misconfigured", None),
        (Reply(status=403), 502, "hosted_misconfigured", None),
        (Reply(status=404, error_message="No workflow wf_x"), 502, "hosted_misconfigured", None),
    ],
)
async def test_upstream_failures_become_clear_errors(
    fake_openai: FakeOpenAI,
    carol: Any,
    caplog: pytest.LogCaptureFixture,
    fault: Reply,
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    leaked = "sk-proj-abcdefghijklmnop"
    if fault.status == 401:
        fault = Reply(status=401, error_message=f"Incorrect API key provided: {leaked}.")
    fake_openai.chatkit_sessions.queue(fault)
    with caplog.at_level(logging.WARNING, logger="django_chatkit"):
        response = await ask(await client_for(carol))

    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert response.get("Retry-After") == retry_after
    assert leaked not in response.content.decode()
    assert leaked not in caplog.text
    assert fake_openai.chatkit_sessions.minted == []


async def test_openai_out_of_reach_is_a_503(monkeypatch: pytest.MonkeyPatch, carol: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    response = await ask(await client_for(carol))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert response["Retry-After"] == "5"


async def test_without_an_api_key_the_site_is_misconfigured(
    monkeypatch: pytest.MonkeyPatch, carol: Any
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    response = await ask(await client_for(carol))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "hosted_misconfigured"


async def test_secrets_are_rate_limited_per_owner(
    fake_openai: FakeOpenAI, carol: Any, dave: Any
) -> None:
    carols = await client_for(carol)
    with hosted(HOSTED_SESSIONS_PER_MINUTE=2):
        answers = [await ask(carols) for _ in range(3)]
        daves = await ask(await client_for(dave))

    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert "2 chat sessions per minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert daves.status_code == 200  # counted per owner
    assert len(session_requests(fake_openai)) == 3  # the refused one cost nothing upstream


async def test_anonymous_secrets_are_rate_limited_per_address_too(
    fake_openai: FakeOpenAI,
) -> None:
    with hosted(ALLOW_ANONYMOUS=True, HOSTED_SESSIONS_PER_MINUTE=2):
        # New visitors (no cookie kept) from one address.
        answers = [await ask(await client_for()) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]


async def test_a_quota_cache_that_is_down_refuses_unless_fail_open(
    fake_openai: FakeOpenAI, carol: Any
) -> None:
    down = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
    }
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, "x": down}
    with override_settings(CACHES=caches, CHATKIT={**SETTINGS, "QUOTA_CACHE": "x"}):
        refused = await ask(await client_for(carol))
    with override_settings(
        CACHES=caches, CHATKIT={**SETTINGS, "QUOTA_CACHE": "x", "QUOTA_FAIL_OPEN": True}
    ):
        allowed = await ask(await client_for(carol))
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "quota_unavailable"
    assert allowed.status_code == 200


def test_the_asgi_body_limit_knows_the_session_endpoint() -> None:
    from django_chatkit.body_limits import body_limit
    from django_chatkit.hosted.views import MAX_BODY_BYTES

    limit = body_limit(URL)
    assert limit is not None and limit.max_bytes == MAX_BODY_BYTES
    assert limit.code == "request_too_large"
