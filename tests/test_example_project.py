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


def test_example_project_passes_system_checks(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
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
