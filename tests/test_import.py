"""Import (issue #14, item 3): export -> import -> export byte-identical (on this database, and
from SQLite into this one), idempotence, owners by username / email / --owner-map, unknown
owners, newer format versions refused, files restored through storage, a thread per
transaction."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from django_chatkit import models
from django_chatkit.attachments import storage
from tests.export_data import FILE_BYTES, member, populate
from tests.factories import chatkit_tables, snapshot

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def export_to(path: Path, *args: str) -> bytes:
    call_command("chatkit_export", *args, "--output", str(path))
    return path.read_bytes()


def import_(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("chatkit_import", str(path), *args, stdout=out)
    return out.getvalue()


def wipe_chatkit_rows() -> None:
    models.Thread.objects.all().delete()  # cascades to items, feedback, runs, attachments
    models.Attachment.objects.all().delete()
    assert not any(model._default_manager.exists() for model in chatkit_tables())


def jsonl_of(tar_bytes: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return member(tar, "threads.jsonl")


def test_round_trip_on_this_database_is_byte_identical(media, tmp_path):
    populate()
    first = export_to(tmp_path / "first.jsonl")
    wipe_chatkit_rows()
    report = import_(tmp_path / "first.jsonl")
    assert "Imported 5 thread(s)" in report
    assert export_to(tmp_path / "second.jsonl") == first


def test_import_is_idempotent(media, tmp_path):
    populate()
    export_to(tmp_path / "all.jsonl")
    wipe_chatkit_rows()
    import_(tmp_path / "all.jsonl")
    before = snapshot()
    report = import_(tmp_path / "all.jsonl")
    assert "Imported 0 thread(s)" in report and "Skipped 5 already present" in report
    assert snapshot() == before


def test_files_are_restored_into_the_configured_storage(settings, media, tmp_path):
    populate()
    archive = export_to(tmp_path / "all.tar", "--with-files")
    wipe_chatkit_rows()
    # Another site: an empty storage.
    settings.MEDIA_ROOT = str(tmp_path / "other-media")
    import_(tmp_path / "all.tar")
    for n in (1, 2, 3):
        attachment = models.Attachment.objects.get(pk=f"atc_export000{n}")
        with storage.get_storage(attachment.storage_alias).open(attachment.storage_name) as f:
            assert f.read() == FILE_BYTES + str(n).encode()
    assert (tmp_path / "other-media" / "chatkit" / "attachments").is_dir()
    # The same rows, the same storage names (the tar's own dates differ: not compared).
    assert jsonl_of(export_to(tmp_path / "again.tar", "--with-files")) == jsonl_of(archive)
    # Again: nothing changes, no second copy of any file.
    files = sorted(p for p in (tmp_path / "other-media").rglob("*") if p.is_file())
    import_(tmp_path / "all.tar")
    assert sorted(p for p in (tmp_path / "other-media").rglob("*") if p.is_file()) == files


def test_a_tampered_file_is_refused(media, tmp_path):
    populate()
    archive = export_to(tmp_path / "all.tar", "--with-files")
    wipe_chatkit_rows()
    tampered = archive.replace(FILE_BYTES + b"2", FILE_BYTES + b"X")
    (tmp_path / "bad.tar").write_bytes(tampered)
    with pytest.raises(CommandError, match="SHA-256"):
        import_(tmp_path / "bad.tar")
    # Thread 1 came before it and is complete; thread 2 is not there at all.
    assert models.Thread.objects.filter(pk="thr_export0001").exists()
    assert not models.Thread.objects.filter(pk="thr_export0002").exists()
    assert not models.ThreadItem.objects.filter(thread_id="thr_export0002").exists()


def test_a_failing_thread_leaves_nothing_of_itself(media, tmp_path):
    populate()
    export_to(tmp_path / "all.jsonl")
    wipe_chatkit_rows()
    records = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    # Two items with one id: the second insert breaks the unique constraint, mid-thread.
    records[1]["items"][-1]["item_id"] = records[1]["items"][0]["item_id"]
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(CommandError, match="thr_export0002"):
        import_(tmp_path / "bad.jsonl")
    assert list(models.Thread.objects.values_list("pk", flat=True)) == ["thr_export0001"]
    assert not models.ThreadItem.objects.filter(thread_id="thr_export0002").exists()
    assert not models.Run.objects.filter(thread_id="thr_export0002").exists()


def rename_users() -> None:
    model = get_user_model()
    model.objects.filter(username="alice").update(username="alice2", email="a2@example.com")
    model.objects.filter(username="bob").update(username="robert")  # email kept


def test_owners_are_found_by_username_then_email_then_the_map(media, tmp_path):
    people = populate()["users"]
    export_to(tmp_path / "all.jsonl")
    wipe_chatkit_rows()
    rename_users()
    # Alice matches neither by username nor by email: the import stops before writing.
    with pytest.raises(CommandError, match=r"1 owner\(s\) have no user.*alice <alice@example.com>"):
        import_(tmp_path / "all.jsonl")
    assert not models.Thread.objects.exists()
    import_(tmp_path / "all.jsonl", "--owner-map", "alice=a2@example.com")
    assert set(models.Thread.objects.filter(user=people["alice"]).values_list("pk", flat=True)) == {
        "thr_export0001",
        "thr_export0002",
    }
    # Bob by his email; his thread's run of Alice's is Alice's again.
    assert models.Thread.objects.get(pk="thr_export0003").user == people["bob"]
    assert (
        models.Run.objects.get(thread_id="thr_export0003", status="running").user == people["alice"]
    )
    assert models.Attachment.objects.get(pk="atc_export0001").user == people["alice"]


def test_owner_map_from_a_file(media, tmp_path):
    populate()
    export_to(tmp_path / "all.jsonl")
    wipe_chatkit_rows()
    rename_users()
    (tmp_path / "owners.txt").write_text("# old=new\nalice@example.com = alice2\n")
    import_(tmp_path / "all.jsonl", "--owner-map", str(tmp_path / "owners.txt"))
    thread = models.Thread.objects.select_related("user").get(pk="thr_export0001")
    assert thread.user is not None and thread.user.username == "alice2"
    with pytest.raises(CommandError, match="not OLD=NEW"):
        import_(tmp_path / "all.jsonl", "--owner-map", "=x")


def test_unknown_owners_skipped_or_created(media, tmp_path):
    populate()
    export_to(tmp_path / "all.jsonl")
    wipe_chatkit_rows()
    rename_users()
    report = import_(tmp_path / "all.jsonl", "--unknown-owners", "skip")
    assert "Skipped 0 already present, 2 of unknown owners" in report
    assert not models.Thread.objects.filter(pk__in=["thr_export0001", "thr_export0002"]).exists()
    report = import_(tmp_path / "all.jsonl", "--unknown-owners", "create")
    created = get_user_model().objects.get(username="alice")
    assert created.email == "alice@example.com" and not created.has_usable_password()
    assert models.Thread.objects.get(pk="thr_export0001").user == created
    assert "Users created: 1" in report


def test_a_newer_format_version_is_refused_before_any_write(media, tmp_path):
    populate()
    export_to(tmp_path / "all.jsonl")
    wipe_chatkit_rows()
    records = (tmp_path / "all.jsonl").read_text().splitlines()
    last = json.loads(records[-1])
    last["format_version"] = 2
    (tmp_path / "newer.jsonl").write_text("\n".join([*records[:-1], json.dumps(last)]) + "\n")
    with pytest.raises(CommandError, match="format_version 2 is newer"):
        import_(tmp_path / "newer.jsonl")
    assert not models.Thread.objects.exists()


def test_bad_files_are_command_errors(db, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        import_(tmp_path / "missing.jsonl")
    (tmp_path / "junk.jsonl").write_text("not json\n")
    with pytest.raises(CommandError, match="line 1: not JSON"):
        import_(tmp_path / "junk.jsonl")


def test_sqlite_export_imports_here_identically(media, tmp_path):
    """The source is a SQLite database made by another process; the target is this test's
    database (PostgreSQL when DATABASE_URL says so: the cross-vendor round trip)."""
    source_media = tmp_path / "source-media"
    archive_path = tmp_path / "from-sqlite.tar"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.export_source",
            str(tmp_path / "source.sqlite3"),
            str(source_media),
            str(archive_path),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    source_jsonl = jsonl_of(archive_path.read_bytes())
    # The reviewer, Alice and Bob exist here too (other ids than in the source).
    get_user_model().objects.create_user("someone-else", password="pw")
    for name in ("alice", "bob", "reviewer"):
        get_user_model().objects.create_user(name, email=f"{name}@example.com", password="pw")
    import_(archive_path)
    here = export_to(tmp_path / "here.jsonl")
    assert here == source_jsonl
    assert models.ThreadItem.objects.count() == sum(
        len(json.loads(line)["items"]) for line in source_jsonl.splitlines()
    )
    attachment: Any = models.Attachment.objects.get(pk="atc_export0003")
    with storage.get_storage(attachment.storage_alias).open(attachment.storage_name) as f:
        assert f.read() == FILE_BYTES + b"3"


def test_an_edited_storage_name_never_becomes_a_path(settings, media, tmp_path):
    populate()
    archive = export_to(tmp_path / "all.tar", "--with-files")
    wipe_chatkit_rows()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        records = [json.loads(line) for line in jsonl_of(archive).splitlines()]
        records[0]["attachments"][0]["storage_name"] = "../../outside.pdf"
        edited = tmp_path / "edited.tar"
        with tarfile.open(edited, "w") as out:
            for info in tar.getmembers():
                if info.name != "threads.jsonl":
                    out.addfile(info, tar.extractfile(info))
            data = "".join(json.dumps(r) + "\n" for r in records).encode()
            info = tarfile.TarInfo("threads.jsonl")
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    settings.MEDIA_ROOT = str(tmp_path / "target" / "media")
    import_(edited)
    attachment = models.Attachment.objects.get(pk="atc_export0001")
    assert attachment.storage_name.startswith("chatkit/attachments/atc_export0001/")
    assert attachment.storage_name.endswith(".pdf")
    assert not (tmp_path / "target" / "outside.pdf").exists()
    assert not (tmp_path / "outside.pdf").exists()
    with storage.get_storage("default").open(attachment.storage_name) as f:
        assert f.read() == FILE_BYTES + b"1"
