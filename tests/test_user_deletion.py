"""Deleting a user (Django's own delete, as the admin does) erases their threads and files, and
keeps their threads on legal hold under a tombstone owner that staff see as "owner deleted"."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from django_chatkit import models
from django_chatkit.admin.common import owner_label
from django_chatkit.attachments import journal
from django_chatkit.erasure import tombstone_key
from tests.attachment_flow import local_media
from tests.lifecycle_data import NOTHING_LEFT, gone, intact, leftovers, make_thread

# Real commits: files are removed once the deletion commits (on-commit callbacks).
pytestmark = pytest.mark.django_db(transaction=True)

CHATKIT = {"SERVER": "tests.servers.ScriptedServer", "DOMAIN_KEY": "domain_pk_tests"}


@pytest.fixture
def media(tmp_path) -> Iterator[Path]:
    root = tmp_path / "media"
    with local_media(root, CHATKIT):
        yield root


def test_deleting_a_user_removes_their_threads_and_files(media, alice, bob):
    alices = [make_thread(alice, idle_days=1, attachments=2), make_thread(alice, idle_days=100)]
    # An upload never sent in a message: an attachment of no thread.
    unsent = alices[1].attachments[0]
    models.Attachment.objects.filter(pk=unsent).update(thread=None)
    bobs = make_thread(bob, idle_days=1)
    alice.delete()
    assert not models.Attachment.objects.filter(pk=unsent).exists()
    for made in alices:
        gone(made, media)
    intact(bobs, media)
    assert not models.Run.objects.filter(thread__in=[m.thread for m in alices]).exists()
    assert leftovers(media) == NOTHING_LEFT


@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_held_threads_outlive_their_owner(media, alice, bob, how):
    held = make_thread(alice, idle_days=1, held=True, title="Evidence")
    not_held = make_thread(alice, idle_days=1)
    alice_pk = alice.pk
    if how == "instance":
        alice.delete()
    else:
        get_user_model().objects.filter(username__in=["alice", "bob"]).delete()
    intact(held, media)
    gone(not_held, media)
    thread = models.Thread.objects.get(pk=held.thread.pk)
    assert (thread.user_id, thread.anonymous_key) == (None, tombstone_key(alice_pk))
    owned = [
        *models.Attachment.objects.filter(thread=thread),
        *models.Run.objects.filter(thread=thread),
    ]
    assert {(row.user_id, row.anonymous_key) for row in owned} == {(None, tombstone_key(alice_pk))}
    assert owner_label(thread) == f"owner deleted (user #{alice_pk})"
    assert leftovers(media) == NOTHING_LEFT


def test_the_admin_shows_and_filters_threads_of_deleted_owners(media, alice, bob, admin_user):
    held = make_thread(alice, idle_days=1, held=True, title="Evidence")
    make_thread(bob, idle_days=1, title="Ordinary")
    make_thread("visitor-token-abcdefghijklmnopqrstuv", idle_days=1, title="Visitor")
    alice_pk = alice.pk
    alice.delete()
    client = Client()
    client.force_login(admin_user)
    page = client.get(
        f"/admin/django_chatkit/thread/{held.thread.pk}/change/", follow=True
    ).content.decode()
    assert f"owner deleted (user #{alice_pk})" in page
    listed = client.get("/admin/django_chatkit/thread/?owner_kind=deleted").content.decode()
    assert "Evidence" in listed
    assert "Ordinary" not in listed and "Visitor" not in listed
    anonymous = client.get("/admin/django_chatkit/thread/?owner_kind=anonymous").content.decode()
    assert "Visitor" in anonymous and "Evidence" not in anonymous


def test_a_rolled_back_deletion_keeps_everything(media, alice):
    alice_pk = alice.pk
    made = make_thread(alice, idle_days=1)
    held = make_thread(alice, idle_days=1, held=True)

    def delete_then_fail() -> None:
        with transaction.atomic():
            alice.delete()
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        delete_then_fail()
    intact(made, media)
    intact(held, media)
    assert models.Thread.objects.get(pk=held.thread.pk).user_id == alice_pk
    # The journal entry written inside the rolled-back transaction names rows that exist:
    # settling it removes nothing.
    journal.recover()
    intact(made, media)


def test_a_deletion_killed_after_its_commit_leaves_files_the_next_purge_removes(media, alice):
    # The cascade's commit happened, the process died before the on-commit file removals.
    made = make_thread(alice, idle_days=1)
    with transaction.atomic():
        # Collect on-commit callbacks instead of running them, as a kill would lose them.
        connection = transaction.get_connection()
        alice.delete()
        connection.run_on_commit = []
    assert not models.Attachment.objects.filter(pk__in=made.attachments).exists()
    assert (media / made.files[0]).exists()
    assert len(journal.pending()) == 1
    call_command("chatkit_purge", "--older-than", "365", stdout=StringIO())
    gone(made, media)
    assert leftovers(media) == NOTHING_LEFT
