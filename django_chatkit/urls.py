"""The endpoint and the attachment URLs: ``include("django_chatkit.urls")``.

Their views are imported on their first request, not with this module: Django imports every
URLconf when it runs the system checks (``manage.py check``, ``runserver``, ``migrate``), and the
views import the ChatKit and Agents SDKs, seconds of imports that no check needs.
:func:`django_chatkit.loading.warm_up` imports them at a server's startup.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.urls import path
from django.utils.module_loading import import_string

from django_chatkit.bootstrap_asset import bootstrap_view  # Django only: no SDK import


class DeferredView:
    """``as_view()`` of the class-based view at a dotted path, imported on its first request.

    It is what Django would see of ours: async, named after the view's class, exempt from the
    CSRF middleware as the view is (tests/test_checks.py compares them), and, with
    ``login_required=False``, from Django's ``LoginRequiredMiddleware``: the endpoint and the
    attachment views decide who may call them (a JSON 401, an anonymous visitor when
    ``ALLOW_ANONYMOUS`` is on, an upload token), where the middleware would redirect the widget's
    ``fetch()`` to a login page. It has no
    ``view_class`` attribute, which Django reads whenever it resolves or reverses a URL of the
    project: :meth:`load_view_class` imports the class.
    """

    def __init__(
        self, view_class_path: str, *, csrf_exempt: bool, login_required: bool = True
    ) -> None:
        self.view_class_path = view_class_path
        self.csrf_exempt = csrf_exempt
        self.login_required = login_required
        self.__module__, _, self.__qualname__ = view_class_path.rpartition(".")
        self.__name__ = self.__qualname__
        markcoroutinefunction(self)  # Django then awaits it on the event loop, as our views

    def load_view_class(self) -> type[Any]:
        view_class: type[Any] = import_string(self.view_class_path)
        return view_class

    @cached_property
    def _view(self) -> Any:
        return self.load_view_class().as_view()

    async def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase = await self._view(request, *args, **kwargs)
        return response


app_name = "chatkit"

urlpatterns = [
    path(
        "",
        DeferredView("django_chatkit.views.ChatKitView", csrf_exempt=True, login_required=False),
        name="endpoint",
    ),
    path(
        "attachments/<str:attachment_id>/upload/",
        DeferredView(
            "django_chatkit.attachments.views.UploadView", csrf_exempt=True, login_required=False
        ),
        name="upload",
    ),
    path(
        "attachments/<str:attachment_id>/",
        DeferredView(
            "django_chatkit.attachments.views.DownloadView", csrf_exempt=False, login_required=False
        ),
        name="download",
    ),
    # The signed-in user's own conversations, as JSON Lines (?files=1: a tar with their files).
    # Signed-in users only, as LoginRequiredMiddleware would have it: it redirects to LOGIN_URL.
    path(
        "export/",
        DeferredView("django_chatkit.export.views.ExportView", csrf_exempt=False),
        name="export",
    ),
    # Hosted mode (docs/hosted.md): a client secret for a widget of an Agent Builder workflow.
    path(
        "hosted/session/",
        DeferredView(
            "django_chatkit.hosted.views.HostedSessionView", csrf_exempt=True, login_required=False
        ),
        name="hosted-session",
    ),
    # The widget's module, here rather than only in static/: it then needs no static files
    # setup under any server (django_chatkit/bootstrap_asset.py).
    path("bootstrap.<str:digest>.js", bootstrap_view, name="bootstrap"),
]
