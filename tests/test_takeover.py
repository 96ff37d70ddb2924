"""Takeover (issue #15, deliverable 5): staff with moderate_thread take a thread over from the
agent on its transcript page, reply as a person, and hand it back; the user's messages meanwhile
get no model call, and the agent's next answer reads the staff replies in its history."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from chatkit.types import NoticeEvent
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.test import Client, override_settings
from django.urls import reverse

from django_chatkit import models
from django_chatkit.live.groups import STAFF_GROUP, thread_group
from django_chatkit.testing import ChatKitTestClient, RecordedRequest, Reply
from tests import test_live
from tests.test_admin_moderation import ROLES, new_thread
from tests.test_live import events, heard, listen

layer = test_live.layer  # the fixture: an in-memory channel layer

pytestmark = pytest.mark.django_db(transaction=True)

MAY_TAKE_OVER = {"superuser", "moderator"}
AGENT_SETTINGS = {
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    "AGENT": {"model": "answer-model", "instructions": "Be brief."},
    "GENERATE_TITLES": False,
    "OPENAI_MAX_RETRIES": 0,
}


def url(name: str, thread_id: str) -> str:
    return reverse(f"admin:django_chatkit_thread_{name}", args=[quote(thread_id)])


def take_over(client: Client, thread_id: str) -> Any:
    return client.post(url("takeover", thread_id), {"action": "take"})


def hand_back(client: Client, thread_id: str) -> Any:
    return client.post(url("takeover", thread_id), {"action": "hand_back"})


def reply(client: Client, thread_id: str, text: str) -> Any:
    return client.post(url("reply", thread_id), {"text": text})


def is_answer(request: RecordedRequest) -> bool:
    return request.model == "answer-model"


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


@pytest.fixture
def fake(fake_openai):
    with override_settings(CHATKIT=AGENT_SETTINGS):
        yield fake_openai


# -- permissions ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_panel_is_offered_only_to_moderators(role, alice):
    client = ROLES[role]()
    thread = new_thread(alice)
    page = client.get(url("transcript", thread.id))
    if role == "exporter":  # no view permission: no page at all
        assert page.status_code == 403
        return
    assert page.status_code == 200
    html = page.content.decode()
    offered = url("takeover", thread.id) in html and url("reply", thread.id) in html
    assert offered is (role in MAY_TAKE_OVER)
    assert "The assistant answers this conversation." in html


@pytest.mark.parametrize("role", sorted(set(ROLES) - MAY_TAKE_OVER))
def test_forged_posts_are_refused_and_change_nothing(role, alice):
    client = ROLES[role]()
    thread = new_thread(alice)
    assert take_over(client, thread.id).status_code == 403
    models.Thread.objects.filter(pk=thread.pk).update(taken_over_at="2025-03-04T15:00:00Z")
    assert reply(client, thread.id, "forged").status_code == 403
    assert hand_back(client, thread.id).status_code == 403
    thread.refresh_from_db()
    assert thread.taken_over_at is not None and thread.taken_over_by is None
    assert not models.ThreadItem.objects.filter(thread=thread).exists()
    assert not LogEntry.objects.exists()


def test_get_is_not_allowed_and_unknown_actions_are_bad_requests(alice):
    client = ROLES["moderator"]()
    thread = new_thread(alice)
    assert client.get(url("takeover", thread.id)).status_code == 405
    assert client.post(url("takeover", thread.id), {"action": "x"}).status_code == 400
    assert reply(client, thread.id, "   ").status_code == 400
    assert client.post(url("takeover", "thr_missing"), {"action": "take"}).status_code in (
        302,  # the admin's own redirect for a missing object...
        404,
    )


def test_posts_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_superuser("root2", "r@example.com", "pw"))
    thread = new_thread(alice)
    assert take_over(client, thread.id).status_code == 403
    thread.refresh_from_db()
    assert thread.taken_over_at is None


# -- take over, reply, hand back ---------------------------------------------------------------


def test_take_over_reply_and_hand_back_are_logged(alice):
    client = ROLES["moderator"]()
    thread = new_thread(alice)
    assert take_over(client, thread.id).status_code == 302
    thread.refresh_from_db()
    assert thread.taken_over_at is not None and thread.taken_over_by is not None
    assert thread.taken_over_by.username == "moderator"
    # A second take-over changes nothing and says so.
    again = take_over(client, thread.id)
    assert again.status_code == 302
    assert reply(client, thread.id, "Hello, I am here to help.").status_code == 302
    assert hand_back(client, thread.id).status_code == 302
    thread.refresh_from_db()
    assert thread.taken_over_at is None and thread.taken_over_by is None
    # Replying once handed back stores nothing.
    assert reply(client, thread.id, "too late").status_code == 302
    entries = list(
        LogEntry.objects.filter(object_id=thread.id)
        .order_by("pk")
        .values_list("action_flag", "change_message", "user__username")
    )
    assert entries == [
        (CHANGE, "Took the conversation over from the assistant.", "moderator"),
        (CHANGE, "Handed the conversation back to the assistant.", "moderator"),
    ]
    [item] = models.ThreadItem.objects.filter(thread=thread)
    assert item.type == "assistant_message" and item.staff_author.username == "moderator"
    assert item.text == "**Support team**\n\nHello, I am here to help."


def test_the_admin_shows_the_staff_author_and_the_state(alice):
    client = ROLES["moderator"]()
    thread = new_thread(alice)
    take_over(client, thread.id)
    reply(client, thread.id, "A person answers.")
    html = client.get(url("transcript", thread.id)).content.decode()
    assert "Staff reply by moderator" in html
    assert "Taken over by moderator" in html
    assert "A person answers." in html
    # And the thread's change page (the transcript field) too.
    change = client.get(url("change", thread.id)).content.decode()
    assert "Staff reply by moderator" in change


def test_the_user_sees_replies_under_the_display_name_never_the_username(alice, http_alice):
    client = ROLES["moderator"]()
    thread = new_thread(alice)
    take_over(client, thread.id)
    reply(client, thread.id, "We are looking into it.")
    with override_settings(CHATKIT={"STAFF_DISPLAY_NAME": "Acme help desk"}):
        reply(client, thread.id, "Fixed.")
    page = async_to_sync(http_alice.request)("items.list", thread_id=thread.id, order="asc")
    assert page.status_code == 200
    texts = ["".join(p["text"] for p in item["content"]) for item in page.data["data"]]
    assert texts == ["**Support team**\n\nWe are looking into it.", "**Acme help desk**\n\nFixed."]
    assert b"moderator" not in page.content
    assert all(item["type"] == "assistant_message" for item in page.data["data"])


@override_settings(CHATKIT={"STAFF_DISPLAY_NAME": "{first_name} from Acme"})
def test_the_display_name_may_name_the_staff_member_when_configured(alice):
    client = ROLES["moderator"]()
    get_user_model().objects.filter(username="moderator").update(first_name="Mia")
    thread = new_thread(alice)
    take_over(client, thread.id)
    reply(client, thread.id, "Hi.")
    assert models.ThreadItem.objects.get(thread=thread).text == "**Mia from Acme**\n\nHi."


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, True),
        ("Team", True),
        ("{username}", True),
        ("", False),
        (3, False),
        ("{email}", False),
    ],
)
def test_a_bad_display_name_is_a_check_error(value, ok):
    with override_settings(CHATKIT={"STAFF_DISPLAY_NAME": value}):
        ids = [message.id for message in run_checks()]
    assert ("chatkit.E014" not in ids) is ok


# -- the agent ----------------------------------------------------------------------------------


def test_no_model_call_while_taken_over_and_the_next_answer_reads_the_staff_reply(fake, alice):
    chat = ChatKitTestClient(user=alice)
    staff = ROLES["moderator"]()
    fake.queue(Reply(text="Agent answer one.", when=is_answer))
    first = async_to_sync(chat.create_thread)("My order is late.")
    thread_id = first.thread_id
    assert thread_id is not None and first.answer == "Agent answer one."
    assert len([r for r in fake.requests if is_answer(r)]) == 1

    take_over(staff, thread_id)
    during = async_to_sync(chat.send)(thread_id, "Can a human help?")
    assert during.status_code == 200 and during.error is None
    notices = [e for e in during.events if isinstance(e, NoticeEvent)]
    assert [n.message for n in notices] == [
        "A member of our team has taken over this conversation and will reply here."
    ]
    assert during.answer == ""
    assert len([r for r in fake.requests if is_answer(r)]) == 1  # no model call
    assert models.ThreadItem.objects.filter(thread_id=thread_id, text="Can a human help?").exists()
    assert models.Run.objects.filter(thread_id=thread_id).count() == 1

    reply(staff, thread_id, "I have refunded your order.")
    hand_back(staff, thread_id)
    fake.queue(Reply(text="Glad it is sorted.", when=is_answer))
    after = async_to_sync(chat.send)(thread_id, "Thanks!")
    assert after.answer == "Glad it is sorted."
    second = [r for r in fake.requests if is_answer(r)][1]
    conversation = [(m.get("role"), _text(m)) for m in second.input]
    assert conversation == [
        ("user", "My order is late."),
        ("assistant", "Agent answer one."),
        ("user", "Can a human help?"),
        ("assistant", "**Support team**\n\nI have refunded your order."),
        ("user", "Thanks!"),
    ]


def test_while_taken_over_a_retry_is_refused_and_keeps_the_staff_reply(fake, alice):
    chat = ChatKitTestClient(user=alice)
    staff = ROLES["moderator"]()
    fake.queue(Reply(text="First.", when=is_answer))
    first = async_to_sync(chat.create_thread)("Question")
    thread_id = first.thread_id
    assert thread_id is not None
    take_over(staff, thread_id)
    reply(staff, thread_id, "A person's answer.")
    [message] = [i for i in first.done_items if i.type == "user_message"]
    retry = async_to_sync(chat.request)(
        "threads.retry_after_item", thread_id=thread_id, item_id=message.id
    )
    assert retry.status_code == 409, retry.data
    assert retry.data["error"]["code"] == "thread_taken_over"
    texts = list(
        models.ThreadItem.objects.filter(thread_id=thread_id)
        .order_by("created_at", "id")
        .values_list("text", flat=True)
    )
    assert texts == ["Question", "First.", "**Support team**\n\nA person's answer."]
    assert len([r for r in fake.requests if is_answer(r)]) == 1


# -- the live fragment --------------------------------------------------------------------------


def test_the_fragment_returns_items_after_the_cursor(alice):
    client = ROLES["viewer"]()
    moderator = ROLES["moderator"]()
    thread = new_thread(alice)
    take_over(moderator, thread.id)
    reply(moderator, thread.id, "first")
    full = client.get(url("transcript_new", thread.id))
    assert full.status_code == 200 and "first" in full.content.decode()
    cursor = full["X-Chatkit-Cursor"]
    assert cursor and full["X-Chatkit-Taken-Over"] == "1"
    reply(moderator, thread.id, "second")
    newer = client.get(url("transcript_new", thread.id), {"after": cursor})
    html = newer.content.decode()
    assert "second" in html and "first" not in html
    assert newer["X-Chatkit-Cursor"] != cursor
    assert client.get(url("transcript_new", thread.id), {"after": "junk"}).status_code == 400
    assert ROLES["exporter"]().get(url("transcript_new", thread.id)).status_code == 403


def test_without_a_channel_layer_the_page_has_no_live_script(alice):
    client = ROLES["viewer"]()
    thread = new_thread(alice)
    with override_settings(CHANNEL_LAYERS={}):
        html = client.get(url("transcript", thread.id)).content.decode()
    assert "transcript-live.js" not in html and "data-live-socket" not in html


# -- notices ------------------------------------------------------------------------------------


def test_take_over_reply_and_hand_back_are_published_to_the_thread_and_staff(layer, alice):
    client = ROLES["moderator"]()
    thread = new_thread(alice)
    owner_channel = async_to_sync(listen)(layer, thread_group(thread.id))
    staff_channel = async_to_sync(listen)(layer, STAFF_GROUP)
    take_over(client, thread.id)
    reply(client, thread.id, "Hello.")
    hand_back(client, thread.id)
    [item_id] = models.ThreadItem.objects.filter(thread=thread).values_list("item_id", flat=True)
    expected = [("thread.takeover", ""), ("item.added", item_id), ("thread.takeover", "")]
    assert events(async_to_sync(heard)(layer, owner_channel)) == expected
    assert events(async_to_sync(heard)(layer, staff_channel)) == expected
    # Refused or idle requests publish nothing.
    hand_back(client, thread.id)
    ROLES["viewer"]().post(url("takeover", thread.id), {"action": "take"})
    assert async_to_sync(heard)(layer, owner_channel) == []


def test_the_newest_page_opens_the_thread_socket_older_pages_do_not(layer, alice):
    client = ROLES["viewer"]()
    thread = new_thread(alice)
    html = client.get(url("transcript", thread.id)).content.decode()
    assert f'data-live-socket="/ws/chatkit/threads/{thread.id}/"' in html  # routing imported
    assert "django_chatkit/admin/transcript-live.js" in html
    assert "<script>" not in html.split("ck-takeover")[1]  # no inline script (CSP)
    older = client.get(url("transcript", thread.id), {"before": "0_1"}).content.decode()
    assert "data-live-socket" not in older
