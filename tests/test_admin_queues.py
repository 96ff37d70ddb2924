"""The review queues of the admin: feedback (with "mark reviewed"), runs and attachments."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.storage import storages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from django_chatkit import models
from django_chatkit.admin.attachments import AttachmentAdmin, safe_preview_url
from django_chatkit.admin.feedback import EXCERPT_CHARS, FeedbackAdmin
from django_chatkit.admin.runs import RunAdmin, runs_url
from django_chatkit.admin.transcript import transcript_url
from django_chatkit.attachments.previews import PLACEHOLDER_PREVIEW
from tests.attachment_flow import local_media
from tests.attachment_samples import stored_files
from tests.factories import read_body

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 6, 9, 0, tzinfo=UTC)
FEEDBACK_LIST = "admin:django_chatkit_feedback_changelist"
RUN_LIST = "admin:django_chatkit_run_changelist"
ATTACHMENT_LIST = "admin:django_chatkit_attachment_changelist"


# -- people -----------------------------------------------------------------------------------


def staff(username: str, *codenames: str) -> Client:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_chatkit", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root_client(db) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


# -- rows -------------------------------------------------------------------------------------


def thread(owner: Any, title: str = "", at: datetime = T0) -> models.Thread:
    return models.Thread.objects.create(user=owner, title=title, created_at=at, updated_at=at)


def item(
    owner_thread: models.Thread, item_id: str, kind: str, at: datetime, text: str
) -> models.ThreadItem:
    return models.ThreadItem.objects.create(
        thread=owner_thread, item_id=item_id, type=kind, created_at=at, text=text, payload={}
    )


def run(owner_thread: models.Thread, model: str, start: datetime, **fields: Any) -> models.Run:
    fields.setdefault("finished_at", start + timedelta(seconds=4))
    fields.setdefault("status", models.RunStatus.COMPLETED)
    return models.Run.objects.create(
        thread=owner_thread,
        user=owner_thread.user,
        anonymous_key=owner_thread.anonymous_key,
        kind=fields.pop("kind", models.RunKind.ANSWER),
        model=model,
        started_at=start,
        **fields,
    )


def vote(
    owner_thread: models.Thread, item_id: str, kind: str, at: datetime = T0, **fields: Any
) -> models.Feedback:
    feedback = models.Feedback.objects.create(thread=owner_thread, item_id=item_id, kind=kind)
    # updated_at is auto_now: set afterwards, so that the queue's order is known.
    models.Feedback.objects.filter(pk=feedback.pk).update(updated_at=at, **fields)
    feedback.refresh_from_db()
    return feedback


def results(response: Any) -> list[Any]:
    assert response.status_code == 200, response
    return list(response.context["cl"].result_list)


def row_html(html: str, marker: str) -> str:
    (row,) = [part for part in html.split("<tr")[1:] if marker in part]
    return row


# -- the feedback queue -----------------------------------------------------------------------


@pytest.fixture
def conversation(alice) -> dict[str, Any]:
    """A question, a long answer rated down, a second answer rated up; runs around them."""
    chat = thread(alice, title="Capitals <b>quiz</b>")
    item(chat, "msg_q1", "user_message", T0, "What is the capital of France?")
    long_answer = "Paris is the capital of France. " * 20
    item(chat, "msg_a1", "assistant_message", T0 + timedelta(seconds=3), long_answer)
    item(chat, "msg_q2", "user_message", T0 + timedelta(minutes=5), "And of <i>Spain</i>?")
    # Saved after its run was recorded as finished: no run covers it.
    item(chat, "msg_a2", "assistant_message", T0 + timedelta(minutes=6), "Madrid.")
    item(chat, "msg_q3", "user_message", T0 + timedelta(minutes=9), "Thanks!")
    run(chat, "gpt-old", T0 - timedelta(hours=1))  # an earlier answer
    run(chat, "gpt-4.1", T0 + timedelta(seconds=1))  # streaming when msg_a1 was made
    run(chat, "gpt-title", T0 + timedelta(seconds=2), kind=models.RunKind.TITLE)
    # Started after gpt-4.1 but over before msg_a1 was made: it did not write it.
    run(
        chat,
        "gpt-cancelled",
        T0 + timedelta(seconds=2),
        finished_at=T0 + timedelta(seconds=2.5),
        status=models.RunStatus.CANCELLED,
    )
    run(chat, "gpt-5-mini", T0 + timedelta(minutes=5, seconds=1))  # finished before msg_a2
    return {
        "thread": chat,
        "long_answer": long_answer,
        "down": vote(chat, "msg_a1", "negative", T0 + timedelta(minutes=1)),
        "up": vote(chat, "msg_a2", "positive", T0 + timedelta(minutes=7)),
    }


def test_queue_shows_the_rated_text_the_question_the_model_and_the_place(root_client, conversation):
    chat = conversation["thread"]
    response = root_client.get(reverse(FEEDBACK_LIST))
    by_item = {vote.item_id: vote for vote in results(response)}
    down, up = by_item["msg_a1"], by_item["msg_a2"]
    assert down.answer_model == "gpt-4.1"  # the covering answer run, not the title run
    assert up.answer_model == "gpt-5-mini"  # no run covers it: the last answer run before
    assert down.asked_text == "What is the capital of France?"
    assert up.asked_text == "And of <i>Spain</i>?"  # not the later "Thanks!"

    html = response.content.decode()
    down_row = row_html(html, "msg_a1")
    excerpt = conversation["long_answer"][:EXCERPT_CHARS].rstrip() + "…"
    assert excerpt in down_row and conversation["long_answer"] not in down_row
    assert "What is the capital of France?" in down_row
    assert ">gpt-4.1<" in down_row and ">alice<" in down_row
    assert 'class="chatkit-badge chatkit-badge-negative"' in down_row
    thread_page = reverse("admin:django_chatkit_thread_change", args=[chat.id])
    assert f'<a href="{thread_page}">Capitals &lt;b&gt;quiz&lt;/b&gt;</a>' in down_row
    assert f'href="{escape(transcript_url(chat.id, "msg_a1"))}"' in down_row
    up_row = row_html(html, "msg_a2")
    assert "And of &lt;i&gt;Spain&lt;/i&gt;?" in up_row and "<i>Spain" not in html
    assert ">Madrid.<" in up_row and ">gpt-5-mini<" in up_row


def test_a_vote_on_a_deleted_item_still_lists(root_client, alice):
    chat = thread(alice)
    vote(chat, "msg_gone", "negative")
    response = root_client.get(reverse(FEEDBACK_LIST))
    (gone,) = results(response)
    assert gone.rated_text is None and gone.answer_model is None
    assert "(item deleted)" in response.content.decode()


def test_queue_order_unreviewed_then_negative_then_newest(root_client, alice, bob):
    chat = thread(alice)
    reviewer = get_user_model().objects.get(username="bob")
    votes = {
        "old_down": vote(chat, "a", "negative", T0),
        "new_down": vote(chat, "b", "negative", T0 + timedelta(days=2)),
        "new_up": vote(chat, "c", "positive", T0 + timedelta(days=3)),
        "old_up": vote(chat, "d", "positive", T0 + timedelta(days=1)),
        "reviewed_down": vote(
            chat, "e", "negative", T0 + timedelta(days=9), reviewed_at=T0, reviewed_by=reviewer
        ),
        "reviewed_up": vote(
            chat, "f", "positive", T0 + timedelta(days=8), reviewed_at=T0, reviewed_by=reviewer
        ),
    }
    order = [vote.item_id for vote in results(root_client.get(reverse(FEEDBACK_LIST)))]
    expected = ["new_down", "old_down", "new_up", "old_up", "reviewed_down", "reviewed_up"]
    assert order == [votes[name].item_id for name in expected]


def test_a_run_left_running_by_a_crash_claims_no_later_answer(root_client, alice):
    chat = thread(alice)
    # A worker died mid-answer an hour earlier: its run still says "running", unfinished.
    run(chat, "gpt-crashed", T0 - timedelta(hours=1), finished_at=None, status="running")
    item(chat, "msg_q", "user_message", T0, "Still there?")
    run(chat, "gpt-4.1", T0 + timedelta(seconds=1), finished_at=T0 + timedelta(seconds=2))
    # Saved after its run was recorded as finished: no run of its turn covers it.
    item(chat, "msg_a", "assistant_message", T0 + timedelta(seconds=5), "Yes.")
    vote(chat, "msg_a", "positive", T0 + timedelta(minutes=1))
    (row,) = results(root_client.get(reverse(FEEDBACK_LIST)))
    assert row.answer_model == "gpt-4.1"


def test_feedback_filters(root_client, conversation, alice):
    other = thread(alice)
    item(other, "msg_x", "assistant_message", T0 + timedelta(days=30), "Old answer")
    run(other, "gpt-4.1", T0 + timedelta(days=30) - timedelta(seconds=1))
    reviewed = vote(
        other, "msg_x", "negative", T0 + timedelta(days=30), reviewed_at=T0 + timedelta(days=31)
    )

    def ids(**query: str) -> set[str]:
        return {v.item_id for v in results(root_client.get(reverse(FEEDBACK_LIST), query))}

    assert ids(kind__exact="negative") == {"msg_a1", "msg_x"}
    assert ids(kind__exact="positive") == {"msg_a2"}
    assert ids(model="gpt-4.1") == {"msg_a1", "msg_x"}
    assert ids(model="gpt-5-mini") == {"msg_a2"}
    assert ids(reviewed="yes") == {reviewed.item_id}
    assert ids(reviewed="no") == {"msg_a1", "msg_a2"}
    since = (T0 + timedelta(minutes=5)).isoformat()
    assert ids(updated_at__gte=since) == {"msg_a2", "msg_x"}
    html = root_client.get(reverse(FEEDBACK_LIST)).content.decode()
    # The model filter offers answer models only (not the title run's).
    assert "?model=gpt-4.1" in html and "?model=gpt-title" not in html


def mark_reviewed(client: Client, pks: list[int], note: str | None = None) -> Any:
    data: dict[str, Any] = {"action": "mark_reviewed", "_selected_action": pks}
    if note is not None:
        data.update({"confirm_review": "yes", "note": note})
    return client.post(reverse(FEEDBACK_LIST), data)


def review_state() -> list[tuple[Any, ...]]:
    return list(
        models.Feedback.objects.order_by("pk").values_list(
            "reviewed_at", "reviewed_by__username", "review_note"
        )
    )


@pytest.mark.parametrize("who", ["superuser", "change_feedback"])
def test_mark_reviewed_asks_for_a_note_then_records_it(who, conversation, root_client):
    client = root_client if who == "superuser" else staff("mod", "change_feedback")
    username = "root" if who == "superuser" else "mod"
    changelist = client.get(reverse(FEEDBACK_LIST)).content.decode()
    assert 'value="mark_reviewed"' in changelist
    pks = [conversation["down"].pk, conversation["up"].pk]

    confirm = mark_reviewed(client, pks)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert '<textarea name="note"' in page and "For staff only" in page
    assert page.count('name="_selected_action"') == 2
    assert all(state[0] is None for state in review_state())  # nothing changed yet

    done = mark_reviewed(client, pks, note="Wrong <b>capital</b> handling")
    assert done.status_code == 302
    states = review_state()
    assert all(state[0] is not None for state in states)
    assert {state[1:] for state in states} == {(username, "Wrong <b>capital</b> handling")}
    entries = LogEntry.objects.filter(action_flag=CHANGE).order_by("object_id")
    assert sorted(str(e.object_id) for e in entries) == sorted(str(pk) for pk in pks)
    assert {e.user.username for e in entries} == {username}
    assert all("Wrong <b>capital</b> handling" in e.change_message for e in entries)
    assert "2 votes marked reviewed." in client.get(done["Location"]).content.decode()

    # Again: already reviewed, left as they were (the first review's note is kept).
    again = mark_reviewed(client, pks, note="second thoughts")
    assert "2 were already reviewed" in client.get(again["Location"]).content.decode()
    assert {state[2] for state in review_state()} == {"Wrong <b>capital</b> handling"}
    assert LogEntry.objects.count() == 2


def test_view_only_staff_see_the_queue_but_cannot_mark_reviewed(conversation):
    client = staff("viewer", "view_feedback")
    changelist = client.get(reverse(FEEDBACK_LIST))
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert "msg_a1" in html and 'value="mark_reviewed"' not in html
    pks = [conversation["down"].pk, conversation["up"].pk]
    before = review_state()
    for forged in (mark_reviewed(client, pks), mark_reviewed(client, pks, note="forged")):
        assert forged.status_code in (200, 302)
        assert b'name="note"' not in forged.content
    assert review_state() == before
    assert not LogEntry.objects.exists()


def test_votes_are_read_only_even_for_superusers(root_client, conversation):
    down = conversation["down"]
    url = reverse("admin:django_chatkit_feedback_change", args=[down.pk])
    page = root_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and "deletelink" not in html
    assert "What is the capital of France?" in html and "gpt-4.1" in html
    assert root_client.post(url, {"kind": "positive"}).status_code == 403
    delete = reverse("admin:django_chatkit_feedback_delete", args=[down.pk])
    assert root_client.post(delete, {"post": "yes"}).status_code == 403
    assert models.Feedback.objects.get(pk=down.pk).kind == "negative"


def many_votes(alice: Any, count: int, start: int = 0) -> None:
    """``count`` threads, each a question, a rated answer, its run and a vote."""
    threads = models.Thread.objects.bulk_create(
        models.Thread(user=alice, title=f"t{start + n}", created_at=T0, updated_at=T0)
        for n in range(count)
    )
    models.ThreadItem.objects.bulk_create(
        models.ThreadItem(
            thread=chat, item_id=item_id, type=kind, created_at=T0 + offset, text=text, payload={}
        )
        for chat in threads
        for item_id, kind, offset, text in (
            ("q", "user_message", timedelta(0), "question"),
            ("a", "assistant_message", timedelta(seconds=2), "answer"),
        )
    )
    models.Run.objects.bulk_create(
        models.Run(
            thread=chat,
            user=alice,
            kind="answer",
            model=f"model-{n % 3}",
            status="failed" if n % 4 == 0 else "completed",
            started_at=T0 + timedelta(seconds=1),
            finished_at=T0 + timedelta(seconds=3),
            first_token_at=T0 + timedelta(seconds=1.5),
        )
        for n, chat in enumerate(threads)
    )
    models.Feedback.objects.bulk_create(
        models.Feedback(thread=chat, item_id="a", kind="negative" if n % 2 else "positive")
        for n, chat in enumerate(threads)
    )


def many_attachments(alice: Any, count: int, start: int = 0) -> None:
    chat = thread(alice)
    models.Attachment.objects.bulk_create(
        models.Attachment(
            id=f"atc_{start + n}",
            user=alice,
            thread=chat,
            type="image",
            name=f"photo{n}.png",
            mime_type="image/png",
            payload={"preview_url": PLACEHOLDER_PREVIEW},
            size=1234,
            storage_alias="default",
            storage_name=f"chatkit/attachments/atc_{start + n}/x.png",
        )
        for n in range(count)
    )


@pytest.mark.parametrize(
    ("url_name", "admin_class", "make"),
    [
        (FEEDBACK_LIST, FeedbackAdmin, many_votes),
        (RUN_LIST, RunAdmin, many_votes),
        (ATTACHMENT_LIST, AttachmentAdmin, many_attachments),
    ],
)
def test_changelists_cost_the_same_queries_for_10_and_200_rows(
    url_name, admin_class, make, alice, monkeypatch
):
    # Staff with view permissions only (their permission checks are queries too), every row on
    # one page.
    client = staff("viewer", "view_feedback", "view_run", "view_attachment", "view_thread")
    monkeypatch.setattr(admin_class, "list_per_page", 500)
    url = reverse(url_name)
    make(alice, 10)
    client.get(url)  # warm caches (content types), as on a running site
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert len(results(response)) == 10
    make(alice, 190, start=10)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert len(results(response)) == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


# -- runs -------------------------------------------------------------------------------------


def test_runs_list_failures_first_then_newest_with_figures(root_client, alice):
    chat = thread(alice, title="Weather")
    newest = run(
        chat,
        "gpt-4.1",
        T0 + timedelta(hours=3),
        first_token_at=T0 + timedelta(hours=3, milliseconds=250),
        input_tokens=11,
        output_tokens=22,
    )
    old_failure = run(
        chat,
        "gpt-4.1",
        T0,
        status=models.RunStatus.FAILED,
        error_code="rate_limited",
        error_message="Too many <requests>",
    )
    new_failure = run(chat, "gpt-5", T0 + timedelta(hours=1), status=models.RunStatus.FAILED)
    running = run(chat, "gpt-5", T0 + timedelta(hours=2), finished_at=None, status="running")
    response = root_client.get(reverse(RUN_LIST))
    order = [r.pk for r in results(response)]
    assert order == [new_failure.pk, old_failure.pk, newest.pk, running.pk]
    html = response.content.decode()
    failed_row = row_html(html, "rate_limited")
    assert "Too many &lt;requests&gt;" in failed_row
    assert 'chatkit-badge-failed">Failed<' in failed_row
    newest_row = row_html(html, 'field-first_token_ms">250<')
    assert 'field-latency_ms">4000<' in newest_row
    assert 'field-input_tokens">11<' in newest_row and 'field-output_tokens">22<' in newest_row
    # Both ways: each run links to its thread, and runs_url lists the thread's runs only.
    thread_page = reverse("admin:django_chatkit_thread_change", args=[chat.id])
    assert html.count(f'<a href="{thread_page}">Weather</a>') == 4
    other = thread(alice, title="Other")
    run(other, "gpt-4.1", T0)
    assert len(results(root_client.get(reverse(RUN_LIST)))) == 5
    linked = results(root_client.get(runs_url(chat.id)))
    assert [r.pk for r in linked] == order
    # ... and the thread's page links to that list.
    page = root_client.get(thread_page).content.decode()
    assert f'href="{escape(runs_url(chat.id))}"' in page


def test_runs_filters_and_search(root_client, alice, bob):
    mine = thread(alice)
    theirs = thread(bob)
    answer = run(mine, "gpt-4.1", T0, response_id="resp_123")
    title = run(mine, "gpt-mini", T0, kind=models.RunKind.TITLE)
    failed = run(theirs, "gpt-4.1", T0 + timedelta(days=3), status=models.RunStatus.FAILED)

    def pks(**query: str) -> set[int]:
        return {r.pk for r in results(root_client.get(reverse(RUN_LIST), query))}

    assert pks(status__exact="failed") == {failed.pk}
    assert pks(kind__exact="title") == {title.pk}
    assert pks(model="gpt-4.1") == {answer.pk, failed.pk}
    assert pks(started_at__gte=(T0 + timedelta(days=1)).isoformat()) == {failed.pk}
    assert pks(q="resp_123") == {answer.pk}
    assert pks(q=theirs.id) == {failed.pk}
    assert pks(q="bob") == {failed.pk}


def test_runs_are_read_only(root_client, alice):
    done = run(thread(alice), "gpt-4.1", T0)
    page = root_client.get(reverse("admin:django_chatkit_run_change", args=[done.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    delete = reverse("admin:django_chatkit_run_delete", args=[done.pk])
    assert root_client.post(delete, {"post": "yes"}).status_code == 403
    assert models.Run.objects.filter(pk=done.pk).exists()


# -- attachments ------------------------------------------------------------------------------


def test_preview_only_for_inline_raster_images():
    assert safe_preview_url(PLACEHOLDER_PREVIEW) == PLACEHOLDER_PREVIEW
    for unsafe in (
        "javascript:alert(1)",
        "https://evil.example/x.png",
        "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
        'data:image/png;base64,AAAA" onerror="alert(1)',
        "data:text/html;base64,PHNjcmlwdD4=",
        None,
        42,
    ):
        assert safe_preview_url(unsafe) is None, unsafe


def test_attachments_list_shows_owner_thread_size_status_preview_download(root_client, alice):
    chat = thread(alice, title="Holiday")
    models.Attachment.objects.create(
        id="atc_img",
        user=alice,
        thread=chat,
        type="image",
        name="<script>x</script>.png",
        mime_type="image/png",
        payload={"preview_url": PLACEHOLDER_PREVIEW},
        size=2 * 1024 * 1024,
        storage_alias="default",
        storage_name="chatkit/attachments/atc_img/a.png",
    )
    models.Attachment.objects.create(
        id="atc_evil",
        anonymous_key="k" * 40,
        type="image",
        name="evil.png",
        mime_type="image/png",
        payload={"preview_url": "javascript:alert(1)"},
        status=models.AttachmentStatus.PENDING,
    )
    response = root_client.get(reverse(ATTACHMENT_LIST))
    html = response.content.decode()
    image_row = row_html(html, "atc_img")
    assert f'<img src="{PLACEHOLDER_PREVIEW}"' in image_row
    assert "&lt;script&gt;x&lt;/script&gt;.png" in image_row and "<script>x" not in html
    assert ">alice<" in image_row and ">2.0\xa0MB<" in image_row
    thread_page = reverse("admin:django_chatkit_thread_change", args=[chat.id])
    assert f'<a href="{thread_page}">Holiday</a>' in image_row
    assert f'href="{reverse("chatkit:download", args=["atc_img"])}"' in image_row
    assert 'chatkit-badge-ready">Ready<' in image_row
    evil_row = row_html(html, "atc_evil")
    assert "javascript:" not in html and "<img" not in evil_row
    assert "anonymous kkkkkkkk…" in evil_row and "/chatkit/attachments/" not in evil_row
    assert 'chatkit-badge-pending">Pending upload<' in evil_row

    def ids(**query: str) -> set[str]:
        return {a.pk for a in results(root_client.get(reverse(ATTACHMENT_LIST), query))}

    assert ids(status__exact="pending") == {"atc_evil"}
    assert ids(type__exact="image") == {"atc_img", "atc_evil"}
    assert ids(q="atc_img") == {"atc_img"}
    assert ids(q="alice") == {"atc_img"}
    assert ids(q="evil") == {"atc_evil"}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert ids(created_at__gte=tomorrow) == set()


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "media"
    with local_media(root):
        yield root


def stored_attachment(owner: Any, attachment_id: str, content: bytes = b"%PDF-1.4 ...") -> str:
    """A ready attachment whose bytes are really in the (temporary) default storage."""
    name = storages["default"].save(
        f"chatkit/attachments/{attachment_id}/file.pdf", io.BytesIO(content)
    )
    models.Attachment.objects.create(
        id=attachment_id,
        user=owner,
        type="file",
        name="report.pdf",
        mime_type="application/pdf",
        payload={},
        size=len(content),
        storage_alias="default",
        storage_name=name,
    )
    return str(name)


@pytest.mark.django_db(transaction=True)  # files go when the transaction really commits
def test_admin_delete_and_bulk_delete_remove_the_files(alice, media):
    client = staff("cleaner", "view_attachment", "delete_attachment")
    stored_attachment(alice, "atc_one")
    stored_attachment(alice, "atc_two")
    stored_attachment(alice, "atc_three")
    assert len(stored_files(media)) == 3

    page = client.get(reverse("admin:django_chatkit_attachment_change", args=["atc_one"]))
    assert b"deletelink" in page.content
    delete = reverse("admin:django_chatkit_attachment_delete", args=["atc_one"])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not models.Attachment.objects.filter(id="atc_one").exists()
    assert [p.parent.name for p in stored_files(media)] == ["atc_three", "atc_two"]

    bulk = client.post(
        reverse(ATTACHMENT_LIST),
        {"action": "delete_selected", "_selected_action": ["atc_two", "atc_three"], "post": "yes"},
    )
    assert bulk.status_code == 302
    assert not models.Attachment.objects.exists()
    assert stored_files(media) == []


@pytest.mark.django_db(transaction=True)
def test_view_only_staff_can_look_and_download_but_not_delete(alice, media):
    client = staff("viewer", "view_attachment")
    name = stored_attachment(alice, "atc_kept", b"%PDF-1.4 kept")
    change = client.get(reverse("admin:django_chatkit_attachment_change", args=["atc_kept"]))
    assert change.status_code == 200
    assert b"deletelink" not in change.content and b'name="_save"' not in change.content
    changelist = client.get(reverse(ATTACHMENT_LIST)).content.decode()
    assert "atc_kept" in changelist and 'value="delete_selected"' not in changelist

    delete = reverse("admin:django_chatkit_attachment_delete", args=["atc_kept"])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    client.post(
        reverse(ATTACHMENT_LIST),
        {"action": "delete_selected", "_selected_action": ["atc_kept"], "post": "yes"},
    )
    assert models.Attachment.objects.filter(id="atc_kept").exists()
    assert (media / name).read_bytes() == b"%PDF-1.4 kept"

    download = client.get(reverse("chatkit:download", args=["atc_kept"]))
    assert download.status_code == 200
    assert async_to_sync(read_body)(download) == b"%PDF-1.4 kept"


# -- the queues' order, served by an index ------------------------------------------------------


def plan_of(sql: str) -> str:
    """The plan the database would run ``sql`` with, sorting and full scans priced out on
    PostgreSQL (the tables here are tiny: a sort would win, and say nothing of the index)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql)  # SQLite
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def page_query(client: Client, url: str) -> str:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    (sql,) = [q["sql"] for q in queries.captured_queries if "ORDER BY CASE" in q["sql"]]
    return sql


