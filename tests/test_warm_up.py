"""django_chatkit.loading.warm_up(): what a process's first chat would wait for, done at startup."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from agents import Agent
from django.test import override_settings

from django_chatkit import agent_config, loading
from django_chatkit.agent_server import AgentChatKitServer
from tests.live_server import REPO_ROOT

TOOL_AGENT = {"instructions": "Be brief.", "tools": ["tests.agent_tools.get_weather"]}


@pytest.fixture(autouse=True)
def fresh_caches():
    loading.get_server.cache_clear()
    agent_config.configured_agent.cache_clear()
    yield
    loading.get_server.cache_clear()
    agent_config.configured_agent.cache_clear()


@override_settings(CHATKIT={"AGENT": TOOL_AGENT})
def test_builds_the_server_and_the_agent_once_for_the_process():
    loading.warm_up()
    assert isinstance(loading.get_server(), AgentChatKitServer)
    assert loading.get_server.cache_info().currsize == 1
    agent = agent_config.configured_agent()
    assert agent_config.configured_agent.cache_info().hits >= 1  # built by warm_up, reused
    assert isinstance(agent, Agent)
    assert [tool.name for tool in agent.tools] == ["get_weather"]


@override_settings(CHATKIT={"AGENT": {"tools": ["tests.no_such_module.tool"]}})
def test_a_broken_agent_fails_at_startup_not_on_the_first_chat():
    with pytest.raises(ImportError):
        loading.warm_up()


@override_settings(CHATKIT={"SERVER": "django_chatkit.server.DjangoChatKitServer"})
def test_a_server_without_an_agent_builds_no_agent():
    loading.warm_up()
    assert agent_config.configured_agent.cache_info().currsize == 0


def test_imports_the_sdks_a_chat_needs():
    # In a fresh interpreter: after django.setup() the SDKs are not imported yet; warm_up does.
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        import django
        django.setup()
        wanted = {"chatkit.server", "agents", "django_chatkit.views"}
        before = wanted & set(sys.modules)
        from django_chatkit.loading import warm_up
        warm_up()
        after = wanted & set(sys.modules)
        print(sorted(before), sorted(after))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    # The views too: django_chatkit.urls imports them on their first request only.
    assert (
        done.stdout.strip().splitlines()[-1]
        == "[] ['agents', 'chatkit.server', 'django_chatkit.views']"
    )
