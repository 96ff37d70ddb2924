"""The admin's "Live conversations" page (issue #15: "a staff-wide group for the admin's live
list"): who may open it, its rows and their fragment, its links, its query count, and the staff
websocket that tells it when to fetch its rows again (WebsocketCommunicator, in-memory layer)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from django_chatkit.live import notices, routes
from django_chatkit.live.consumers import CloseCode
from tests import test_live
from tests.test_admin_moderation import staff
from tests.test_live import application, session_cookie, user

pytestmark = pytest.mark.django_db(transaction=True)

layer = test_live.layer  # test_live's fixture: the in-memory channel layer

PAGE = "admin:django_chatkit_thread_live"
ROWS = "admin:django_chatkit_thread_live_rows"


def thread(owner: Any = None, *, minutes_ago: float = 1, title: str = "", **fields: Any) -> str:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    created = models.Thread.objects.create(
        id=f"thr_{uuid.uuid4().hex[:26]}",
        user=owner,
        anonymous_key="" if owner is not None else uuid.uuid4().hex,
        title=title,
        created_at=at,
        updated_at=at,
        **fields,
    )
    return str(created.pk)


def signed_in(username: str, *, is_staff: bool = False) -> Client:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=is_staff)
    client = Client()
    client.force_login(user)
    return client


# -- who may open it ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [PAGE, ROWS])
def test_staff_with_view_thread_may_open_it(name: str) -> None:
    for client in (staff("viewer", "view_thread"), staff("root", superuser=True)):
        response = client.get(reverse(name))
        assert response.status_code == 200, response


@pytest.mark.parametrize("name", [PAGE, ROWS])
def test_everyone_else_is_refused(name: str) -> None:
    url = reverse(name)
    # Staff without view_thread, even with other permissions of the app (change included).
    for client in (staff("clerk"), staff("editor", "change_thread", "view_run")):
        assert client.get(url).status_code == 403
    # Not staff, or nobody signed in: the admin's login page.
    for client in (signed_in("dana"), Client()):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("name", [PAGE, ROWS])
def test_a_period_not_offered_is_a_bad_request(name: str) -> None:
    client = staff("viewer", "view_thread")
    for minutes in ("7", "abc", "-60", "99999999999999999999"):
        assert client.get(reverse(name), {"minutes": minutes}).status_code == 400


# -- what it shows -----------------------------------------------------------------------------


def test_recent_threads_newest_first_with_owner_status_and_takeover() -> None:
    model = get_user_model()
    alice = model.objects.create_user("alice-l", password="pw")
    mod = model.objects.create_user("mod-l", password="pw", is_staff=True)
    older = thread(alice, minutes_ago=20, title="Older question")
    newer = thread(alice, minutes_ago=2, title="Newer question", status="locked")
    taken = thread(
        None, minutes_ago=5, title="Taken one", taken_over_at=timezone.now(), taken_over_by=mod
    )
    stale = thread(alice, minutes_ago=180, title="Stale question")
    models.Run.objects.create(
        thread_id=newer,
        user=alice,
        kind=models.RunKind.ANSWER,
        status=models.RunStatus.RUNNING,
        model="m",
        started_at=timezone.now(),
    )
    client = staff("viewer", "view_thread")
    html = client.get(reverse(PAGE)).content.decode()
    assert html.index("Newer question") < html.index("Taken one") < html.index("Older question")
    assert "Stale question" not in html  # outside the default hour
    assert "alice-l" in html and "anonymous " in html
    assert "by mod-l" in html and "answering" in html and "locked" in html.lower()
    transcript = reverse("admin:django_chatkit_thread_transcript", args=[quote(newer)])
    assert f'href="{transcript}"' in html
    assert "3 conversations active in this period." in html
    # A longer period shows it; the fragment has the same rows.
    rows = client.get(reverse(ROWS), {"minutes": "240"})
    assert "no-store" in rows["Cache-Control"]
    fragment = rows.content.decode()
    assert "Stale question" in fragment and "<html" not in fragment
    assert all(thread_id in fragment for thread_id in (older, newer, taken, stale))


def test_titles_and_owners_are_escaped() -> None:
    evil = get_user_model().objects.create_user("<b>owner</b>", password="pw")
    thread(evil, title="<script>alert(1)</script>")
    html = staff("viewer", "view_thread").get(reverse(ROWS)).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>owner</b>" not in html


def test_the_page_costs_the_same_queries_however_many_threads() -> None:
    client = staff("viewer", "view_thread")
    mod = get_user_model().objects.create_user("mod-q", password="pw", is_staff=True)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(PAGE)).status_code == 200
        return len(captured)

    def add(count: int) -> None:
        for n in range(count):
            owner = get_user_model().objects.create_user(f"u{uuid.uuid4().hex[:8]}")
            taken: dict[str, Any] = (
                {"taken_over_at": timezone.now(), "taken_over_by": mod} if n % 2 else {}
            )
            thread_id = thread(owner if n % 3 else None, title=f"t{n}", **taken)
            models.Run.objects.create(
                thread_id=thread_id,
                user=owner if n % 3 else None,
                anonymous_key=""
                if n % 3
                else models.Thread.objects.get(pk=thread_id).anonymous_key,
                kind=models.RunKind.ANSWER,
                status=models.RunStatus.RUNNING,
                model="m",
                started_at=timezone.now(),
            )

    add(2)
    few = queries()
    add(20)
    many = queries()
    assert few == many, (few, many)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse(ROWS))
    assert len(captured) <= few


def test_it_is_linked_for_those_who_may_open_it_only() -> None:
    url = reverse(PAGE)
    viewer = staff("viewer", "view_thread")
    assert f'href="{url}"' in viewer.get(reverse("admin:django_chatkit_thread_changelist")).text
    assert f'href="{url}"' in viewer.get(reverse("admin:index")).text
    assert (
        f'href="{url}"'
        in viewer.get(reverse("admin:app_list", kwargs={"app_label": "django_chatkit"})).text
    )
    # May see the threads list (change permission) and the runs, not this page: no link.
    editor = staff("editor", "change_thread", "view_run")
    assert editor.get(reverse("admin:django_chatkit_thread_changelist")).status_code == 200
    for page in ("admin:index", "admin:django_chatkit_thread_changelist"):
        assert f'href="{url}"' not in editor.get(reverse(page)).text


def test_without_a_channel_layer_it_is_a_static_list() -> None:
    thread(None, title="Quiet one")
    html = staff("viewer", "view_thread").get(reverse(PAGE)).content.decode()
    assert "Quiet one" in html
    assert "data-live-socket" not in html and "live-list.js" not in html
    assert "reload the page to see new activity" in html


def test_with_a_channel_layer_it_subscribes_to_the_staff_socket(layer: Any, monkeypatch) -> None:
    client = staff("viewer", "view_thread")
    html = client.get(reverse(PAGE)).content.decode()
    assert 'data-live-socket="/ws/chatkit/staff/"' in html and "live-list.js" in html
    assert f'data-live-rows="{reverse(ROWS)}?minutes=60"' in html
    monkeypatch.setattr(routes, "_served", False)  # a process that does not route websockets
    assert "data-live-socket" not in client.get(reverse(PAGE)).content.decode()


# -- the staff websocket -----------------------------------------------------------------------


def staff_socket(cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application(), routes.STAFF_PATH, headers=headers)


async def close_code(communicator: WebsocketCommunicator) -> int | str:
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_output(timeout=5)
    if message["type"] == "websocket.close":
        return int(message["code"])
    return "open"


def people() -> dict[str, str | None]:
    model = get_user_model()
    inactive = user("gone-s", "view_thread", staff=True)
    cookie_inactive = session_cookie(inactive)  # signed in while active
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    return {
        "viewer": session_cookie(user("viewer-s", "view_thread", staff=True)),
        "root": session_cookie(model.objects.create_superuser("root-s", "r@example.com", "pw")),
        # Staff with other permissions, view_thread not among them.
        "clerk": session_cookie(user("clerk-s", "change_thread", "view_run", staff=True)),
        # Not staff, though given the permission.
        "dana": session_cookie(user("dana-s", "view_thread")),
        "inactive": cookie_inactive,
        "nobody": None,
    }


async def test_the_staff_socket_admits_staff_with_view_thread_only(layer: Any) -> None:
    assert CloseCode.FORBIDDEN.value == 4403  # as documented
    cookies = await sync_to_async(people)()
    for who in ("viewer", "root"):
        communicator = staff_socket(cookies[who])
        assert await close_code(communicator) == "open", who
        await communicator.disconnect()
    for who in ("clerk", "dana", "inactive", "nobody"):
        communicator = staff_socket(cookies[who])
        assert await close_code(communicator) == CloseCode.FORBIDDEN, who
        await communicator.disconnect()


async def test_without_a_channel_layer_the_staff_socket_says_unavailable() -> None:
    cookies = await sync_to_async(people)()
    communicator = staff_socket(cookies["viewer"])
    assert await close_code(communicator) == CloseCode.UNAVAILABLE
    await communicator.disconnect()


async def test_the_staff_socket_forwards_every_threads_notices_ids_only(layer: Any) -> None:
    cookies = await sync_to_async(people)()
    communicator = staff_socket(cookies["viewer"])
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"event": "subscribed"}
    first = await sync_to_async(thread)(None)
    second = await sync_to_async(thread)(None)
    await notices._send(
        (
            notices.notice(notices.THREAD_TITLE, first),
            notices.notice(notices.ITEM_ADDED, second, "msg_1"),
            notices.notice(notices.THREAD_HOLD, second),  # staff only: here too
        )
    )
    received = [await communicator.receive_json_from() for _ in range(3)]
    assert received == [
        {"event": "thread.title", "thread_id": first},
        {"event": "item.added", "thread_id": second, "item_id": "msg_1"},
        {"event": "thread.hold", "thread_id": second},
    ]
    # What the browser sends is ignored.
    await communicator.send_to(text_data="hello")
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()
