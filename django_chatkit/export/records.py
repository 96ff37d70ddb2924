"""Threads as export records, read in batches so that memory stays flat in the number of threads.

A record is one thread with everything that hangs off it::

    {"format_version": 1, "thread": {...}, "items": [...], "attachments": [...],
     "feedback": [...], "runs": [...]}

Threads are read in primary-key order (ids are time-sortable: oldest first), ``BATCH_SIZE`` at a
time by keyset; each batch's attachments and feedback are read in one query each, its items and
runs through a server-side cursor each, consumed thread by thread (a thread of 100,000 items is
never held in memory by the exporter). Internal row ids (items', feedback's, runs') are not
exported: rows are listed in the order that gives their ids, and an import inserts them in that
order, so an export of the restored database lists them the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from django_chatkit import models
from django_chatkit.export import FORMAT_VERSION

BATCH_SIZE = 500
CURSOR_CHUNK = 2000

ITEM_COLUMNS = ("thread_id", "item_id", "type", "created_at", "text", "payload")
RUN_COLUMNS = (
    "thread_id",
    "user_id",
    "anonymous_key",
    "kind",
    "model",
    "status",
    "error_code",
    "error_message",
    "started_at",
    "first_token_at",
    "finished_at",
    "input_tokens",
    "output_tokens",
    "response_id",
)


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds, always the same length: what every export writes."""
    if value is None:
        return None
    # isoformat, not strftime: faster, and its year always has four digits.
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    return required_timestamp(value)


def required_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def user_owner(user: Any) -> dict[str, str]:
    email_field = user.get_email_field_name()
    return {"username": user.get_username(), "email": getattr(user, email_field, "") or ""}


def owner_of(row: models.OwnedModel) -> dict[str, str]:
    if row.user_id is not None:
        return user_owner(row.user)
    return {"anonymous_key": row.anonymous_key}


def thread_fields(thread: models.Thread) -> dict[str, Any]:
    fields = {
        "id": thread.id,
        "owner": owner_of(thread),
        "title": thread.title,
        "status": thread.status,
        "status_reason": thread.status_reason,
        "moderator_note": thread.moderator_note,
        "legal_hold": thread.legal_hold,
        "deleted_by_owner_at": timestamp(thread.deleted_by_owner_at),
        "created_at": timestamp(thread.created_at),
        "updated_at": timestamp(thread.updated_at),
        "allowed_image_domains": thread.allowed_image_domains,
        "metadata": thread.metadata,
    }
    if thread.source == models.ThreadSource.HOSTED:
        # Only for hosted threads: self-hosted threads export exactly as before.
        fields["hosted"] = {
            "upstream_cursor": thread.upstream_cursor,
            "upstream_updated_at": timestamp(thread.upstream_updated_at),
            "upstream_deleted_at": timestamp(thread.upstream_deleted_at),
        }
    return fields


def _same_owner(row: models.OwnedModel, thread: models.Thread) -> bool:
    return row.user_id == thread.user_id and row.anonymous_key == thread.anonymous_key


def attachment_fields(attachment: models.Attachment, thread: models.Thread) -> dict[str, Any]:
    fields = {
        "id": attachment.id,
        "type": attachment.type,
        "name": attachment.name,
        "mime_type": attachment.mime_type,
        "created_at": timestamp(attachment.created_at),
        "payload": attachment.payload,
        "status": attachment.status,
        "storage_alias": attachment.storage_alias,
        "storage_name": attachment.storage_name,
        "incoming_name": attachment.incoming_name,
        "size": attachment.size,
        "sha256": attachment.sha256,
    }
    # Attachments and runs belong to their thread's owner; a different one is written out.
    if not _same_owner(attachment, thread):
        fields["owner"] = owner_of(attachment)
    return fields


def feedback_fields(feedback: models.Feedback) -> dict[str, Any]:
    return {
        "item_id": feedback.item_id,
        "kind": feedback.kind,
        "created_at": timestamp(feedback.created_at),
        "updated_at": timestamp(feedback.updated_at),
        "reviewed_at": timestamp(feedback.reviewed_at),
        "reviewed_by": user_owner(feedback.reviewed_by) if feedback.reviewed_by else None,
        "review_note": feedback.review_note,
    }


def item_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    _, item_id, type_, created_at, text, payload = row
    return {
        "item_id": item_id,
        "type": type_,
        "created_at": timestamp(created_at),
        "text": text,
        "payload": payload,
    }


class _Owners:
    """Users met as the owner of a run that is not its thread's owner's (rare): one query each."""

    def __init__(self) -> None:
        self.cache: dict[int, dict[str, str]] = {}

    def get(self, user_id: int) -> dict[str, str]:
        if user_id not in self.cache:
            self.cache[user_id] = user_owner(get_user_model()._default_manager.get(pk=user_id))
        return self.cache[user_id]


