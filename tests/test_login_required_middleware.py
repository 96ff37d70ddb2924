"""On a site with Django's ``LoginRequiredMiddleware`` (every view needs a signed-in user unless
marked ``login_not_required``), the package's views still decide for themselves: a signed-out
call to the endpoint is a JSON 401, not a redirect to the login page that the widget's
``fetch()`` would follow; anonymous visitors chat, upload and download when ``ALLOW_ANONYMOUS``
is on; the bootstrap module loads on a public page. The export stays for signed-in users.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient, modify_settings, override_settings

from django_chatkit.bootstrap_asset import bootstrap_url
from django_chatkit.testing import ChatKitTestClient
from tests.attachment_flow import Uploader, download, local_media
from tests.attachment_samples import PDF

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("login_required_site"),
]

SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "ATTACHMENTS": {"ENABLED": True, "MAX_BYTES": 2 * 1024 * 1024},
}


@pytest.fixture
def login_required_site() -> Iterator[None]:
    with modify_settings(
        MIDDLEWARE={"append": "django.contrib.auth.middleware.LoginRequiredMiddleware"}
    ):
        yield


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    with local_media(tmp_path / "media", SETTINGS):
        yield tmp_path / "media"


async def test_the_middleware_guards_this_site() -> None:
    """The fixture works: a view of the site's own is redirected to the login page."""
    response = await AsyncClient().get("/admin/")
    assert response.status_code == 302


async def test_a_signed_out_call_is_a_json_401_not_a_redirect(http_anonymous: Any) -> None:
    reply = await http_anonymous.request("threads.list")
    assert reply.status_code == 401
    assert reply.data["error"]["code"] == "not_authenticated"


async def test_signed_in_users_chat(http_alice: ChatKitTestClient) -> None:
    reply = await http_alice.request("threads.list")
    assert reply.status_code == 200 and reply.data["data"] == []


async def test_anonymous_visitors_chat_upload_and_download(media: Path) -> None:
    with override_settings(CHATKIT={**SETTINGS, "ALLOW_ANONYMOUS": True}):
        visitor = ChatKitTestClient()
        reply = await visitor.request("threads.list")
        assert reply.status_code == 200
        uploaded = await Uploader(visitor).attach("mine.pdf", "application/pdf", PDF)
        response, content = await download(visitor.client, uploaded["id"])
    assert response.status_code == 200 and content == PDF


async def test_the_bootstrap_module_loads_on_a_public_page() -> None:
    response = await AsyncClient().get(bootstrap_url())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")


async def test_the_export_still_asks_to_sign_in() -> None:
    response = await AsyncClient().get("/chatkit/export/")
    assert response.status_code == 302 and "next=" in response["Location"]


async def test_the_hosted_session_endpoint_answers_a_json_401() -> None:
    response = await AsyncClient().post(
        "/chatkit/hosted/session/", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
