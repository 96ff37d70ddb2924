"""The runs admin: one row per model call, read-only, failures first, linked with threads.

Each run links to its thread's page; ``runs_url`` gives a thread's page the way back (the list
of that thread's runs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin.common import ReadOnlyAdminMixin, RunModelAdmin, first_when, owner_label
from django_chatkit.admin.counting import BoundedChangeList, EstimatedCountPaginator
from django_chatkit.admin.filters import RunModelFilter
from django_chatkit.admin.links import QUEUES_CSS, thread_link
from django_chatkit.admin.usage import UsageUrlsMixin

# The query parameter Django's admin filters a foreign key by (an allowed lookup).
THREAD_PARAMETER = "thread__id__exact"
ERROR_EXCERPT_CHARS = 120


def runs_url(thread_id: str) -> str:
    """The runs changelist showing only ``thread_id``'s runs (failures first, then newest)."""
    query = urlencode({THREAD_PARAMETER: thread_id})
    return reverse("admin:django_chatkit_run_changelist") + "?" + query


def _milliseconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


@admin.register(models.Run)
class RunAdmin(ReadOnlyAdminMixin, UsageUrlsMixin, RunModelAdmin):
    list_display = (
        "started_at",
        "status_badge",
        "thread_page",
        "owner",
        "kind",
        "model",
        "latency_ms",
        "first_token_ms",
        "input_tokens",
        "output_tokens",
        "error_code",
        "error_excerpt",
    )
    list_display_links = ("started_at",)
    list_filter = ("status", "kind", RunModelFilter, "started_at")
    # Ids are matched exactly (an index lookup, where a substring search scans every run).
    search_fields = ("=thread__id", "=response_id", "user__username")
    list_select_related = ("thread", "user")
    # The total of all runs is a second COUNT(*) over the whole table, not needed here.
    show_full_result_count = False
    # Counted as the threads list is (admin/counting.py): estimated unfiltered, capped filtered.
    paginator = EstimatedCountPaginator

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[BoundedChangeList]:
        return BoundedChangeList

    # Failures first: they are what a reviewer opens this list for; then the newest.
    # Served by the index chatkit_run_review_order (migration 0008).
    ordering = (first_when(Q(status=models.RunStatus.FAILED)), "-started_at", "-id")
    fields = (
        "thread_page",
        "owner",
        "kind",
        "model",
        "status",
        "error_code",
        "error_message",
        "stopped_by",
        "stop_requested_at",
        "started_at",
        "first_token_at",
        "finished_at",
        "latency_ms",
        "first_token_ms",
        "input_tokens",
        "output_tokens",
        "response_id",
    )
    readonly_fields = fields

    class Media:
        css = {"all": (QUEUES_CSS,)}

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: models.Run) -> SafeString:
        status = obj.status
        label = models.RunStatus(status).label if status in models.RunStatus else status
        return format_html('<span class="chatkit-badge chatkit-badge-{}">{}</span>', status, label)

    @admin.display(description=_("thread"))
    def thread_page(self, obj: models.Run) -> SafeString | str:
        return thread_link(obj.thread)

    @admin.display(description=_("owner"))
    def owner(self, obj: models.Run) -> str:
        return owner_label(obj)

    @admin.display(description=_("latency (ms)"))
    def latency_ms(self, obj: models.Run) -> int | None:
        return _milliseconds(obj.started_at, obj.finished_at)

    @admin.display(description=_("first token (ms)"))
    def first_token_ms(self, obj: models.Run) -> int | None:
        return _milliseconds(obj.started_at, obj.first_token_at)

    @admin.display(description=_("error message"))
    def error_excerpt(self, obj: models.Run) -> str:
        return Truncator(obj.error_message).chars(ERROR_EXCERPT_CHARS)

    # Read-only: runs are the usage record (the usage overview counts them).
