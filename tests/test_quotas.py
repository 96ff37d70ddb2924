"""Quotas: counted atomically, checked before anything is stored, refusals that say when to
retry, anonymous visitors limited per client address, a quota cache that is down."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from chatkit.types import ErrorEvent
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import AsyncClient, RequestFactory, override_settings
from django.utils import timezone

from django_chatkit import models, quotas
from django_chatkit.client_address import client_address
from django_chatkit.context import ChatKitContext
from django_chatkit.errors import RequestRejected, rejection_response
from django_chatkit.testing import ChatKitResponse, ChatKitTestClient, parse_sse
from tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SERVER = "tests.servers.ScriptedServer"


def caches_with(quota_cache: dict[str, Any]) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "quotas": {**quota_cache, "KEY_PREFIX": f"quota-test-{uuid.uuid4().hex}"},
    }


LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "quota-tests"}
REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
BACKENDS = {"locmem": LOCMEM, "redis": REDIS}


@pytest.fixture(params=sorted(BACKENDS))
def quota_cache(request):
    """A fresh quota cache (own key prefix) on the local-memory cache and on a real Redis."""
    with override_settings(CACHES=caches_with(BACKENDS[request.param])):
        cache = caches["quotas"]
        yield cache
        if request.param == "redis":  # clear() would flush the whole Redis database
            client = cast(Any, cache)._cache.get_client(write=True)
            for key in client.scan_iter(f"{cache.key_prefix}:*"):
                client.delete(key)
        else:
            cache.clear()


@pytest.fixture(autouse=True)
def one_window(monkeypatch):
    """Every request of a test falls in one rate window, even when it crosses a minute."""
    window = quotas.current_window()
    monkeypatch.setattr(quotas, "current_window", lambda: window)


def limits(**values: Any):
    return override_settings(CHATKIT={"SERVER": SERVER, "QUOTA_CACHE": "quotas", **values})


def refusal(reply: ChatKitResponse) -> ErrorEvent:
    assert reply.error is not None, reply.events
    return reply.error


def message(reply: ChatKitResponse) -> str:
    return str(refusal(reply).message)


async def count(model: Any) -> int:
    total: int = await sync_to_async(model.objects.count)()
    return total


class TestConcurrentTurns:
    async def test_forty_parallel_turns_with_a_limit_of_twenty(self, quota_cache, alice):
        chat = ChatKitTestClient(user=alice)
        await chat.request("threads.list")  # signs in before the burst
        with limits(REQUESTS_PER_MINUTE=20):
            replies = await asyncio.gather(*(chat.create_thread(f"hello {n}") for n in range(40)))
        answered = [r for r in replies if r.error is None]
        refused = [r for r in replies if r.error is not None]
        assert len(answered) == 20 and len(refused) == 20
        assert all(r.answer.startswith("echo: hello") for r in answered)
        for reply in refused:
            assert reply.status_code == 200
            assert reply.headers["Content-Type"] == "text/event-stream; charset=utf-8"
            assert 1 <= int(reply.headers["Retry-After"]) <= 60
            assert refusal(reply).allow_retry is True
            assert "limit of 20 messages per minute" in message(reply)
            assert reply.thread_id is None  # no thread.created: nothing was stored for it
        # Nothing stored for the refused turns: 20 threads, each with its message and answer.
        assert await count(models.Thread) == 20
        assert await count(models.ThreadItem) == 40

    async def test_tokens_are_added_atomically(self, quota_cache, alice):
        context = ChatKitContext.for_user(alice)
        with limits(TOKENS_PER_DAY=1_000_000):
            await asyncio.gather(*(quotas.add_tokens(context, 7) for _ in range(50)))
            key = quotas._tokens_key(f"u{alice.pk}", timezone.now())
            assert await sync_to_async(quota_cache.get)(key) == 350


class TestRefusedTurnStoresNothing:
    async def test_message_to_an_existing_thread(self, quota_cache, alice):
        chat = ChatKitTestClient(user=alice)
        with limits(REQUESTS_PER_MINUTE=1):
            first = await chat.create_thread("one")
            second = await chat.send(str(first.thread_id), "two")
        assert first.answer == "echo: one"
        assert "limit of 1 message per minute" in message(second)
        assert [i["type"] for i in await chat.items(str(first.thread_id))] == [
            "user_message",
            "assistant_message",
        ]

    async def test_token_budget_refuses_before_storing(self, quota_cache, alice):
        context = ChatKitContext.for_user(alice)
        chat = ChatKitTestClient(user=alice)
        with limits(TOKENS_PER_DAY=100):
            await quotas.add_tokens(context, 100)
            reply = await chat.create_thread("one")
        assert "budget of 100 tokens" in message(reply)
        assert int(reply.headers["Retry-After"]) > 0
        assert await count(models.Thread) == 0

    async def test_a_request_refused_for_another_reason_costs_no_quota(self, quota_cache, alice):
        chat = ChatKitTestClient(user=alice)
        with limits(REQUESTS_PER_MINUTE=1):
            missing = await chat.send("thr_missing", "hello")
            assert missing.status_code == 404
            reply = await chat.create_thread("counted once")
        assert reply.answer == "echo: counted once"

    async def test_other_owners_keep_their_own_quota(self, quota_cache, alice, bob):
        with limits(REQUESTS_PER_MINUTE=1):
            first = await ChatKitTestClient(user=alice).create_thread("alice")
            refused = await ChatKitTestClient(user=alice).create_thread("alice again")
            other = await ChatKitTestClient(user=bob).create_thread("bob")
        assert first.error is None and refused.error is not None
        assert other.answer == "echo: bob"


class ClientAt(AsyncClient):
    """An AsyncClient whose requests come from ``address`` (the ASGI scope's "client")."""

    def __init__(self, address: str, forwarded_for: str = "") -> None:
        super().__init__(enforce_csrf_checks=True)
        self.address = address
        self.forwarded_for = forwarded_for

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        # A private method of Django's AsyncRequestFactory that django-stubs does not declare.
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        if self.forwarded_for:
            scope["headers"].append((b"x-forwarded-for", self.forwarded_for.encode()))
        return {**scope, "client": [self.address, 50000]}


def anonymous_chat(address: str, forwarded_for: str = "") -> ChatKitTestClient:
    """A visitor without a session cookie: every request is a new visitor."""
    return ChatKitTestClient(client=ClientAt(address, forwarded_for))


class TestAnonymousVisitors:
    async def test_new_cookieless_visitors_share_their_address_quota(self, quota_cache):
        with limits(ALLOW_ANONYMOUS=True, REQUESTS_PER_MINUTE=2):
            replies = [await anonymous_chat("203.0.113.7").create_thread("hi") for _ in range(4)]
            elsewhere = await anonymous_chat("198.51.100.1").create_thread("hi")
        assert [r.error is None for r in replies] == [True, True, False, False]
        assert elsewhere.error is None
        # Refused visitors got no session and left no row.
        assert await count(Session) == 3
        assert await count(models.Thread) == 3

    async def test_ipv6_visitors_are_counted_per_64(self, quota_cache):
        with limits(ALLOW_ANONYMOUS=True, REQUESTS_PER_MINUTE=1):
            first = await anonymous_chat("2001:db8:1:2::10").create_thread("hi")
            same_64 = await anonymous_chat("2001:db8:1:2:ffff::1").create_thread("hi")
            other_64 = await anonymous_chat("2001:db8:1:3::10").create_thread("hi")
        assert (first.error, other_64.error) == (None, None)
        assert same_64.error is not None

    async def test_behind_a_trusted_proxy_the_forwarded_address_counts(self, quota_cache):
        with limits(ALLOW_ANONYMOUS=True, REQUESTS_PER_MINUTE=1, TRUSTED_PROXY_COUNT=1):
            # Both arrive from the proxy's address; the proxy appended the real client last.
            # A client-sent X-Forwarded-For entry (left of it) changes nothing.
            one = await anonymous_chat("10.0.0.1", "1.1.1.1, 203.0.113.7").create_thread("hi")
            spoofed = await anonymous_chat("10.0.0.1", "9.9.9.9, 203.0.113.7").create_thread("hi")
            other = await anonymous_chat("10.0.0.1", "203.0.113.8").create_thread("hi")
        assert one.error is None and other.error is None
        assert spoofed.error is not None

    async def test_per_address_limit_can_be_turned_off(self, quota_cache):
        with limits(
            ALLOW_ANONYMOUS=True, REQUESTS_PER_MINUTE=1, ANONYMOUS_LIMITS_PER_ADDRESS=False
        ):
            replies = [await anonymous_chat("203.0.113.7").create_thread("hi") for _ in range(3)]
        assert all(r.error is None for r in replies)


class TestQuotaCacheDown:
    @pytest.fixture
    def dead_redis(self):
        dead = {**REDIS, "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
        with override_settings(CACHES=caches_with(dead)):
            yield

    async def test_turns_are_refused_retryably_and_nothing_is_stored(self, dead_redis, alice):
        with limits(REQUESTS_PER_MINUTE=10):
            reply = await ChatKitTestClient(user=alice).create_thread("hi")
        assert reply.status_code == 200
        assert reply.headers["Retry-After"] == str(quotas.UNAVAILABLE_RETRY_AFTER)
        assert refusal(reply).allow_retry is True
        assert "usage limits cannot be checked" in message(reply)
        assert await count(models.Thread) == 0

    async def test_fail_open_lets_turns_through(self, dead_redis, alice):
        with limits(REQUESTS_PER_MINUTE=10, TOKENS_PER_DAY=1000, QUOTA_FAIL_OPEN=True):
            reply = await ChatKitTestClient(user=alice).create_thread("hi")
        assert reply.answer == "echo: hi"


class TestRejectionResponse:
    def test_json_op_gets_429_with_retry_after(self):
        refused = quotas.QuotaExceeded("a limit", timezone.now())
        response = rejection_response(refused, streaming=False)
        assert response.status_code == 429
        assert response["Retry-After"] == "1"
        body = json.loads(response.content)  # type: ignore[attr-defined]
        assert body["error"]["code"] == "quota_exceeded"

    async def test_streaming_op_gets_one_error_event(self):
        refused = quotas.QuotaUnavailable()
        response = rejection_response(refused, streaming=True)
        body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]
        [event] = parse_sse(body)
        assert event.type == "error" and event.allow_retry is True

    def test_a_client_mistake_stays_a_json_4xx_without_retry_after(self):
        response = rejection_response(RequestRejected(400, "invalid_request", "no"), streaming=True)
        assert response.status_code == 400 and not response.has_header("Retry-After")


class TestClientAddress:
    @pytest.mark.parametrize(
        ("proxies", "remote", "forwarded", "expected"),
        [
            (0, "203.0.113.7", "1.2.3.4", "203.0.113.7"),
            (1, "10.0.0.1", "1.2.3.4, 203.0.113.7", "203.0.113.7"),
            (2, "10.0.0.1", "1.2.3.4, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
            (2, "10.0.0.1", "203.0.113.7", "203.0.113.7"),
            (1, "10.0.0.1", "", "10.0.0.1"),
            (0, "::ffff:203.0.113.7", "", "203.0.113.7"),
            (0, "2001:db8::1", "", "2001:db8::/64"),
        ],
    )
    def test_address(self, proxies, remote, forwarded, expected):
        request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
        with override_settings(CHATKIT={"TRUSTED_PROXY_COUNT": proxies}):
            assert client_address(request) == expected
