"""The attachments admin: what users uploaded, read-only, deletable with their files.

A delete here (one row or a bulk delete) is an ordinary ORM delete, so the ``post_delete``
receiver of ``django_chatkit.attachments.lifecycle`` removes the stored files once the
transaction commits, as for every other way an attachment goes.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin.common import AttachmentModelAdmin, owner_label
from django_chatkit.admin.counting import BoundedChangeList, EstimatedCountPaginator
from django_chatkit.admin.links import QUEUES_CSS, thread_link

# A raster image inline as base64, nothing else: no SVG (it can carry script), no remote URL
# (the admin would fetch it), no parameters or characters outside the base64 alphabet.
_IMAGE_DATA_URL = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}")


def safe_preview_url(value: object) -> str | None:
    """``value`` if it is an inline raster image the admin may show, else None."""
    if isinstance(value, str) and _IMAGE_DATA_URL.fullmatch(value):
        return value
    return None


@admin.register(models.Attachment)
class AttachmentAdmin(AttachmentModelAdmin):
    list_display = (
        "name",
        "preview",
        "owner",
        "thread_page",
        "type",
        "mime_type",
        "human_size",
        "status_badge",
        "created_at",
        "download",
    )
    list_filter = ("status", "type", "created_at")
    search_fields = ("=id", "name", "user__username", "user__email", "=anonymous_key")
    list_select_related = ("user", "thread")
    show_full_result_count = False
    # Counted as the threads list is (admin/counting.py): estimated unfiltered, capped filtered.
    paginator = EstimatedCountPaginator

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[BoundedChangeList]:
        return BoundedChangeList

    ordering = ("-created_at", "-id")
    fields = (
        "id",
        "name",
        "large_preview",
        "owner",
        "thread_page",
        "type",
        "mime_type",
        "human_size",
        "status",
        "created_at",
        "download",
        "sha256",
        "storage_alias",
        "storage_name",
    )
    readonly_fields = fields

    class Media:
        css = {"all": (QUEUES_CSS,)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Attachment]:
        # The payload (with the preview's up to 16 KB) is not loaded whole: only the preview.
        return (
            super()
            .get_queryset(request)
            .defer("payload")
            .annotate(preview_url=KT("payload__preview_url"))
        )

    def _preview(self, obj: models.Attachment, css_class: str) -> SafeString | str:
        url = safe_preview_url(getattr(obj, "preview_url", None))
        if url is None:
            return "—"
        return format_html('<img src="{}" alt="{}" class="{}">', url, obj.name, css_class)

    @admin.display(description=_("preview"))
    def preview(self, obj: models.Attachment) -> SafeString | str:
        return self._preview(obj, "chatkit-preview")

    @admin.display(description=_("preview"))
    def large_preview(self, obj: models.Attachment) -> SafeString | str:
        return self._preview(obj, "chatkit-preview-large")

    @admin.display(description=_("owner"))
    def owner(self, obj: models.Attachment) -> str:
        return owner_label(obj)

    @admin.display(description=_("thread"))
    def thread_page(self, obj: models.Attachment) -> SafeString | str:
        return thread_link(obj.thread)

    @admin.display(description=_("size"), ordering="size")
    def human_size(self, obj: models.Attachment) -> str:
        return "—" if obj.size is None else str(filesizeformat(obj.size))

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: models.Attachment) -> SafeString:
        status = obj.status
        label = (
            models.AttachmentStatus(status).label if status in models.AttachmentStatus else status
        )
        return format_html('<span class="chatkit-badge chatkit-badge-{}">{}</span>', status, label)

    @admin.display(description=_("download"))
    def download(self, obj: models.Attachment) -> SafeString | str:
        # The download view serves staff who have view_attachment (what this page needs too).
        if obj.status != models.AttachmentStatus.READY or not obj.storage_name:
            return "—"
        url = reverse("chatkit:download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Download"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Deleting needs delete_attachment (Django's default check, kept).
