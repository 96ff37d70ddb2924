"""The threads admin: the changelist, the transcript on each thread's page, moderation."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin import transcript
from django_chatkit.admin.common import ThreadModelForm, owner_label
from django_chatkit.admin.moderation import MODERATION_FIELDS, ThreadModerationAdmin


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
        # Changed only by the moderation actions (reasons asked, history kept): the title is
        # the one field staff with change permission may edit (not under legal hold).
        *MODERATION_FIELDS,
    )
    fieldsets = (
        (None, {"fields": ("id", "title", "user", "anonymous_key", "created_at", "updated_at")}),
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
    )

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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
