"""Importing hosted conversations (issue #16, part 3), against the fake OpenAI server over
loopback with the real openai client: what is imported and for whom, idempotence, incremental
re-runs, paging, 429s and outages, threads deleted upstream, and purging deleting upstream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from chatkit.types import ClientToolCallItem, UserMessageItem
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_chatkit import models
from django_chatkit.admin import transcript
from django_chatkit.context import ChatKitContext, Owner
from django_chatkit.hosted import deleting
from django_chatkit.hosted.identity import upstream_user
from django_chatkit.hosted.importing import import_hosted
from django_chatkit.hosted.upstream import Upstream
from django_chatkit.serialization import item_from_payload
from django_chatkit.store import DjangoStore
from django_chatkit.testing import FakeOpenAI, Reply
from django_chatkit.testing.fake_openai.chatkit_threads import (
    assistant_message,
    client_tool_call,
    task,
    task_group,
    user_message,
    widget,
)

pytestmark = pytest.mark.django_db

SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_tests",
    "HOSTED_IMPORT_BACKOFF": 0.001,
    "HOSTED_IMPORT_MAX_ATTEMPTS": 3,
    "HOSTED_IMPORT_PAGE_SIZE": 2,
}
THREADS_PATH = "/v1/chatkit/threads"


@pytest.fixture(autouse=True)
def hosted_settings() -> Iterator[None]:
    with override_settings(CHATKIT=SETTINGS):
        yield


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


def conversation(n: int) -> list[dict[str, Any]]:
    """``n`` items alternating user and assistant messages."""
    return [
        user_message(f"question {i}") if i % 2 == 0 else assistant_message(f"answer {i}")
        for i in range(n)
    ]


def seed_users(
    fake: FakeOpenAI, *users: Any, threads: int = 3, items: int = 5
) -> dict[Any, list[str]]:
    """Each user gets a HostedUser row and ``threads`` upstream threads of ``items`` items."""
    seeded = {}
    for user in users:
        upstream = upstream_user(Owner(user_id=user.pk), minting=True)
        seeded[user] = [
            fake.chatkit_threads.seed_thread(
                upstream,
                title=f"{user.username} {t}",
                items=conversation(items),
                created_at=1_700_000_000 + t,
            )
            for t in range(threads)
        ]
    return seeded


def run(*args: str) -> str:
    out = StringIO()
    call_command("chatkit_import_hosted", *args, stdout=out)
    return out.getvalue()


def chatkit_calls(fake: FakeOpenAI) -> list[Any]:
    return [r for r in fake.requests if r.path.startswith(THREADS_PATH)]


def test_imports_two_users_three_threads_five_items_each_to_the_right_owner(fake, alice, bob):
    seeded = seed_users(fake, alice, bob)
    output = run("--all")
    assert "6 new" in output and "30 item(s)" in output
    for user, thread_ids in seeded.items():
        threads = models.Thread.objects.filter(id__in=thread_ids)
        assert threads.count() == 3
        # Each thread is its owner's: never the other user's, never anonymous.
        assert set(threads.values_list("user_id", "anonymous_key", "source")) == {
            (user.pk, "", "hosted")
        }
        for thread_id in thread_ids:
            items = list(models.ThreadItem.objects.filter(thread_id=thread_id))
            upstream_ids = [i["id"] for i in fake.chatkit_threads.items(thread_id)]
            assert [i.item_id for i in items] == upstream_ids  # upstream ids kept, in order
            assert [i.type for i in items] == ["user_message", "assistant_message"] * 2 + [
                "user_message"
            ]
            assert items[1].text == "answer 1"
    # Every call carried the beta header; listings asked for the user's own threads only.
    calls = chatkit_calls(fake)
    assert all(r.headers["openai-beta"] == "chatkit_beta=v1" for r in calls)
    listed_users = {r.query["user"] for r in calls if r.path == THREADS_PATH}
    assert listed_users == {
        models.HostedUser.objects.get(user=alice).upstream_user,
        models.HostedUser.objects.get(user=bob).upstream_user,
    }
    # Nothing of alice's is bob's.
    assert not models.Thread.objects.filter(id__in=seeded[alice], user=bob).exists()


def test_rerun_imports_nothing_and_writes_nothing(fake, alice, bob):
    seed_users(fake, alice, bob)
    run("--all")
    before = [(r.item_id, r.payload) for r in models.ThreadItem.objects.order_by("pk")]
    fake.reset()
    with CaptureQueriesContext(connection) as queries:
        output = run("--all")
    assert "0 new and 0 changed" in output and "6 unchanged" in output
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "DELETE"))
    ]
    assert writes == []
    # A list call per user (3 threads, pages of 2: 2 pages) and one items call per thread.
    assert len(chatkit_calls(fake)) == 2 * 2 + 6
    assert [(r.item_id, r.payload) for r in models.ThreadItem.objects.order_by("pk")] == before


def test_rerun_without_all_visits_only_users_active_since(fake, alice, bob):
    seed_users(fake, alice, bob)
    run()  # never imported: both are due
    # Their last client secrets are long expired (older than HOSTED_IMPORT_ACTIVE_WINDOW).
    models.HostedUser.objects.update(last_session_at=timezone.now() - timedelta(hours=2))
    fake.reset()
    assert "0 user(s)" in run()
    assert chatkit_calls(fake) == []
    # Alice opens a session again (a client secret minted): only she is visited.
    models.HostedUser.objects.filter(user=alice).update(
        last_session_at=timezone.now() + timedelta(seconds=1)
    )
    assert "1 user(s)" in run()
    users = {r.query.get("user") for r in chatkit_calls(fake) if r.path == THREADS_PATH}
    assert users == {models.HostedUser.objects.get(user=alice).upstream_user}


def test_new_items_and_renames_are_picked_up_incrementally(fake, alice):
    seeded = seed_users(fake, alice)
    run("--all")
    thread_id = seeded[alice][1]
    newest_before = models.Thread.objects.get(id=thread_id).updated_at
    fake.chatkit_threads.add_items(
        thread_id, user_message("one more"), assistant_message("sure"), created_at=1_800_000_000
    )
    fake.chatkit_threads.update_thread(seeded[alice][2], title="Renamed upstream")
    fake.reset()
    output = run("--all")
    assert "0 new and 2 changed (2 item(s))" in output
    # The changed thread's items were asked after the last one imported: only the new ones.
    item_calls = [r for r in chatkit_calls(fake) if r.path == f"{THREADS_PATH}/{thread_id}/items"]
    assert item_calls[0].query["after"] == fake.chatkit_threads.items(thread_id)[4]["id"]
    thread = models.Thread.objects.get(id=thread_id)
    assert thread.items.count() == 7
    assert thread.updated_at > newest_before
    assert list(thread.items.values_list("text", flat=True))[-2:] == ["one more", "sure"]
    assert models.Thread.objects.get(id=seeded[alice][2]).title == "Renamed upstream"


def test_paging_follows_every_page(fake, alice):
    upstream = upstream_user(Owner(user_id=alice.pk))
    thread_ids = [
        fake.chatkit_threads.seed_thread(
            upstream, items=conversation(7), created_at=1_700_000_000 + t
        )
        for t in range(5)
    ]
    run("--all")  # pages of 2: 3 pages of threads, 4 pages of items per thread
    assert models.Thread.objects.filter(id__in=thread_ids).count() == 5
    assert models.ThreadItem.objects.filter(thread_id__in=thread_ids).count() == 35
    listing = [r for r in chatkit_calls(fake) if r.path == THREADS_PATH]
    assert [r.query.get("after") is None for r in listing] == [True, False, False]
    assert all(r.query["limit"] == "2" for r in chatkit_calls(fake))


def test_429_with_retry_after_is_waited_out(fake, alice):
    seeded = seed_users(fake, alice, threads=1)
    fake.chatkit_threads.fail(
        Reply(status=429, retry_after=0.05), method="GET", path=THREADS_PATH, times=2
    )
    waits: list[float] = []
    upstream = Upstream(sleep=waits.append)
    report = import_hosted(models.HostedUser.objects.all(), upstream=upstream)
    assert report.stopped is None and report.threads_created == 1
    assert waits == [0.05, 0.05]  # Retry-After, not the backoff
    assert [r.status for r in chatkit_calls(fake)][:3] == [429, 429, 200]
    assert models.ThreadItem.objects.filter(thread_id=seeded[alice][0]).count() == 5


def test_500s_exhausted_stop_the_run_clearly_and_a_rerun_resumes(fake, alice):
    seeded = seed_users(fake, alice, threads=3)
    third = seeded[alice][2]
    fake.chatkit_threads.fail(
        Reply(status=500), method="GET", path=f"{THREADS_PATH}/{third}/items", times=3
    )
    with pytest.raises(CommandError, match="gave up after 3 attempt"):
        run("--all")
    # The first two threads are committed whole; the third is not there at all.
    assert models.ThreadItem.objects.filter(thread_id__in=seeded[alice][:2]).count() == 10
    assert not models.Thread.objects.filter(id=third).exists()
    assert models.HostedUser.objects.get(user=alice).last_imported_at is None
    fake.reset()
    output = run()  # still due: resumes
    assert "1 new" in output and "2 unchanged" in output
    assert models.ThreadItem.objects.filter(thread__user=alice).count() == 15


def test_thread_deleted_upstream_is_marked_not_removed(fake, alice):
    seeded = seed_users(fake, alice)
    run("--all")
    gone = seeded[alice][0]
    fake.chatkit_threads.remove_thread(gone)
    output = run("--all")
    assert "1 marked deleted upstream" in output
    thread = models.Thread.objects.get(id=gone)
    assert thread.upstream_deleted_at is not None
    assert thread.items.count() == 5  # kept for review
    assert models.Thread.objects.filter(upstream_deleted_at__isnull=True).count() == 2
    retrieved = [
        r for r in chatkit_calls(fake) if r.method == "GET" and r.path == f"{THREADS_PATH}/{gone}"
    ]
    assert [r.status for r in retrieved] == [404]


def test_every_upstream_item_type_becomes_an_item_the_admin_renders(fake, alice):
    upstream = upstream_user(Owner(user_id=alice.pk))
    thread_id = fake.chatkit_threads.seed_thread(
        upstream,
        items=[
            user_message(
                "look",
                quoted="earlier words",
                attachments=[
                    {
                        "id": "cfile_1",
                        "name": "a.png",
                        "mime_type": "image/png",
                        "type": "image",
                        "preview_url": "https://files.example/a.png",
                    }
                ],
            ),
            assistant_message("See this.", urls=["https://example.com"], files=["doc.pdf"]),
            widget({"type": "Card", "children": [{"type": "Text", "value": "Hello card"}]}),
            client_tool_call("lookup", {"q": "x"}, output={"found": 1}),
            task("Thinking", "about it", task_type="thought"),
            task_group([("Search", "3 results"), ("Read", None)]),
            {"type": "chatkit.something_new", "detail": 1},
        ],
    )
    run("--all")
    items = list(models.ThreadItem.objects.filter(thread_id=thread_id))
    assert [i.type for i in items] == [
        "user_message",
        "assistant_message",
        "widget",
        "client_tool_call",
        "task",
        "workflow",
        "hidden_context_item",
    ]
    # Every payload is a valid SDK item (the store and the admin read them as such).
    sdk = [item_from_payload(i.payload) for i in items]
    message, call = sdk[0], sdk[3]
    assert isinstance(message, UserMessageItem) and isinstance(call, ClientToolCallItem)
    assert message.quoted_text == "earlier words" and message.attachments[0].type == "image"
    assert items[0].text == "look"
    assert call.arguments == {"q": "x"} and call.output == {"found": 1}
    assert items[6].payload["content"]["hosted_item"]["detail"] == 1
    html = transcript.render_newest(models.Thread.objects.get(id=thread_id))
    for text in ("earlier words", "See this.", "Hello card", "lookup", "Thinking", "3 results"):
        assert text in html


def test_a_running_tool_call_is_read_again_until_it_completes(fake, alice):
    upstream = upstream_user(Owner(user_id=alice.pk))
    thread_id = fake.chatkit_threads.seed_thread(
        upstream, items=[user_message("go"), client_tool_call("slow", {}, status="in_progress")]
    )
    run("--all")
    thread = models.Thread.objects.get(id=thread_id)
    first = fake.chatkit_threads.items(thread_id)[0]["id"]
    assert thread.upstream_cursor == first  # before the running call
    item = fake.chatkit_threads._items[thread_id][1]
    item.update(status="completed", output='"done"')
    run("--all")
    call = models.ThreadItem.objects.get(thread_id=thread_id, type="client_tool_call")
    assert call.payload["status"] == "completed" and call.payload["output"] == "done"
    assert models.ThreadItem.objects.filter(thread_id=thread_id).count() == 2
    assert models.Thread.objects.get(id=thread_id).upstream_cursor == item["id"]


def test_an_id_taken_by_another_owner_is_never_reassigned(fake, alice, bob):
    seeded = seed_users(fake, alice, bob, threads=1)
    # Bob's upstream thread id already exists here as alice's (self-hosted) thread.
    clash = seeded[bob][0]
    now = timezone.now()
    models.Thread.objects.create(id=clash, user=alice, created_at=now, updated_at=now)
    output = run("--all")
    assert f"Skipped {clash}" in output
    assert models.Thread.objects.get(id=clash).user == alice
    assert models.Thread.objects.get(id=clash).source == "self"
    assert not models.ThreadItem.objects.filter(thread_id=clash).exists()


def test_a_listed_thread_of_another_upstream_user_is_skipped(fake, alice, bob):
    seed_users(fake, alice, threads=1)
    bob_upstream = upstream_user(Owner(user_id=bob.pk))
    # A listing that (wrongly) returns bob's thread for alice must not give it to alice.
    stray = fake.chatkit_threads.seed_thread(bob_upstream, items=conversation(1))
    alice_upstream = models.HostedUser.objects.get(user=alice).upstream_user
    fake.chatkit_threads._threads[stray]["user"] = bob_upstream
    original = fake.chatkit_threads._page

    def leaky(rows, query):  # the listing for alice includes bob's thread
        if rows and rows[0].get("object") == "chatkit.thread":
            rows = list(fake.chatkit_threads._threads.values())
        return original(rows, query)

    fake.chatkit_threads._page = leaky
    output = run("--user", "alice")
    assert f"Skipped {stray}" in output
    assert not models.Thread.objects.filter(id=stray).exists()
    assert models.Thread.objects.filter(user=alice).count() == 1
    assert alice_upstream != bob_upstream


def test_imported_threads_are_not_served_by_the_self_hosted_endpoint(fake, alice):
    from asgiref.sync import async_to_sync

    seeded = seed_users(fake, alice, threads=1)
    run("--all")
    store, context = DjangoStore(), ChatKitContext.for_user(alice)
    page = async_to_sync(store.load_threads)(10, None, "desc", context)
    assert page.data == []
    from chatkit.store import NotFoundError

    with pytest.raises(NotFoundError):
        async_to_sync(store.load_thread)(seeded[alice][0], context)


def test_user_option_limits_the_import(fake, alice, bob):
    seeded = seed_users(fake, alice, bob, threads=1)
    run("--user", "bob")
    assert models.Thread.objects.filter(id=seeded[bob][0]).exists()
    assert not models.Thread.objects.filter(id=seeded[alice][0]).exists()
    with pytest.raises(CommandError):
        run("--user", "bob", "--all")


def test_dry_run_writes_nothing(fake, alice):
    seed_users(fake, alice)
    output = run("--all", "--dry-run")
    assert "would import 3 new" in output
    assert not models.Thread.objects.exists()
    assert models.HostedUser.objects.get(user=alice).last_imported_at is None


# -- purge deletes upstream -------------------------------------------------------------------


def purge(*args: str) -> str:
    out = StringIO()
    call_command("chatkit_purge", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_purge_deletes_hosted_threads_upstream(fake, alice):
    seeded = seed_users(fake, alice)
    run("--all")  # threads created in 2023: idle for long
    output = purge("--older-than", "30")
    assert "3 hosted thread(s) deleted at OpenAI" in output
    assert not models.Thread.objects.filter(source="hosted").exists()
    assert not models.HostedDeletion.objects.exists()
    assert all(not fake.chatkit_threads.exists(t) for t in seeded[alice])
    deletes = [r for r in chatkit_calls(fake) if r.method == "DELETE"]
    assert sorted(r.path.rsplit("/", 1)[1] for r in deletes) == sorted(seeded[alice])


def test_upstream_failure_keeps_the_deletion_owed_and_never_reimports(fake, alice):
    seeded = seed_users(fake, alice, threads=2)
    run("--all")
    fake.chatkit_threads.fail(Reply(status=500), method="DELETE", times=3)
    output = purge("--older-than", "30")
    # Deleted here, owed there: the journal keeps it, with the error.
    assert not models.Thread.objects.filter(source="hosted").exists()
    # The first failure ends the pass (the rest would fail alike): both stay owed.
    owed = list(models.HostedDeletion.objects.order_by("attempts"))
    assert [row.thread_id for row in owed] != [] and len(owed) == 2
    assert [row.attempts for row in owed] == [0, 1]
    assert "HTTP 500" in owed[1].last_error
    assert "2 deletion(s) still owed" in output
    # An import does not bring it back; it settles the deletion first (the fault is used up).
    models.HostedUser.objects.update(last_imported_at=None)
    run()
    assert not models.HostedDeletion.objects.exists()
    assert not models.Thread.objects.filter(id__in=seeded[alice]).exists()
    assert all(not fake.chatkit_threads.exists(t) for t in seeded[alice])


def test_a_thread_already_gone_upstream_counts_as_deleted(fake, alice):
    seeded = seed_users(fake, alice, threads=1)
    run("--all")
    fake.chatkit_threads.remove_thread(seeded[alice][0])
    models.Thread.objects.filter(id=seeded[alice][0]).delete()
    settled = deleting.settle()
    assert settled.already_gone == 1 and settled.pending == 0
    assert not models.HostedDeletion.objects.exists()


def test_deleting_the_user_owes_their_hosted_threads_deletion(fake, alice):
    seeded = seed_users(fake, alice, threads=2)
    run("--all")
    get_user_model().objects.filter(pk=alice.pk).delete()
    assert set(models.HostedDeletion.objects.values_list("thread_id", flat=True)) == set(
        seeded[alice]
    )
    purge("--older-than", "30")
    assert not models.HostedDeletion.objects.exists()
    assert all(not fake.chatkit_threads.exists(t) for t in seeded[alice])


def test_self_hosted_deletions_owe_nothing(alice):
    now = timezone.now()
    models.Thread.objects.create(user=alice, created_at=now, updated_at=now).delete()
    assert not models.HostedDeletion.objects.exists()


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("HOSTED_IMPORT_PAGE_SIZE", 0),
        ("HOSTED_IMPORT_PAGE_SIZE", 101),
        ("HOSTED_IMPORT_PAGE_SIZE", "20"),
        ("HOSTED_IMPORT_MAX_ATTEMPTS", 0),
        ("HOSTED_IMPORT_MAX_ATTEMPTS", True),
        ("HOSTED_IMPORT_BACKOFF", -1),
        ("HOSTED_IMPORT_MAX_WAIT", "60"),
        ("HOSTED_IMPORT_ADMIN_SECONDS", None),
        ("HOSTED_IMPORT_ACTIVE_WINDOW", float("nan")),
    ],
)
def test_e018_hosted_import_settings(key, value):
    from django_chatkit.checks import check_settings

    with override_settings(CHATKIT={**SETTINGS, key: value}):
        messages = check_settings(None)
    assert [m.id for m in messages] == ["chatkit.E018"]
    assert key in messages[0].msg


def test_e018_accepts_the_defaults_and_zero_waits():
    from django_chatkit.checks import check_settings

    zero = {"HOSTED_IMPORT_BACKOFF": 0, "HOSTED_IMPORT_ACTIVE_WINDOW": 0}
    with override_settings(CHATKIT={**SETTINGS, **zero}):
        assert [m.id for m in check_settings(None)] == []


def test_w011_secrets_that_outlive_the_active_window():
    from django_chatkit.checks import check_settings

    workflows = {"wf_short": {"expires_after": 600}, "wf_long": {"expires_after": 7200}}
    with override_settings(CHATKIT={**SETTINGS, "HOSTED_WORKFLOWS": workflows}):
        messages = [m for m in check_settings(None) if m.id != "chatkit.W009"]  # no API key
    assert [m.id for m in messages] == ["chatkit.W011"]
    assert "'wf_long'" in messages[0].msg and "7200" in messages[0].msg
    long_window = {"HOSTED_WORKFLOWS": workflows, "HOSTED_IMPORT_ACTIVE_WINDOW": 7200}
    with override_settings(CHATKIT={**SETTINGS, **long_window}):
        assert "chatkit.W011" not in [m.id for m in check_settings(None)]


def test_hosted_threads_export_and_import_back_as_hosted(fake, alice, tmp_path):
    seeded = seed_users(fake, alice, threads=1)
    run("--all")
    thread_id = seeded[alice][0]
    models.Thread.objects.filter(id=thread_id).update(upstream_deleted_at=timezone.now())
    archive = tmp_path / "threads.jsonl"
    call_command("chatkit_export", "--output", str(archive), stdout=StringIO())
    line = archive.read_text().splitlines()[0]
    assert '"hosted":{"upstream_cursor":"cthi_' in line
    before = models.Thread.objects.get(id=thread_id)
    models.Thread.objects.all().delete()  # owes an upstream deletion; the journal is not ours
    models.HostedDeletion.objects.all().delete()
    call_command("chatkit_import", str(archive), stdout=StringIO())
    after = models.Thread.objects.get(id=thread_id)
    assert (after.source, after.upstream_cursor, after.upstream_deleted_at) == (
        "hosted",
        before.upstream_cursor,
        before.upstream_deleted_at,
    )
    assert after.items.count() == 5
