"""Files follow their rows: deleting an attachment, in any way, removes its stored files.

A ``post_delete`` receiver covers every path: ``attachments.delete``, a thread's deletion
(cascade), a user's deletion (cascade through their threads and attachments), the admin, and
the orphan cleanup. Connecting it also turns off Django's fast delete of ``Attachment`` rows in
cascades (fast deletes skip signals): the collector then loads the rows, so each one is seen.
Files go only once the transaction commits, so a rolled-back delete keeps its files.

A process killed between that commit and the removal would leave the files behind with no row
to find them by. Bulk deletions (``chatkit_purge``, a user's deletion) therefore take the files
over: inside :func:`collecting_removed_files` the receiver hands them to the caller instead, who
lists them in a journal before committing (``django_chatkit.attachments.journal``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from django_chatkit import models
from django_chatkit.attachments.storage import remove_on_commit

BATCH_SIZE = 500


@dataclass(frozen=True)
class RemovedFiles:
    """The stored files of one deleted attachment."""

    attachment_id: str
    alias: str
    names: tuple[str, ...]
    size: int


# Set by collecting_removed_files: where the receiver puts the files instead of removing them.
_collector: ContextVar[list[RemovedFiles] | None] = ContextVar(
    "django_chatkit_removed_files", default=None
)


@contextmanager
def collecting_removed_files() -> Iterator[list[RemovedFiles]]:
    """Within this block, attachments deleted in this thread (or task) have their files listed
    in the yielded list, not removed: the caller removes them (after its commit)."""
    files: list[RemovedFiles] = []
    token = _collector.set(files)
    try:
        yield files
    finally:
        _collector.reset(token)


@receiver(post_delete, sender=models.Attachment, dispatch_uid="django_chatkit.attachment_files")
def remove_files_of_deleted_attachment(
    sender: type[models.Attachment], instance: models.Attachment, using: str, **kwargs: Any
) -> None:
    if not instance.storage_alias:
        return
    names = tuple(name for name in (instance.storage_name, instance.incoming_name) if name)
    collected = _collector.get()
    if collected is not None:
        if names:
            collected.append(
                RemovedFiles(instance.pk, instance.storage_alias, names, instance.size or 0)
            )
        return
    remove_on_commit(instance.storage_alias, names, using=using)


def orphans(max_age: int) -> QuerySet[models.Attachment]:
    """Attachments older than ``max_age`` seconds that never finished uploading or were never
    sent in a message (sending stamps the thread)."""
    cutoff = timezone.now() - timedelta(seconds=max_age)
    return models.Attachment.objects.filter(created_at__lt=cutoff).filter(
        Q(status=models.AttachmentStatus.PENDING) | Q(thread__isnull=True)
    )


def delete_orphans(max_age: int) -> int:
    """Delete the orphans (and, through the receiver, their files) in batches; return how many."""
    deleted = 0
    while True:
        ids = list(
            orphans(max_age).order_by("created_at").values_list("id", flat=True)[:BATCH_SIZE]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = models.Attachment.objects.filter(id__in=ids).delete()
        deleted += count
