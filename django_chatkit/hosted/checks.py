"""System checks of hosted mode (docs/checks.md): chatkit.E015, E016, W009, W010.

Called by :func:`django_chatkit.checks.check_settings` with the ``CHATKIT`` dict; imports no
``openai``.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from django_chatkit.conf import DEFAULTS
from django_chatkit.hosted.workflows import is_workflow_id, workflows_problems
from django_chatkit.openai_client import configured_api_key

_HINT = "See hosted mode in docs/hosted.md and docs/settings.md."


def _hosted_in_use(value: dict[str, Any]) -> bool:
    """Whether any widget may be hosted: an allowed workflow, or a default one for widgets."""
    workflows = value.get("HOSTED_WORKFLOWS", DEFAULTS["HOSTED_WORKFLOWS"])
    widget = value.get("WIDGET")
    default = widget.get("workflow") if isinstance(widget, dict) else None
    return bool(workflows) or is_workflow_id(default)


def hosted_setting_messages(
    value: dict[str, Any], *, quota_cache_atomic: bool | None
) -> list[CheckMessage]:
    """``quota_cache_atomic``: whether ``QUOTA_CACHE`` increments atomically (None: no such
    cache, which chatkit.E008 reports)."""
    messages: list[CheckMessage] = [
        Error(problem, hint=_HINT, id="chatkit.E015")
        for problem in workflows_problems(
            value.get("HOSTED_WORKFLOWS", DEFAULTS["HOSTED_WORKFLOWS"])
        )
    ]
    per_minute = value.get("HOSTED_SESSIONS_PER_MINUTE", DEFAULTS["HOSTED_SESSIONS_PER_MINUTE"])
    if per_minute is not None and (
        not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 1
    ):
        messages.append(
            Error(
                "CHATKIT['HOSTED_SESSIONS_PER_MINUTE'] must be None or a positive integer, "
                f"not {per_minute!r}.",
                hint=_HINT,
                id="chatkit.E016",
            )
        )
    if not _hosted_in_use(value):
        return messages
    if not configured_api_key():
        messages.append(
            Warning(
                "Hosted ChatKit workflows are configured but no OpenAI API key is: every "
                "client secret would fail to be minted (a 502 for the widget).",
                hint=(
                    "Set the OPENAI_API_KEY environment variable, or CHATKIT['OPENAI_API_KEY'], "
                    "to a key of the project that owns the workflows."
                ),
                id="chatkit.W009",
            )
        )
    if per_minute is None:
        messages.append(
            Warning(
                "CHATKIT['HOSTED_SESSIONS_PER_MINUTE'] is None: anyone who may chat can mint "
                "client secrets without limit, each one a session billed to this site.",
                hint="Set a limit per owner and minute (the default is 10).",
                id="chatkit.W010",
            )
        )
    elif quota_cache_atomic is False:
        messages.append(
            Warning(
                "CHATKIT['HOSTED_SESSIONS_PER_MINUTE'] is counted in a QUOTA_CACHE that cannot "
                "count atomically: concurrent requests can mint past the limit.",
                hint="Count quotas in Redis or Memcached (one cache all workers share).",
                id="chatkit.W010",
            )
        )
    return messages
