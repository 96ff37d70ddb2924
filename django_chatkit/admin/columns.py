"""The threads changelist's columns, and the per-row figures behind them.

Each figure is a correlated subquery (one per column, evaluated for the rows of the page only),
served by the index led by the thread of its table: items by chatkit_item_page, feedback by
chatkit_feedback_one_vote, runs by chatkit_run_thread. A ``Count("items")`` annotation instead
joins and groups every item of every thread before the LIMIT: seconds at 100,000 threads.
None of these columns is sortable: sorting by a figure computes it for every thread.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import (
    BigIntegerField,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from django_chatkit import models


def _per_thread(rows: QuerySet[Any], aggregate: Func, output: Any) -> Subquery:
    # A plain Func, not an Aggregate: an aggregate without GROUP BY gives exactly one row per
    # thread (0 / NULL when it has none), where Count() would add GROUP BY thread_id.
    figure = rows.filter(thread=OuterRef("pk")).order_by().annotate(figure=aggregate)
    return Subquery(figure.values("figure"), output_field=output)


def _count(rows: QuerySet[Any]) -> Subquery:
    return _per_thread(rows, Func(F("pk"), function="COUNT"), IntegerField())


def annotate_figures(queryset: QuerySet[models.Thread]) -> QuerySet[models.Thread]:
    feedback = models.Feedback.objects
    tokens = Coalesce(
        Func(F("input_tokens") + F("output_tokens"), function="SUM"),
        Value(0),
        output_field=BigIntegerField(),
    )
    return queryset.annotate(
        item_count=_count(models.ThreadItem.objects.all()),
        positive_count=_count(feedback.filter(kind=models.FeedbackKind.POSITIVE)),
        negative_count=_count(feedback.filter(kind=models.FeedbackKind.NEGATIVE)),
        failed_run_count=_count(models.Run.objects.filter(status=models.RunStatus.FAILED)),
        tokens_used=_per_thread(models.Run.objects.all(), tokens, BigIntegerField()),
    )


def _figure(obj: models.Thread, name: str) -> str:
    # Threads not loaded through the changelist's queryset have no figures: shown as 0.
    # Thousands grouped as the language groups them: token counts run into the millions.
    return formats.number_format(int(getattr(obj, name, 0) or 0), force_grouping=True)


@admin.display(description=_("title"))
def title(obj: models.Thread) -> str:
    # The first column links to the thread's page; untitled threads are told apart by their
    # creation date (Thread.__str__).
    return str(obj)


@admin.display(description=_("status"))
def status_badge(obj: models.Thread) -> str:
    badges = [
        format_html(
            '<span class="chatkit-badge chatkit-status-{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )
    ]
    if obj.legal_hold:
        badges.append(
            format_html('<span class="chatkit-badge chatkit-hold">{}</span>', _("legal hold"))
        )
    if obj.deleted_by_owner_at is not None:
        badges.append(
            format_html(
                '<span class="chatkit-badge chatkit-deleted">{}</span>', _("deleted by owner")
            )
        )
    return format_html_join(" ", "{}", ((badge,) for badge in badges))


@admin.display(description=_("items"))
def item_count(obj: models.Thread) -> str:
    return _figure(obj, "item_count")


@admin.display(description=_("last activity"), ordering="updated_at")
def last_activity(obj: models.Thread) -> str:
    # As the admin shows a datetime field: localised, in the current time zone.
    updated = obj.updated_at
    if timezone.is_aware(updated):
        updated = timezone.localtime(updated)
    return str(formats.localize(updated))


@admin.display(description=_("positive feedback"))
def positive_count(obj: models.Thread) -> str:
    return _figure(obj, "positive_count")


@admin.display(description=_("negative feedback"))
def negative_count(obj: models.Thread) -> str:
    return _figure(obj, "negative_count")


@admin.display(description=_("failed runs"))
def failed_run_count(obj: models.Thread) -> str:
    return _figure(obj, "failed_run_count")


@admin.display(description=_("tokens"))
def tokens_used(obj: models.Thread) -> str:
    return _figure(obj, "tokens_used")
