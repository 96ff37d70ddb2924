"""Moderation in the admin (issue #13, item 3): lock / close / reopen / legal hold with reasons on
a confirmation page, one history entry per thread, the moderate_thread permission, and what the
owner meets on the protocol endpoint (refusals, a held thread's delete that only hides it)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_chatkit import models
from django_chatkit.admin.moderation import ThreadModerationAdmin
from django_chatkit.testing import ChatKitTestClient, user_input

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_chatkit_thread_changelist"
ACTIONS = ("lock_threads", "close_threads", "reopen_threads", "hold_threads", "release_threads")
# What the confirmation form of each action is posted with.
FORM_DATA = {
    "lock_threads": {"moderation-status_reason": "Spam", "moderation-moderator_note": "n"},
    "close_threads": {"moderation-status_reason": "Done", "moderation-moderator_note": "n"},
    "reopen_threads": {"moderation-moderator_note": "n"},
    "hold_threads": {"moderation-reason": "Case 12"},
    "release_threads": {"moderation-reason": "Case closed"},
}
TEMPLATE = "admin/django_chatkit/thread/moderation_confirmation.html"


def staff(username: str, *codenames: str, superuser: bool = False) -> Client:
    model = get_user_model()
    if superuser:
        user = model.objects.create_superuser(username, f"{username}@example.com", "pw")
    else:
        user = model.objects.create_user(username, password="pw", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="django_chatkit", codename__in=codenames
            )
        )
    client = Client()
    client.force_login(user)
    return client


ROLES = {
    "superuser": lambda: staff("root", superuser=True),
    "viewer": lambda: staff("viewer", "view_thread"),
    "moderator": lambda: staff("moderator", "view_thread", "moderate_thread"),
    "exporter": lambda: staff("exporter", "export_thread"),
    # Change permission without moderate: edits the title, runs no moderation action.
    # (and delete, so that Django has an action to offer them: delete_selected).
    "editor": lambda: staff("editor", "view_thread", "change_thread", "delete_thread"),
}
MAY_MODERATE = {"superuser", "moderator"}


@pytest.fixture
def moderator() -> Client:
    return ROLES["moderator"]()


def new_thread(owner: Any, n: int = 0, **fields: Any) -> models.Thread:
    created = datetime(2025, 3, 4, 14, 30, tzinfo=UTC) + timedelta(minutes=n)
    return models.Thread.objects.create(
        user=owner, created_at=created, updated_at=created, title=f"t{n}", **fields
    )


def started_thread(chat: ChatKitTestClient, text: str = "hello") -> str:
    reply = async_to_sync(chat.create_thread)(text)
    assert reply.status_code == 200 and reply.thread_id, reply
    return reply.thread_id


def request(chat: ChatKitTestClient, op: str, **params: Any) -> Any:
    return async_to_sync(chat.request)(op, **params)


def snapshot(*ids: str) -> list[tuple[Any, ...]]:
    return list(
        models.Thread.objects.filter(id__in=ids)
        .order_by("id")
        .values_list(
            "id", "status", "status_reason", "moderator_note", "legal_hold", "deleted_by_owner_at"
        )
    )


def ask(client: Client, action: str, ids: list[str], **extra: Any) -> Any:
    """The changelist's action POST (the confirmation page when it is offered)."""
    data = {"action": action, "_selected_action": ids, "index": "0", **extra}
    return client.post(reverse(CHANGELIST), data)


def confirm(client: Client, action: str, ids: list[str], **fields: str) -> Any:
    """The confirmation page's POST."""
    data = {"action": action, "_selected_action": ids, "select_across": "0", "post": "yes"}
    return client.post(reverse(CHANGELIST), {**data, **fields})


def flashed(response: Any) -> list[str]:
    """The messages the request that made ``response`` added (not those it carried over)."""
    return [str(m) for m in response.wsgi_request._messages._queued_messages]


def history(thread_id: str) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=thread_id, action_flag=CHANGE)
        .order_by("action_time", "id")
        .values_list("change_message", flat=True)
    )


