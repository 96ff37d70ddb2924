"""Deleting a hosted thread here deletes it at OpenAI too, without ever losing track of it.

Whatever deletes an imported hosted thread (``chatkit_purge``, the admin, a user's erasure),
:func:`journal_hosted_thread` writes a :class:`~django_chatkit.models.HostedDeletion` row in the
same transaction: the local deletion always proceeds (retention and erasure must not wait on a
third party), and the upstream deletion is owed until OpenAI confirms it. :func:`settle` then
deletes the journalled threads upstream: right after the commit for the purge and the admin
(bounded), and again at the start of every ``chatkit_purge`` and ``chatkit_import_hosted`` run
for whatever is left (an outage, a killed process, a user's erasure). A 404 counts as deleted.
An import never brings back a thread still in the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F
from django.utils import timezone

from django_chatkit import models
from django_chatkit.hosted.upstream import Deadline, Upstream, UpstreamError, describe

logger = logging.getLogger("django_chatkit.hosted")


def journal_hosted_thread(
    sender: type[Any], instance: models.Thread, using: str, **kwargs: Any
) -> None:
    """``post_delete`` of ``Thread``, inside the deleting transaction: owe its upstream deletion.

    A thread already found deleted upstream owes nothing."""
    if instance.source != models.ThreadSource.HOSTED or instance.upstream_deleted_at is not None:
        return
    models.HostedDeletion._default_manager.using(using).bulk_create(
        [models.HostedDeletion(thread_id=instance.pk)], ignore_conflicts=True
    )


@dataclass
class Settled:
    deleted: int = 0  # deleted upstream now
    already_gone: int = 0  # upstream answered 404
    failed: list[str] = field(default_factory=list)  # "thread: error", still owed
    pending: int = 0  # still owed after this pass (failed, or not reached)

    def describe(self) -> str:
        return (
            f"{self.deleted} hosted thread(s) deleted at OpenAI, {self.already_gone} already "
            f"gone there, {self.pending} deletion(s) still owed (retried by the next "
            "chatkit_purge or chatkit_import_hosted run)"
        )


def settle(upstream: Upstream | None = None, thread_ids: Iterable[str] | None = None) -> Settled:
    """Delete upstream the journalled threads (``thread_ids`` only, when given), oldest first;
    each confirmed deletion leaves the journal. The first failure is counted on its row and
    ends the pass."""
    queryset = models.HostedDeletion.objects.all()
    if thread_ids is not None:
        queryset = queryset.filter(thread_id__in=list(thread_ids))
    rows = list(queryset.values_list("pk", "thread_id"))
    result = Settled()
    if not rows:
        return result
    if upstream is None:
        try:
            upstream = Upstream()
        except Exception as error:  # openai.OpenAIError: no API key configured
            result.failed.append(describe(error))
            result.pending = len(rows)
            return result
    for position, (pk, thread_id) in enumerate(rows):
        try:
            gone_already = not upstream.delete(thread_id)
        except Deadline:
            result.pending += len(rows) - position
            break
        except Exception as error:  # UpstreamError, or an answer no retry helps (401, 403...)
            error_text = str(error) if isinstance(error, UpstreamError) else describe(error)
            logger.warning("Deleting hosted thread %s at OpenAI failed: %s", thread_id, error_text)
            models.HostedDeletion.objects.filter(pk=pk).update(
                attempts=F("attempts") + 1, last_attempt_at=timezone.now(), last_error=error_text
            )
            result.failed.append(f"{thread_id}: {error_text}")
            # The rest would most likely fail alike (an outage, a revoked key): next run.
            result.pending += len(rows) - position
            break
        models.HostedDeletion.objects.filter(pk=pk).delete()
        if gone_already:
            result.already_gone += 1
        else:
            result.deleted += 1
    return result


def pending_ids() -> set[str]:
    return set(models.HostedDeletion.objects.values_list("thread_id", flat=True))
