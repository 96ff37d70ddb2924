"""The feedback admin: the owners' votes on answers, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from django_chatkit import models
from django_chatkit.admin.common import FeedbackModelAdmin


@admin.register(models.Feedback)
class FeedbackAdmin(FeedbackModelAdmin):
    list_display = ("updated_at", "kind", "thread", "item_id")
    list_filter = ("kind", "updated_at")
    search_fields = ("thread__id", "thread__title", "item_id")
    list_select_related = ("thread",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