def offered_actions(client: Client) -> set[str]:
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    select = re.search(r'<select name="action".*?</select>', page.content.decode(), re.S)
    return set(re.findall(r'<option value="(\w+)"', select.group(0))) if select else set()


# -- the permission matrix -------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ROLES))
def test_actions_are_offered_only_to_moderators(role, alice):
    new_thread(alice)  # Django offers no actions on an empty list
    client = ROLES[role]()
    if role == "exporter":  # no view permission: no list to offer anything on
        assert client.get(reverse(CHANGELIST)).status_code == 403
        return
    offered = offered_actions(client)
    if role in MAY_MODERATE:
        assert set(ACTIONS) <= offered
    else:
        assert not set(ACTIONS) & offered


@pytest.mark.parametrize("role", ["viewer", "exporter", "editor"])
@pytest.mark.parametrize("action", ACTIONS)
def test_forged_posts_are_refused_and_change_nothing(role, action, alice):
    client = ROLES[role]()
    held = new_thread(alice, 1, status="locked", status_reason="r", legal_hold=True)
    plain = new_thread(alice, 2)
    ids = [held.id, plain.id]
    before = snapshot(*ids)
    for response in (
        ask(client, action, ids),  # the confirmation page
        confirm(client, action, ids, **FORM_DATA[action]),  # its form, posted directly
        confirm(client, action, ids, select_across="1", **FORM_DATA[action]),
    ):
        assert TEMPLATE not in [t.name for t in response.templates]
        if role == "exporter":
            assert response.status_code == 403
        elif role == "viewer":
            # No action at all is offered to them: the POST is just the list, shown again.
            assert response.status_code == 200 and flashed(response) == []
        else:  # Django's answer to an action it does not offer
            assert response.status_code == 302
            assert flashed(response) == ["No action selected."]
    assert snapshot(*ids) == before
    assert not LogEntry.objects.exists()


def test_the_action_itself_checks_the_permission(alice, rf):
    # Defence in depth: reached some other way than Django's changelist, it still refuses.
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied

    viewer = get_user_model().objects.create_user("v", is_staff=True)
    thread = new_thread(alice)
    request = rf.post("/", {"post": "yes", **FORM_DATA["lock_threads"]})
    request.user = viewer
    model_admin = admin.site.get_model_admin(models.Thread)
    assert isinstance(model_admin, ThreadModerationAdmin)
    with pytest.raises(PermissionDenied):
        model_admin.lock_threads(request, models.Thread.objects.filter(id=thread.id))
    assert snapshot(thread.id)[0][1] == "active"


@pytest.mark.parametrize("role", ["superuser", "moderator"])
@pytest.mark.parametrize("action", ACTIONS)
def test_moderators_get_the_confirmation_page_then_the_change(role, action, alice):
    client = ROLES[role]()
    thread = new_thread(alice, status="locked", legal_hold=action == "release_threads")
    if action in ("lock_threads", "hold_threads"):
        models.Thread.objects.filter(id=thread.id).update(status="closed")
    page = ask(client, action, [thread.id])
    assert page.status_code == 200 and TEMPLATE in [t.name for t in page.templates]
    assert snapshot(thread.id)[0][1:] == (
        ("closed" if action in ("lock_threads", "hold_threads") else "locked"),
        "",
        "",
        action == "release_threads",
        None,
    )
    done = confirm(client, action, [thread.id], **FORM_DATA[action])
    assert done.status_code == 302
    (entry,) = history(thread.id)
    assert LogEntry.objects.get(object_id=thread.id).user.username == (
        "root" if role == "superuser" else "moderator"
    )
    status, reason, note, hold, _ = snapshot(thread.id)[0][1:]
    match action:
        case "lock_threads":
            assert (status, reason, note) == ("locked", "Spam", "n")
            assert entry.startswith("Locked (was Closed).") and "“Spam”" in entry
        case "close_threads":
            assert (status, reason, note) == ("closed", "Done", "n")
            assert entry.startswith("Closed (was Locked).")
        case "reopen_threads":
            assert (status, reason, note) == ("active", "", "n")
            assert entry.startswith("Reopened (was Locked).")
        case "hold_threads":
            assert hold and entry == "Put on legal hold. Reason: “Case 12”."
        case "release_threads":
            assert not hold and entry == "Legal hold released. Reason: “Case closed”."


