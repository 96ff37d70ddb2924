"""The admin's side of hosted imports: the import action and its permission (UI and forged
POST), the time bound, and deleting hosted threads from the admin deleting them upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django.urls import reverse

from django_chatkit import models
from django_chatkit.context import Owner
from django_chatkit.hosted.identity import upstream_user
from django_chatkit.testing import FakeOpenAI, Reply
from django_chatkit.testing.fake_openai.chatkit_threads import assistant_message, user_message

pytestmark = pytest.mark.django_db

SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_tests",
    "HOSTED_IMPORT_BACKOFF": 0.001,
    "HOSTED_IMPORT_MAX_ATTEMPTS": 2,
}
CHANGELIST = "admin:django_chatkit_hosteduser_changelist"
ACTION = "import_hosted_conversations"


@pytest.fixture(autouse=True)
def hosted_settings() -> Iterator[None]:
    with override_settings(CHATKIT=SETTINGS):
        yield


def staff(username: str, *codenames: str) -> Client:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_chatkit", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def seeded(fake_openai: FakeOpenAI, alice, bob) -> dict[str, models.HostedUser]:
    rows = {}
    for user in (alice, bob):
        name = upstream_user(Owner(user_id=user.pk), minting=True)
        fake_openai.chatkit_threads.seed_thread(
            name, title=f"{user.username}'s", items=[user_message("hi"), assistant_message("hello")]
        )
        rows[user.username] = models.HostedUser.objects.get(upstream_user=name)
    return rows


def post_action(client: Client, *rows: models.HostedUser) -> Any:
    return client.post(
        reverse(CHANGELIST),
        {"action": ACTION, "_selected_action": [str(row.pk) for row in rows]},
        follow=True,
    )


def test_importer_imports_the_selected_users_only(seeded):
    client = staff("importer", "view_hosteduser", "import_hosted")
    page = client.get(reverse(CHANGELIST))
    assert ACTION in page.content.decode()
    response = post_action(client, seeded["alice"])
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 new and 0 changed thread(s) imported" in text
    assert models.Thread.objects.filter(user__username="alice", source="hosted").count() == 1
    assert not models.Thread.objects.filter(user__username="bob").exists()


def test_staff_without_the_permission_see_no_action_and_a_forged_post_does_nothing(
    seeded, fake_openai
):
    client = staff("viewer", "view_hosteduser", "view_thread", "delete_thread")
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert ACTION not in page.content.decode()
    response = post_action(client, seeded["alice"], seeded["bob"])
    assert response.status_code == 200
    assert not models.Thread.objects.exists()
    assert [r for r in fake_openai.requests if r.path.startswith("/v1/chatkit")] == []


def test_the_action_refuses_without_the_permission_even_when_called(seeded, rf):
    from django.contrib.admin.sites import site
    from django.core.exceptions import PermissionDenied

    request = rf.post("/")
    request.user = get_user_model().objects.create_user("plain", is_staff=True)
    admin: Any = site._registry[models.HostedUser]
    with pytest.raises(PermissionDenied):
        admin.import_hosted_conversations(request, models.HostedUser.objects.all())
    assert not models.Thread.objects.exists()


def test_an_outage_is_reported_and_points_to_the_command(seeded, fake_openai):
    fake_openai.chatkit_threads.fail(Reply(status=503), times=10)
    client = staff("importer", "view_hosteduser", "import_hosted")
    text = post_action(client, seeded["alice"]).content.decode()
    assert "The import stopped before the end" in text
    assert "chatkit_import_hosted --all" in text


@override_settings(CHATKIT={**SETTINGS, "HOSTED_IMPORT_ADMIN_SECONDS": 0})
def test_the_time_bound_stops_the_import(seeded):
    client = staff("importer", "view_hosteduser", "import_hosted")
    text = post_action(client, seeded["alice"], seeded["bob"]).content.decode()
    assert "The time bound was reached" in text
    assert not models.Thread.objects.exists()


def test_hosted_users_are_read_only(seeded):
    client = staff("root-ish", "view_hosteduser", "change_hosteduser", "delete_hosteduser")
    row = seeded["alice"]
    url = reverse("admin:django_chatkit_hosteduser_change", args=[row.pk])
    assert client.post(url, {"upstream_user": "dck_other"}).status_code == 403
    assert models.HostedUser.objects.get(pk=row.pk).upstream_user == row.upstream_user


@pytest.mark.django_db(transaction=True)
def test_deleting_a_hosted_thread_in_the_admin_deletes_it_upstream(fake_openai):
    user = get_user_model().objects.create_user("carol", password="pw")
    name = upstream_user(Owner(user_id=user.pk), minting=True)
    thread_id = fake_openai.chatkit_threads.seed_thread(name, items=[user_message("hi")])
    from django.core.management import call_command

    call_command("chatkit_import_hosted", "--all", stdout=None)
    client = staff("deleter", "view_thread", "delete_thread")
    url = reverse("admin:django_chatkit_thread_delete", args=[thread_id])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert not models.Thread.objects.filter(id=thread_id).exists()
    assert not fake_openai.chatkit_threads.exists(thread_id)
    assert not models.HostedDeletion.objects.exists()
    assert "deleted at OpenAI too" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_admin_delete_that_fails_upstream_stays_owed(fake_openai):
    user = get_user_model().objects.create_user("dave", password="pw")
    name = upstream_user(Owner(user_id=user.pk), minting=True)
    thread_id = fake_openai.chatkit_threads.seed_thread(name, items=[user_message("hi")])
    from django.core.management import call_command

    call_command("chatkit_import_hosted", "--all", stdout=None)
    fake_openai.chatkit_threads.fail(Reply(status=500), method="DELETE")
    client = staff("deleter", "view_thread", "delete_thread")
    changelist = reverse("admin:django_chatkit_thread_changelist")
    response = client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [thread_id], "post": "yes"},
        follow=True,
    )
    assert not models.Thread.objects.filter(id=thread_id).exists()
    assert fake_openai.chatkit_threads.exists(thread_id)
    owed = models.HostedDeletion.objects.get()
    assert owed.thread_id == thread_id and owed.attempts == 1
    assert "could not be deleted at OpenAI yet" in response.content.decode()


def test_owed_deletions_are_listed_read_only():
    models.HostedDeletion.objects.create(thread_id="cthr_owed", attempts=2, last_error="HTTP 500")
    client = staff("auditor", "view_hosteddeletion", "delete_hosteddeletion")
    page = client.get(reverse("admin:django_chatkit_hosteddeletion_changelist"))
    assert page.status_code == 200 and "cthr_owed" in page.content.decode()
    row = models.HostedDeletion.objects.get()
    url = reverse("admin:django_chatkit_hosteddeletion_delete", args=[row.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert models.HostedDeletion.objects.exists()
