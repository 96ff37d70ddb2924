"""Rows of every kind for the export tests, written through the ORM (and Django storage).

``populate`` is also run in a subprocess on SQLite by tests/export_source.py: the source of the
SQLite -> PostgreSQL round trip of tests/test_import.py.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime, timedelta
from typing import Any

from chatkit.types import FileAttachment
from django.contrib.auth import get_user_model

from django_chatkit import models
from django_chatkit.attachments import storage
from django_chatkit.serialization import item_row_values
from tests.items import every_item

BASE = datetime(2025, 3, 4, 14, 30, 0, 123456, tzinfo=UTC)
FILE_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 40 + "Straße ✓".encode()


def users() -> dict[str, Any]:
    model = get_user_model()
    made = {}
    for name in ("alice", "bob", "reviewer"):
        made[name] = model._default_manager.filter(username=name).first() or (
            model.objects.create_user(name, email=f"{name}@example.com", password="pw")
        )
    return made


def thread_with_everything(
    owner: Any, n: int, *, anonymous_key: str = "", files: bool = True, reviewer: Any = None
) -> models.Thread:
    created = BASE + timedelta(hours=n)
    thread = models.Thread.objects.create(
        id=f"thr_export{n:04d}",
        user=owner,
        anonymous_key=anonymous_key,
        title=f"Thread {n} — ünïcode “quotes”",
        status="locked" if n % 3 == 1 else "active",
        status_reason="Spam" if n % 3 == 1 else "",
        moderator_note="note" if n % 3 == 1 else "",
        legal_hold=n % 4 == 3,
        created_at=created,
        updated_at=created + timedelta(minutes=5, microseconds=7),
        allowed_image_domains=["example.com"] if n % 2 else None,
        metadata={"z": 1, "a": {"nested": [1.5, None, "x"]}, "n": n},
    )
    items = every_item(thread.id)
    rows = [models.ThreadItem(thread=thread, **item_row_values(item)) for item in items]
    # Two items at the same instant: their order is the insertion order.
    tie = item_row_values(items[0])
    rows.append(
        models.ThreadItem(thread=thread, **{**tie, "item_id": "msg_tie_b", "text": "second"})
    )
    models.ThreadItem.objects.bulk_create(rows)
    models.Feedback.objects.create(thread=thread, item_id="msg_user", kind="negative")
    vote = models.Feedback.objects.create(
        thread=thread,
        item_id=items[1].id,
        kind="positive",
        reviewed_at=created + timedelta(days=1),
        reviewed_by=reviewer,
        review_note="ok" if reviewer else "",
    )
    models.Feedback.objects.filter(pk=vote.pk).update(
        created_at=created + timedelta(seconds=30), updated_at=created + timedelta(seconds=40)
    )
    for k, status in enumerate(("completed", "failed", "completed")):
        models.Run.objects.create(
            thread=thread,
            user=owner,
            anonymous_key=anonymous_key,
            kind="title" if k == 2 else "answer",
            model="gpt-4.1-mini",
            status=status,
            error_code="rate_limit" if status == "failed" else "",
            error_message="Rate limit" if status == "failed" else "",
            # The first two at the same instant: insertion order again.
            started_at=created + timedelta(seconds=min(k, 1)),
            first_token_at=created + timedelta(seconds=2) if status == "completed" else None,
            finished_at=created + timedelta(seconds=3),
            input_tokens=100 + k,
            output_tokens=20 + k,
            response_id=f"resp_{n}_{k}",
        )
    if files:
        attach(thread, f"atc_export{n:04d}", FILE_BYTES + str(n).encode())
    return thread


def attach(thread: models.Thread, attachment_id: str, data: bytes) -> models.Attachment:
    payload = FileAttachment(
        id=attachment_id, name="report ü.pdf", mime_type="application/pdf", thread_id=thread.id
    ).model_dump(mode="json")
    name = storage.save(
        "default",
        storage.new_name(attachment_id, ".pdf"),
        io.BytesIO(data),
        "application/pdf",
    )
    attachment = models.Attachment.objects.create(
        id=attachment_id,
        thread=thread,
        user=thread.user,
        anonymous_key=thread.anonymous_key,
        type="file",
        name="report ü.pdf",
        mime_type="application/pdf",
        payload=payload,
        status="ready",
        storage_alias="default",
        storage_name=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    models.Attachment.objects.filter(pk=attachment_id).update(
        created_at=thread.created_at + timedelta(seconds=1)
    )
    return attachment


def populate() -> dict[str, Any]:
    """Alice's, Bob's and an anonymous visitor's threads: every item type, ties, files."""
    people = users()
    threads = [
        thread_with_everything(people["alice"], 1, reviewer=people["reviewer"]),
        thread_with_everything(people["alice"], 2),
        thread_with_everything(people["bob"], 3, reviewer=people["reviewer"]),
        thread_with_everything(None, 4, anonymous_key="anon-key-4", files=False),
    ]
    # A run of Alice's in Bob's thread (a different owner is written out), and an empty thread.
    models.Run.objects.create(
        thread=threads[2],
        user=people["alice"],
        kind="answer",
        status="running",
        started_at=BASE + timedelta(days=9),
    )
    models.Thread.objects.create(
        id="thr_export0005", user=people["bob"], created_at=BASE, updated_at=BASE
    )
    return {"users": people, "threads": threads}


def member(tar: tarfile.TarFile, name: str) -> bytes:
    """The bytes of ``name`` in an export's tar."""
    handle = tar.extractfile(name)
    assert handle is not None, name
    return handle.read()
