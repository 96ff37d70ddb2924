"""The transcript page's stop button: a moderator stops the answer the agent is streaming.

The button is a POST form (the admin's CSRF protection applies), shown only while the thread
has an answer running and only to staff with ``moderate_thread``; the view checks the
permission again (403 for a forged POST). The stop itself is django_chatkit.stops': the worker
streaming the answer ends it, keeps what was said and records the run cancelled, by whom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote, unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext

from django_chatkit import models, stops

if TYPE_CHECKING:
    from django_chatkit.admin.common import ThreadModelAdmin


def may_moderate(model_admin: ThreadModelAdmin, request: HttpRequest) -> bool:
    opts = model_admin.opts
    return bool(request.user.has_perm(f"{opts.app_label}.moderate_{opts.model_name}"))


def answer_running(thread: models.Thread) -> bool:
    """Whether the thread has an answer streaming that no one asked to stop yet (one indexed
    query). A stop requested is left out: its worker, maybe in another process, may take half a
    second to read it, and a second click would only hear that there is nothing to stop."""
    return models.Run.objects.filter(
        thread=thread,
        kind=models.RunKind.ANSWER,
        status=models.RunStatus.RUNNING,
        stop_requested_at__isnull=True,
    ).exists()


def stop_view(model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_moderate(model_admin, request):
        raise PermissionDenied
    thread = model_admin.get_object(request, unquote(object_id))
    if thread is None:
        raise Http404(gettext("No thread with this id."))
    user_id = request.user.pk
    if user_id is None:  # unreachable: the admin only lets signed-in staff in
        raise PermissionDenied
    with transaction.atomic():
        stopped = stops.request_stop([str(thread.pk)], user_id)
        if stopped:
            LogEntry.objects.create(
                user_id=user_id,
                content_type_id=ContentType.objects.get_for_model(
                    models.Thread, for_concrete_model=False
                ).pk,
                object_id=str(thread.pk),
                object_repr=str(thread)[:200],
                action_flag=CHANGE,
                change_message=gettext("Stopped the answer in progress."),
            )
    if stopped:
        model_admin.message_user(
            request, gettext("The answer in progress was stopped."), messages.SUCCESS
        )
    else:
        model_admin.message_user(
            request, gettext("No answer was in progress: nothing to stop."), messages.WARNING
        )
    opts = model_admin.opts
    site_name = model_admin.admin_site.name
    return redirect(
        reverse(
            f"{site_name}:{opts.app_label}_{opts.model_name}_transcript",
            args=[quote(thread.pk)],
        )
    )


def admin_urls(model_admin: ThreadModelAdmin) -> list[URLPattern]:
    """The stop button's view, for ThreadAdmin.get_urls (ahead of the admin's own URLs)."""
    opts = model_admin.model._meta

    def stop(request: HttpRequest, object_id: str) -> HttpResponse:
        return stop_view(model_admin, request, object_id)

    return [
        path(
            "<path:object_id>/stop/",
            model_admin.admin_site.admin_view(stop),
            name=f"{opts.app_label}_{opts.model_name}_stop",
        )
    ]
