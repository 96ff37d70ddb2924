"""A database that refuses connections (down, restarting, out of connections) answers 503 with
a JSON error the widget can show and a Retry-After, never Django's HTML 500 page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client, override_settings

from django_chatkit.models import Attachment, Thread
from django_chatkit.testing import user_input
from tests.attachment_flow import CHATKIT_ORIGIN, download_path, local_media, path_of
from tests.attachment_samples import PDF
from tests.processes import free_port
from tests.test_query_counts import Browser

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_unreachable() -> Iterator[None]:
    """The real driver fails to connect: a missing directory (SQLite), a closed port (others)."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-chatkit-dir/db.sqlite3"
    else:
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = free_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.parametrize(
    "op", [("threads.create", {"input": user_input("Hi")}), ("threads.list", {})]
)
def test_a_refused_connection_is_a_503_json_error_and_nothing_is_lost(alice, op):
    browser = Browser(alice)
    thread_id = browser.send("threads.create", input=user_input("Kept"))[0]["thread"]["id"]
    kind, params = op
    with database_unreachable():
        reply = async_to_sync(browser.chat.request)(kind, **params)
    assert reply.status_code == 503
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Retry-After"] == "1"
    assert reply.data["error"]["code"] == "database_unavailable"
    # Back up: what was stored is there, and the same client goes on.
    assert list(Thread.objects.values_list("id", flat=True)) == [thread_id]
    [page] = browser.send("threads.list")
    assert [thread["id"] for thread in page["data"]] == [thread_id]


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def assert_json_503(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["error"]["code"] == "database_unavailable"


class TestAttachmentViews:
    """The upload and download views answer like the endpoint: JSON 503, never an HTML 500."""

    @pytest.fixture
    def ready(self, alice, tmp_path) -> Iterator[tuple[Browser, dict[str, Any]]]:
        settings = {
            "SERVER": "tests.servers.ScriptedServer",
            "ATTACHMENTS": {"ENABLED": True},
        }
        with local_media(tmp_path / "media", settings):
            browser = Browser(alice)
            [created] = browser.send(
                "attachments.create", name="a.pdf", size=len(PDF), mime_type="application/pdf"
            )
            yield browser, created

    def upload(self, created: dict[str, Any], **headers: str):
        return Client().post(
            path_of(created["upload_descriptor"]["url"]),
            data=PDF,
            content_type="application/pdf",
            headers=headers,
        )

    def test_download(self, ready):
        browser, created = ready
        assert self.upload(created).status_code == 200
        with database_unreachable():
            response = async_to_sync(browser.chat.client.get)(download_path(created["id"]))
        assert_json_503(response)
        # Back up: the file is there.
        response = async_to_sync(browser.chat.client.get)(download_path(created["id"]))
        assert response.status_code == 200
        assert async_to_sync(read_all)(response.streaming_content) == PDF

    def test_upload_with_its_cors_headers(self, ready):
        _, created = ready
        with database_unreachable():
            response = self.upload(created, Origin=CHATKIT_ORIGIN)
        assert_json_503(response)
        assert response["Access-Control-Allow-Origin"] == CHATKIT_ORIGIN  # readable in the iframe
        # Back up: the same upload URL still works (nothing was used up).
        assert self.upload(created).status_code == 200
        assert Attachment.objects.get().status == "ready"


class TestExampleProjectPages:
    """The demo site's pages show a readable 503 page (DatabaseUnavailableMiddleware)."""

    @pytest.fixture(autouse=True)
    def example_site(self):
        from example_project import settings

        with override_settings(
            ROOT_URLCONF="example_project.urls",
            MIDDLEWARE=settings.MIDDLEWARE,
            TEMPLATES=settings.TEMPLATES,
        ):
            yield

    @pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/"])
    def test_pages(self, alice, path):
        client = Client()
        client.force_login(alice)
        assert client.get(path, follow=True).status_code == 200
        with database_unreachable():
            response = client.get(path)
        assert response.status_code == 503
        assert response["Content-Type"].startswith("text/html")
        assert response["Retry-After"] == "5"
        assert b"<h1>Back in a moment</h1>" in response.content
        assert b"cannot reach its database" in response.content

    def test_a_form_post(self, alice):
        with database_unreachable():
            response = Client().post("/accounts/login/", {"username": "alice", "password": "pw"})
        assert response.status_code == 503
        assert b"Back in a moment" in response.content

    def test_the_chatkit_endpoint_still_answers_json(self, alice):
        client = Client()
        client.force_login(alice)
        with database_unreachable():
            response = client.get(download_path("atc_missing"))
        assert_json_503(response)
