"""The admin screens: staff read transcripts and lock threads; the lock holds on the endpoint."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from django_chatkit import models

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db) -> Client:
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def thread_id(http_alice) -> str:
    reply = async_to_sync(http_alice.create_thread)("<script>alert(1)</script> hello")
    thread: str | None = reply.thread_id
    assert reply.status_code == 200 and thread, reply
    return thread


def test_threads_list_and_transcript_escape_user_text(staff_client, thread_id):
    changelist = staff_client.get(reverse("admin:django_chatkit_thread_changelist"))
    assert changelist.status_code == 200 and thread_id.encode() in changelist.content
    page = staff_client.get(reverse("admin:django_chatkit_thread_change", args=[thread_id]))
    assert page.status_code == 200
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; hello" in page.content
    assert b"<script>alert(1)</script>" not in page.content
    assert b"echo: &lt;script&gt;" in page.content


def test_lock_action_refuses_the_owners_next_message(staff_client, thread_id, http_alice):
    # The action asks for its reasons first (tests/test_admin_moderation.py), then locks.
    response = staff_client.post(
        reverse("admin:django_chatkit_thread_changelist"),
        {"action": "lock_threads", "_selected_action": [thread_id], "post": "yes"},
    )
    assert response.status_code == 302
    assert models.Thread.objects.get(id=thread_id).status == "locked"
    assert "1 thread locked." in staff_client.get(response["Location"]).content.decode()
    reply = async_to_sync(http_alice.send)(thread_id, "still there?")
    events = reply.json_events
    assert events[0]["type"] == "error" and "locked" in events[0]["message"]


def test_runs_and_feedback_screens_load(staff_client):
    for name in ("run", "feedback"):
        response = staff_client.get(reverse(f"admin:django_chatkit_{name}_changelist"))
        assert response.status_code == 200, name


def test_non_staff_are_sent_to_the_login_page(alice, thread_id):
    client = Client()
    client.force_login(alice)
    response = client.get(reverse("admin:django_chatkit_thread_change", args=[thread_id]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def make_threads(owner, count: int, start: int = 0, title: str = "") -> list[models.Thread]:
    base = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)
    return [
        models.Thread.objects.create(
            user=owner,
            title=title,
            created_at=base + timedelta(days=start + n),
            updated_at=base + timedelta(days=start + n),
        )
        for n in range(count)
    ]


def test_untitled_threads_are_labelled_with_their_creation_date(alice):
    untitled = make_threads(alice, 1)[0]
    # Europe/Paris (tests/settings.py): 14:30 UTC is 15:30 there.
    assert str(untitled) == "Untitled conversation, 03/04/2025 3:30 p.m."
    assert untitled.id not in str(untitled)
    (titled,) = make_threads(alice, 1, title="Trip to Lisbon")
    assert str(titled) == "Trip to Lisbon"
    assert str(models.Thread(user=alice)) == "Untitled conversation"  # unsaved: no date yet
    with translation.override("fr"):
        # Translated as a whole (the date's format follows the language too), not pieced together.
        assert str(untitled).endswith("04/03/2025 15:30")


def test_changelist_labels_untitled_threads_in_constant_queries(staff_client, alice):
    url = reverse("admin:django_chatkit_thread_changelist")
    make_threads(alice, 2)
    make_threads(alice, 1, start=10, title="Trip to Lisbon")
    with CaptureQueriesContext(connection) as few:
        page = staff_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert ">Trip to Lisbon</a>" in html
    assert html.count(">Untitled conversation, 03/04/2025 3:30 p.m.</a>") == 1
    assert html.count(">Untitled conversation, 03/05/2025 3:30 p.m.</a>") == 1
    make_threads(alice, 10, start=20)
    with CaptureQueriesContext(connection) as many:
        assert staff_client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_change_form_edits_the_title_on_one_line(staff_client, alice):
    (thread,) = make_threads(alice, 1, title="Trip to Lisbon")
    url = reverse("admin:django_chatkit_thread_change", args=[thread.id])
    html = staff_client.get(url).content.decode()
    (title_input,) = re.findall(r"<input[^>]*name=\"title\"[^>]*>", html)
    assert 'type="text"' in title_input and 'value="Trip to Lisbon"' in title_input
    assert '<textarea name="title"' not in html
    data = {"title": "Lisbon, then Porto", "status": "active", "status_reason": ""}
    assert staff_client.post(url, data).status_code == 302
    thread.refresh_from_db()
    assert thread.title == "Lisbon, then Porto"
