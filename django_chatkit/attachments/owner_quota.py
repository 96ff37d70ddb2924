"""Per-owner limits on attachments: how many wait to be sent, and how many bytes they hold.

``MAX_PENDING_PER_OWNER`` counts the owner's attachments not yet sent in a message (still
waiting for their bytes, or uploaded but not stamped with a thread). ``MAX_BYTES_PER_OWNER``
counts the bytes of all their attachments: the verified size of uploaded ones, the declared
size of those still waiting (raised to the real size when the bytes arrive, before they are
stored). Both are counted from the rows themselves, so deleting attachments in any way (the
op, a thread's deletion, the admin, the orphan cleanup) frees the quota; nothing can drift.

Counting and inserting must not interleave between two requests of one owner, or each would
see room for itself and both would pass. So each admission first upserts the owner's
``AttachmentOwnerLock`` row (``INSERT ... ON CONFLICT DO UPDATE``): on PostgreSQL and MySQL that
locks the row until the transaction ends, so a second request of the same owner waits there and
then counts what the first one committed (each statement of a READ COMMITTED transaction sees
what was committed before it started); SQLite lets one transaction write at a time anyway, and
the upsert is a write. Other owners lock other rows and never wait. Three queries per
admission (lock, count, write), whatever the owner holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from django_chatkit import models
from django_chatkit.attachments.options import Limits
from django_chatkit.context import Owner
from django_chatkit.db import upsert_options
from django_chatkit.errors import RequestRejected


def owner_key(owner: Owner) -> str:
    if owner.user_id is not None:
        return f"user:{owner.user_id}"
    return f"anonymous:{owner.anonymous_key}"


def _readable(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def too_many_pending(limit: int) -> RequestRejected:
    return RequestRejected(
        429,
        "too_many_pending_attachments",
        ngettext(
            "You already have %(count)d attachment waiting to be sent: send it in a message or "
            "remove it before adding more.",
            "You already have %(count)d attachments waiting to be sent: send them in a message "
            "or remove some before adding more.",
            limit,
        )
        % {"count": limit},
    )


def storage_full(limit: int, used: int) -> RequestRejected:
    return RequestRejected(
        413,
        "attachment_storage_full",
        gettext(
            "Your attachments would take more than the %(limit)s you may store (%(used)s used): "
            "delete some attachments or conversations first."
        )
        % {"limit": _readable(limit), "used": _readable(used)},
    )


@dataclass(frozen=True)
class Usage:
    pending: int
    stored_bytes: int


def _usage(owner: Owner, excluding: str | None) -> Usage:
    rows = models.Attachment.objects.filter(**owner.filter())
    if excluding is not None:
        rows = rows.exclude(id=excluding)
    totals = rows.aggregate(
        pending=Count(
            "pk", filter=Q(status=models.AttachmentStatus.PENDING) | Q(thread__isnull=True)
        ),
        stored_bytes=Sum("size", default=0),
    )
    return Usage(pending=int(totals["pending"]), stored_bytes=int(totals["stored_bytes"]))


def _lock(owner: Owner) -> None:
    models.AttachmentOwnerLock.objects.bulk_create(
        [models.AttachmentOwnerLock(owner_key=owner_key(owner), touched_at=timezone.now())],
        **upsert_options(models.AttachmentOwnerLock, ["owner_key"], ["touched_at"]),
    )


def reserve(
    owner: Owner,
    limits: Limits,
    *,
    pending: int = 0,
    size: int = 0,
    replacing: str | None = None,
) -> None:
    """Lock the owner and raise :class:`RequestRejected` unless ``pending`` more attachments
    waiting to be sent and ``size`` more bytes fit within their limits.

    Call it inside ``transaction.atomic()`` and write the new rows in the same transaction:
    the lock holds until it ends, so the next request of this owner counts them.
    ``replacing``: an attachment whose size is being replaced (not counted).
    """
    if limits.max_pending_per_owner is None and limits.max_bytes_per_owner is None:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reserve() must run inside transaction.atomic().")
    _lock(owner)
    usage = _usage(owner, replacing)
    max_pending = limits.max_pending_per_owner
    if pending and max_pending is not None and usage.pending + pending > max_pending:
        raise too_many_pending(max_pending)
    max_bytes = limits.max_bytes_per_owner
    if size and max_bytes is not None and usage.stored_bytes + size > max_bytes:
        raise storage_full(max_bytes, usage.stored_bytes)


def admit_upload(attachment_id: str, owner: Owner, limits: Limits, size: int) -> None:
    """Count an upload's real ``size`` in place of its declared one, or refuse it (413)."""
    with transaction.atomic():
        reserve(owner, limits, size=size, replacing=attachment_id)
        models.Attachment.objects.filter(
            id=attachment_id, status=models.AttachmentStatus.PENDING, **owner.filter()
        ).update(size=size)


def forget_idle_locks(idle_seconds: int) -> int:
    """Delete lock rows not used for ``idle_seconds`` (they are made again when needed)."""
    cutoff = timezone.now() - timedelta(seconds=idle_seconds)
    deleted, _ = models.AttachmentOwnerLock.objects.filter(touched_at__lt=cutoff).delete()
    return deleted
