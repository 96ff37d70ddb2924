"""The browser tests' page (tests/test_browser.py), and static files for the live server.

The page sends a strict Content-Security-Policy with a per-request nonce, set on the request the
way django-csp does (``request.csp_nonce``): the widget must work under it.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.views import serve
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, re_path

# The sources the widget needs (docs/deployment.md), and nothing else: no 'self' for scripts,
# no 'unsafe-inline' anywhere.
POLICY = (
    "default-src 'none'; "
    "script-src 'nonce-{nonce}' https://cdn.platform.openai.com; "
    "frame-src https://cdn.platform.openai.com; "
    "connect-src 'self' https://cdn.platform.openai.com; "
    "style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'"
)

PROMPTS = ["What can you do?", {"label": "Opening hours", "prompt": "When are you open?"}]


def public_widget_page(request: HttpRequest) -> HttpResponse:
    """The page for anyone, signed in or not (the chat itself answers anonymous visitors only
    when ``ALLOW_ANONYMOUS`` is on).

    ``?stand_in=0`` leaves the stand-in element out; ``?second_copy=1`` adds a second copy of the
    bootstrap module, loaded by another URL.
    """
    nonce = secrets.token_urlsafe(16)
    request.csp_nonce = nonce  # type: ignore[attr-defined]
    context = {
        "stand_in": request.GET.get("stand_in") != "0",
        "second_copy": request.GET.get("second_copy") == "1",
        "prompts": PROMPTS,
    }
    response = render(request, "chatkit_tests/widget_page.html", context)
    response["Content-Security-Policy"] = POLICY.format(nonce=nonce)
    return response


widget_page = login_required(public_widget_page)


@login_required
def hosted_widget_page(request: HttpRequest) -> HttpResponse:
    """A hosted widget (``?workflow=``) beside a self-hosted one (tests/test_browser_hosted.py)."""
    nonce = secrets.token_urlsafe(16)
    request.csp_nonce = nonce  # type: ignore[attr-defined]
    context = {"workflow": request.GET.get("workflow", "wf_browser_tests")}
    response = render(request, "chatkit_tests/hosted_page.html", context)
    response["Content-Security-Policy"] = POLICY.format(nonce=nonce)
    return response


urlpatterns = [
    path("widget-test/", widget_page, name="widget_test_page"),
    path("public-widget-test/", public_widget_page, name="public_widget_test_page"),
    path("hosted-widget-test/", hosted_widget_page, name="hosted_widget_test_page"),
    # The live server runs with DEBUG off; the bootstrap module must still be served.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
