"""django_chatkit.types: the settings dicts name exactly the keys conf.py knows, settings and
factories written against them pass the checks and work, and they resolve at runtime.

mypy (make lint) checks this module strictly enough to catch a Protocol or a TypedDict that no
longer accepts what the docs show: the annotated examples below are what a user would write.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, get_type_hints

import pytest
from agents import Agent
from chatkit.agents import AgentContext
from chatkit.store import AttachmentStore
from django.test import override_settings
from django.utils.translation import gettext_lazy

from django_chatkit import types
from django_chatkit.agent_config import AGENT_DICT_KEYS, configured_agent, get_agent
from django_chatkit.checks import check_settings
from django_chatkit.conf import DEFAULTS, chatkit_settings
from django_chatkit.context import ChatKitContext, Owner
from django_chatkit.loading import get_attachment_store
from django_chatkit.types import (
    AgentFactory,
    AttachmentsConfig,
    AttachmentStoreFactory,
    ChatKitConfig,
    WidgetConfig,
)
from tests.live_server import REPO_ROOT


def agent_for(context: ChatKitContext) -> Agent[AgentContext[ChatKitContext]]:
    return Agent(name="Typed", instructions=f"Owner: {context.owner.anonymous_key}.")


async def async_agent_for(context: ChatKitContext) -> Agent[Any]:
    return agent_for(context)


class TypedAttachmentStore(AttachmentStore[ChatKitContext]):
    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        return None


# What docs/settings.md shows: mypy rejects these lines if a type stops accepting them.
FACTORIES: list[AgentFactory] = [agent_for, async_agent_for]
STORE_FACTORY: AttachmentStoreFactory = TypedAttachmentStore
ATTACHMENTS: AttachmentsConfig = {
    "ENABLED": True,
    "MAX_BYTES": 5 * 1024 * 1024,
    "MAX_PENDING_PER_OWNER": None,
    "ALLOWED_TYPES": {"image/png": [".png"], "application/pdf": [".pdf"]},
}
WIDGET: WidgetConfig = {
    "theme": "dark",
    "accent": {"primary": "#0a7", "level": 2},
    "greeting": gettext_lazy("How can I help?"),
    "prompts": ["Hello", {"label": "Orders", "prompt": "Where is my order?", "icon": "search"}],
    "history": {"enabled": True, "showDelete": False},
    "height": 480,
    "options": {"header": {"title": {"text": "Support"}}},
}
SETTINGS: ChatKitConfig = {
    "AGENT": "tests.test_types.agent_for",
    "ATTACHMENTS": ATTACHMENTS,
    "WIDGET": WIDGET,
    "REQUESTS_PER_MINUTE": 20,
}


@pytest.mark.parametrize(
    ("typed", "defaults"),
    [
        (ChatKitConfig, DEFAULTS),
        (AttachmentsConfig, DEFAULTS["ATTACHMENTS"]),
        (WidgetConfig, DEFAULTS["WIDGET"]),
    ],
)
def test_each_settings_dict_names_exactly_the_known_keys(typed: Any, defaults: Any) -> None:
    assert typed.__optional_keys__ == frozenset(defaults)
    assert typed.__required_keys__ == frozenset()


def test_the_agent_dict_keys_are_the_typed_ones() -> None:
    assert frozenset({"model", "instructions", "name", "tools"}) == AGENT_DICT_KEYS


@pytest.mark.parametrize("name", types.__all__)
def test_every_type_resolves_at_runtime(name: str) -> None:
    # Settings validators and IDEs may introspect them: no name may exist only for the checker.
    typed = getattr(types, name)
    if not getattr(typed, "_is_protocol", False):  # a Protocol's hints are for the checker
        assert get_type_hints(typed)


def test_importing_the_types_imports_no_sdk() -> None:
    # settings.py imports them: a management command must not wait for the SDKs' imports.
    code = (
        "import sys, django_chatkit.types; print(sorted({'agents', 'chatkit'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_typed_settings_pass_the_checks() -> None:
    with override_settings(CHATKIT=SETTINGS):
        assert check_settings(None) == []
        assert chatkit_settings.ATTACHMENTS["MAX_BYTES"] == 5 * 1024 * 1024
        assert chatkit_settings.WIDGET["height"] == 480


@pytest.mark.parametrize("path", ["tests.test_types.agent_for", "tests.test_types.async_agent_for"])
async def test_a_typed_agent_factory_makes_the_agent(path: str) -> None:
    context = ChatKitContext(owner=Owner(anonymous_key="visitor"))
    with override_settings(CHATKIT={"AGENT": path}):  # clears configured_agent's cache
        assert not isinstance(configured_agent(), Agent)
        agent = await get_agent(context)
    assert agent.instructions == "Owner: visitor."


@override_settings(CHATKIT={"ATTACHMENT_STORE": "tests.test_types.TypedAttachmentStore"})
def test_a_typed_attachment_store_is_loaded() -> None:
    assert isinstance(get_attachment_store(), TypedAttachmentStore)
