"""Export (issue #14, items 1-2): the JSONL format against its JSON Schema, determinism, the
command's options, Markdown, the tar with files, and batches that keep memory flat."""

from __future__ import annotations

import io
import json
import tarfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_chatkit import models
from django_chatkit.export import FORMAT_VERSION
from django_chatkit.export.jsonl import dumps, iter_jsonl
from django_chatkit.export.records import iter_threads
from tests.export_data import FILE_BYTES, member, populate, thread_with_everything, users

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def data(media) -> dict[str, Any]:
    return populate()


def schema() -> dict[str, Any]:
    # Read as package data, as an installed wheel would hold it.
    text = resources.files("django_chatkit.export").joinpath("schema/v1.json").read_text()
    return dict(json.loads(text))


def run_export(tmp_path: Path, *args: str) -> bytes:
    target = tmp_path / "out.bin"
    call_command("chatkit_export", *args, "--output", str(target))
    return target.read_bytes()


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_every_line_is_valid_against_the_schema_and_canonical(data, tmp_path):
    output = run_export(tmp_path)
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    jsonschema.Draft202012Validator.check_schema(schema())
    raw_lines = output.decode().splitlines()
    assert len(raw_lines) == models.Thread.objects.count() == 5
    for raw in raw_lines:
        record = json.loads(raw)
        errors = sorted(validator.iter_errors(record), key=str)
        assert not errors, errors
        # Exactly json.dumps with sorted keys: the streamed writer adds nothing of its own.
        assert raw == dumps(record)
        assert record["format_version"] == FORMAT_VERSION
    assert output.endswith(b"\n")


def test_a_record_holds_the_rows_verbatim_in_order(data, tmp_path):
    records = {r["thread"]["id"]: r for r in lines(run_export(tmp_path))}
    assert list(records) == sorted(records)  # primary-key order
    record = records["thr_export0001"]
    thread = models.Thread.objects.get(pk="thr_export0001")
    assert record["thread"]["owner"] == {"username": "alice", "email": "alice@example.com"}
    assert record["thread"]["created_at"] == "2025-03-04T15:30:00.123456Z"  # UTC, microseconds
    assert record["thread"]["metadata"] == thread.metadata
    stored = list(
        models.ThreadItem.objects.filter(thread=thread)
        .order_by("created_at", "id")
        .values_list("item_id", "payload", "text")
    )
    assert [(i["item_id"], i["payload"], i["text"]) for i in record["items"]] == stored
    # The tie (same created_at) in insertion order.
    ids = [i["item_id"] for i in record["items"]]
    assert ids.index("msg_user") + 1 == ids.index("msg_tie_b")
    assert [f["item_id"] for f in record["feedback"]] == sorted(
        f["item_id"] for f in record["feedback"]
    )
    assert record["feedback"][0]["reviewed_by"] in (
        None,
        {"username": "reviewer", "email": "reviewer@example.com"},
    )
    assert [r["response_id"] for r in record["runs"]] == ["resp_1_0", "resp_1_1", "resp_1_2"]
    assert "owner" not in record["runs"][0]
    (attachment,) = record["attachments"]
    assert attachment["sha256"] and attachment["size"] == len(FILE_BYTES) + 1
    # Bob's thread: Alice's run is written with its owner; the anonymous thread's owner is a key.
    assert records["thr_export0003"]["runs"][-1]["owner"]["username"] == "alice"
    assert records["thr_export0004"]["thread"]["owner"] == {"anonymous_key": "anon-key-4"}
    assert records["thr_export0005"]["items"] == []


def test_two_exports_are_byte_identical(data, tmp_path):
    assert run_export(tmp_path) == run_export(tmp_path)


def test_batches_do_not_change_the_output_and_queries_do_not_grow(data, media):
    everything = models.Thread.objects.all()
    whole = b"".join(iter_jsonl(everything))
    for size in (1, 2, 3):
        assert [e.record() for e in iter_threads(everything, batch_size=size)] == lines(whole)
    # A batch of many threads costs the same number of queries as a batch of a few.
    people = users()
    for n in range(10, 30):
        thread_with_everything(people["bob"], n, files=False)

    def queries(threads) -> int:
        with CaptureQueriesContext(connection) as captured:
            b"".join(iter_jsonl(threads))
        return len(captured)

    few = queries(models.Thread.objects.filter(pk__in=["thr_export0010", "thr_export0011"]))
    many = queries(models.Thread.objects.filter(pk__gte="thr_export0010"))
    assert few == many


