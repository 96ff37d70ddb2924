"""The runs admin: one row per model call, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin.common import RunModelAdmin
from django_chatkit.admin.usage import UsageUrlsMixin


@admin.register(models.Run)
class RunAdmin(UsageUrlsMixin, RunModelAdmin):
    list_display = (
        "started_at",
        "thread",
        "kind",
        "model",
        "status",
        "error_code",
        "input_tokens",
        "output_tokens",
        "first_token_ms",
    )
    list_filter = ("status", "kind", "model", "started_at")
    search_fields = ("thread__id", "thread__title", "user__username", "response_id")
    list_select_related = ("thread",)

    @admin.display(description=_("first token (ms)"))
    def first_token_ms(self, obj: models.Run) -> int | None:
        if obj.first_token_at is None:
            return None
        return int((obj.first_token_at - obj.started_at).total_seconds() * 1000)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
