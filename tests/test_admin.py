"""The admin screens: staff read transcripts and lock threads; the lock holds on the endpoint."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

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
    response = staff_client.post(
        reverse("admin:django_chatkit_thread_changelist"),
        {"action": "lock_threads", "_selected_action": [thread_id]},
    )
    assert response.status_code == 302
    assert models.Thread.objects.get(id=thread_id).status == "locked"
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
