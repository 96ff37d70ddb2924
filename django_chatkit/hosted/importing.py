"""Importing hosted conversations (kept by OpenAI) into ``Thread`` / ``ThreadItem`` for review.

Who: owners with a :class:`~django_chatkit.models.HostedUser` row (everyone who ever had a
client secret minted), all of them, some (``--user``), or those due: never imported, or who
opened a session within ``HOSTED_IMPORT_ACTIVE_WINDOW`` before their last import or since
(nobody else can have changed anything upstream).

For each of them: every page of their threads is listed (``threads.list(user=...)``), then,
thread by thread, only what is new since the last import is fetched: OpenAI's threads carry no
update time, so each imported thread remembers where its items were last read
(``Thread.upstream_cursor``: the last item that can no longer change) and the next import asks
for the items after it. A thread with nothing new and the same title and status writes nothing.

Each thread is written in its own transaction, its cursor with its items: a run killed, or
stopped by a 429 storm or an outage (``hosted.upstream``: bounded retries, ``Retry-After``
honoured), keeps what it committed and the next run resumes without duplicating anything. A
user's ``last_imported_at`` moves only once all of their threads are done.

A thread missing from a user's complete listing, and answered 404 when retrieved, is marked
``upstream_deleted_at``: never deleted here (retention or staff decide). A thread deleted here
whose deletion is still owed upstream (``hosted.deleting``) is not imported again.

Ownership: imported threads belong to the HostedUser's owner. A listed thread whose upstream
``user`` is not the one asked for, or whose id is already taken here by a self-hosted thread or
by another owner's, is skipped and reported: an import never moves a thread between owners.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from django_chatkit import models
from django_chatkit.conf import chatkit_settings
from django_chatkit.db import upsert_options
from django_chatkit.hosted import deleting
from django_chatkit.hosted.convert import is_final, timestamp, to_thread_item
from django_chatkit.hosted.upstream import Deadline, Upstream, UpstreamError
from django_chatkit.serialization import item_row_values

logger = logging.getLogger("django_chatkit.hosted")

HOSTED = models.ThreadSource.HOSTED
# Ids per ``id__in`` query: well under every backend's limit of parameters.
_CHUNK = 500
_LOCAL_FIELDS = (
    "id",
    "source",
    "user_id",
    "anonymous_key",
    "title",
    "status",
    "status_reason",
    "updated_at",
    "upstream_cursor",
    "upstream_updated_at",
    "upstream_deleted_at",
)


@dataclass
class ImportReport:
    users: int = 0
    threads_listed: int = 0
    threads_created: int = 0
    threads_updated: int = 0
    threads_unchanged: int = 0
    items: int = 0
    marked_deleted: int = 0
    skipped: list[str] = field(default_factory=list)
    deletions: deleting.Settled | None = None
    # Why the run ended before its last user (an error upstream, the time bound), or None.
    stopped: str | None = None
    upstream_calls: int = 0
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would import" if self.dry_run else "imported"
        lines = [
            f"{self.users} user(s), {self.threads_listed} hosted thread(s) listed: "
            f"{verb} {self.threads_created} new and {self.threads_updated} changed "
            f"({self.items} item(s)); {self.threads_unchanged} unchanged; "
            f"{self.marked_deleted} marked deleted upstream; {self.upstream_calls} call(s) "
            "to OpenAI."
        ]
        lines += [f"Skipped {reason}" for reason in self.skipped]
        if self.deletions is not None and (self.deletions.pending or self.deletions.deleted):
            lines.append(self.deletions.describe() + ".")
        return lines


def due(queryset: QuerySet[models.HostedUser] | None = None) -> QuerySet[models.HostedUser]:
    """Hosted users whose threads may have changed since their last import."""
    queryset = models.HostedUser.objects.all() if queryset is None else queryset
    window = chatkit_settings.HOSTED_IMPORT_ACTIVE_WINDOW
    return queryset.filter(
        Q(last_imported_at__isnull=True) | Q(last_session_at__gte=F("last_imported_at") - window)
    )


def _owner_lookup(hosted_user: models.HostedUser) -> dict[str, Any]:
    if hosted_user.user_id is not None:
        return {"user_id": hosted_user.user_id}
    return {"user__isnull": True, "anonymous_key": hosted_user.anonymous_key}


def _owned_by(row: dict[str, Any], hosted_user: models.HostedUser) -> bool:
    return bool(
        row["source"] == HOSTED
        and row["user_id"] == hosted_user.user_id
        and row["anonymous_key"] == hosted_user.anonymous_key
    )


def _status(thread: dict[str, Any]) -> tuple[str, str]:
    status = thread.get("status") or {}
    kind = str(status.get("type"))
    return (kind if kind in models.ThreadStatus.values else "active"), str(
        status.get("reason") or ""
    )


@dataclass
class _Run:
    upstream: Upstream
    report: ImportReport
    owed: set[str]
    dry_run: bool
    deadline: float | None
    progress: Callable[[str], None]

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Deadline("the time bound")

    def all_threads(self, hosted_user: models.HostedUser) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            self.check_time()
            page = self.upstream.list_threads(hosted_user.upstream_user, after)
            listed += [thread.model_dump(mode="json") for thread in page.data]
            if not page.has_more or not page.last_id:
                return listed
            after = page.last_id

    def new_items(self, thread_id: str, cursor: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = cursor or None
        while True:
            self.check_time()
            page = self.upstream.list_items(thread_id, after)
            items += [item.model_dump(mode="json") for item in page.data]
            if not page.has_more or not page.last_id:
                return items
            after = page.last_id

    def user(self, hosted_user: models.HostedUser) -> None:
        started = timezone.now()
        listed = self.all_threads(hosted_user)
        self.report.threads_listed += len(listed)
        ids = [thread["id"] for thread in listed]
        local: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for row in models.Thread.objects.filter(id__in=chunk).values(*_LOCAL_FIELDS):
                local[row["id"]] = row
        for thread in listed:
            self.check_time()
            thread_id = thread["id"]
            row = local.get(thread_id)
            if thread.get("user") != hosted_user.upstream_user:
                self.report.skipped.append(
                    f"{thread_id}: listed for {hosted_user.upstream_user} but belongs to "
                    f"{thread.get('user')!r} upstream."
                )
            elif row is not None and not _owned_by(row, hosted_user):
                self.report.skipped.append(
                    f"{thread_id}: the id is taken here by another owner's or a self-hosted thread."
                )
            elif thread_id not in self.owed:  # deleted here, its upstream deletion owed
                self.thread(hosted_user, thread, row)
        self.mark_deleted(hosted_user, set(ids))
        if not self.dry_run:
            models.HostedUser.objects.filter(pk=hosted_user.pk).update(last_imported_at=started)

    def thread(
        self, hosted_user: models.HostedUser, thread: dict[str, Any], row: dict[str, Any] | None
    ) -> None:
        import openai

        thread_id = thread["id"]
        try:
            items = self.new_items(thread_id, row["upstream_cursor"] if row else "")
        except openai.NotFoundError:  # deleted upstream since it was listed
            if row is not None:
                self.mark(thread_id)
            return
        title = thread.get("title") or ""
        status, reason = _status(thread)
        changed_thread = row is not None and (
            (row["title"], row["status"], row["status_reason"]) != (title, status, reason)
            or row["upstream_deleted_at"] is not None
        )
        if row is not None and not items and not changed_thread:
            self.report.threads_unchanged += 1
            return
        self.report.items += len(items)
        if row is None:
            self.report.threads_created += 1
        else:
            self.report.threads_updated += 1
        if self.dry_run:
            return
        cursor = row["upstream_cursor"] if row else ""
        for item in items:
            if not is_final(item):
                break
            cursor = item["id"]
        created_at = timestamp(thread["created_at"])
        newest = max((timestamp(item["created_at"]) for item in items), default=None)
        previous: datetime | None = row["upstream_updated_at"] if row else None
        active_at = max(d for d in (newest, previous, created_at) if d is not None)
        values = {
            "title": title,
            "status": status,
            "status_reason": reason,
            "upstream_cursor": cursor,
            "upstream_updated_at": active_at,
            "upstream_deleted_at": None,
        }
        rows = [
            models.ThreadItem(thread_id=thread_id, **item_row_values(to_thread_item(i, thread_id)))
            for i in items
        ]
        try:
            with transaction.atomic():
                if row is None:
                    models.Thread.objects.create(
                        id=thread_id,
                        source=HOSTED,
                        created_at=created_at,
                        updated_at=active_at,
                        user_id=hosted_user.user_id,
                        anonymous_key=hosted_user.anonymous_key,
                        **values,
                    )
                else:
                    updated_at = max(row["updated_at"], active_at)
                    models.Thread.objects.filter(id=thread_id, source=HOSTED).update(
                        updated_at=updated_at, **values
                    )
                if rows:
                    # Items read again (after a tool call that was still running) are updated.
                    models.ThreadItem.objects.bulk_create(
                        rows,
                        **upsert_options(
                            models.ThreadItem, ["thread", "item_id"], ["type", "text", "payload"]
                        ),
                    )
        except IntegrityError:
            # Another import created it meanwhile: the next run compares again.
            self.report.skipped.append(f"{thread_id}: written concurrently by another import.")

    def mark(self, thread_id: str) -> None:
        self.report.marked_deleted += 1
        if not self.dry_run:
            models.Thread.objects.filter(id=thread_id, source=HOSTED).update(
                upstream_deleted_at=timezone.now()
            )

    def mark_deleted(self, hosted_user: models.HostedUser, listed: set[str]) -> None:
        """Mark the user's imported threads that the complete listing no longer has, once a
        retrieve confirms they are gone (404)."""
        known = models.Thread.objects.filter(
            source=HOSTED, upstream_deleted_at__isnull=True, **_owner_lookup(hosted_user)
        ).values_list("id", flat=True)
        for thread_id in [i for i in known if i not in listed]:
            self.check_time()
            found = self.upstream.retrieve(thread_id)
            if found is None:
                self.mark(thread_id)


def import_hosted(
    hosted_users: Iterable[models.HostedUser],
    *,
    upstream: Upstream | None = None,
    dry_run: bool = False,
    seconds: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import the threads of ``hosted_users`` (see the module's docstring); ``seconds`` bounds
    the run (the admin's), which then stops between two threads (or instead of a long wait)
    and says so in ``report.stopped``. Never raises for an upstream failure: it ends the run,
    reported in ``report.stopped``; what was committed stays, and the next run resumes."""
    deadline = None if seconds is None else time.monotonic() + seconds
    upstream = upstream or Upstream()
    upstream.deadline = deadline
    report = ImportReport(dry_run=dry_run)
    say = progress or (lambda line: None)
    try:
        if not dry_run:
            # Owed deletions first: they may be retried now, and are not to be imported back.
            report.deletions = deleting.settle(upstream)
        run = _Run(upstream, report, deleting.pending_ids(), dry_run, deadline, say)
        for hosted_user in hosted_users:
            run.check_time()
            say(f"Importing the hosted threads of {hosted_user.owner_key}...")
            run.user(hosted_user)
            report.users += 1
    except Deadline:
        report.stopped = (
            "The time bound was reached; the rest is left for the next run "
            "(manage.py chatkit_import_hosted)."
        )
    except UpstreamError as error:
        report.stopped = f"OpenAI did not answer: {error}. Run again to resume."
    except Exception as error:
        import openai

        if not isinstance(error, openai.APIError):
            raise
        report.stopped = f"OpenAI refused a request: {error}. Run again once fixed."
    report.upstream_calls = upstream.calls
    return report
