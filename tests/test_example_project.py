"""The demo site: its offline model answers through the real agent pipeline; the site passes checks."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings

from django_chatkit.models import ThreadItem
from example_project import settings
from example_project.management.commands.demo_user import Command as DemoUserCommand
from example_project.offline import demo_reply

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
async def test_the_offline_demo_model_answers_through_the_agent_pipeline(alice):
    from django_chatkit.testing import ChatKitTestClient, FakeOpenAI

    with FakeOpenAI(default_reply=demo_reply) as fake:
        os.environ.update(fake.env)
        try:
            with override_settings(CHATKIT={**settings.CHATKIT, "OPENAI_MAX_RETRIES": 0}):
                reply = await ChatKitTestClient(user=alice).create_thread("hello there")
        finally:
            for name in fake.env:
                os.environ.pop(name, None)
    assert reply.error is None, reply.error
    assert reply.answer.startswith("(offline demo model) You said: “hello there”.")
    assert "OPENAI_API_KEY" in reply.answer
    assert reply.thread is not None and reply.thread.title == "hello there"
    deltas = [e for e in reply.events if e.type == "thread.item.updated"]
    assert len(deltas) > 10  # streamed word by word
    thread_id = reply.thread_id
    items = [i.type async for i in ThreadItem.objects.filter(thread_id=thread_id)]
    assert items == ["user_message", "assistant_message"]
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_demo_user_is_idempotent_and_can_sign_in():
    first, second = io.StringIO(), io.StringIO()
    with override_settings(DEBUG=True):
        call_command(DemoUserCommand(), stdout=first)
        call_command(DemoUserCommand(), stdout=second)

    assert first.getvalue().startswith("Created demo login")
    assert second.getvalue().startswith("Reset demo login")

    user = get_user_model().objects.get(username="demo")
    assert user.is_staff
    assert user.is_superuser
    assert user.check_password("demo")


@pytest.mark.django_db
def test_demo_user_refuses_without_debug():
    with override_settings(DEBUG=False), pytest.raises(CommandError):
        call_command(DemoUserCommand())
    assert not get_user_model().objects.filter(username="demo").exists()


@pytest.mark.parametrize("workflow", ["", "wf_demo_hosted"])
def test_example_project_passes_system_checks(tmp_path, workflow):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CHATKIT_WORKFLOW_ID": workflow,
    }
    env.pop("REDIS_URL", None)
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.django_db(transaction=True)
async def test_with_a_workflow_id_the_home_page_shows_a_hosted_widget_the_demo_model_serves(alice):
    """CHATKIT_WORKFLOW_ID set, no OPENAI_API_KEY: a hosted widget next to the self-hosted one,
    its client secrets minted by the offline demo model (the fake), nothing leaving the machine."""
    from django.test import AsyncClient

    from django_chatkit.testing import CSRF_TOKEN, FakeOpenAI

    templates = [{**settings.TEMPLATES[0], "DIRS": [ROOT / "example_project" / "templates"]}]
    chatkit = {**settings.CHATKIT, "HOSTED_WORKFLOWS": ["wf_demo_hosted"]}
    client = AsyncClient(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = CSRF_TOKEN
    await client.aforce_login(alice)
    with (
        FakeOpenAI(default_reply=demo_reply) as fake,
        override_settings(
            ROOT_URLCONF="example_project.urls",
            TEMPLATES=templates,
            CHATKIT=chatkit,
            CHATKIT_WORKFLOW_ID="wf_demo_hosted",
        ),
    ):
        os.environ.update(fake.env)
        try:
            page = await client.get("/")
            secret = await client.post(
                "/chatkit/hosted/session/",
                data='{"workflow": "wf_demo_hosted"}',
                content_type="application/json",
                headers={"X-CSRFToken": CSRF_TOKEN},
            )
        finally:
            for name in fake.env:
                os.environ.pop(name, None)
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<openai-chatkit ") == 2
    assert 'data-chatkit-workflow="wf_demo_hosted"' in html
    assert secret.status_code == 200, secret.content
    assert secret.json()["client_secret"] == fake.chatkit_sessions.minted[0]["client_secret"]
    await sync_to_async(connections.close_all)()
