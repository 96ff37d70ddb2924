"""Links between the review screens: a thread's change page, shown as the thread's label."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.contrib.admin.exceptions import NotRegistered
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_chatkit import models

# The review screens' badges and previews (no inline style, so a strict CSP style-src holds).
QUEUES_CSS = "django_chatkit/admin/queues.css"


def thread_change_url(thread_id: str) -> str:
    return reverse("admin:django_chatkit_thread_change", args=[thread_id])


def thread_link(thread: models.Thread | None) -> SafeString | str:
    """The thread's label (its title, or "Untitled conversation" and its date) linking to its
    page. ``thread`` must come from ``select_related``: ``str()`` reads only its own columns."""
    if thread is None:
        return "—"
    return format_html('<a href="{}">{}</a>', thread_change_url(thread.pk), str(thread))


def may_view(request: HttpRequest, admin_site: AdminSite, model: type[Model]) -> bool:
    """Whether ``request``'s user may open ``model``'s admin pages on ``admin_site``: a link to
    them is shown only then (else it would lead to "403 Forbidden")."""
    try:
        model_admin = admin_site.get_model_admin(model)
    except NotRegistered:
        return False
    return model_admin.has_view_or_change_permission(request)
