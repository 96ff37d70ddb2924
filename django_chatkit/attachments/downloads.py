"""Which stored file a download request may have: the lookup behind the download view.

One query finds a ready attachment with stored bytes by id; it is served to its owner, and to
active staff with the ``view_attachment`` permission (a permission check, made only for someone
who is not the owner). To anyone else a foreign id is answered exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_chatkit import models
from django_chatkit.context import ChatKitContext

REVIEW_PERMISSION = "django_chatkit.view_attachment"

_FIELDS = ("storage_alias", "storage_name", "user_id", "anonymous_key", "name", "mime_type", "type")


@dataclass(frozen=True)
class StoredFile:
    """What the download view needs of an attachment: where its bytes are and how to name them."""

    id: str
    storage_alias: str
    storage_name: str
    name: str
    mime_type: str
    is_image: bool


def _is_reviewer(user: Any) -> bool:
    if user is None or not (user.is_active and user.is_staff):
        return False
    return bool(user.has_perm(REVIEW_PERMISSION))


def find_downloadable(attachment_id: str, context: ChatKitContext) -> StoredFile | None:
    """The attachment's stored file if ``context`` may download it, else None.

    Looked up by primary key alone and the owner compared here, so that the same query also
    finds the row for staff (who review other owners' files).
    """
    row = next(
        iter(
            models.Attachment.objects.filter(id=attachment_id, status=models.AttachmentStatus.READY)
            .exclude(storage_name="")
            .order_by()
            .values(*_FIELDS, "thread__deleted_by_owner_at")[:1]
        ),
        None,
    )
    if row is None:
        return None
    # A thread its owner deleted while on legal hold is missing to them, its files included.
    owner_may = context.owner.owns(row) and row["thread__deleted_by_owner_at"] is None
    if not (owner_may or _is_reviewer(context.user)):
        return None
    return StoredFile(
        id=attachment_id,
        storage_alias=row["storage_alias"],
        storage_name=row["storage_name"],
        name=row["name"],
        mime_type=row["mime_type"],
        is_image=row["type"] == "image",
    )
