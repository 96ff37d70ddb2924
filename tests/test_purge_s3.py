"""chatkit_purge with attachments and the removal journal on S3 (django-storages, against moto's
S3 server): objects removed with their rows, and a run that died after its commit leaves objects
the next run finds through the journal in the bucket."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from django_chatkit import models
from django_chatkit.attachments import journal
from tests import moto_s3
from tests.lifecycle_data import Made, make_thread
from tests.moto_s3 import ALIAS, Bucket

pytestmark = pytest.mark.django_db

CHATKIT = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_tests",
    "STORAGE": ALIAS,
    "RETENTION": 30,
}


@pytest.fixture(scope="session")
def s3_endpoint():
    yield from moto_s3.serve()


@pytest.fixture
def s3_bucket(s3_endpoint, tmp_path):
    yield from moto_s3.bucket_with_storages(s3_endpoint, tmp_path)


def purge() -> str:
    out = StringIO()
    call_command("chatkit_purge", stdout=out)
    return out.getvalue()


def objects_gone(bucket: Bucket, made: Made) -> None:
    left = set(made.files) & set(bucket.keys())
    assert not left, left


@override_settings(CHATKIT=CHATKIT)
def test_objects_go_with_their_rows_and_a_lost_removal_is_found_again(
    s3_bucket: Bucket, alice, monkeypatch
):
    old = make_thread(alice, idle_days=40, attachments=2, alias=ALIAS)
    recent = make_thread(alice, idle_days=1, alias=ALIAS)
    assert set(old.files) <= set(s3_bucket.keys(prefix="chatkit/attachments/"))

    # A run that dies right after its commit: the removals never happen.
    monkeypatch.setattr(journal, "settle", lambda name: journal.Settled())
    purge()
    monkeypatch.undo()
    assert set(old.files) <= set(s3_bucket.keys())
    assert len(s3_bucket.keys(prefix=journal.JOURNAL_DIR + "/")) == 1

    output = purge()
    assert "Settled 1 of 1 removal journal entry(ies)" in output
    objects_gone(s3_bucket, old)
    assert s3_bucket.keys(prefix=journal.JOURNAL_DIR + "/") == []
    assert set(recent.files) <= set(s3_bucket.keys())
    assert not models.Thread.objects.filter(pk=old.thread.pk).exists()
    assert models.Thread.objects.filter(pk=recent.thread.pk).exists()
