"""The admin's "Live conversations" page: threads with recent activity, newest first (issue #15).

- ``threads/live/``: the page, for active staff with ``django_chatkit.view_thread``. It lists the
  threads updated in the last ``?minutes=`` (one of ``WINDOWS``; an hour by default), at most
  ``MAX_ROWS`` of them: owner, title, status, whether staff have taken it over, whether the agent
  is answering, last activity, links to the transcript. One query for the rows, however many
  (the ``chatkit_thread_activity`` index on ``(updated_at, id)`` serves the range and the order).
- ``threads/live/rows/``: the same rows alone (an HTML fragment), for the page's script
  (``django_chatkit/admin/live-list.js``). Where the site serves the staff websocket with a
  channel layer (``ws/chatkit/staff/``, django_chatkit.live.consumers.StaffNoticesConsumer), the
  script refetches them when a notice of any thread arrives: what it shows comes from this
  permission-checked view, never from the socket, which says only that something changed.
  Without a layer the page is a static list (reload it).

Linked from the threads list and, wherever the site lists apps (its index, this app's index,
the navigation sidebar), under "Threads".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from django.contrib.admin import AdminSite
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from django_chatkit import models
from django_chatkit.admin import columns
from django_chatkit.admin.common import owner_label
from django_chatkit.live.routes import staff_live_path

if TYPE_CHECKING:
    from django_chatkit.admin.common import ThreadModelAdmin

TEMPLATE_DIR = "admin/django_chatkit/thread"
# The periods the page offers (``?minutes=``), and the one it shows by default.
WINDOWS: Final = (15, 60, 240, 1440)
DEFAULT_WINDOW: Final = 60
# The page is for what happens now: a busier site narrows the period.
MAX_ROWS: Final = 100
URL_SUFFIX: Final = "live"


def may_watch(request: HttpRequest) -> bool:
    """Active staff with view_thread (superusers have it): the page, its rows and its socket."""
    user = request.user
    return bool(
        user.is_active
        and user.is_staff
        and user.has_perm(f"{models.Thread._meta.app_label}.view_thread")
    )


@dataclass(frozen=True)
class Row:
    thread_id: str
    title: str
    owner: str
    status: SafeString | str
    taken_over_by: str | None  # None: the agent answers it
    answering: bool
    updated_at: datetime
    transcript_url: str
    change_url: str


def _window(request: HttpRequest) -> int | None:
    """The period asked for (``?minutes=``), the default when absent, None when not offered."""
    raw = request.GET.get("minutes")
    if raw is None or raw == "":
        return DEFAULT_WINDOW
    try:
        minutes = int(raw)
    except ValueError:
        return None
    return minutes if minutes in WINDOWS else None


def load_rows(model_admin: ThreadModelAdmin, minutes: int) -> list[Row]:
    """The threads updated in the last ``minutes``, newest first: one query."""
    since = timezone.now() - timedelta(minutes=minutes)
    answering = models.Run.objects.filter(
        thread_id=OuterRef("pk"),
        kind=models.RunKind.ANSWER,
        status=models.RunStatus.RUNNING,
    )
    threads = (
        models.Thread.objects.filter(updated_at__gte=since)
        .select_related("user", "taken_over_by")
        .annotate(answering=Exists(answering))
        .order_by("-updated_at", "-id")[:MAX_ROWS]
    )
    opts = model_admin.opts
    site = model_admin.admin_site.name
    prefix = f"{site}:{opts.app_label}_{opts.model_name}"
    rows = []
    for thread in threads:
        key = quote(thread.pk)
        taken_by = None
        if thread.taken_over_at is not None:
            # Someone deleted since: still taken over, by nobody named.
            taken_by = str(thread.taken_over_by) if thread.taken_over_by else gettext("staff")
        rows.append(
            Row(
                thread_id=str(thread.pk),
                title=str(thread),
                owner=owner_label(thread),
                status=columns.status_badge(thread),
                taken_over_by=taken_by,
                answering=bool(getattr(thread, "answering", False)),
                updated_at=thread.updated_at,
                transcript_url=reverse(f"{prefix}_transcript", args=[key]),
                change_url=reverse(f"{prefix}_change", args=[key]),
            )
        )
    return rows


def _summary(rows: list[Row]) -> str:
    if len(rows) >= MAX_ROWS:
        return gettext(
            "The %(count)d conversations with the most recent activity: more were active in "
            "this period."
        ) % {"count": len(rows)}
    return ngettext(
        "%(count)d conversation active in this period.",
        "%(count)d conversations active in this period.",
        len(rows),
    ) % {"count": len(rows)}


def _render_rows(rows: list[Row]) -> str:
    return render_to_string(
        f"{TEMPLATE_DIR}/live_rows.html", {"rows": rows, "summary": _summary(rows)}
    )


def _window_choices(model_admin: ThreadModelAdmin, selected: int) -> list[dict[str, Any]]:
    base = live_url(model_admin.admin_site)
    labels = {
        15: gettext("15 minutes"),
        60: gettext("1 hour"),
        240: gettext("4 hours"),
        1440: gettext("24 hours"),
    }
    return [
        {"minutes": m, "label": labels[m], "url": f"{base}?minutes={m}", "selected": m == selected}
        for m in WINDOWS
    ]


def live_view(model_admin: ThreadModelAdmin, request: HttpRequest) -> HttpResponse:
    if not may_watch(request):
        raise PermissionDenied
    minutes = _window(request)
    if minutes is None:
        return HttpResponseBadRequest(gettext("This period is not offered."))
    rows = load_rows(model_admin, minutes)
    opts = model_admin.opts
    site = model_admin.admin_site.name
    socket = staff_live_path()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Live conversations"),
        "subtitle": None,
        "opts": opts,
        "rows_html": _render_rows(rows),
        "windows": _window_choices(model_admin, minutes),
        "live_socket": socket or "",
        "rows_url": f"{reverse(f'{site}:{opts.app_label}_{opts.model_name}_live_rows')}"
        f"?minutes={minutes}",
    }
    request.current_app = site
    return TemplateResponse(request, f"{TEMPLATE_DIR}/live.html", context)


def live_rows_view(model_admin: ThreadModelAdmin, request: HttpRequest) -> HttpResponse:
    if not may_watch(request):
        raise PermissionDenied
    minutes = _window(request)
    if minutes is None:
        return HttpResponseBadRequest(gettext("This period is not offered."))
    # Never cached: admin_view marks every admin response so.
    return HttpResponse(
        _render_rows(load_rows(model_admin, minutes)), content_type="text/html; charset=utf-8"
    )


def live_url(site: AdminSite) -> str:
    opts = models.Thread._meta
    return reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_live")


def changelist_link(model_admin: ThreadModelAdmin, request: HttpRequest) -> str:
    """The threads list's link to the page, for those who may open it ("" otherwise)."""
    if not may_watch(request):
        return ""
    return format_html(
        '<a href="{}" class="chatkit-live-link">{}</a>',
        live_url(model_admin.admin_site),
        gettext("Live conversations"),
    )


