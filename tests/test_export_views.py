"""Export over HTTP (issue #14, items 2 and 4): the admin's "Export selected" action and its
export_thread permission (UI and forged POST), and the signed-in user's own download."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import AsyncClient, Client
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from tests.export_data import FILE_BYTES, member, populate, thread_with_everything
from tests.factories import read_body

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:django_chatkit_thread_changelist"
EXPORT_URL = "/chatkit/export/"


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def data(media) -> dict[str, Any]:
    return populate()


def staff_user(username: str, *codenames: str, superuser: bool = False) -> Any:
    model = get_user_model()
    if superuser:
        return model.objects.create_superuser(username, f"{username}@example.com", "pw")
    user = model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_chatkit", codename__in=codenames)
    )
    return user


def offered_actions(client: Client) -> list[str]:
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    html = page.content.decode()
    actions = ("export_selected", "export_selected_markdown", "lock_threads")
    return [a for a in actions if f'value="{a}"' in html]


def action_data(ids: list[str], action: str = "export_selected") -> dict[str, Any]:
    return {"action": action, "_selected_action": ids, "index": "0"}


def jsonl_ids(body: bytes) -> list[str]:
    return [json.loads(line)["thread"]["id"] for line in body.decode().splitlines()]


# -- the admin action ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["export_selected", "export_selected_markdown"])
@pytest.mark.parametrize("codenames", [("view_thread",), ("view_thread", "moderate_thread")])
def test_staff_without_export_permission_see_no_action_and_a_forged_post_is_refused(
    data, codenames, action
):
    client = Client()
    client.force_login(staff_user("staff", *codenames))
    assert action not in offered_actions(client)
    response = client.post(reverse(CHANGELIST), action_data(["thr_export0001"], action))
    assert not response.streaming and "Content-Disposition" not in response
    queued = [str(m) for m in response.wsgi_request._messages._queued_messages]  # type: ignore[attr-defined]
    if "moderate_thread" in codenames:  # other actions offered: Django refuses this one
        assert response.status_code == 302 and queued == ["No action selected."]
    else:  # no action at all offered: the POST is just the list, shown again
        assert response.status_code == 200 and queued == []
        assert "admin/change_list.html" in [t.name for t in response.templates]


@pytest.mark.parametrize("role", ["superuser", "exporter"])
def test_exporters_download_the_selected_threads(data, role):
    user = (
        staff_user("root", superuser=True)
        if role == "superuser"
        else staff_user("exporter", "view_thread", "export_thread")
    )
    client = Client()
    client.force_login(user)
    offered = offered_actions(client)
    assert "export_selected" in offered and "export_selected_markdown" in offered
    assert ("lock_threads" in offered) == (role == "superuser")
    # Through ASGI, as served in production: an asynchronous stream.
    async_client = AsyncClient()
    async_client.force_login(user)
    response = async_to_sync(async_client.post)(
        reverse(CHANGELIST), action_data(["thr_export0003", "thr_export0001"])
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert response["Content-Disposition"].startswith('attachment; filename="threads-')
    body = async_to_sync(read_body)(response)
    assert jsonl_ids(body) == ["thr_export0001", "thr_export0003"]
    response = async_to_sync(async_client.post)(
        reverse(CHANGELIST), action_data(["thr_export0003"], "export_selected_markdown")
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(async_to_sync(read_body)(response))) as tar:
        assert tar.getnames() == ["thr_export0003.md"]


def test_the_action_itself_checks_the_permission(data, rf):
    from django.contrib.admin.sites import site
    from django.core.exceptions import PermissionDenied

    request = rf.post("/")
    request.user = staff_user("viewer", "view_thread")
    admin: Any = site._registry[models.Thread]
    with pytest.raises(PermissionDenied):
        admin.export_selected(request, models.Thread.objects.all())
    with pytest.raises(PermissionDenied):
        admin.export_selected_markdown(request, models.Thread.objects.all())


# -- self-service --------------------------------------------------------------------------------


def download(user: Any, query: str = "") -> Any:
    client = AsyncClient()
    if user is not None:
        client.force_login(user)
    response = async_to_sync(client.get)(EXPORT_URL + query)
    return response


def test_url_name():
    assert reverse("chatkit:export") == EXPORT_URL


def test_a_user_downloads_their_own_threads_only(data):
    alice, bob = data["users"]["alice"], data["users"]["bob"]
    # Deleted by Alice while on hold: kept for staff, no longer hers.
    models.Thread.objects.filter(pk="thr_export0002").update(deleted_by_owner_at=timezone.now())
    response = download(alice)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    body = async_to_sync(read_body)(response)
    assert jsonl_ids(body) == ["thr_export0001"]
    assert b"thr_export0003" not in body and b"anon-key-4" not in body
    assert jsonl_ids(async_to_sync(read_body)(download(bob))) == [
        "thr_export0003",
        "thr_export0005",
    ]


def test_with_files_a_tar_of_their_files_only(data):
    alice = data["users"]["alice"]
    thread_with_everything(data["users"]["bob"], 6)
    response = download(alice, "?files=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    body = async_to_sync(read_body)(response)
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == [
            "files/atc_export0001",
            "files/atc_export0002",
            "threads.jsonl",
        ]
        assert member(tar, "files/atc_export0001") == FILE_BYTES + b"1"
        assert jsonl_ids(member(tar, "threads.jsonl")) == [
            "thr_export0001",
            "thr_export0002",
        ]


def test_streamed_as_each_handler_streams(data):
    """Each of Django's handlers reads an iterator of the other kind whole before sending: a
    WSGI server gets a synchronous one, an ASGI server an asynchronous one."""
    alice = data["users"]["alice"]
    wsgi = Client()
    wsgi.force_login(alice)
    response: Any = wsgi.get(EXPORT_URL)
    assert response.streaming and not response.is_async
    assert jsonl_ids(b"".join(response.streaming_content)) == ["thr_export0001", "thr_export0002"]
    response = download(alice)  # AsyncClient: the ASGI handler
    assert response.streaming and response.is_async
    assert jsonl_ids(async_to_sync(read_body)(response)) == ["thr_export0001", "thr_export0002"]


def test_anonymous_visitors_are_sent_to_the_login_page(data, settings):
    settings.LOGIN_URL = "/accounts/login/"
    response = download(None)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/chatkit/export/"


def test_only_get(data):
    client = AsyncClient()
    client.force_login(data["users"]["alice"])
    response = async_to_sync(client.post)(EXPORT_URL)
    assert response.status_code == 405