# -- the confirmation form -------------------------------------------------------------------


def test_the_lock_page_says_which_text_is_public_and_which_internal(moderator, alice):
    thread = new_thread(alice, status_reason="<b>old</b> message", moderator_note="old note")
    page = ask(moderator, "lock_threads", [thread.id])
    html = page.content.decode()
    reason_label = re.search(r'<label for="id_moderation-status_reason">(.*?)</label>', html)
    note_label = re.search(r'<label for="id_moderation-moderator_note">(.*?)</label>', html)
    assert reason_label and reason_label.group(1) == "Message to the user (public):"
    assert note_label and note_label.group(1) == "Internal note (staff only):"
    assert "Public: shown to each thread&#x27;s owner" in html
    assert "Staff only: never shown to the owner." in html
    # Empty by default: an empty field keeps each thread's own text.
    assert re.search(r'<textarea name="moderation-status_reason"[^>]*>\s*</textarea>', html)
    assert "Leave empty to keep each thread&#x27;s current message" in html
    # The threads are listed with what they have now, escaped.
    assert "&lt;b&gt;old&lt;/b&gt; message" in html and "<b>old</b>" not in html
    assert f'name="_selected_action" value="{thread.id}"' in html
    assert 'name="action" value="lock_threads"' in html and 'name="post" value="yes"' in html


def test_an_invalid_form_shows_the_page_again_and_changes_nothing(moderator, alice):
    thread = new_thread(alice, legal_hold=False)
    page = confirm(moderator, "hold_threads", [thread.id], **{"moderation-reason": ""})
    assert page.status_code == 200 and TEMPLATE in [t.name for t in page.templates]
    assert "This field is required." in page.content.decode()
    assert snapshot(thread.id)[0][4] is False and not LogEntry.objects.exists()


def test_the_owner_sees_the_message_never_the_internal_note(moderator, http_alice):
    thread_id = started_thread(http_alice)
    confirm(
        moderator,
        "lock_threads",
        [thread_id],
        **{
            "moderation-status_reason": "Off-topic, see the rules.",
            "moderation-moderator_note": "SECRET-NOTE reported twice",
        },
    )
    reply = async_to_sync(http_alice.send)(thread_id, "still there?")
    (event,) = reply.json_events
    assert event["type"] == "error" and "Off-topic, see the rules." in event["message"]
    everything = [
        reply.content,
        request(http_alice, "threads.get_by_id", thread_id=thread_id).content,
        request(http_alice, "threads.list").content,
        request(http_alice, "threads.update", thread_id=thread_id, title="x").content,
    ]
    assert not any(b"SECRET-NOTE" in body for body in everything)
    assert "SECRET-NOTE reported twice" in history(thread_id)[0]


# -- bulk actions keep per-thread texts, the history keeps every version ----------------------


def test_bulk_lock_keeps_each_threads_texts_unless_new_ones_are_entered(moderator, alice):
    first = new_thread(alice, 1, status_reason="Reason A", moderator_note="Note A")
    second = new_thread(alice, 2)
    ids = [first.id, second.id]
    confirm(moderator, "lock_threads", ids, **{"moderation-status_reason": ""})
    assert snapshot(*ids) == sorted(
        [
            (first.id, "locked", "Reason A", "Note A", False, None),
            (second.id, "locked", "", "", False, None),
        ]
    )
    assert history(first.id) == [
        "Locked (was Active). Message to the user kept: “Reason A”. Internal note kept: “Note A”."
    ]
    assert history(second.id) == ["Locked (was Active). No message to the user. No internal note."]
    # Locking again with nothing new changes nothing and records nothing.
    response = confirm(moderator, "lock_threads", ids)
    assert flashed(response) == ["2 threads were already locked, with these texts: unchanged."]
    # A new message replaces both; the history names what it replaced.
    confirm(moderator, "lock_threads", ids, **{"moderation-status_reason": "Reason B"})
    texts = {row[0]: row[2:4] for row in snapshot(*ids)}
    assert texts == {first.id: ("Reason B", "Note A"), second.id: ("Reason B", "")}
    assert history(first.id)[-1] == (
        "Lock updated. Message to the user: “Reason B”. It replaces “Reason A”. "
        "Internal note kept: “Note A”."
    )
    assert len(history(second.id)) == 2


