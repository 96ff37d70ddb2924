"""chatkit_purge: what it deletes (threads with everything they hold, files included), what it
keeps (legal holds, recent threads, other users'), its dry run, batches, and its refusals."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from django_chatkit import models
from django_chatkit.attachments import journal
from django_chatkit.management.commands.chatkit_purge import RELEASED
from tests.attachment_flow import local_media
from tests.factories import snapshot
from tests.lifecycle_data import (
    FILE_BYTES,
    NOTHING_LEFT,
    gone,
    intact,
    leftovers,
    make_thread,
    stored_files,
)

pytestmark = pytest.mark.django_db

BASE = {"SERVER": "tests.servers.ScriptedServer", "DOMAIN_KEY": "domain_pk_tests"}
ANONYMOUS_KEY = "anonymous-visitor-token-0123456789ab"


@pytest.fixture
def media(tmp_path) -> Iterator[Path]:
    root = tmp_path / "media"
    with local_media(root, {**BASE, "RETENTION": 30, "ANONYMOUS_RETENTION": None}):
        yield root


def purge(*args: str) -> str:
    out = StringIO()
    call_command("chatkit_purge", *args, stdout=out)
    return out.getvalue()


def test_purges_idle_threads_with_everything_they_hold_and_keeps_the_rest(media, alice, bob):
    old = [make_thread(alice, idle_days=31, attachments=2), make_thread(bob, idle_days=400)]
    recent = make_thread(alice, idle_days=29)
    held = make_thread(alice, idle_days=400, held=True)
    output = purge()
    for made in old:
        gone(made, media)
    intact(recent, media)
    intact(held, media)
    assert leftovers(media) == NOTHING_LEFT
    assert (
        f"Purged 2 thread(s), 6 item(s), 2 feedback, 2 run(s), 3 attachment(s), "
        f"{3 * FILE_BYTES:,} bytes in 1 batch(es); 1 thread(s) on legal hold kept."
    ) in output
    # Nothing more is due: a second run deletes nothing.
    assert "Purged 0 thread(s)" in purge()


def test_older_than_replaces_the_setting(media, alice):
    week_old = make_thread(alice, idle_days=8)
    day_old = make_thread(alice, idle_days=1)
    purge("--older-than", "7")
    gone(week_old, media)
    intact(day_old, media)


def test_dry_run_changes_nothing_and_counts_what_it_would_delete(media, alice):
    for _ in range(3):
        make_thread(alice, idle_days=40)
    make_thread(alice, idle_days=40, held=True)
    before, files = snapshot(), stored_files(media)
    output = purge("--dry-run", "--batch-size", "2")
    assert snapshot() == before
    assert stored_files(media) == files
    assert "Batch 1: would delete 2 thread(s), 6 item(s)" in output
    assert "Batch 2: would delete 1 thread(s), 3 item(s)" in output
    assert (
        f"Dry run: would delete 3 thread(s), 9 item(s), 3 feedback, 3 run(s), "
        f"3 attachment(s), {3 * FILE_BYTES:,} bytes in 2 batch(es); "
        "1 thread(s) on legal hold kept."
    ) in output


def test_batches_are_reported_as_they_go_and_add_up(media, alice):
    made = [make_thread(alice, idle_days=40 + n) for n in range(5)]
    output = purge("--batch-size", "2")
    lines = [line for line in output.splitlines() if line.startswith("Batch")]
    assert [line.split(":")[0] for line in lines] == ["Batch 1", "Batch 2", "Batch 3"]
    assert lines[0].startswith("Batch 1: deleted 2 thread(s), 6 item(s)")
    assert lines[2].startswith("Batch 3: deleted 1 thread(s), 3 item(s)")
    assert "Purged 5 thread(s), 15 item(s)" in output
    for thread in made:
        gone(thread, media)
    assert leftovers(media) == NOTHING_LEFT


def test_user_scopes_the_purge_to_one_user(media, alice, bob):
    alice.email = "alice@example.com"
    alice.save()
    alices = make_thread(alice, idle_days=40)
    bobs = make_thread(bob, idle_days=40)
    anonymous = make_thread(ANONYMOUS_KEY, idle_days=400)
    purge("--user", "alice@example.com")
    gone(alices, media)
    intact(bobs, media)
    intact(anonymous, media)
    purge("--user", "bob", "--older-than", "100")
    intact(bobs, media)  # idle for 40 days only
    purge("--user", "bob")
    gone(bobs, media)


def test_a_thread_active_again_since_it_was_listed_is_kept(media, alice):
    # What the batch's locked re-check is for: listed as due, then a message arrived.
    from django_chatkit.purge import _delete, _Stops, make_policy

    made = make_thread(alice, idle_days=40)
    policy = make_policy()
    models.Thread.objects.filter(pk=made.thread.pk).update(updated_at=timezone.now())
    assert _delete(policy.passes()[0], [made.thread.pk], _Stops()).threads == 0
    intact(made, media)


@override_settings(SESSION_COOKIE_AGE=14 * 24 * 3600)
def test_anonymous_threads_go_once_their_session_has_expired(tmp_path):
    root = tmp_path / "media"
    with local_media(root, {**BASE}):  # RETENTION None, ANONYMOUS_RETENTION "session"
        expired = make_thread(ANONYMOUS_KEY, idle_days=15)
        fresh = make_thread("another-visitor-token-abcdefghijklmn", idle_days=13)
        held = make_thread(ANONYMOUS_KEY, idle_days=100, held=True)
        user = get_user_model().objects.create_user("carol")
        users = make_thread(user, idle_days=1000)  # RETENTION None: kept forever
        output = purge()
        gone(expired, root)
        intact(fresh, root)
        intact(held, root)
        intact(users, root)
        assert "Purged 1 thread(s)" in output
        assert leftovers(root) == NOTHING_LEFT


def test_anonymous_retention_in_days_and_bounded_by_the_site_retention(tmp_path):
    root = tmp_path / "media"
    with local_media(root, {**BASE, "ANONYMOUS_RETENTION": 3}):
        four_days = make_thread(ANONYMOUS_KEY, idle_days=4)
        two_days = make_thread(ANONYMOUS_KEY, idle_days=2)
        purge()
        gone(four_days, root)
        intact(two_days, root)
    with local_media(root, {**BASE, "RETENTION": 1, "ANONYMOUS_RETENTION": 30}):
        purge()  # a site keeping nothing longer than a day keeps anonymous threads no longer
        gone(two_days, root)


def test_refuses_when_nothing_is_configured(media):
    with (
        override_settings(CHATKIT={**BASE, "ANONYMOUS_RETENTION": None}),
        pytest.raises(CommandError, match=r"RETENTION.*--older-than"),
    ):
        purge()


def test_user_needs_a_retention(media, alice):
    with (
        override_settings(CHATKIT={**BASE}),
        pytest.raises(CommandError, match="RETENTION"),
    ):
        purge("--user", "alice")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "-1"], "--older-than"),
        (["--older-than", "nan"], "--older-than"),
        (["--batch-size", "0"], "--batch-size"),
        (["--user", "nobody"], "nobody"),
        (["--older-than", "soon"], "invalid float"),
    ],
)
def test_bad_arguments_are_refused(media, alice, args, message):
    made = make_thread(alice, idle_days=400)
    with pytest.raises(CommandError, match=message):
        purge(*args)
    intact(made, media)


def test_a_released_hold_of_a_deleted_owner_is_purged_at_once(media, alice):
    made = make_thread(alice, idle_days=1, held=True)
    alice.delete()
    purge()
    intact(made, media)  # still held
    models.Thread.objects.filter(pk=made.thread.pk).update(legal_hold=False)
    purge()
    gone(made, media)
    assert leftovers(media) == NOTHING_LEFT


def test_a_removal_that_failed_is_retried_by_the_next_run(media, alice, monkeypatch):
    made = make_thread(alice, idle_days=40)
    storage_class = type(storages["default"])
    real_delete = storage_class.delete

    def failing(self, name):
        raise OSError("storage unavailable")

    monkeypatch.setattr(storage_class, "delete", failing)
    purge()
    assert not models.Thread.objects.filter(pk=made.thread.pk).exists()
    assert (media / made.files[0]).exists()  # the row went, the file could not
    assert len(journal.pending()) == 1
    monkeypatch.setattr(storage_class, "delete", real_delete)
    output = purge()
    assert "Settled 1 of 1 removal journal entry(ies)" in output
    gone(made, media)
    assert leftovers(media) == NOTHING_LEFT


@override_settings(SESSION_COOKIE_AGE=14 * 24 * 3600)
def test_the_report_says_what_the_run_purges(media, alice):
    with override_settings(CHATKIT={**BASE}):
        lines = purge().splitlines()
    assert lines[:3] == [
        "Signed-in users' threads are kept: CHATKIT['RETENTION'] is None and no --older-than "
        "was given.",
        "Purging anonymous visitors' threads idle for more than 14 day(s).",
        RELEASED,
    ]
    lines = purge("--older-than", "7.5").splitlines()
    assert lines[:2] == [
        "Purging users' threads idle for more than 7.5 day(s).",
        "Purging anonymous visitors' threads idle for more than 7.5 day(s).",
    ]
    assert purge("--user", "alice").splitlines()[:2] == [
        "Purging alice's threads idle for more than 30 day(s).",
        RELEASED,
    ]


@pytest.mark.parametrize("args", [[], ["--user", "alice"]])
def test_a_thread_its_owner_deleted_under_hold_goes_once_the_hold_is_lifted(media, alice, args):
    made = make_thread(alice, idle_days=1, held=True)
    kept = make_thread(alice, idle_days=1)
    # The owner's delete of a held thread only hides it from them (DjangoStore.delete_thread).
    models.Thread.objects.filter(pk=made.thread.pk).update(deleted_by_owner_at=timezone.now())
    purge(*args)
    intact(made, media)
    models.Thread.objects.filter(pk=made.thread.pk).update(legal_hold=False)
    output = purge(*args)
    gone(made, media)
    intact(kept, media)
    assert "Purged 1 thread(s)" in output
