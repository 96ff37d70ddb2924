"""Which Agent Builder workflows this site mints client secrets for: the allow-list.

The ``{% chatkit workflow="wf_..." %}`` tag renders the workflow's id into the page, and the
widget names it when it asks the session endpoint for a secret. Anything a page says can be
forged, so the endpoint mints only for the ids the settings list (``HOSTED_WORKFLOWS``, and
``WIDGET["workflow"]``), with the options the settings give them, never with the client's.

Imports neither ``openai`` nor the SDKs: the system checks (chatkit.E015) use it.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django_chatkit.conf import chatkit_settings

logger = logging.getLogger("django_chatkit")

# OpenAI's ids are "wf_" and hex; letters, digits, "_" and "-" keep room for other shapes while
# refusing anything that could break out of an attribute, a URL or a log line.
WORKFLOW_ID = re.compile(r"^wf_[A-Za-z0-9_-]{1,200}$")
OPTION_KEYS = frozenset(
    {
        "version",
        "state_variables",
        "expires_after",
        "max_requests_per_minute",
        "chatkit_configuration",
        "tracing",
    }
)
# OpenAI's limit on state variable names.
STATE_VARIABLE_NAME_MAX = 64


@dataclass(frozen=True)
class HostedWorkflow:
    """One allowed workflow and what every session minted for it carries."""

    id: str
    version: str | None = None
    state_variables: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    expires_after: int | None = None
    max_requests_per_minute: int | None = None
    chatkit_configuration: Mapping[str, Any] | None = None
    tracing: bool | None = None

    def session_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``sessions.create`` besides ``user``."""
        workflow: dict[str, Any] = {"id": self.id}
        if self.version:
            workflow["version"] = self.version
        if self.state_variables:
            workflow["state_variables"] = dict(self.state_variables)
        if self.tracing is not None:
            workflow["tracing"] = {"enabled": self.tracing}
        arguments: dict[str, Any] = {"workflow": workflow}
        if self.expires_after is not None:
            arguments["expires_after"] = {"anchor": "created_at", "seconds": self.expires_after}
        if self.max_requests_per_minute is not None:
            arguments["rate_limits"] = {"max_requests_per_1_minute": self.max_requests_per_minute}
        if self.chatkit_configuration is not None:
            arguments["chatkit_configuration"] = dict(self.chatkit_configuration)
        return arguments


def is_workflow_id(value: Any) -> bool:
    return isinstance(value, str) and WORKFLOW_ID.match(value) is not None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def option_problems(workflow_id: str, options: Any) -> list[str]:
    """What is wrong with the options of one workflow; [] when they are valid."""
    where = f"HOSTED_WORKFLOWS[{workflow_id!r}]"
    if not isinstance(options, Mapping):
        return [f"{where} must be a dict of options, not {type(options).__name__}."]
    problems = []
    for key in sorted(set(options) - OPTION_KEYS, key=str):
        close = difflib.get_close_matches(str(key), OPTION_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{where} has an unknown option {key!r}{hint}.")
    version = options.get("version")
    if version is not None and not (isinstance(version, str) and version):
        problems.append(f"{where}['version'] must be a non-empty string, not {version!r}.")
    variables = options.get("state_variables", {})
    if not isinstance(variables, Mapping) or not all(
        isinstance(name, str)
        and 0 < len(name) <= STATE_VARIABLE_NAME_MAX
        and isinstance(value, str | int | float | bool)
        for name, value in variables.items()
    ):
        problems.append(
            f"{where}['state_variables'] must map names (up to {STATE_VARIABLE_NAME_MAX} "
            "characters) to strings, numbers or booleans."
        )
    for key in ("expires_after", "max_requests_per_minute"):
        value = options.get(key)
        if value is not None and not _positive_int(value):
            problems.append(f"{where}[{key!r}] must be a positive integer, not {value!r}.")
    configuration = options.get("chatkit_configuration")
    if configuration is not None and not isinstance(configuration, Mapping):
        problems.append(f"{where}['chatkit_configuration'] must be a dict.")
    tracing = options.get("tracing")
    if tracing is not None and not isinstance(tracing, bool):
        problems.append(f"{where}['tracing'] must be True, False or None, not {tracing!r}.")
    return problems


def _entries(value: Any) -> list[tuple[Any, Any]] | None:
    """``HOSTED_WORKFLOWS`` as (id, options) pairs; None when it is neither a list nor a dict."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, list | tuple):
        return [(workflow_id, {}) for workflow_id in value]
    return None


def workflows_problems(value: Any) -> list[str]:
    """What is wrong with a ``HOSTED_WORKFLOWS`` value; [] when it is valid."""
    entries = _entries(value)
    if entries is None:
        return [
            "HOSTED_WORKFLOWS must be a list of workflow ids or a dict of id to options, "
            f"not {type(value).__name__}."
        ]
    problems = []
    for workflow_id, options in entries:
        if not is_workflow_id(workflow_id):
            problems.append(
                f"HOSTED_WORKFLOWS names {workflow_id!r}, which is not a workflow id "
                "('wf_' then letters, digits, '_' or '-')."
            )
            continue
        problems += option_problems(workflow_id, options)
    return problems


def _workflow(workflow_id: str, options: Mapping[str, Any]) -> HostedWorkflow:
    return HostedWorkflow(
        id=workflow_id,
        version=options.get("version"),
        state_variables=dict(options.get("state_variables") or {}),
        expires_after=options.get("expires_after"),
        max_requests_per_minute=options.get("max_requests_per_minute"),
        chatkit_configuration=options.get("chatkit_configuration"),
        tracing=options.get("tracing"),
    )


def allowed_workflows() -> dict[str, HostedWorkflow]:
    """Every workflow a client secret may be minted for, by id, as configured now.

    An entry that does not validate is left out (and logged): chatkit.E015 reports it at
    startup; a site that silenced the check mints for the valid ones only.
    """
    allowed: dict[str, HostedWorkflow] = {}
    for workflow_id, options in _entries(chatkit_settings.HOSTED_WORKFLOWS) or []:
        if not is_workflow_id(workflow_id) or option_problems(workflow_id, options):
            logger.error("ChatKit ignores the invalid HOSTED_WORKFLOWS entry %r.", workflow_id)
            continue
        allowed[workflow_id] = _workflow(workflow_id, options)
    default = chatkit_settings.WIDGET.get("workflow")
    if is_workflow_id(default) and default not in allowed:
        allowed[str(default)] = HostedWorkflow(id=str(default))
    return allowed