def test_reopen_removes_the_message_keeps_the_note_and_the_history(moderator, http_alice):
    thread_id = started_thread(http_alice)
    confirm(
        moderator,
        "close_threads",
        [thread_id],
        **{"moderation-status_reason": "Closed: duplicate", "moderation-moderator_note": "dup"},
    )
    confirm(moderator, "reopen_threads", [thread_id])
    assert snapshot(thread_id)[0][1:4] == ("active", "", "dup")
    assert history(thread_id)[-1] == (
        "Reopened (was Closed). Message to the user removed: “Closed: duplicate”. "
        "Internal note kept: “dup”."
    )
    # A later lock with an empty message does not bring the old one back.
    confirm(moderator, "lock_threads", [thread_id])
    assert snapshot(thread_id)[0][2] == ""
    assert async_to_sync(http_alice.send)(thread_id, "hi").json_events[0]["message"] == (
        "This conversation is locked and cannot take new messages."
    )
    assert len(history(thread_id)) == 3


def test_actions_take_constant_queries_and_write_one_entry_per_thread(moderator, alice):
    def run(count: int, offset: int) -> tuple[int, int, int]:
        ids = [new_thread(alice, offset + n, status_reason=f"r{n}").id for n in range(count)]
        with CaptureQueriesContext(connection) as page:
            assert ask(moderator, "lock_threads", ids).status_code == 200
        with CaptureQueriesContext(connection) as done:
            assert confirm(moderator, "lock_threads", ids).status_code == 302
        assert LogEntry.objects.filter(object_id__in=ids).count() == count
        assert set(models.Thread.objects.filter(id__in=ids).values_list("status", flat=True)) == {
            "locked"
        }
        # Each entry names its own thread's kept message.
        entries = dict(
            LogEntry.objects.filter(object_id__in=ids).values_list("object_id", "change_message")
        )
        assert all(f"“r{n}”" in entries[ids[n]] for n in range(count))
        return len(page), len(done), count

    few = run(10, 0)
    many = run(200, 1000)
    # The history is one INSERT, cut only where the database caps a statement's parameters
    # (SQLite: 999, i.e. 142 entries of 7 columns; PostgreSQL: none below the action's batch).
    extra_inserts = inserts_for(200) - inserts_for(10)
    assert few[0] == many[0] and few[1] + extra_inserts == many[1], (few, many)


def inserts_for(count: int) -> int:
    fields = [f for f in LogEntry._meta.concrete_fields if not f.primary_key]
    size = min(connection.ops.bulk_batch_size(fields, [None] * count) or count, 500)
    return math.ceil(count / size)


def test_select_all_applies_to_every_thread_of_the_filtered_list(moderator, alice):
    ids = [new_thread(alice, n).id for n in range(3)]
    other = new_thread(alice, 9, status="closed")
    url = reverse(CHANGELIST) + "?status__exact=active"
    page = moderator.post(
        url,
        {"action": "hold_threads", "_selected_action": ids[:1], "select_across": "1", "index": "0"},
    )
    assert "3 selected threads" in page.content.decode()
    moderator.post(
        url,
        {
            "action": "hold_threads",
            "_selected_action": ids[:1],
            "select_across": "1",
            "post": "yes",
            "moderation-reason": "all",
        },
    )
    assert all(row[4] for row in snapshot(*ids)) and not snapshot(other.id)[0][4]
    assert LogEntry.objects.count() == 3


# -- the change page -------------------------------------------------------------------------


