"""Building the agent named by ``CHATKIT["AGENT"]``."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from agents import Agent, FunctionTool, Tool, function_tool
from agents.models import get_default_model
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.types import AgentConfig, AgentFactory

AGENT_DICT_KEYS = AgentConfig.__optional_keys__


def load_tool(path: str) -> Tool:
    """A dotted path to a tool object (``@function_tool``), or to a plain function to wrap."""
    target = import_string(path)
    if isinstance(target, FunctionTool) or not callable(target):
        # Another kind of tool (the Agents SDK checks it when the agent is built).
        tool: Tool = target
        return tool
    return function_tool(target)


def agent_from_dict(config: AgentConfig) -> Agent[Any]:
    unknown = set(config) - AGENT_DICT_KEYS
    if unknown:
        raise ValueError(f"Unknown CHATKIT['AGENT'] keys: {', '.join(sorted(unknown))}")
    return Agent(
        name=config.get("name", "Assistant"),
        instructions=config.get("instructions"),
        model=config.get("model"),
        tools=[load_tool(path) for path in config.get("tools", [])],
    )


@cache
def configured_agent() -> Agent[Any] | AgentFactory:
    """The configured Agent, or the callable that makes one per request (cached per process)."""
    setting = chatkit_settings.AGENT
    if isinstance(setting, dict):
        return agent_from_dict(setting)
    # Not checked here: get_agent checks what a factory returns, on every call.
    configured: Agent[Any] | AgentFactory = import_string(setting)
    return configured


async def get_agent(context: ChatKitContext) -> Agent[Any]:
    configured = configured_agent()
    if isinstance(configured, Agent):
        return configured
    agent = configured(context)
    if inspect.isawaitable(agent):
        agent = await agent
    if not isinstance(agent, Agent):
        raise TypeError(f"CHATKIT['AGENT'] returned {type(agent).__name__}, not an agents.Agent")
    return agent


def model_name(agent: Agent[Any]) -> str:
    model = agent.model
    if model is None:
        return get_default_model()
    if isinstance(model, str):
        return model
    return str(getattr(model, "model", "") or type(model).__name__)


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHATKIT":
        configured_agent.cache_clear()
