"""The threads admin: the changelist, the transcript on each thread's page, moderation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import URLPattern
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin import (
    columns,
    filters,
    hosted,
    live_list,
    stopping,
    takeover,
    transcript,
)
from django_chatkit.admin.common import ThreadModelForm, owner_label
from django_chatkit.admin.counting import BoundedChangeList, EstimatedCountPaginator
from django_chatkit.admin.links import may_view
from django_chatkit.admin.moderation import MODERATION_FIELDS, ThreadModerationAdmin
from django_chatkit.admin.runs import runs_url
from django_chatkit.admin.search import thread_search
from django_chatkit.export import http as export_http
from django_chatkit.export.archive import iter_archive
from django_chatkit.export.jsonl import iter_jsonl


class ThreadForm(ThreadModelForm):
    class Meta:
        model = models.Thread
        fields = "__all__"
        # A title is one line (the widget's thread list shows it so); the model field is a
        # TextField only to set no length limit, which would otherwise make it a textarea.
        widgets = {"title": forms.TextInput(attrs={"class": "vTextField"})}


@admin.register(models.Thread)
class ThreadAdmin(ThreadModerationAdmin):
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
        "source",
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

    # The default template, plus a link to the live list (admin/live_list.py).
    change_list_template = "admin/django_chatkit/thread/change_list.html"

    class Media:
        css = {"all": ("django_chatkit/admin/threads.css",)}

    readonly_fields = (
        "id",
        # The owner's label: a user, an anonymous visitor, or "owner deleted" (a user deleted
        # while the thread was on legal hold, django_chatkit.erasure).
        "owner",
        "anonymous_key",
        "created_at",
        "updated_at",
        "metadata",
        "allowed_image_domains",
        "source",
        "upstream_updated_at",
        "upstream_deleted_at",
        "transcript",
        "transcript_without_run_links",
        "runs",
        # Changed only by the moderation actions (reasons asked, history kept): the title is
        # the one field staff with change permission may edit (not under legal hold).
        *MODERATION_FIELDS,
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "title",
                    "owner",
                    "anonymous_key",
                    "created_at",
                    "updated_at",
                    "source",
                    "upstream_updated_at",
                    "upstream_deleted_at",
                    "runs",
                )
            },
        ),
        (
            _("Moderation"),
            {
                "fields": MODERATION_FIELDS,
                "description": _(
                    "Changed with the threads list's actions, which ask for the reasons and "
                    "record them in this thread's history."
                ),
            },
        ),
        (
            _("Technical"),
            {"fields": ("metadata", "allowed_image_domains"), "classes": ["collapse"]},
        ),
        (None, {"fields": ("transcript",)}),
    )
    actions = (
        "lock_threads",
        "close_threads",
        "reopen_threads",
        "hold_threads",
        "release_threads",
        "export_selected",
        "export_selected_markdown",
    )

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

    @admin.display(description=_("runs"))
    def runs(self, obj: models.Thread) -> str:
        # The runs list links back here: each run's thread column.
        return format_html('<a href="{}">{}</a>', runs_url(str(obj.pk)), gettext("Model calls"))

    @admin.display(description=_("transcript"))
    def transcript(self, obj: models.Thread) -> str:
        return transcript.render_newest(obj)

    @admin.display(description=_("transcript"))
    def transcript_without_run_links(self, obj: models.Thread) -> str:
        return transcript.render_newest(obj, run_links=False)

    def get_fieldsets(self, request: HttpRequest, obj: models.Thread | None = None) -> Any:
        # Links into the runs admin only for those who may open it: the "Model calls" link,
        # and each answer's run in the transcript (its figures are shown to every viewer).
        # A readonly field sees no request, hence two fields, chosen here.
        fieldsets = super().get_fieldsets(request, obj)
        if may_view(request, self.admin_site, models.Run):
            return fieldsets
        without_links = []
        for name, options in fieldsets:
            fields = [
                "transcript_without_run_links" if field == "transcript" else field
                for field in options["fields"]
                if field != "runs"
            ]
            without_links.append((name, {**options, "fields": tuple(fields)}))
        return without_links

    def get_urls(self) -> list[URLPattern]:
        # Ahead of the admin's own URLs, whose catch-all would take the transcript's pages.
        # The live list (admin/live_list.py). The transcript page with the takeover panel and
        # live updates (admin/takeover.py). The stop button's view (admin/stopping.py).
        return [
            *live_list.admin_urls(self),
            *takeover.admin_urls(self),
            *stopping.admin_urls(self),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        link = live_list.changelist_link(self, request)
        return super().changelist_view(
            request, {**(extra_context or {}), "chatkit_live_link": link}
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Deleting hosted threads deletes them at OpenAI too (django_chatkit.hosted.deleting): the
    # deletion journals them in its transaction; once it is committed, they are deleted there.
    def delete_model(self, request: HttpRequest, obj: models.Thread) -> None:
        thread_id = str(obj.pk)
        super().delete_model(request, obj)
        transaction.on_commit(lambda: hosted.settle_after_admin_delete(request, [thread_id]))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[models.Thread]) -> None:
        thread_ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        super().delete_queryset(request, queryset)
        transaction.on_commit(lambda: hosted.settle_after_admin_delete(request, thread_ids))

    def has_export_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.export_{opts.model_name}")

    @admin.action(description=_("Export selected threads (JSON Lines)"), permissions=("export",))
    def export_selected(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> StreamingHttpResponse:
        return self._export(request, queryset, markdown=False)

    @admin.action(
        description=_("Export selected threads (Markdown transcripts)"), permissions=("export",)
    )
    def export_selected_markdown(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> StreamingHttpResponse:
        return self._export(request, queryset, markdown=True)

    def _export(
        self, request: HttpRequest, queryset: QuerySet[models.Thread], *, markdown: bool
    ) -> StreamingHttpResponse:
        # Django offers the actions only with the permission and refuses a forged POST of them
        # (get_actions filters by allowed_permissions); checked again here, as moderation does.
        if not self.has_export_permission(request):
            raise PermissionDenied
        # By primary key, without the changelist's annotations and ordering: the export reads
        # threads in batches of its own (django_chatkit/export/records.py).
        threads = models.Thread.objects.filter(pk__in=queryset.order_by().values("pk"))
        pieces = (
            iter_archive(threads, fmt="markdown", with_files=False)
            if markdown
            else iter_jsonl(threads)
        )
        name = export_http.filename("threads", archive=markdown)
        return export_http.download(request, pieces, name, archive=markdown)