def test_view_permission_shows_everything_and_changes_nothing(alice):
    thread = new_thread(
        alice,
        status="locked",
        status_reason="public words",
        moderator_note="staff words",
        legal_hold=True,
    )
    client = ROLES["viewer"]()
    url = reverse("admin:django_chatkit_thread_change", args=[thread.id])
    html = client.get(url).content.decode()
    for text in (
        "public words",
        "staff words",
        "Message to the user",
        "Internal note",
        "Legal hold",
        "Deleted by owner",
    ):
        assert text.lower() in html.lower(), text
    assert 'name="title"' not in html
    response = client.post(url, {"title": "renamed", "status": "active"})
    assert response.status_code == 403
    assert models.Thread.objects.get(id=thread.id).title == "t0"


def test_change_permission_edits_the_title_only_and_not_under_hold(alice):
    thread = new_thread(alice, status="locked", status_reason="r", moderator_note="n")
    client = ROLES["editor"]()
    url = reverse("admin:django_chatkit_thread_change", args=[thread.id])
    html = client.get(url).content.decode()
    assert 'name="title"' in html
    for field in ("status", "status_reason", "moderator_note", "legal_hold"):
        assert f'name="{field}"' not in html, field
    forged = {
        "title": "renamed",
        "status": "active",
        "status_reason": "",
        "moderator_note": "",
        "legal_hold": "on",
    }
    assert client.post(url, forged).status_code == 302
    assert snapshot(thread.id)[0][1:5] == ("locked", "r", "n", False)
    assert models.Thread.objects.get(id=thread.id).title == "renamed"
    models.Thread.objects.filter(id=thread.id).update(legal_hold=True)
    assert 'name="title"' not in client.get(url).content.decode()
    client.post(url, {"title": "again"})
    assert models.Thread.objects.get(id=thread.id).title == "renamed"


def test_a_held_thread_cannot_be_deleted_in_the_admin(alice):
    thread = new_thread(alice, legal_hold=True)
    client = ROLES["superuser"]()
    delete_url = reverse("admin:django_chatkit_thread_delete", args=[thread.id])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [thread.id], "post": "yes"},
    )
    assert bulk.status_code == 403
    assert models.Thread.objects.filter(id=thread.id).exists()


# -- the owner on the protocol endpoint -------------------------------------------------------


def test_legal_hold_turns_the_owners_delete_into_hiding(moderator, http_alice, http_bob):
    thread_id = started_thread(http_alice)
    kept = started_thread(http_alice, "another")
    confirm(moderator, "hold_threads", [thread_id], **{"moderation-reason": "Case 12"})

    renamed = request(http_alice, "threads.update", thread_id=thread_id, title="gone")
    assert renamed.status_code == 409 and renamed.data["error"]["code"] == "thread_on_legal_hold"
    assert models.Thread.objects.get(id=thread_id).title == ""
    retried_item = async_to_sync(http_alice.items)(thread_id)[0]["id"]
    retry = request(
        http_alice, "threads.retry_after_item", thread_id=thread_id, item_id=retried_item
    )
    assert retry.status_code == 409 and retry.data["error"]["code"] == "thread_on_legal_hold"
    items_before = models.ThreadItem.objects.filter(thread_id=thread_id).count()

    assert request(http_alice, "threads.delete", thread_id=thread_id).status_code == 200
    # Gone for the owner...
    listed = [t["id"] for t in request(http_alice, "threads.list", limit=50).data["data"]]
    assert listed == [kept]
    for op, params in (
        ("threads.get_by_id", {}),
        ("items.list", {}),
        ("threads.update", {"title": "x"}),
        ("threads.delete", {}),
        ("threads.add_user_message", {"input": user_input("hi")}),
        ("items.feedback", {"item_ids": [retried_item], "kind": "positive"}),
    ):
        reply = request(http_alice, op, thread_id=thread_id, **params)
        assert reply.status_code == 404 and reply.data["error"]["code"] == "not_found", op
    assert request(http_alice, "threads.list", after=thread_id).status_code == 404
    # ...as for anyone else, and kept whole for staff.
    assert request(http_bob, "threads.get_by_id", thread_id=thread_id).status_code == 404
    row = models.Thread.objects.get(id=thread_id)
    assert row.deleted_by_owner_at is not None and row.legal_hold
    assert models.ThreadItem.objects.filter(thread_id=thread_id).count() == items_before
    page = moderator.get(reverse("admin:django_chatkit_thread_change", args=[thread_id]))
    assert "Deleted by owner on" in page.content.decode()
    listed_page = ask(moderator, "release_threads", [thread_id]).content.decode()
    assert "deleted by owner" in listed_page

    # Released, it stays hidden from the owner (they deleted it); the history says so.
    confirm(moderator, "release_threads", [thread_id], **{"moderation-reason": "Case closed"})
    assert request(http_alice, "threads.get_by_id", thread_id=thread_id).status_code == 404
    assert history(thread_id)[-1].endswith("Its owner had deleted it; it stays hidden from them.")