def _app_list_entry(site: AdminSite) -> dict[str, Any] | None:
    try:
        url = live_url(site)
    except NoReverseMatch:
        return None
    return {
        "model": models.Thread,
        "name": gettext("Live conversations"),
        "object_name": "LiveConversations",
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


def link_in_app_list(site: AdminSite) -> None:
    """List the page under "Threads" wherever the site lists apps (as the usage overview is
    listed under "Runs", django_chatkit.admin.usage): for users who may open it only."""
    if getattr(site, "_chatkit_live_linked", False):
        return
    original = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        app_list = original(request, app_label)
        if not may_watch(request):
            return app_list
        for app in app_list:
            if app.get("app_label") != models.Thread._meta.app_label:
                continue
            entries = app.get("models", [])
            for index, entry in enumerate(entries):
                if entry.get("model") is models.Thread and entry.get("object_name") == "Thread":
                    live = _app_list_entry(site)
                    if live is not None:
                        entries.insert(index + 1, live)
                    break
        return app_list

    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._chatkit_live_linked = True  # type: ignore[attr-defined]


def admin_urls(model_admin: ThreadModelAdmin) -> list[URLPattern]:
    """The page and its rows, for ThreadAdmin.get_urls (ahead of the admin's own URLs, whose
    ``<path:object_id>/`` would take ``live/``)."""
    link_in_app_list(model_admin.admin_site)
    opts = model_admin.model._meta
    prefix = f"{opts.app_label}_{opts.model_name}"
    wrap = model_admin.admin_site.admin_view

    def page(request: HttpRequest) -> HttpResponse:
        return live_view(model_admin, request)

    def rows(request: HttpRequest) -> HttpResponse:
        return live_rows_view(model_admin, request)

    return [
        path(f"{URL_SUFFIX}/", wrap(page), name=f"{prefix}_live"),
        path(f"{URL_SUFFIX}/rows/", wrap(rows), name=f"{prefix}_live_rows"),
    ]
