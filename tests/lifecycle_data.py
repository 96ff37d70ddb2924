"""Threads with everything a thread holds, attachment files in real storage, and the checks that
nothing is left behind (purge and user deletion tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import Exists, OuterRef
from django.utils import timezone

from django_chatkit import models
from django_chatkit.attachments import journal
from django_chatkit.attachments.storage import PREFIX, get_storage, new_name
from django_chatkit.ids import new_typed_id

FILE_BYTES = 1000


@dataclass
class Made:
    """A thread made by :func:`make_thread` and what it holds."""

    thread: models.Thread
    attachments: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def owner_fields(owner: Any) -> dict[str, Any]:
    """A user, or an anonymous key (str)."""
    if isinstance(owner, str):
        return {"user": None, "anonymous_key": owner}
    return {"user": owner, "anonymous_key": ""}


def make_thread(
    owner: Any,
    *,
    idle_days: float,
    items: int = 3,
    attachments: int = 1,
    held: bool = False,
    title: str = "",
    alias: str = "default",
) -> Made:
    """A thread last active ``idle_days`` ago, with ``items`` messages, a vote, a run, and
    ``attachments`` attachments whose bytes (``FILE_BYTES`` each) are in the storage ``alias``."""
    now = timezone.now()
    last = now - timedelta(days=idle_days)
    thread = models.Thread.objects.create(
        **owner_fields(owner),
        title=title,
        legal_hold=held,
        created_at=last - timedelta(hours=1),
        updated_at=last,
    )
    made = Made(thread)
    for n in range(items):
        models.ThreadItem.objects.create(
            thread=thread,
            item_id=f"msg_{n}",
            type="user_message" if n % 2 == 0 else "assistant_message",
            created_at=last - timedelta(minutes=items - n),
            text=f"message {n}",
            payload={"id": f"msg_{n}"},
        )
    if items > 1:
        models.Feedback.objects.create(thread=thread, item_id="msg_1", kind="positive")
    models.Run.objects.create(
        **owner_fields(owner), thread=thread, kind="answer", status="completed", started_at=last
    )
    storage = get_storage(alias)
    for _ in range(attachments):
        attachment_id = new_typed_id("attachment")
        stored = storage.save(
            new_name(attachment_id, ".txt"), ContentFile(b"x" * FILE_BYTES, name="a.txt")
        )
        models.Attachment.objects.create(
            id=attachment_id,
            **owner_fields(owner),
            thread=thread,
            type="file",
            name="a.txt",
            mime_type="text/plain",
            payload={"id": attachment_id},
            storage_alias=alias,
            storage_name=stored,
            size=FILE_BYTES,
        )
        made.attachments.append(attachment_id)
        made.files.append(stored)
    return made


def stored_files(root: Path) -> set[str]:
    """Every attachment file under the storage root (storage names)."""
    base = root / PREFIX
    if not base.exists():
        return set()
    return {
        os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
        for folder, _, names in os.walk(base)
        for name in names
    }


def leftovers(root: Path) -> dict[str, Any]:
    """Everything a deletion may leave behind; all empty when nothing was."""
    thread_exists = Exists(models.Thread.objects.filter(pk=OuterRef("thread_id")))
    named = set(
        models.Attachment.objects.exclude(storage_name="").values_list("storage_name", flat=True)
    )
    files = stored_files(root)
    return {
        "items without thread": models.ThreadItem.objects.filter(~thread_exists).count(),
        "feedback without thread": models.Feedback.objects.filter(~thread_exists).count(),
        "runs without thread": models.Run.objects.filter(~thread_exists).count(),
        "attachments without thread": models.Attachment.objects.filter(thread__isnull=False)
        .filter(~thread_exists)
        .count(),
        "files without row": sorted(files - named),
        "rows without file": sorted(named - files),
        "journal entries": journal.pending(),
    }


NOTHING_LEFT = {
    "items without thread": 0,
    "feedback without thread": 0,
    "runs without thread": 0,
    "attachments without thread": 0,
    "files without row": [],
    "rows without file": [],
    "journal entries": [],
}


def intact(made: Made, root: Path, items: int = 3) -> None:
    """``made``'s thread and all it holds are still there, files included."""
    thread = models.Thread.objects.get(pk=made.thread.pk)
    assert models.ThreadItem.objects.filter(thread=thread).count() == items
    assert models.Run.objects.filter(thread=thread).count() == 1
    assert sorted(
        models.Attachment.objects.filter(thread=thread).values_list("id", flat=True)
    ) == sorted(made.attachments)
    for name in made.files:
        assert (root / name).read_bytes() == b"x" * FILE_BYTES


def gone(made: Made, root: Path) -> None:
    """``made``'s thread, its rows and its files are all deleted."""
    assert not models.Thread.objects.filter(pk=made.thread.pk).exists()
    assert not models.Attachment.objects.filter(pk__in=made.attachments).exists()
    for name in made.files:
        assert not (root / name).exists(), name
