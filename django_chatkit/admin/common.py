"""What the admin modules share: type aliases for the generic admin classes, owner labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import Case, IntegerField, OrderBy, Q, Value, When
from django.http import HttpRequest
from django.utils.translation import gettext

from django_chatkit import models
from django_chatkit.erasure import is_tombstone, tombstone_user_pk

if TYPE_CHECKING:  # ModelAdmin is generic for type checkers only
    ThreadModelAdmin = admin.ModelAdmin[models.Thread]
    RunModelAdmin = admin.ModelAdmin[models.Run]
    FeedbackModelAdmin = admin.ModelAdmin[models.Feedback]
    AttachmentModelAdmin = admin.ModelAdmin[models.Attachment]
    ThreadModelForm = forms.ModelForm[models.Thread]
    FeedbackModelForm = forms.ModelForm[models.Feedback]
else:
    ThreadModelAdmin = RunModelAdmin = FeedbackModelAdmin = AttachmentModelAdmin = admin.ModelAdmin
    ThreadModelForm = FeedbackModelForm = forms.ModelForm


def anonymous_owner_label(anonymous_key: str) -> str:
    """An anonymous visitor, or the tombstone of a deleted user (django_chatkit.erasure)."""
    if is_tombstone(anonymous_key):
        return gettext("owner deleted (user #%(id)s)") % {"id": tombstone_user_pk(anonymous_key)}
    return gettext("anonymous %(key)s…") % {"key": anonymous_key[:8]}


def owner_label(obj: models.Thread | models.Run | models.Attachment) -> str:
    if obj.user_id is not None:
        return str(obj.user)
    return anonymous_owner_label(obj.anonymous_key)


def first_when(condition: Q) -> OrderBy:
    """An ordering that puts the rows matching ``condition`` first (``CASE ... 0 ELSE 1``).

    The review queues' orders start with these; migration 0008 indexes the very same
    expressions (a different one, say THEN 1 ELSE 2, would leave the index unused: every page
    view would sort the whole table), and tests/test_admin_queues.py checks the index serves it.
    """
    return Case(When(condition, then=Value(0)), default=Value(1), output_field=IntegerField()).asc()


class ReadOnlyAdminMixin:
    """For rows that only the package writes (runs, votes, journals): staff read them, and no
    one adds, edits or deletes them through the admin (their own actions say what changes)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