def run_fields(row: tuple[Any, ...], thread: models.Thread, owners: _Owners) -> dict[str, Any]:
    values = dict(zip(RUN_COLUMNS, row, strict=True))
    fields = {
        "kind": values["kind"],
        "model": values["model"],
        "status": values["status"],
        "error_code": values["error_code"],
        "error_message": values["error_message"],
        "started_at": timestamp(values["started_at"]),
        "first_token_at": timestamp(values["first_token_at"]),
        "finished_at": timestamp(values["finished_at"]),
        "input_tokens": values["input_tokens"],
        "output_tokens": values["output_tokens"],
        "response_id": values["response_id"],
    }
    if values["user_id"] != thread.user_id or values["anonymous_key"] != thread.anonymous_key:
        fields["owner"] = (
            owners.get(values["user_id"])
            if values["user_id"] is not None
            else {"anonymous_key": values["anonymous_key"]}
        )
    return fields


class _ByThread:
    """Rows of a batch's threads, ordered by thread id, handed out one thread at a time."""

    def __init__(self, rows: Iterator[tuple[Any, ...]], positions: dict[str, int]) -> None:
        self.rows = rows
        self.positions = positions
        self.pending: tuple[Any, ...] | None = None
        self.done = False

    def take(self, thread_id: str) -> Iterator[tuple[Any, ...]]:
        position = self.positions[thread_id]
        while True:
            if self.pending is None:
                if self.done:
                    return
                try:
                    self.pending = next(self.rows)
                except StopIteration:
                    self.done = True
                    return
            row = self.pending
            row_position = self.positions[row[0]]
            if row_position > position:  # the next thread's: left for it
                return
            self.pending = None
            if row_position == position:
                yield row
            # else: an earlier thread's row its reader did not want; dropped


@dataclass
class ThreadExport:
    """One thread, its small lists read already, its items and runs streamed (read items before
    runs: both come from cursors shared by the batch)."""

    thread: models.Thread
    fields: dict[str, Any]
    attachments: list[dict[str, Any]]
    feedback: list[dict[str, Any]]
    _items: _ByThread
    _runs: _ByThread
    _owners: _Owners

    def items(self) -> Iterator[dict[str, Any]]:
        for row in self._items.take(self.thread.id):
            yield item_fields(row)

    def runs(self) -> Iterator[dict[str, Any]]:
        for row in self._runs.take(self.thread.id):
            yield run_fields(row, self.thread, self._owners)

    def record(self) -> dict[str, Any]:
        """The whole record in memory (tests, small exports); writers stream instead."""
        return {
            "format_version": FORMAT_VERSION,
            "thread": self.fields,
            "items": list(self.items()),
            "attachments": self.attachments,
            "feedback": self.feedback,
            "runs": list(self.runs()),
        }


def iter_threads(
    threads: QuerySet[models.Thread], batch_size: int = BATCH_SIZE
) -> Iterator[ThreadExport]:
    """Every thread of ``threads`` in primary-key order, with its rows, batch by batch."""
    base = threads.order_by("pk").select_related("user")
    owners = _Owners()
    last: str | None = None
    while True:
        page = base if last is None else base.filter(pk__gt=last)
        batch = list(page[:batch_size])
        if not batch:
            return
        last = batch[-1].pk
        ids = [thread.pk for thread in batch]
        positions = {thread_id: n for n, thread_id in enumerate(ids)}
        attachments: dict[str, list[models.Attachment]] = {}
        for attachment in models.Attachment.objects.filter(thread_id__in=ids).select_related(
            "user"
        ):
            attachments.setdefault(str(attachment.thread_id), []).append(attachment)
        feedback: dict[str, list[models.Feedback]] = {}
        for vote in models.Feedback.objects.filter(thread_id__in=ids).select_related("reviewed_by"):
            feedback.setdefault(vote.thread_id, []).append(vote)
        # Ordered in the database by thread id, as the batch is: same collation, same order.
        items = _ByThread(
            models.ThreadItem.objects.filter(thread_id__in=ids)
            .order_by("thread_id", "created_at", "id")
            .values_list(*ITEM_COLUMNS)
            .iterator(chunk_size=CURSOR_CHUNK),
            positions,
        )
        runs = _ByThread(
            models.Run.objects.filter(thread_id__in=ids)
            .order_by("thread_id", "started_at", "id")
            .values_list(*RUN_COLUMNS)
            .iterator(chunk_size=CURSOR_CHUNK),
            positions,
        )
        for thread in batch:
            yield ThreadExport(
                thread=thread,
                fields=thread_fields(thread),
                # Sorted here, not by the database: the same order under any collation.
                attachments=sorted(
                    (attachment_fields(a, thread) for a in attachments.get(thread.pk, [])),
                    key=lambda a: a["id"],
                ),
                feedback=sorted(
                    (feedback_fields(f) for f in feedback.get(thread.pk, [])),
                    key=lambda f: f["item_id"],
                ),
                _items=items,
                _runs=runs,
                _owners=owners,
            )
        # Close the cursors even if a thread's reader stopped early.
        for cursor in (items, runs):
            close = getattr(cursor.rows, "close", None)
            if close is not None:
                close()
        if len(batch) < batch_size:
            return
