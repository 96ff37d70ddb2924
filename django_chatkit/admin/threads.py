"""The threads admin: the changelist, the transcript on each thread's page, moderation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_chatkit import models
from django_chatkit.admin import columns, filters
from django_chatkit.admin.common import ThreadModelAdmin, ThreadModelForm, owner_label
from django_chatkit.admin.counting import BoundedChangeList, EstimatedCountPaginator
from django_chatkit.admin.search import thread_search

TRANSCRIPT_ITEMS = 200


class ThreadForm(ThreadModelForm):
    class Meta:
        model = models.Thread
        fields = "__all__"
        # A title is one line (the widget's thread list shows it so); the model field is a
        # TextField only to set no length limit, which would otherwise make it a textarea.
        widgets = {"title": forms.TextInput(attrs={"class": "vTextField"})}


@admin.register(models.Thread)
class ThreadAdmin(ThreadModelAdmin):
    form = ThreadForm
    # The changelist stays fast at 1,000,000 threads: per-row figures are correlated subqueries
    # (admin/columns.py), filters EXISTS (admin/filters.py), the search indexed where it can be
    # (admin/search.py), the count estimated or capped (admin/counting.py). No date_hierarchy:
    # its year links are a SELECT DISTINCT over the whole table; the activity filter replaces it.
    list_display = (
        columns.title,
        "owner",
        columns.status_badge,
        columns.item_count,
        columns.last_activity,
        columns.positive_count,
        columns.negative_count,
        columns.failed_run_count,
        columns.tokens_used,
    )
    list_filter = (
        "status",
        filters.NegativeFeedbackFilter,
        filters.FailedRunsFilter,
        filters.AttachmentsFilter,
        "legal_hold",
        filters.OwnerKindFilter,
        filters.ModelFilter,
        ("updated_at", admin.DateFieldListFilter),
    )
    # Newest activity first, through the index chatkit_thread_activity (updated_at, id). Only
    # last activity sorts (the one column given an ``ordering``, an indexed one): sorting by a
    # figure would compute it for every thread.
    ordering = ("-updated_at", "-id")
    # get_search_results decides per field; this only turns the search box on.
    search_fields = ("id",)
    search_help_text = _("Thread id (exact), title, owner's username or email, message text.")
    list_select_related = ("user",)
    # The total below the list would be a second COUNT(*) over the whole table.
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    class Media:
        css = {"all": ("django_chatkit/admin/threads.css",)}

    readonly_fields = (
        "id",
        "user",
        "anonymous_key",
        "created_at",
        "updated_at",
        "metadata",
        "allowed_image_domains",
        "transcript",
    )
    fields = (
        "id",
        "title",
        "user",
        "anonymous_key",
        "status",
        "status_reason",
        "created_at",
        "updated_at",
        "metadata",
        "allowed_image_domains",
        "transcript",
    )
    actions = ("lock_threads", "close_threads", "reopen_threads")

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Thread]:
        return columns.annotate_figures(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[BoundedChangeList]:
        return BoundedChangeList

    def get_paginator(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        paginator = super().get_paginator(request, *args, **kwargs)
        if isinstance(paginator, EstimatedCountPaginator):
            # A search reads the titles (no index for a substring): once (admin/counting.py).
            paginator.keys_first = bool(request.GET.get(SEARCH_VAR, "").strip())
        return paginator

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[models.Thread], search_term: str
    ) -> tuple[QuerySet[models.Thread], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # A thread's id, pasted from a log or a report, is unambiguous: that thread alone, by
        # its primary key, without reading every title for the string (admin/search.py).
        by_id = queryset.filter(pk=term)
        if by_id.exists():
            return by_id, False
        # Subqueries, no join (admin/search.py): never a duplicate row, so never DISTINCT.
        return queryset.filter(thread_search(queryset, term)), False

    @admin.display(description=_("owner"))
    def owner(self, obj: models.Thread) -> str:
        return owner_label(obj)

    @admin.display(description=_("transcript"))
    def transcript(self, obj: models.Thread) -> str:
        newest = list(
            obj.items.order_by("-created_at", "-id").values_list("type", "created_at", "text")[
                :TRANSCRIPT_ITEMS
            ]
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td style='white-space: pre-wrap'>{}</td></tr>",
            ((created, kind, text) for kind, created, text in reversed(newest)),
        )
        note = _("newest %(n)d items") % {"n": TRANSCRIPT_ITEMS}
        return format_html("<p>{}</p><table>{}</table>", note, rows)

    def _set_status(
        self, request: HttpRequest, queryset: QuerySet[models.Thread], status: str, reason: str
    ) -> None:
        count = queryset.update(status=status, status_reason=reason)
        message = ngettext(
            "%(count)d thread set to “%(status)s”.", "%(count)d threads set to “%(status)s”.", count
        ) % {"count": count, "status": models.ThreadStatus(status).label}
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description=_("Lock selected threads (read-only for their owner)"))
    def lock_threads(self, request: HttpRequest, queryset: QuerySet[models.Thread]) -> None:
        self._set_status(request, queryset, models.ThreadStatus.LOCKED, "Locked by a moderator.")

    @admin.action(description=_("Close selected threads"))
    def close_threads(self, request: HttpRequest, queryset: QuerySet[models.Thread]) -> None:
        self._set_status(request, queryset, models.ThreadStatus.CLOSED, "Closed by a moderator.")

    @admin.action(description=_("Reopen selected threads"))
    def reopen_threads(self, request: HttpRequest, queryset: QuerySet[models.Thread]) -> None:
        self._set_status(request, queryset, models.ThreadStatus.ACTIVE, "")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