@pytest.mark.parametrize(
    ("url", "index"),
    [(RUN_LIST, "chatkit_run_review_order"), (FEEDBACK_LIST, "chatkit_feedback_review_order")],
)
def test_queue_order_is_an_index_walk(root_client, alice, url, index):
    """The queue's first ordering (failures / unreviewed negative votes first) is a CASE
    expression: migration 0008 indexes the same expressions, and nothing else keeps a million
    rows from being sorted on every page view. A change to either side breaks the match."""
    chat = thread(alice)
    for n in range(3):
        run(chat, "gpt-4.1", T0 + timedelta(minutes=n), status=models.RunStatus.FAILED)
        vote(chat, f"msg_{n}", "negative", T0 + timedelta(minutes=n))
    sql = page_query(root_client, reverse(url))
    if not connection.features.supports_expression_indexes:  # MariaDB: no such index
        with connection.cursor() as cursor:
            names = connection.introspection.get_constraints(
                cursor, models.Run._meta.db_table
            ) | connection.introspection.get_constraints(cursor, models.Feedback._meta.db_table)
        assert index not in names
        return
    plan = plan_of(sql)
    assert index in plan, plan
    if connection.vendor == "postgresql":
        # No sort above the index walk (the per-row subqueries below it have their own).
        above = plan[: plan.index(index)]
        assert "Sort" not in above, plan
    else:
        assert "TEMP B-TREE" not in plan, plan


def test_queue_counts_are_estimated_or_capped(root_client, alice, monkeypatch):
    from django_chatkit.admin.counting import EstimatedCountPaginator

    chat = thread(alice)
    for n in range(4):
        run(chat, "gpt-4.1", T0 + timedelta(minutes=n))
    monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 2)
    html = root_client.get(reverse(RUN_LIST), {"model": "gpt-4.1"}).content.decode()
    assert "Runs: more than 2" in html
    html = root_client.get(reverse(RUN_LIST), {"model": "gpt-5"}).content.decode()
    assert "0 runs" in html
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE django_chatkit_run")  # sees this transaction's rows
        monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 0)
        with CaptureQueriesContext(connection) as queries:
            html = root_client.get(reverse(RUN_LIST)).content.decode()
        assert "Runs: about 4" in html
        assert not [q for q in queries.captured_queries if "COUNT(*)" in q["sql"]]
