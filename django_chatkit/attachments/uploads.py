"""Completing an upload: verify the received bytes, store them, make the row ready.

Shared by the upload view (bytes sent to the site) and by presigned S3 uploads (bytes fetched
back from the bucket when a message first uses them). Blocking work (checks, thumbnails,
storage writes) runs outside asgiref's shared thread, so one slow upload does not hold up the
database work of every other request; database work runs in that thread as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from chatkit.types import Attachment
from django.utils.translation import gettext

from django_chatkit import models
from django_chatkit.attachments import owner_quota, storage
from django_chatkit.attachments.metadata import STORAGE_ALIAS_KEY, STORAGE_NAME_KEY
from django_chatkit.attachments.options import Limits
from django_chatkit.attachments.previews import make_preview
from django_chatkit.attachments.receiving import (
    ReceivedFile,
    copy_limited,
    empty_file,
    too_large,
)
from django_chatkit.attachments.validation import Declared, check_content
from django_chatkit.context import Owner
from django_chatkit.db import in_thread
from django_chatkit.errors import RequestRejected
from django_chatkit.serialization import attachment_from_payload

_FIELDS = (
    "id",
    "user_id",
    "anonymous_key",
    "status",
    "name",
    "mime_type",
    "storage_alias",
    "incoming_name",
    "payload",
)


@dataclass(frozen=True)
class PendingUpload:
    """An attachment row waiting for its bytes."""

    id: str
    owner: Owner
    status: str
    name: str
    mime_type: str
    storage_alias: str
    incoming_name: str
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PendingUpload:
        owner = Owner(user_id=row["user_id"], anonymous_key=row["anonymous_key"] or "")
        fields = {k: row[k] for k in _FIELDS if k not in ("user_id", "anonymous_key")}
        return cls(owner=owner, **fields)

    def declared(self, size: int) -> Declared:
        return Declared(name=self.name, mime_type=self.mime_type, size=size)


def not_found(attachment_id: str) -> RequestRejected:
    return RequestRejected(404, "not_found", f"Attachment {attachment_id} not found")


def not_pending(attachment_id: str) -> RequestRejected:
    return RequestRejected(
        409, "upload_already_used", f"Attachment {attachment_id} is not waiting for an upload."
    )


def load_row(attachment_id: str) -> PendingUpload | None:
    row = next(
        iter(models.Attachment.objects.filter(id=attachment_id).order_by().values(*_FIELDS)[:1]),
        None,
    )
    return None if row is None else PendingUpload.from_row(row)


def pending_rows(attachment_ids: list[str], owner: Owner) -> list[PendingUpload]:
    rows = models.Attachment.objects.filter(
        id__in=attachment_ids, status=models.AttachmentStatus.PENDING, **owner.filter()
    ).values(*_FIELDS)
    return [PendingUpload.from_row(row) for row in rows]


def _extension(limits: Limits, mime_type: str) -> str:
    extensions = limits.extensions(mime_type)
    return extensions[0] if extensions else ""


def _inspect_and_store(
    upload: PendingUpload, received: ReceivedFile, limits: Limits
) -> tuple[str, str | None]:
    """Check the bytes, make the preview, store the file; return (storage name, preview)."""
    declared = upload.declared(received.size)
    decoded = check_content(received.file, declared)
    preview = make_preview(decoded) if decoded is not None else None
    name = storage.new_name(upload.id, _extension(limits, declared.mime_type))
    stored = storage.save(upload.storage_alias, name, received.file, declared.mime_type)
    return stored, preview


def _mark_ready(
    upload: PendingUpload, received: ReceivedFile, stored: str, preview: str | None
) -> Attachment | None:
    payload = dict(upload.payload)
    payload["upload_descriptor"] = None
    payload["metadata"] = {
        **(payload.get("metadata") or {}),
        STORAGE_ALIAS_KEY: upload.storage_alias,
        STORAGE_NAME_KEY: stored,
    }
    if preview is not None:
        payload["preview_url"] = preview
    attachment = attachment_from_payload(payload)
    # Only a row still pending flips: of two uploads racing with one token, one wins.
    updated = models.Attachment.objects.filter(
        id=upload.id, status=models.AttachmentStatus.PENDING, **upload.owner.filter()
    ).update(
        status=models.AttachmentStatus.READY,
        storage_name=stored,
        size=received.size,
        sha256=received.sha256,
        payload=attachment.model_dump(mode="json"),
    )
    return attachment if updated else None


async def finish(upload: PendingUpload, received: ReceivedFile, limits: Limits) -> Attachment:
    """Verify and store ``received`` as ``upload``'s bytes; return the ready attachment.

    Raises :class:`RequestRejected`; a rejected file is never stored (nothing to clean up).
    The owner's byte limit is checked on the real size before anything is stored.
    """
    await in_thread(owner_quota.admit_upload)(upload.id, upload.owner, limits, received.size)
    stored, preview = await sync_to_async(_inspect_and_store, thread_sensitive=False)(
        upload, received, limits
    )
    try:
        attachment = await in_thread(_mark_ready)(upload, received, stored, preview)
    except BaseException:  # no row will ever name the file: do not leave it behind
        await sync_to_async(storage.remove, thread_sensitive=False)(upload.storage_alias, [stored])
        raise
    if attachment is None:
        await sync_to_async(storage.remove, thread_sensitive=False)(upload.storage_alias, [stored])
        raise not_pending(upload.id)
    return attachment


def _fetch_incoming(upload: PendingUpload, limits: Limits) -> ReceivedFile:
    size = storage.s3_object_size(upload.storage_alias, upload.incoming_name)
    if size is None:
        raise RequestRejected(
            409,
            "attachment_not_uploaded",
            gettext("Attachment %(id)s has not been uploaded yet.") % {"id": upload.id},
        )
    if size > limits.max_bytes:
        raise too_large(limits.max_bytes)
    received = copy_limited(
        storage.s3_iter_chunks(upload.storage_alias, upload.incoming_name), limits.max_bytes
    )
    if received.size == 0:
        received.close()
        raise empty_file()
    return received


async def finish_incoming(upload: PendingUpload, limits: Limits) -> Attachment:
    """Complete a presigned S3 upload: fetch the object, verify it, store a verified copy.

    The copy is made from the bytes that were checked, never copied object to object: the
    presigned URL stays usable until it expires, and a later PUT to it must not replace a
    verified file. The uploaded object is removed whatever the verdict.
    """
    try:
        received = await sync_to_async(_fetch_incoming, thread_sensitive=False)(upload, limits)
        try:
            return await finish(upload, received, limits)
        finally:
            received.close()
    except RequestRejected as exc:
        if exc.code == "attachment_not_uploaded":
            raise
        raise RequestRejected(
            exc.status,
            exc.code,
            gettext("Attachment %(name)s was refused: %(reason)s")
            % {"name": repr(upload.name), "reason": exc.message},
        ) from exc
    finally:
        await sync_to_async(storage.remove, thread_sensitive=False)(
            upload.storage_alias, [upload.incoming_name]
        )
