"""Live updates (issue #15, foundation): notices published after commit to the channel layer,
the thread websocket's admission (the auth matrix, close codes, origin, connection bound), and
what the widget tag renders for it. Real database, Channels' in-memory layer, Channels'
WebsocketCommunicator on the application stack docs/live.md documents."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from chatkit.types import AssistantMessageItem
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.core.checks import run_checks
from django.db import transaction
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from django_chatkit.context import ANONYMOUS_SESSION_KEY, ChatKitContext
from django_chatkit.live import notices, routes
from django_chatkit.live.groups import STAFF_GROUP, thread_group
from django_chatkit.live.layer import live_enabled
from django_chatkit.routing import websocket_urlpatterns
from django_chatkit.store import DjangoStore
from tests.conftest import signed_in_client

pytestmark = pytest.mark.django_db(transaction=True)

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ORIGIN = "http://testserver"


def application() -> Any:
    """The site's asgi.py, websocket half, as docs/live.md documents it (built anew: the
    origin validator reads ALLOWED_HOSTS when built)."""
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))


@pytest.fixture
def layer() -> Iterator[Any]:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield get_channel_layer()


@pytest.fixture
def connection_cache() -> Iterator[None]:
    """A cache of this test's own for the connection counts (Redis under REDIS_URL, shared with
    other runs: a prefix of its own)."""
    cache = dict(settings.CACHES["default"], KEY_PREFIX=f"live-{uuid.uuid4().hex}")
    with override_settings(
        CACHES={**settings.CACHES, "live": cache},
        CHATKIT={**settings.CHATKIT, "QUOTA_CACHE": "live"},
    ):
        yield


async def listen(layer: Any, *groups: str) -> str:
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return str(channel)


async def heard(layer: Any, channel: str) -> list[dict[str, Any]]:
    """Everything sent to ``channel`` so far: once the pending sends are done, a marker sent
    last comes back last (the channel is a queue), with no waiting on a clock."""
    await notices.drain()
    await layer.send(channel, {"type": "test.end"})
    messages = []
    while (message := await layer.receive(channel))["type"] != "test.end":
        messages.append(message)
    return messages


def events(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(message["event"], message.get("item_id", "")) for message in messages]


def user(username: str, *codenames: str, staff: bool = False) -> Any:
    created = get_user_model().objects.create_user(username, password="pw", is_staff=staff)
    if codenames:
        created.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="django_chatkit", codename__in=codenames
            )
        )
    return created


def session_cookie(signed_in: Any = None, anonymous_key: str | None = None) -> str:
    if signed_in is not None:
        client = Client()
        client.force_login(signed_in)
        return client.cookies[settings.SESSION_COOKIE_NAME].value
    session = SessionStore()
    session[ANONYMOUS_SESSION_KEY] = anonymous_key
    session.create()
    return str(session.session_key)


def new_thread(owner: Any = None, anonymous_key: str = "") -> str:
    now = timezone.now()
    thread = models.Thread.objects.create(
        id=f"thr_{uuid.uuid4().hex[:26]}",
        user=owner,
        anonymous_key=anonymous_key,
        created_at=now,
        updated_at=now,
    )
    return thread.pk


def socket(thread_id: str, cookie: str | None = None, origin: str = ORIGIN) -> Any:
    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(
        application(), f"{routes.THREAD_PATH}{thread_id}/", headers=headers
    )


async def outcome(communicator: Any) -> str | int:
    """ "open", the close code the consumer sent after accepting, or "refused" (handshake)."""
    connected, _ = await communicator.connect()
    if not connected:
        return "refused"
    message = await communicator.receive_output()
    if message["type"] == "websocket.send":
        assert json.loads(message["text"])["event"] == "subscribed"
        return "open"
    assert message["type"] == "websocket.close"
    return int(message["code"])


# -- notices ------------------------------------------------------------------------------------


async def test_a_turn_publishes_each_stored_item_once_after_commit(layer, alice):
    staff_channel = await listen(layer, STAFF_GROUP)
    http = await sync_to_async(signed_in_client)(alice)
    created = await http.create_thread("hello")
    thread_id = created.thread_id
    assert thread_id is not None
    first = await heard(layer, staff_channel)
    stored = await sync_to_async(
        lambda: list(
            models.ThreadItem.objects.filter(thread_id=thread_id)
            .order_by("created_at", "pk")
            .values_list("item_id", flat=True)
        )
    )()
    assert events(first)[0] == ("thread.created", "")
    added = [item_id for event, item_id in events(first) if event == "item.added"]
    assert sorted(added) == sorted(stored)  # each stored item, once
    assert {message["thread_id"] for message in first} == {thread_id}
    for message in first:  # small notices, never content
        assert set(message) <= {"type", "event", "thread_id", "item_id"}
        assert message["type"] == "chatkit.notice"

    thread_channel = await listen(layer, thread_group(thread_id))
    await http.send(thread_id, "again")
    second = await heard(layer, thread_channel)
    new_items = await sync_to_async(
        lambda: set(
            models.ThreadItem.objects.filter(thread_id=thread_id)
            .exclude(item_id__in=stored)
            .values_list("item_id", flat=True)
        )
    )()
    assert len(new_items) == 2
    assert sorted(item_id for event, item_id in events(second) if event == "item.added") == sorted(
        new_items
    )
    assert await heard(layer, staff_channel) == second  # the staff group hears the same


async def test_a_title_change_is_published(layer, alice):
    http = await sync_to_async(signed_in_client)(alice)
    thread_id = (await http.create_thread("hello")).thread_id
    assert thread_id is not None
    channel = await listen(layer, thread_group(thread_id))
    response = await http.request("threads.update", thread_id=thread_id, title="Renamed")
    assert response.status_code == 200
    assert events(await heard(layer, channel)) == [("thread.title", "")]
    # Saving the same title again changes nothing and says nothing.
    await http.request("threads.update", thread_id=thread_id, title="Renamed")
    assert await heard(layer, channel) == []


async def test_feedback_and_deletes_by_the_owner_are_published(layer, alice):
    http = await sync_to_async(signed_in_client)(alice)
    created = await http.create_thread("hello")
    thread_id = created.thread_id
    assert thread_id is not None
    answer = created.done_items[-1].id
    channel = await listen(layer, thread_group(thread_id))
    voted = await http.request(
        "items.feedback", thread_id=thread_id, item_ids=[answer], kind="positive"
    )
    assert voted.status_code == 200
    assert events(await heard(layer, channel)) == [("item.feedback", answer)]
    assert (await http.request("threads.delete", thread_id=thread_id)).status_code == 200
    assert events(await heard(layer, channel)) == [("thread.deleted", "")]


def test_deletes_by_staff_are_published(layer, alice):
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    one, two, three = new_thread(alice), new_thread(alice), new_thread(alice)
    channel = async_to_sync(listen)(layer, STAFF_GROUP)
    page = reverse("admin:django_chatkit_thread_delete", args=[one])
    assert admin.post(page, {"post": "yes"}).status_code == 302
    assert [(m["event"], m["thread_id"]) for m in async_to_sync(heard)(layer, channel)] == [
        ("thread.deleted", one)
    ]
    response = admin.post(
        reverse(ADMIN_CHANGELIST),
        {"action": "delete_selected", "_selected_action": [two, three], "post": "yes"},
    )
    assert response.status_code == 302
    heard_now = async_to_sync(heard)(layer, channel)
    assert sorted((m["event"], m["thread_id"]) for m in heard_now) == sorted(
        [("thread.deleted", two), ("thread.deleted", three)]
    )
    assert not models.Thread.objects.filter(pk__in=[one, two, three]).exists()


def assistant_item(thread_id: str, text: str = "hi") -> AssistantMessageItem:
    return AssistantMessageItem.model_validate(
        {
            "id": f"msg_{uuid.uuid4().hex[:26]}",
            "thread_id": thread_id,
            "created_at": timezone.now(),
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    )


def test_a_write_rolled_back_publishes_nothing(layer, alice):
    thread_id = new_thread(alice)
    channel = async_to_sync(listen)(layer, thread_group(thread_id))
    store, context = DjangoStore(), ChatKitContext.for_user(alice)
    item = assistant_item(thread_id)

    def write_then_fail() -> None:
        with transaction.atomic():
            store._upsert_item(thread_id, item, context)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert not models.ThreadItem.objects.filter(thread_id=thread_id).exists()
    assert async_to_sync(heard)(layer, channel) == []

    with transaction.atomic():
        store._upsert_item(thread_id, item, context)
        # Not before the commit.
        assert async_to_sync(heard)(layer, channel) == []
    assert events(async_to_sync(heard)(layer, channel)) == [("item.added", item.id)]


ADMIN_CHANGELIST = "admin:django_chatkit_thread_changelist"


def moderate(client: Client, action: str, thread_ids: list[str], **form: str) -> None:
    response = client.post(
        reverse(ADMIN_CHANGELIST),
        {"action": action, "_selected_action": thread_ids, "post": "yes", **form},
    )
    assert response.status_code == 302, response.content[:500]


def test_the_admin_moderation_publishes_status_changes_once(layer, alice):
    moderator = Client()
    moderator.force_login(user("mod", "view_thread", "moderate_thread", staff=True))
    threads = [new_thread(alice), new_thread(alice)]
    owner_channel = async_to_sync(listen)(layer, thread_group(threads[0]))
    staff_channel = async_to_sync(listen)(layer, STAFF_GROUP)

    moderate(moderator, "lock_threads", threads, **{"moderation-status_reason": "Spam"})
    assert events(async_to_sync(heard)(layer, owner_channel)) == [("thread.status", "")]
    staff_heard = async_to_sync(heard)(layer, staff_channel)
    assert sorted((m["event"], m["thread_id"]) for m in staff_heard) == sorted(
        ("thread.status", thread_id) for thread_id in threads
    )

    # The internal note alone changes nothing the owner sees.
    moderate(
        moderator,
        "lock_threads",
        threads,
        **{"moderation-status_reason": "Spam", "moderation-moderator_note": "seen"},
    )
    assert async_to_sync(heard)(layer, owner_channel) == []

    # A legal hold is staff's business only.
    moderate(moderator, "hold_threads", threads[:1], **{"moderation-reason": "Case 1"})
    assert async_to_sync(heard)(layer, owner_channel) == []
    assert events(async_to_sync(heard)(layer, staff_channel)) == [("thread.hold", "")]

    moderate(moderator, "reopen_threads", threads[:1])
    assert events(async_to_sync(heard)(layer, owner_channel)) == [("thread.status", "")]


def test_an_admin_title_edit_is_published(layer, alice):
    editor = Client()
    editor.force_login(user("editor", "view_thread", "change_thread", staff=True))
    thread_id = new_thread(alice)
    channel = async_to_sync(listen)(layer, thread_group(thread_id))
    url = reverse("admin:django_chatkit_thread_change", args=[thread_id])
    assert editor.post(url, {"title": "By staff"}).status_code == 302
    assert events(async_to_sync(heard)(layer, channel)) == [("thread.title", "")]


@pytest.mark.django_db  # in the test's transaction: on_commit callbacks wait, to be counted
def test_without_channel_layers_nothing_is_scheduled(alice, django_capture_on_commit_callbacks):
    assert not getattr(settings, "CHANNEL_LAYERS", None)
    assert not live_enabled()
    thread_id = new_thread(alice)
    store, context = DjangoStore(), ChatKitContext.for_user(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        store._upsert_item(thread_id, assistant_item(thread_id), context)
    assert callbacks == []
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):  # the same write with a layer: one
        with django_capture_on_commit_callbacks() as callbacks:
            store._upsert_item(thread_id, assistant_item(thread_id), context)
        assert len(callbacks) == 1


async def test_without_channel_layers_a_turn_works(alice):
    assert not live_enabled()
    http = await sync_to_async(signed_in_client)(alice)
    response = await http.create_thread("hello")
    assert response.status_code == 200
    assert response.answer == "echo: hello"


async def test_a_failing_channel_layer_never_breaks_a_turn(alice, caplog):
    broken = {"default": {"BACKEND": "tests.live_layers.BrokenLayer"}}
    http = await sync_to_async(signed_in_client)(alice)
    with override_settings(CHANNEL_LAYERS=broken), caplog.at_level(logging.WARNING):
        response = await http.create_thread("hello")
        await notices.drain()
    assert response.status_code == 200
    assert response.answer == "echo: hello"
    assert "Could not publish" in caplog.text and "ChatKit notice" in caplog.text


def test_group_names_are_valid_for_channels(layer):
    for thread_id in ["thr_01HZX", "x" * 64, "x" * 300, "thr with spaces", "thr_é", "a.b", ""]:
        name = thread_group(thread_id)
        assert layer.require_valid_group_name(name)
        assert len(name) < 100
    assert thread_group("a.b") != thread_group("a_b")


# -- the socket -----------------------------------------------------------------------------------


@pytest.fixture
def anonymous_allowed() -> Iterator[None]:
    with override_settings(CHATKIT={**settings.CHATKIT, "ALLOW_ANONYMOUS": True}):
        yield


@pytest.fixture
def world(alice, bob) -> dict[str, Any]:
    """Alice's thread, a visitor's thread, and a cookie for everyone of the matrix."""
    visitor_key = "visitor-token-" + uuid.uuid4().hex
    return {
        "alice_thread": new_thread(alice),
        "visitor_thread": new_thread(anonymous_key=visitor_key),
        "alice": session_cookie(alice),
        "bob": session_cookie(bob),
        "visitor": session_cookie(anonymous_key=visitor_key),
        "other visitor": session_cookie(anonymous_key="another-" + uuid.uuid4().hex),
        "staff": session_cookie(user("staffer", staff=True)),
        "reviewer": session_cookie(user("reviewer", "view_thread", staff=True)),
    }


# (who, whose thread) -> what the socket does. 4404 for a foreign and a missing thread alike.
MATRIX = [
    ("alice", "alice_thread", "open"),
    ("bob", "alice_thread", 4404),
    ("bob", "missing", 4404),
    ("visitor", "visitor_thread", "open"),
    ("other visitor", "visitor_thread", 4404),
    ("other visitor", "missing", 4404),
    (None, "alice_thread", 4404),  # no cookie at all
    ("staff", "alice_thread", 4404),  # staff without view_thread
    ("staff", "missing", 4404),
    ("reviewer", "alice_thread", "open"),
    ("reviewer", "visitor_thread", "open"),
    ("reviewer", "missing", 4404),
]


@pytest.mark.parametrize(("who", "thread", "expected"), MATRIX)
async def test_who_may_watch_a_thread(layer, anonymous_allowed, world, who, thread, expected):
    thread_id = world.get(thread, f"thr_{uuid.uuid4().hex[:26]}")
    communicator = socket(thread_id, world[who] if who else None)
    assert await outcome(communicator) == expected
    await communicator.disconnect()


async def test_a_bad_origin_is_refused_at_the_handshake(layer, world):
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        evil = socket(world["alice_thread"], world["alice"], origin="https://evil.example")
        assert await outcome(evil) == "refused"
        good = socket(world["alice_thread"], world["alice"])
        assert await outcome(good) == "open"
        await good.disconnect()


async def test_anonymous_owners_need_anonymous_chat_enabled(layer, world):
    communicator = socket(world["visitor_thread"], world["visitor"])
    assert await outcome(communicator) == 4404
    await communicator.disconnect()


async def test_an_open_socket_forwards_the_threads_notices(layer, alice, world):
    communicator = socket(world["alice_thread"], world["alice"])
    assert await outcome(communicator) == "open"
    thread_id = world["alice_thread"]
    item = assistant_item(thread_id, text="secret words")
    await DjangoStore().add_thread_item(thread_id, item, ChatKitContext.for_user(alice))
    await notices.drain()
    assert await communicator.receive_json_from() == {
        "event": "item.added",
        "thread_id": thread_id,
        "item_id": item.id,
    }
    # What the browser sends is ignored, JSON or not: the socket stays open.
    await communicator.send_to(text_data="not json")
    await communicator.send_to(text_data='{"event": "item.added"}')
    await communicator.send_to(bytes_data=b"\x00")
    # Another thread's notices do not reach it: the next one it forwards is its own thread's
    # (and it still forwards after what the browser sent).
    other = await sync_to_async(new_thread)(alice)
    await DjangoStore().add_thread_item(
        other, assistant_item(other), ChatKitContext.for_user(alice)
    )
    await DjangoStore().save_item(thread_id, item, ChatKitContext.for_user(alice))
    await notices.drain()
    assert await communicator.receive_json_from() == {
        "event": "item.updated",
        "thread_id": thread_id,
        "item_id": item.id,
    }
    await communicator.disconnect()


async def test_connections_per_user_are_bounded(layer, connection_cache, world):
    limited = {**settings.CHATKIT, "LIVE_MAX_CONNECTIONS_PER_USER": 2}
    with override_settings(CHATKIT=limited):
        sockets = [socket(world["alice_thread"], world["alice"]) for _ in range(3)]
        assert [await outcome(each) for each in sockets] == ["open", "open", 4429]
        # Another user is counted apart.
        reviewer = socket(world["alice_thread"], world["reviewer"])
        assert await outcome(reviewer) == "open"
        # A closed socket frees its place.
        await sockets[0].disconnect()
        again = socket(world["alice_thread"], world["alice"])
        assert await outcome(again) == "open"
        for each in (*sockets[1:], reviewer, again):
            await each.disconnect()


async def test_without_a_channel_layer_the_socket_says_unavailable(world):
    communicator = socket(world["alice_thread"], world["alice"])
    assert await outcome(communicator) == 4503
    await communicator.disconnect()


# -- the widget tag and the checks ----------------------------------------------------------------


def rendered(alice: Any) -> str:
    request = RequestFactory().get("/")
    request.user = alice
    request.session = SessionStore()
    return Template("{% load chatkit %}{% chatkit %}").render(Context({"request": request}))


def test_the_tag_renders_the_socket_path_only_where_it_is_served(layer, alice, monkeypatch):
    assert 'data-chatkit-live="/ws/chatkit/threads/"' in rendered(alice)  # routing imported
    monkeypatch.setattr(routes, "_served", False)
    assert "data-chatkit-live" not in rendered(alice)


def test_the_tag_renders_no_socket_path_without_a_channel_layer(alice):
    assert "data-chatkit-live" not in rendered(alice)


LIVE_CHECKS = {"chatkit.W006", "chatkit.W007", "chatkit.W008", "chatkit.E006"}


def live_checks() -> list[str]:
    return [m.id for m in run_checks() if m.id in LIVE_CHECKS]


def test_the_in_memory_layer_warns_in_production_only(db):
    assert live_checks() == []  # no CHANNEL_LAYERS: the site may not want live updates
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, DEBUG=False):
        assert live_checks() == ["chatkit.W007"]
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, DEBUG=True):
        assert live_checks() == []
    redis = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": REDIS_OK}}
    with override_settings(CHANNEL_LAYERS=redis, DEBUG=False):
        assert live_checks() == []


REDIS_OK = {"hosts": [{"address": "redis://127.0.0.1:6379/1", "socket_timeout": 15}]}


@pytest.mark.parametrize(
    ("config", "warned"),
    [
        (REDIS_OK, False),
        ({"hosts": [{"address": "redis://127.0.0.1:6379/1", "socket_timeout": None}]}, False),
        ({"hosts": ["redis://127.0.0.1:6379/1"]}, True),  # redis-py 8's 5 s default
        ({"hosts": [{"address": "redis://127.0.0.1:6379/1"}]}, True),
        ({"hosts": [{"address": "redis://127.0.0.1:6379/1", "socket_timeout": 5}]}, True),
        ({}, True),  # channels_redis's default host, with redis-py's default timeout
    ],
)
def test_a_redis_layer_needs_a_read_timeout_above_its_blocking_reads(db, config, warned):
    import importlib.metadata

    redis_major = int(importlib.metadata.version("redis").split(".")[0])
    layer = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    with override_settings(CHANNEL_LAYERS=layer):
        assert live_checks() == (["chatkit.W008"] if warned and redis_major >= 8 else [])


@pytest.mark.parametrize("value", [0, -1, "3", 2.5])
def test_a_bad_connection_bound_is_an_error(db, value):
    with override_settings(CHATKIT={**settings.CHATKIT, "LIVE_MAX_CONNECTIONS_PER_USER": value}):
        assert live_checks() == ["chatkit.E006"]


def test_a_layer_without_channels_installed_warns(db, monkeypatch):
    from django_chatkit.live import layer as live_layer

    monkeypatch.setattr(live_layer, "channels_installed", lambda: False)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, DEBUG=True):
        assert live_checks() == ["chatkit.W006"]
        assert not live_enabled()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def counted(subject: str, period: int) -> int:
    from django.core.cache import caches

    from django_chatkit.live.connections import _key

    value = await caches["live"].aget(_key(subject, period))
    return int(value or 0)


async def test_sockets_count_themselves_period_after_period(connection_cache):
    from django_chatkit.live.connections import (
        PERIOD_SECONDS,
        RENEW_AHEAD_SECONDS,
        ConnectionSlot,
    )

    limited = {**settings.CHATKIT, "QUOTA_CACHE": "live", "LIVE_MAX_CONNECTIONS_PER_USER": 2}
    with override_settings(CHATKIT=limited):
        period = 1_000_000
        clock = Clock(period * PERIOD_SECONDS + 1.0)
        first, second = (
            ConnectionSlot("u1", clock, auto_renew=False),
            ConnectionSlot("u1", clock, auto_renew=False),
        )
        assert await first.acquire() and await second.acquire()
        assert not await ConnectionSlot(
            "u1", clock, auto_renew=False
        ).acquire()  # the third, same period
        assert await counted("u1", period) == 2

        # Shortly before the next period, each open socket counts itself in it too...
        clock.now = first.renewal_due()
        assert clock.now == (period + 1) * PERIOD_SECONDS - RENEW_AHEAD_SECONDS
        await first.renew()
        await second.renew()
        assert await counted("u1", period + 1) == 2
        # ...so that in the next period a third socket is still refused.
        clock.now = (period + 1) * PERIOD_SECONDS + 1.0
        assert not await ConnectionSlot("u1", clock, auto_renew=False).acquire()

        # Closing uncounts the current period (the past one no longer matters).
        await first.release()
        assert await counted("u1", period + 1) == 1
        assert await counted("u1", period) == 2

        # A socket whose worker died never renews nor releases: two periods on, it counts no
        # more, and two new sockets fit.
        clock.now = (period + 3) * PERIOD_SECONDS + 1.0
        assert await ConnectionSlot("u1", clock, auto_renew=False).acquire()
        assert await ConnectionSlot("u1", clock, auto_renew=False).acquire()
        assert not await ConnectionSlot("u1", clock, auto_renew=False).acquire()
