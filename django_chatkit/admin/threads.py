"""The threads admin: the changelist, the transcript on each thread's page, moderation."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_chatkit import models
from django_chatkit.admin import transcript
from django_chatkit.admin.common import ThreadModelAdmin, ThreadModelForm, owner_label


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
    # __str__: the title, or "Untitled conversation" and the creation date (models.Thread).
    list_display = ("__str__", "owner", "status", "item_count", "updated_at", "created_at")
    list_filter = ("status", "created_at")
    date_hierarchy = "updated_at"
    search_fields = ("id", "title", "user__username", "user__email")
    list_select_related = ("user",)
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
        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(description=_("owner"))
    def owner(self, obj: models.Thread) -> str:
        return owner_label(obj)

    @admin.display(description=_("items"), ordering="item_count")
    def item_count(self, obj: models.Thread) -> int:
        return int(getattr(obj, "item_count", 0))

    @admin.display(description=_("transcript"))
    def transcript(self, obj: models.Thread) -> str:
        return transcript.render_newest(obj)

    def get_urls(self) -> list[URLPattern]:
        # Ahead of the admin's own URLs, whose catch-all would take the transcript's pages.
        return [*transcript.admin_urls(self), *super().get_urls()]

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
