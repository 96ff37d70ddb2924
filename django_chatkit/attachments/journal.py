"""A journal of file removals, so that no file outlives its row when a process is killed.

A row and its file cannot be deleted atomically. Deleting the file first leaves, after a kill,
a row whose file is gone (a broken attachment, perhaps in a thread put on legal hold since);
deleting the row first leaves, after a kill, a file that nothing names any more. So a bulk
deletion (``chatkit_purge``, a user's deletion) does this:

1. deletes the rows in a transaction, collecting their files
   (:func:`~django_chatkit.attachments.lifecycle.collecting_removed_files`);
2. before committing, writes the list of those files into the storage itself, as a journal
   entry under ``chatkit/purge-journal/`` (the storage of ``CHATKIT["STORAGE"]``);
3. commits, then removes the files, then the journal entry.

Killed before the commit, the rows are still there: the entry names files that rows still
use, and :func:`settle` leaves them alone. Killed after it, the entry names files without rows,
which the next :func:`recover` removes. The journal lives in the storage, not on the machine
that ran the command, so a rerun from any host (cron on another node) finds it.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.files.base import ContentFile

from django_chatkit import models
from django_chatkit.attachments.lifecycle import RemovedFiles
from django_chatkit.attachments.storage import get_storage
from django_chatkit.conf import chatkit_settings

logger = logging.getLogger("django_chatkit.attachments")

JOURNAL_DIR = "chatkit/purge-journal"
# An entry whose attachments still have rows after this long belongs to a deletion that rolled
# back (killed before its commit): the entry is dropped, the files kept. No live batch holds its
# transaction open for a day.
ABANDONED_AFTER = timedelta(days=1)
_STAMP = "%Y%m%dT%H%M%S"


@dataclass
class Settled:
    """What settling journal entries did."""

    entries: int = 0
    files: int = 0
    bytes: int = 0
    failed: int = 0


def _storage_alias() -> str:
    return chatkit_settings.STORAGE


def write(files: Iterable[RemovedFiles]) -> str | None:
    """Store a journal entry listing ``files``; its name, or None when there is nothing."""
    rows = [
        {"attachment": f.attachment_id, "alias": f.alias, "names": list(f.names), "size": f.size}
        for f in files
    ]
    if not rows:
        return None
    name = f"{JOURNAL_DIR}/{datetime.now(UTC).strftime(_STAMP)}-{secrets.token_hex(8)}.json"
    body = json.dumps({"files": rows}).encode()
    return str(get_storage(_storage_alias()).save(name, ContentFile(body, name=name)))


def _written_at(name: str) -> datetime | None:
    stamp = name.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def settle(name: str) -> Settled:
    """Remove the files an entry lists whose attachment rows are gone; then the entry itself,
    unless a removal failed (retried on the next run) or rows it names still exist (a deletion
    in progress; after ``ABANDONED_AFTER``, one that rolled back)."""
    result = Settled()
    storage = get_storage(_storage_alias())
    try:
        with storage.open(name, "rb") as handle:
            rows = json.loads(handle.read())["files"]
    except FileNotFoundError:
        return result  # settled meanwhile by another run
    except (ValueError, KeyError):
        logger.exception("Unreadable purge journal entry %r: removed", name)
        storage.delete(name)
        return result
    alive = set(
        models.Attachment.objects.filter(pk__in=[row["attachment"] for row in rows]).values_list(
            "pk", flat=True
        )
    )
    for row in rows:
        if row["attachment"] in alive:
            continue
        try:
            target = get_storage(row["alias"])
            for file_name in row["names"]:
                target.delete(file_name)  # a missing file is no error (Django's contract)
        except Exception:
            logger.exception("Could not remove the files of attachment %s", row["attachment"])
            result.failed += 1
            continue
        result.files += 1
        result.bytes += int(row.get("size") or 0)
    written = _written_at(name)
    abandoned = written is None or datetime.now(UTC) - written > ABANDONED_AFTER
    if not result.failed and (not alive or abandoned):
        storage.delete(name)
        result.entries = 1
    return result


def pending() -> list[str]:
    """The journal entries left by deletions killed (or failing) before they were settled."""
    storage = get_storage(_storage_alias())
    try:
        _, files = storage.listdir(JOURNAL_DIR)
    except FileNotFoundError:  # FileSystemStorage: no entry was ever written
        return []
    return sorted(f"{JOURNAL_DIR}/{name}" for name in files if name.endswith(".json"))


def recover() -> Settled:
    """Settle every entry left behind."""
    total = Settled()
    for name in pending():
        done = settle(name)
        total.entries += done.entries
        total.files += done.files
        total.bytes += done.bytes
        total.failed += done.failed
    return total
