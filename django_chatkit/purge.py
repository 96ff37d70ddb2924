"""Retention: which threads ``chatkit_purge`` deletes, and deleting them in batches.

A thread is due when it has been idle (``Thread.updated_at``: its last message or rename)
longer than its owner kind allows, and is not on legal hold:

- a signed-in user's thread: ``CHATKIT["RETENTION"]`` days, or ``--older-than``;
- an anonymous visitor's thread: ``CHATKIT["ANONYMOUS_RETENTION"]`` (by default as long as a
  session lives), or the users' limit when that is shorter;
- a thread its owner deleted while it was on hold (hidden from them since), or whose owner was
  deleted while it was on hold (``django_chatkit.erasure``), once the hold is lifted: at once.

Each batch is one transaction: the batch's threads are locked and checked again (a message
arriving meanwhile makes a thread active again), deleted with their items, feedback, runs and
attachments, and the attachments' files are listed in the removal journal before the commit
and removed after it (``django_chatkit.attachments.journal``). Killed at any point, a run
leaves either the whole batch or none of its rows, and no file without a journal entry; the
next run settles the journal first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from django_chatkit import models
from django_chatkit.attachments import journal
from django_chatkit.attachments.lifecycle import collecting_removed_files
from django_chatkit.conf import chatkit_settings
from django_chatkit.erasure import TOMBSTONE_PREFIX

DEFAULT_BATCH_SIZE = 500
# Test hook only (tests/test_purge_kill.py): "POINT" or "POINT:N" makes the Nth arrival at
# POINT print a line on stderr and wait for stdin to close, so that a test can kill the
# process exactly there. Points: "before-commit", "after-commit", "after-batch".
STOP_ENV = "CHATKIT_PURGE_TEST_STOP"
STOP_LINE = "chatkit_purge test stop:"


class NothingConfigured(Exception):
    """No retention applies: nothing would ever be purged."""


@dataclass(frozen=True)
class Policy:
    """What is due: threads idle since before a cutoff, per owner kind (None: kept)."""

    user_cutoff: datetime | None
    anonymous_cutoff: datetime | None
    # Only this user's threads (``--user``): anonymous threads and tombstones are left alone.
    user_pk: Any = None
    # The limits the cutoffs were computed from, for the command's report.
    user_limit: timedelta | None = None
    anonymous_limit: timedelta | None = None

    def passes(self) -> list[Q]:
        """The due threads, holds aside, as queries the database serves cheaply, run one after
        the other: by idle time (a range of the index chatkit_thread_activity), then those due
        whatever their age: deleted by their owner, or whose owner was deleted, while on hold
        (a hold lifted since: nobody wants them kept any more). Few rows, one scan per run."""
        if self.user_pk is not None:
            assert self.user_cutoff is not None
            return [
                Q(user_id=self.user_pk, updated_at__lt=self.user_cutoff),
                Q(user_id=self.user_pk, deleted_by_owner_at__isnull=False),
            ]
        tombstone = Q(user__isnull=True, anonymous_key__startswith=TOMBSTONE_PREFIX)
        released = tombstone | Q(deleted_by_owner_at__isnull=False)
        by_age = Q(pk__in=[])
        if self.user_cutoff is not None:
            by_age |= Q(user__isnull=False, updated_at__lt=self.user_cutoff)
        if self.anonymous_cutoff is not None:
            by_age |= Q(user__isnull=True, updated_at__lt=self.anonymous_cutoff) & ~tombstone
        cutoffs = [c for c in (self.user_cutoff, self.anonymous_cutoff) if c is not None]
        if not cutoffs:
            return [released]
        # The latest cutoff, said outright: the index range the first pass reads.
        return [by_age & Q(updated_at__lt=max(cutoffs)), released]

    def due(self) -> Q:
        """The due threads, holds aside."""
        return reduce(or_, self.passes())


def make_policy(
    *, older_than: float | None = None, user_pk: Any = None, now: datetime | None = None
) -> Policy:
    """The policy of the settings, ``--older-than`` (days) replacing ``RETENTION``."""
    now = now or timezone.now()
    retention = timedelta(days=older_than) if older_than is not None else chatkit_settings.RETENTION
    if user_pk is not None:
        if retention is None:
            raise NothingConfigured(
                "CHATKIT['RETENTION'] is None (threads are kept forever) and no --older-than "
                "was given: nothing of this user's would be purged."
            )
        return Policy(
            user_cutoff=now - retention,
            anonymous_cutoff=None,
            user_pk=user_pk,
            user_limit=retention,
        )
    anonymous = chatkit_settings.ANONYMOUS_RETENTION
    if retention is None and anonymous is None:
        raise NothingConfigured(
            "CHATKIT['RETENTION'] and CHATKIT['ANONYMOUS_RETENTION'] are None (threads are kept "
            "forever) and no --older-than was given: nothing would be purged."
        )
    # A site's retention bounds every thread; anonymous ones may be kept shorter still.
    limits = [limit for limit in (retention, anonymous) if limit is not None]
    return Policy(
        user_cutoff=None if retention is None else now - retention,
        anonymous_cutoff=now - min(limits),
        user_limit=retention,
        anonymous_limit=min(limits),
    )


@dataclass
class Counts:
    threads: int = 0
    items: int = 0
    feedback: int = 0
    runs: int = 0
    attachments: int = 0
    bytes: int = 0

    def add(self, other: Counts) -> None:
        for name in ("threads", "items", "feedback", "runs", "attachments", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Stops:
    seen: dict[str, int] = field(default_factory=dict)

    def reach(self, point: str) -> None:
        wanted = os.environ.get(STOP_ENV, "")
        if not wanted:
            return
        name, _, nth = wanted.partition(":")
        if name != point:
            return
        self.seen[point] = self.seen.get(point, 0) + 1
        if self.seen[point] == int(nth or 1):
            sys.stderr.write(f"{STOP_LINE} {point}\n")
            sys.stderr.flush()
            sys.stdin.read()  # until the test kills us (or closes stdin: go on)


def _due_ids(due: Q, after: tuple[datetime, str] | None, size: int) -> list[Any]:
    """The next ``size`` purgeable threads of ``due``, oldest activity first (index
    chatkit_thread_activity), after the keyset position ``after``."""
    queryset = models.Thread.objects.filter(due, legal_hold=False)
    if after is not None:
        queryset = queryset.filter(
            Q(updated_at__gt=after[0]) | Q(updated_at=after[0], id__gt=after[1])
        )
    return list(queryset.order_by("updated_at", "id").values_list("updated_at", "id")[:size])


def _would_delete(ids: list[str]) -> Counts:
    attachments = models.Attachment.objects.filter(thread_id__in=ids)
    stored = attachments.exclude(storage_alias="").exclude(storage_name="", incoming_name="")
    return Counts(
        threads=len(ids),
        items=models.ThreadItem.objects.filter(thread_id__in=ids).count(),
        feedback=models.Feedback.objects.filter(thread_id__in=ids).count(),
        runs=models.Run.objects.filter(thread_id__in=ids).count(),
        attachments=attachments.count(),
        bytes=int(stored.aggregate(total=Sum("size"))["total"] or 0),
    )


def _delete(due: Q, ids: list[str], stops: _Stops) -> Counts:
    with transaction.atomic():
        # Locked, then checked again: a thread that became active (or held) since it was
        # listed stays; a turn writing to it waits for this batch, then finds it gone.
        locked = list(
            models.Thread.objects.select_for_update()
            .filter(due, legal_hold=False, id__in=ids)
            .values_list("id", flat=True)
        )
        if not locked:
            return Counts()
        with collecting_removed_files() as files:
            _, per_model = models.Thread.objects.filter(id__in=locked).delete()
        entry = journal.write(files)
        stops.reach("before-commit")
    stops.reach("after-commit")
    if entry is not None:
        journal.settle(entry)
    return Counts(
        threads=per_model.get(models.Thread._meta.label, 0),
        items=per_model.get(models.ThreadItem._meta.label, 0),
        feedback=per_model.get(models.Feedback._meta.label, 0),
        runs=per_model.get(models.Run._meta.label, 0),
        attachments=per_model.get(models.Attachment._meta.label, 0),
        bytes=sum(f.size for f in files),
    )


def purge(policy: Policy, *, batch_size: int, dry_run: bool = False) -> Iterator[Counts]:
    """Delete (or, on a dry run, count) the purgeable threads batch by batch; yield each batch's
    counts once it is committed."""
    stops = _Stops()
    for due in policy.passes():
        after: tuple[datetime, str] | None = None
        while True:
            rows = _due_ids(due, after, batch_size)
            if not rows:
                break
            after = rows[-1]
            ids = [thread_id for _, thread_id in rows]
            counts = _would_delete(ids) if dry_run else _delete(due, ids, stops)
            if not dry_run:
                stops.reach("after-batch")
            yield counts


def held_skipped(policy: Policy) -> int:
    """Due threads kept by their legal hold (index chatkit_thread_held)."""
    return models.Thread.objects.filter(policy.due(), legal_hold=True).count()
