"""The transcript page's takeover panel and live updates (issue #15).

- ``<thread>/takeover/`` (POST ``action=take|hand_back``) and ``<thread>/reply/`` (POST
  ``text``): staff with ``moderate_thread`` only, refused with 403 to anyone else however the
  POST was made; the panel is offered only to them. CSRF-protected as every admin view.
- ``<thread>/transcript/new/?after=<cursor>``: the transcript's items after a cursor, as the
  transcript's HTML, for the page's script (``django_chatkit/admin/transcript-live.js``) to add
  when a notice comes; the newest cursor in the ``X-Chatkit-Cursor`` header, and whether the
  thread is taken over in ``X-Chatkit-Taken-Over``. For staff who may view the thread.

The transcript page itself is ``transcript.transcript_view``, rendered with a template of its
own here (``transcript/takeover.html``, extending the page) plus what the panel and the script
need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext

from django_chatkit import models
from django_chatkit.admin import transcript
from django_chatkit.admin.links import may_view
from django_chatkit.live import staff
from django_chatkit.live.routes import live_path

if TYPE_CHECKING:
    from django_chatkit.admin.common import ThreadModelAdmin

TEMPLATE = f"{transcript.TEMPLATE_DIR}/takeover.html"
LIVE_QUERY_KEYS = ("before", "after", "item")


def may_take_over(model_admin: ThreadModelAdmin, request: HttpRequest) -> bool:
    opts = model_admin.opts
    return bool(request.user.has_perm(f"{opts.app_label}.moderate_{opts.model_name}"))


def _thread(model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str) -> models.Thread:
    thread = model_admin.get_object(request, unquote(object_id))
    if thread is None:
        raise Http404(gettext("No thread with this id."))
    if not model_admin.has_view_or_change_permission(request, thread):
        raise PermissionDenied
    return thread


def _url(model_admin: ThreadModelAdmin, name: str, thread_id: str) -> str:
    opts = model_admin.opts
    site = model_admin.admin_site.name
    return reverse(f"{site}:{opts.app_label}_{opts.model_name}_{name}", args=[quote(thread_id)])


def _newest_cursor(thread: models.Thread) -> str:
    newest = (
        models.ThreadItem.objects.filter(thread_id=thread.pk)
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[:1]
    )
    row = next(iter(newest), None)
    return transcript.Cursor(*row).encode() if row else ""


def transcript_page(
    model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The transcript page, with the takeover panel and, on its newest page, live updates."""
    live = not any(key in request.GET for key in LIVE_QUERY_KEYS)
    # Read before the page: an item stored in between is fetched again, and the script skips
    # what the page shows already; read after, it would be missed.
    cursor = _newest_cursor_for(model_admin, request, object_id) if live else ""
    response = transcript.transcript_view(model_admin, request, object_id)
    if not isinstance(response, TemplateResponse) or response.context_data is None:
        return response
    thread: models.Thread = response.context_data["original"]
    socket = live_path() if live else None
    response.template_name = TEMPLATE
    response.context_data.update(
        {
            "may_take_over": may_take_over(model_admin, request),
            "taken_over_by": thread.taken_over_by,
            "taken_over_at": thread.taken_over_at,
            "takeover_url": _url(model_admin, "takeover", str(thread.pk)),
            "reply_url": _url(model_admin, "reply", str(thread.pk)),
            "live_socket": f"{socket}{url_quote(str(thread.pk), safe='')}/" if socket else "",
            "live_fragment_url": _url(model_admin, "transcript_new", str(thread.pk)),
            "live_cursor": cursor,
            "max_reply_length": staff.MAX_REPLY_LENGTH,
        }
    )
    return response


def _newest_cursor_for(model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str) -> str:
    thread = model_admin.get_object(request, unquote(object_id))
    return _newest_cursor(thread) if thread is not None else ""


def transcript_new(
    model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    thread = _thread(model_admin, request, object_id)
    after = None
    if request.GET.get("after"):
        try:
            after = transcript.Cursor.decode(request.GET["after"])
        except ValueError:
            return HttpResponseBadRequest(gettext("This transcript page link is not valid."))
    page = transcript.load_page(thread, after=after)
    cursor = page.cursor(page.rows[-1]) if page.rows else (request.GET.get("after") or "")
    html = transcript.render_page(
        page,
        admin_site_name=model_admin.admin_site.name,
        run_links=may_view(request, model_admin.admin_site, models.Run),
    )
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["X-Chatkit-Cursor"] = cursor
    response["X-Chatkit-Taken-Over"] = "1" if thread.taken_over_at else "0"
    response["Cache-Control"] = "no-store"
    return response


def _moderator_post(
    model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str
) -> models.Thread | HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    thread = _thread(model_admin, request, object_id)
    if not may_take_over(model_admin, request):
        raise PermissionDenied
    return thread


def _back(model_admin: ThreadModelAdmin, thread: models.Thread) -> HttpResponseRedirect:
    return HttpResponseRedirect(_url(model_admin, "transcript", str(thread.pk)))


def takeover_view(
    model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    thread = _moderator_post(model_admin, request, object_id)
    if isinstance(thread, HttpResponse):
        return thread
    action = request.POST.get("action")
    if action == "take":
        if staff.take_over(thread, request.user):
            messages.success(request, gettext("You have taken this conversation over."))
        else:
            messages.warning(request, gettext("This conversation was already taken over."))
    elif action == "hand_back":
        if staff.hand_back(thread, request.user):
            messages.success(request, gettext("The assistant answers this conversation again."))
        else:
            messages.warning(request, gettext("This conversation was not taken over."))
    else:
        return HttpResponseBadRequest(gettext("Unknown takeover action."))
    return _back(model_admin, thread)


def reply_view(model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    thread = _moderator_post(model_admin, request, object_id)
    if isinstance(thread, HttpResponse):
        return thread
    text = request.POST.get("text", "").strip()
    if not text or len(text) > staff.MAX_REPLY_LENGTH:
        return HttpResponseBadRequest(
            gettext("A reply must have between 1 and %(count)d characters.")
            % {"count": staff.MAX_REPLY_LENGTH}
        )
    if staff.post_reply(thread, request.user, text) is None:
        messages.error(request, gettext("Take the conversation over before replying."))
    else:
        messages.success(request, gettext("Your reply was sent."))
    return _back(model_admin, thread)


def admin_urls(model_admin: ThreadModelAdmin) -> Sequence[URLPattern]:
    """The transcript page and its takeover views, for ThreadAdmin.get_urls (ahead of the
    admin's own URLs, whose catch-all would take them)."""
    opts = model_admin.model._meta
    prefix = f"{opts.app_label}_{opts.model_name}"
    wrap = model_admin.admin_site.admin_view

    def bound(view: Any) -> Any:
        def call(request: HttpRequest, object_id: str) -> HttpResponse:
            response: HttpResponse = view(model_admin, request, object_id)
            return response

        return wrap(call)

    return [
        path("<path:object_id>/transcript/", bound(transcript_page), name=f"{prefix}_transcript"),
        path(
            "<path:object_id>/transcript/new/",
            bound(transcript_new),
            name=f"{prefix}_transcript_new",
        ),
        path("<path:object_id>/takeover/", bound(takeover_view), name=f"{prefix}_takeover"),
        path("<path:object_id>/reply/", bound(reply_view), name=f"{prefix}_reply"),
    ]