def test_filters(data, tmp_path):
    ids = lambda out: [r["thread"]["id"] for r in lines(out)]  # noqa: E731
    assert ids(run_export(tmp_path, "--user", "alice")) == ["thr_export0001", "thr_export0002"]
    assert ids(run_export(tmp_path, "--user", "bob@example.com")) == [
        "thr_export0003",
        "thr_export0005",
    ]
    assert ids(
        run_export(tmp_path, "--thread", "thr_export0004", "--thread", "thr_export0002")
    ) == ["thr_export0002", "thr_export0004"]
    # Last activity (updated_at): thread n is active at BASE + n hours + 5 minutes.
    assert ids(run_export(tmp_path, "--since", "2025-03-04T19:00:00+01:00")) == ["thr_export0004"]
    assert ids(run_export(tmp_path, "--since", "2025-03-05")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "no user"),
        (["--thread", "thr_missing"], "thr_missing"),
        (["--user", "alice", "--thread", "thr_export0003"], "thr_export0003"),
        (["--since", "yesterday"], "YYYY-MM-DD"),
        (["--output", "/nonexistent/dir/x.jsonl"], "--output"),
    ],
)
def test_bad_arguments_are_command_errors(data, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("chatkit_export", *args)


def test_markdown_is_a_tar_of_one_file_per_thread(data, tmp_path):
    output = run_export(tmp_path, "--format", "markdown", "--user", "alice")
    with tarfile.open(fileobj=io.BytesIO(output)) as tar:
        assert tar.getnames() == ["thr_export0001.md", "thr_export0002.md"]
        page = member(tar, "thr_export0001.md").decode()
    assert page.startswith("# Thread 1 — ünïcode “quotes”\n")
    assert "Héllo 👋 <b>world</b>" in page
    assert "feedback: negative" in page
    assert "report ü.pdf" in page


def test_with_files_the_tar_holds_the_jsonl_and_the_bytes(data, tmp_path):
    plain = run_export(tmp_path)
    output = run_export(tmp_path, "--with-files")
    with tarfile.open(fileobj=io.BytesIO(output)) as tar:
        names = tar.getnames()
        assert names[-1] == "threads.jsonl"
        assert member(tar, "threads.jsonl") == plain
        assert sorted(names[:-1]) == [
            "files/atc_export0001",
            "files/atc_export0002",
            "files/atc_export0003",
        ]
        assert member(tar, "files/atc_export0002") == FILE_BYTES + b"2"


def test_a_missing_file_is_reported_and_the_rest_exported(data, tmp_path, capsys):
    from django_chatkit.attachments import storage

    attachment = models.Attachment.objects.get(pk="atc_export0001")
    storage.remove("default", [attachment.storage_name])
    output = run_export(tmp_path, "--with-files")
    with tarfile.open(fileobj=io.BytesIO(output)) as tar:
        assert "files/atc_export0001" not in tar.getnames()
        assert "files/atc_export0002" in tar.getnames()
    assert "atc_export0001" in capsys.readouterr().err


def test_progress_goes_to_stderr_only_when_it_is_a_terminal(data, tmp_path, capsys, monkeypatch):
    run_export(tmp_path)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    run_export(tmp_path)
    assert capsys.readouterr().err.endswith("\r5 threads exported.\n")


def test_stdout_is_the_default_output(data, tmp_path, capfdbinary):
    call_command("chatkit_export", "--thread", "thr_export0005")
    out = capfdbinary.readouterr().out
    assert [r["thread"]["id"] for r in lines(out)] == ["thr_export0005"]


def test_member_names_are_never_paths():
    from django_chatkit.export.archive import file_member, member_name

    assert member_name("thr_01jd8x") == "thr_01jd8x"
    for unsafe in ("../x", "a/b", "..", ".hidden", "a\\..\\b", ""):
        name = member_name(unsafe)
        assert name.startswith("id-") and "/" not in name and ".." not in name
    assert file_member("atc_1") == "files/atc_1"
