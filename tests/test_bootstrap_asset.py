"""The bootstrap module, served by the app's own URLconf (django_chatkit/bootstrap_asset.py): the
URL the tag renders, the caching headers, and that it is served by a bare ASGI server with no
static files handler at all.

The tests without a database mark also show the view touches no database: pytest-django fails
any query made outside a ``django_db`` test.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse

from django_chatkit.bootstrap_asset import bootstrap_asset, bootstrap_url
from tests.live_server import SERVERS, LiveServer, live_asgi_server
from tests.test_widget import Page, make_request, render

FILE = (
    Path(__file__).resolve().parent.parent
    / "django_chatkit"
    / "static"
    / "django_chatkit"
    / "chatkit-bootstrap.js"
)
CONTENT = FILE.read_bytes()
DIGEST = hashlib.sha256(CONTENT).hexdigest()[:12]
URL = f"/chatkit/bootstrap.{DIGEST}.js"
STALE_URL = "/chatkit/bootstrap.0123456789ab.js"
IMMUTABLE = "public, max-age=31536000, immutable"


def test_the_digest_is_the_first_12_hex_digits_of_the_files_sha256():
    asset = bootstrap_asset()
    assert asset.content == CONTENT
    assert asset.digest == DIGEST
    assert re.fullmatch(r"[0-9a-f]{12}", asset.digest)
    assert bootstrap_url() == reverse("chatkit:bootstrap", args=[DIGEST]) == URL


def test_the_tag_loads_the_module_from_the_apps_url_not_from_static_files():
    page = Page(render("{% chatkit %}{% chatkit %}", make_request()))
    modules = [s for s in page.scripts if s.get("type") == "module"]
    assert [m["src"] for m in modules] == [URL, URL]
    assert "/static/" not in str([s.get("src") for s in page.scripts])


def test_the_url_tag_names_the_same_module():
    html = Template("{% load chatkit %}{% chatkit_bootstrap_url %}").render(Context({}))
    assert html == URL


def test_the_module_is_served_with_its_type_and_cached_for_good():
    response = Client().get(URL)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == IMMUTABLE
    assert response["ETag"] == f'"{DIGEST}"'
    assert response["Content-Length"] == str(len(CONTENT))
    # Nothing per visitor: no cookie set, no Vary: Cookie (the session was never read).
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_head_answers_the_same_headers():
    response = Client().head(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == IMMUTABLE
    assert response["ETag"] == f'"{DIGEST}"'


@pytest.mark.parametrize(
    "if_none_match", [f'"{DIGEST}"', f'W/"{DIGEST}"', f'"other", "{DIGEST}"', "*"]
)
def test_a_cached_copy_is_revalidated_with_a_304(if_none_match):
    response = Client().get(URL, headers={"If-None-Match": if_none_match})
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == f'"{DIGEST}"'
    assert response["Cache-Control"] == IMMUTABLE
    assert "Content-Type" not in response


def test_another_etag_gets_the_content():
    response = Client().get(URL, headers={"If-None-Match": '"0123456789ab"'})
    assert response.status_code == 200
    assert response.content == CONTENT


def test_a_page_rendered_before_a_deploy_still_gets_a_working_module_but_not_for_good():
    response = Client().get(STALE_URL)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["ETag"] == f'"{DIGEST}"'
    # Revalidated: unchanged since, a 304 that does not make the stale name immutable either.
    revalidated = Client().get(STALE_URL, headers={"If-None-Match": f'"{DIGEST}"'})
    assert revalidated.status_code == 304
    assert revalidated["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_other_methods_are_refused_with_405_in_json(method):
    # enforce_csrf_checks: a browser's POST would otherwise be told 403 (CSRF), not 405.
    response = getattr(Client(enforce_csrf_checks=True), method)(URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- under a real server, without static files ---------------------------------------------


@pytest.fixture(params=SERVERS)
def bare_server(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[LiveServer]:
    # No static files route in the URLconf and no static files handler around the application:
    # what `uvicorn project.asgi:application` serves.
    extra_env = {"CHATKIT_TEST_URLCONF": "tests.urls_without_static"}
    with live_asgi_server(request.param, extra_env=extra_env) as server:
        yield server


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_bare_asgi_server_serves_the_module_the_page_names(bare_server: LiveServer) -> None:
    with httpx.Client(base_url=bare_server.url, timeout=30) as http:
        page = http.get("/public-widget-test/?stand_in=0")
        assert page.status_code == 200, bare_server.describe()
        modules = [s["src"] for s in Page(page.text).scripts if s.get("type") == "module"]
        assert modules == [URL, URL]  # the page's two widgets

        served = http.get(URL)
        assert served.status_code == 200, bare_server.describe()
        assert served.content == CONTENT
        assert served.headers["content-type"] == "text/javascript; charset=utf-8"
        assert served.headers["cache-control"] == IMMUTABLE
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in served.headers

        head = http.head(URL)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(CONTENT))

        again = http.get(URL, headers={"If-None-Match": served.headers["etag"]})
        assert again.status_code == 304

        # ...where the static URL the tag used to render is not served at all.
        assert http.get("/static/django_chatkit/chatkit-bootstrap.js").status_code == 404
