"""Self-service: a signed-in user downloads their own conversations (``chatkit:export``).

GET only. A visitor who is not signed in is sent to the login page (``LOGIN_URL``, back here
afterwards), as ``login_required`` does: the URL is a download link in a page. The threads are
the user's own, minus those they deleted (a thread deleted while on legal hold is kept for
staff, but it is no longer the user's). ``?files=1``: a tar of the JSONL and their files.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase
from django.views import View

from django_chatkit import models
from django_chatkit.export import http
from django_chatkit.export.archive import iter_archive
from django_chatkit.export.jsonl import iter_jsonl


class ExportView(View):
    http_method_names = ["get", "head"]

    async def get(self, request: HttpRequest) -> HttpResponseBase:
        user = await request.auser()
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        threads = models.Thread.objects.filter(user=user, deleted_by_owner_at__isnull=True)
        archive = request.GET.get("files") in ("1", "true", "yes")
        pieces = iter_archive(threads) if archive else iter_jsonl(threads)
        return http.download(request, pieces, http.filename("conversations", archive), archive)
