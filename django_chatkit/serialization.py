"""Converting between the SDK's pydantic objects and our rows.

Datetimes: the database holds aware datetimes. The SDK creates naive local ones
(``datetime.now()``) and later subtracts ``datetime.now()`` from loaded items (workflow
durations in ``chatkit.agents``), so what we hand back to the SDK is naive again, in the default
time zone, exactly as the SDK made it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from chatkit.types import (
    ActiveStatus,
    AssistantMessageItem,
    Attachment,
    ClosedStatus,
    LockedStatus,
    ThreadItem,
    ThreadMetadata,
    ThreadStatus,
    UserMessageItem,
    WidgetItem,
)
from django.utils import timezone
from pydantic import TypeAdapter, ValidationError

from django_chatkit import models
from django_chatkit.errors import StoredDataInvalid

T = TypeVar("T")

ITEM_ADAPTER: TypeAdapter[ThreadItem] = TypeAdapter(ThreadItem)
ATTACHMENT_ADAPTER: TypeAdapter[Attachment] = TypeAdapter(Attachment)


def to_aware(value: datetime) -> datetime:
    if timezone.is_naive(value):
        return timezone.make_aware(value, timezone.get_default_timezone())
    return value


def to_sdk_datetime(value: datetime) -> datetime:
    if timezone.is_aware(value):
        return timezone.make_naive(value, timezone.get_default_timezone())
    return value


def item_text(item: ThreadItem) -> str:
    """The plain text a reviewer would read: message text, or a widget's copy text."""
    if isinstance(item, UserMessageItem):
        return "\n".join(part.text for part in item.content if part.text)
    if isinstance(item, AssistantMessageItem):
        return "\n".join(part.text for part in item.content if part.text)
    if isinstance(item, WidgetItem):
        return item.copy_text or ""
    return ""


def item_row_values(item: ThreadItem) -> dict[str, Any]:
    return {
        "item_id": item.id,
        "type": item.type,
        "created_at": to_aware(item.created_at),
        "text": item_text(item),
        "payload": item.model_dump(mode="json"),
    }


def _stored_id(payload: Any, key: str) -> str | None:
    """An id a payload that failed validation still carries, for the log (best effort)."""
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def _from_payload(adapter: TypeAdapter[T], kind: str, payload: dict[str, Any]) -> T:
    """Validate a stored payload; one that no longer validates is the server's fault."""
    try:
        return adapter.validate_python(payload)
    except ValidationError as exc:
        raise StoredDataInvalid(
            kind, _stored_id(payload, "id"), _stored_id(payload, "thread_id")
        ) from exc


def item_from_payload(payload: dict[str, Any]) -> ThreadItem:
    return _from_payload(ITEM_ADAPTER, "item", payload)


def status_columns(status: ThreadStatus) -> dict[str, str]:
    reason = getattr(status, "reason", None) or ""
    return {"status": status.type, "status_reason": reason}


def status_from_columns(status: str, reason: str) -> ThreadStatus:
    if status == models.ThreadStatus.LOCKED:
        return LockedStatus(reason=reason or None)
    if status == models.ThreadStatus.CLOSED:
        return ClosedStatus(reason=reason or None)
    return ActiveStatus()


def thread_row_values(thread: ThreadMetadata) -> dict[str, Any]:
    """Metadata columns only: a ``Thread`` carrying items stores just its metadata."""
    return {
        "title": thread.title or "",
        **status_columns(thread.status),
        "allowed_image_domains": thread.allowed_image_domains,
        "metadata": thread.metadata,
    }


# The columns thread_from_row reads; querysets fetch exactly these.
THREAD_FIELDS = (
    "id",
    "title",
    "status",
    "status_reason",
    "created_at",
    "allowed_image_domains",
    "metadata",
)


def thread_from_row(row: dict[str, Any]) -> ThreadMetadata:
    try:
        return ThreadMetadata(
            id=row["id"],
            title=row["title"] or None,
            created_at=to_sdk_datetime(row["created_at"]),
            status=status_from_columns(row["status"], row["status_reason"]),
            allowed_image_domains=row["allowed_image_domains"],
            metadata=row["metadata"] or {},
        )
    except ValidationError as exc:
        raise StoredDataInvalid("thread", row["id"], row["id"]) from exc


def attachment_row_values(attachment: Attachment) -> dict[str, Any]:
    return {
        "type": attachment.type,
        "name": attachment.name,
        "mime_type": attachment.mime_type,
        "thread_id": attachment.thread_id,
        "payload": attachment.model_dump(mode="json"),
    }


def attachment_from_payload(payload: dict[str, Any]) -> Attachment:
    return _from_payload(ATTACHMENT_ADAPTER, "attachment", payload)
