"""Tar archives, written as a stream (no seek, nothing buffered but one thread's Markdown).

Members: ``threads.jsonl`` (last, so that files can be streamed as their thread is read; the
JSONL waits in a temporary file meanwhile) or ``<thread id>.md`` per thread, and with files,
``files/<attachment id>`` holding each ready attachment's bytes read through Django storage.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from django.conf import settings
from django.db.models import QuerySet

from django_chatkit import models
from django_chatkit.attachments import storage
from django_chatkit.conf import chatkit_settings
from django_chatkit.export import markdown
from django_chatkit.export.jsonl import thread_line
from django_chatkit.export.records import ThreadExport, iter_threads, parse_timestamp

JSONL_MEMBER = "threads.jsonl"
FILES_PREFIX = "files/"
BLOCK = tarfile.BLOCKSIZE
COPY_CHUNK = 1024 * 1024


# Ids are generated (``atc_...``, ``thr_...``), but custom stores may make others: a member name
# is the id only when it cannot be a path of its own (no "/", no "..") once extracted.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def member_name(row_id: str) -> str:
    if _SAFE_NAME.fullmatch(row_id) and ".." not in row_id:
        return row_id
    return "id-" + hashlib.sha256(row_id.encode()).hexdigest()[:32]


def file_member(attachment_id: str) -> str:
    return f"{FILES_PREFIX}{member_name(attachment_id)}"


def header(name: str, size: int, mtime: datetime | None = None) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = int((mtime or datetime.now(UTC)).timestamp())
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def end() -> bytes:
    return b"\0" * (2 * BLOCK)


def _member_from_file(
    name: str, handle: IO[bytes], mtime: datetime | None = None
) -> Iterator[bytes]:
    size = handle.tell()
    handle.seek(0)
    yield header(name, size, mtime)
    while chunk := handle.read(COPY_CHUNK):
        yield chunk
    yield padding(size)


def attachment_location(attachment: dict[str, Any]) -> tuple[str, str] | None:
    """(storage alias, name) of a ready attachment's bytes; None when it has none."""
    if attachment["status"] != models.AttachmentStatus.READY or not attachment["storage_name"]:
        return None
    return attachment["storage_alias"] or chatkit_settings.STORAGE, attachment["storage_name"]


def read_chunks(alias: str, name: str) -> Iterator[bytes]:
    if storage.is_s3(storage.get_storage(alias)):
        return storage.s3_iter_chunks(alias, name)
    return storage.iter_chunks(alias, name)


def _file_members(
    export: ThreadExport, on_missing: Callable[[dict[str, Any], Exception], None] | None
) -> Iterator[bytes]:
    for attachment in export.attachments:
        location = attachment_location(attachment)
        if location is None:
            continue
        alias, name = location
        try:
            size = storage.size(alias, name)
            chunks = read_chunks(alias, name)
            first = next(chunks, b"")
        except Exception as exc:  # missing file, storage not configured: the rest goes on
            if on_missing is not None:
                on_missing(attachment, exc)
            continue
        yield header(file_member(attachment["id"]), size, parse_timestamp(attachment["created_at"]))
        written = len(first)
        yield first
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                raise OSError(f"{name} grew while it was archived")
            yield chunk
        if written != size:
            raise OSError(f"{name}: {written} bytes read, {size} announced by the storage")
        yield padding(size)


def iter_archive(
    threads: QuerySet[models.Thread],
    *,
    fmt: str = "jsonl",
    with_files: bool = True,
    on_thread: Callable[[ThreadExport], None] | None = None,
    on_missing: Callable[[dict[str, Any], Exception], None] | None = None,
) -> Iterator[bytes]:
    """A tar of the export of ``threads`` (``fmt``: "jsonl" or "markdown"), in pieces."""
    temp_dir = settings.FILE_UPLOAD_TEMP_DIR
    with tempfile.TemporaryFile(dir=temp_dir) as jsonl:
        for export in iter_threads(threads):
            if on_thread is not None:
                on_thread(export)
            if fmt == "jsonl":
                for piece in thread_line(export):
                    jsonl.write(piece)
            else:
                with tempfile.SpooledTemporaryFile(max_size=COPY_CHUNK, dir=temp_dir) as page:
                    for text in markdown.render(export):
                        page.write(text.encode())
                    yield from _member_from_file(
                        f"{member_name(export.thread.pk)}.md", page, export.thread.updated_at
                    )
            if with_files:
                yield from _file_members(export, on_missing)
        if fmt == "jsonl":
            yield from _member_from_file(JSONL_MEMBER, jsonl)
    yield end()
