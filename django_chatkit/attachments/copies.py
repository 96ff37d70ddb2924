"""An attachment belongs to one thread: sending it in another thread sends a copy of it.

When a message is sent, the SDK loads each of its attachments, stamps the thread on it and saves
it (``ChatKitServer._build_user_message_item`` then ``_process_new_thread_item_respond``).
Moving the row to the new thread would leave the first thread showing a file that deleting the
second thread removes. So the first thread that sends an attachment keeps it, and every other
thread gets its own copy: a new row (new id, same owner, ready) with its own copy of the bytes.

The bytes are copied rather than shared. Files follow their rows (``lifecycle.py``); a shared
file would need a reference count checked on every delete path (the op, cascades, the admin,
the cleanup) under a lock that new references also take, or a delete and a new reference could
race and lose the file. A copy costs one storage write of at most ``MAX_BYTES`` per attachment,
and counts in the owner's byte limit like any upload (so resending cannot exceed it).

Copies are made while the request is vetted, before the answer streams
(:func:`attachments_for_thread`), so a refusal is an ordinary 4xx and the user message names the
copies from the start. Two requests sending one unsent attachment at the same moment are caught
when the SDK saves it (``DjangoStore.save_attachment`` calls :func:`copy_attachments` then).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from asgiref.sync import sync_to_async
from chatkit.types import Attachment
from django.db import transaction

from django_chatkit import models
from django_chatkit.attachments import owner_quota, storage
from django_chatkit.attachments.metadata import STORAGE_NAME_KEY
from django_chatkit.attachments.options import limits
from django_chatkit.context import Owner
from django_chatkit.db import in_thread
from django_chatkit.ids import new_typed_id
from django_chatkit.serialization import attachment_from_payload

COPIED_FIELDS = (
    "id",
    "type",
    "name",
    "mime_type",
    "payload",
    "storage_alias",
    "storage_name",
    "size",
    "sha256",
)


def _claim_and_find_sent(
    attachment_ids: list[str], thread_id: str | None, owner: Owner
) -> list[dict[str, Any]]:
    """Give ``thread_id`` the attachments no thread has sent yet; return the rows of those
    another thread already sent (they need copies). Two queries at most."""
    owned = models.Attachment.objects.filter(id__in=set(attachment_ids), **owner.filter())
    if thread_id is not None:
        # Taken now, so that a request sending them elsewhere meanwhile makes a copy instead.
        owned.filter(thread__isnull=True).update(thread_id=thread_id)
    sent = owned.filter(thread__isnull=False)
    if thread_id is not None:
        sent = sent.exclude(thread_id=thread_id)
    return list(sent.order_by().values(*COPIED_FIELDS))


def _copy_row(row: dict[str, Any], owner: Owner, thread_id: str | None) -> models.Attachment:
    copy_id = new_typed_id("attachment")
    payload = {**row["payload"], "id": copy_id, "thread_id": thread_id}
    storage_name = ""
    if row["storage_alias"] and row["storage_name"]:
        suffix = PurePosixPath(row["storage_name"]).suffix
        storage_name = storage.new_name(copy_id, suffix)
        payload["metadata"] = {**(payload.get("metadata") or {}), STORAGE_NAME_KEY: storage_name}
    return models.Attachment(
        id=copy_id,
        thread_id=thread_id,
        status=models.AttachmentStatus.READY,
        type=row["type"],
        name=row["name"],
        mime_type=row["mime_type"],
        payload=payload,
        storage_alias=row["storage_alias"],
        storage_name=storage_name,
        size=row["size"],
        sha256=row["sha256"],
        **owner.fields(),
    )


def _insert_copies(
    rows: list[dict[str, Any]], owner: Owner, thread_id: str | None
) -> list[models.Attachment]:
    """Insert the copies' rows within the owner's byte limit (413 when they do not fit)."""
    copies = [_copy_row(row, owner, thread_id) for row in rows]
    with transaction.atomic():
        owner_quota.reserve(owner, limits(), size=sum(row["size"] or 0 for row in rows))
        models.Attachment.objects.bulk_create(copies)
    return copies


def _copy_files(rows: list[dict[str, Any]], copies: list[models.Attachment]) -> list[str]:
    """Copy each file; return the copies whose storage chose another name than the one asked."""
    renamed = []
    for row, copy in zip(rows, copies, strict=True):
        if not copy.storage_name:
            continue
        stored = storage.copy(
            row["storage_alias"], row["storage_name"], copy.storage_name, row["mime_type"]
        )
        if stored != copy.storage_name:
            copy.storage_name = stored
            copy.payload["metadata"][STORAGE_NAME_KEY] = stored
            renamed.append(copy.id)
    return renamed


def _save_renamed(copies: list[models.Attachment], renamed: list[str]) -> None:
    for copy in copies:
        if copy.id in renamed:
            models.Attachment.objects.filter(id=copy.id).update(
                storage_name=copy.storage_name, payload=copy.payload
            )


def _delete(copies: list[models.Attachment]) -> None:
    # Their files (whole or partial) go with them (lifecycle.py).
    models.Attachment.objects.filter(id__in=[copy.id for copy in copies]).delete()


async def copy_attachments(
    rows: list[dict[str, Any]], owner: Owner, thread_id: str | None
) -> dict[str, Attachment]:
    """Copy the attachments ``rows`` (with :data:`COPIED_FIELDS`) into ``thread_id`` (None:
    not sent yet); return the copies by the id of their original.

    The rows are inserted first, within the owner's byte limit, then the files are copied
    outside the database thread; if a copy fails, the new rows and files are removed.
    """
    copies = await in_thread(_insert_copies)(rows, owner, thread_id)
    try:
        renamed = await sync_to_async(_copy_files, thread_sensitive=False)(rows, copies)
        if renamed:
            await in_thread(_save_renamed)(copies, renamed)
    except BaseException:
        await in_thread(_delete)(copies)
        raise
    return {
        row["id"]: attachment_from_payload(copy.payload)
        for row, copy in zip(rows, copies, strict=True)
    }


async def attachments_for_thread(
    attachment_ids: list[str], thread_id: str | None, owner: Owner
) -> list[str]:
    """The attachment ids a new message in ``thread_id`` (None: a thread not created yet)
    should carry: ``attachment_ids``, with a copy in place of each one another thread sent."""
    if not attachment_ids:
        return attachment_ids
    sent = await in_thread(_claim_and_find_sent)(attachment_ids, thread_id, owner)
    if not sent:
        return attachment_ids
    copies = await copy_attachments(sent, owner, None)
    return [copies[i].id if i in copies else i for i in attachment_ids]