def test_after_release_the_owners_delete_deletes(moderator, http_alice):
    thread_id = started_thread(http_alice)
    confirm(moderator, "hold_threads", [thread_id], **{"moderation-reason": "Case 12"})
    confirm(moderator, "release_threads", [thread_id], **{"moderation-reason": "Done"})
    renamed = request(http_alice, "threads.update", thread_id=thread_id, title="mine")
    assert renamed.status_code == 200
    assert request(http_alice, "threads.delete", thread_id=thread_id).status_code == 200
    assert not models.Thread.objects.filter(id=thread_id).exists()
    assert not models.ThreadItem.objects.filter(thread_id=thread_id).exists()


def test_a_locked_thread_refuses_rename_and_feedback(moderator, http_alice):
    thread_id = started_thread(http_alice)
    answer = [
        i["id"]
        for i in async_to_sync(http_alice.items)(thread_id)
        if i["type"] == "assistant_message"
    ]
    assert (
        request(
            http_alice, "items.feedback", thread_id=thread_id, item_ids=answer, kind="positive"
        ).status_code
        == 200
    )
    confirm(moderator, "lock_threads", [thread_id], **{"moderation-status_reason": "Review"})
    renamed = request(http_alice, "threads.update", thread_id=thread_id, title="x")
    assert renamed.status_code == 409
    assert renamed.data["error"] == {
        "code": "thread_locked",
        "message": "This conversation is locked: it cannot be renamed. Reason: Review",
    }
    rated = request(
        http_alice, "items.feedback", thread_id=thread_id, item_ids=answer, kind="negative"
    )
    assert rated.status_code == 409
    assert rated.data["error"] == {
        "code": "thread_locked",
        "message": "This conversation is locked: its feedback cannot change. Reason: Review",
    }
    thread = models.Thread.objects.get(id=thread_id)
    assert thread.title == ""
    assert list(
        models.Feedback.objects.filter(thread_id=thread_id).values_list("kind", flat=True)
    ) == ["positive"]
    # Closed is not locked: the conversation is over, but its owner may still name and rate it.
    confirm(moderator, "close_threads", [thread_id])
    assert request(http_alice, "threads.update", thread_id=thread_id, title="x").status_code == 200
    assert (
        request(
            http_alice, "items.feedback", thread_id=thread_id, item_ids=answer, kind="negative"
        ).status_code
        == 200
    )


def test_a_hidden_threads_files_are_missing_to_the_owner_not_to_reviewers(alice):
    from django_chatkit.attachments.downloads import find_downloadable
    from django_chatkit.context import ChatKitContext

    thread = new_thread(alice, legal_hold=True)
    models.Attachment.objects.create(
        id="atc_1",
        user=alice,
        thread=thread,
        type="file",
        name="a.pdf",
        mime_type="application/pdf",
        payload={},
        storage_alias="default",
        storage_name="chatkit/a.pdf",
    )
    reviewer = get_user_model().objects.create_user("reviewer", is_staff=True)
    reviewer.user_permissions.add(
        Permission.objects.get(codename="view_attachment", content_type__app_label="django_chatkit")
    )
    owner = ChatKitContext.for_user(alice)
    assert find_downloadable("atc_1", owner) is not None
    models.Thread.objects.filter(id=thread.id).update(deleted_by_owner_at=datetime.now(UTC))
    assert find_downloadable("atc_1", owner) is None
    reviewer = get_user_model().objects.get(id=reviewer.id)  # permissions cache, fresh
    assert find_downloadable("atc_1", ChatKitContext.for_user(reviewer)) is not None
