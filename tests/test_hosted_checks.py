"""Hosted mode's system checks, by id: chatkit.E015, E016, W009, W010."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_chatkit.checks import check_settings
from django_chatkit.hosted.workflows import allowed_workflows

GOOD = {"SERVER": "tests.servers.ScriptedServer"}


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-checks")


def run(**chatkit: Any) -> list[Any]:
    with override_settings(CHATKIT={**GOOD, **chatkit}):
        return list(check_settings(None))


@pytest.mark.parametrize(
    "workflows",
    [
        ["wf_a", "wf_b"],
        ("wf_a",),
        {"wf_a": {}, "wf_b-2": {"version": "2", "state_variables": {"tier": "gold", "n": 2}}},
        {"wf_a": {"expires_after": 60, "max_requests_per_minute": 30, "tracing": False}},
        {"wf_a": {"chatkit_configuration": {"file_upload": {"enabled": True}}}},
    ],
)
def test_valid_hosted_workflows_pass(workflows: Any) -> None:
    assert run(HOSTED_WORKFLOWS=workflows) == []


@pytest.mark.parametrize(
    ("workflows", "says"),
    [
        ("wf_a", "must be a list of workflow ids or a dict"),
        (["wf_a", "agent_b"], "'agent_b', which is not a workflow id"),
        (["wf_a b"], "not a workflow id"),
        ({"wf_a": "v2"}, "must be a dict of options"),
        ({"wf_a": {"versoin": "2"}}, "unknown option 'versoin' (did you mean 'version'?)"),
        ({"wf_a": {"version": 2}}, "['version'] must be a non-empty string"),
        ({"wf_a": {"state_variables": {"x": [1]}}}, "['state_variables'] must map names"),
        ({"wf_a": {"state_variables": {"y" * 65: 1}}}, "['state_variables'] must map names"),
        ({"wf_a": {"expires_after": 0}}, "['expires_after'] must be a positive integer"),
        ({"wf_a": {"max_requests_per_minute": True}}, "must be a positive integer"),
        ({"wf_a": {"chatkit_configuration": []}}, "['chatkit_configuration'] must be a dict"),
        ({"wf_a": {"tracing": "off"}}, "['tracing'] must be True, False or None"),
    ],
)
def test_e015_invalid_hosted_workflows(workflows: Any, says: str) -> None:
    messages = run(HOSTED_WORKFLOWS=workflows)
    assert ids(messages) == ["chatkit.E015"], messages
    assert says in messages[0].msg


def test_invalid_entries_are_never_allowed_at_runtime() -> None:
    with override_settings(
        CHATKIT={**GOOD, "HOSTED_WORKFLOWS": {"wf_good": {}, "wf_bad": {"expires_after": -1}}}
    ):
        assert set(allowed_workflows()) == {"wf_good"}
    with override_settings(CHATKIT={**GOOD, "HOSTED_WORKFLOWS": "wf_good"}):
        assert allowed_workflows() == {}


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_e016_sessions_per_minute(value: Any) -> None:
    assert ids(run(HOSTED_SESSIONS_PER_MINUTE=value)) == ["chatkit.E016"]


def test_e016_quiet_for_none_or_a_positive_limit_without_hosted_workflows() -> None:
    assert run(HOSTED_SESSIONS_PER_MINUTE=None) == []
    assert run(HOSTED_SESSIONS_PER_MINUTE=3) == []


def test_a_widget_workflow_is_checked_as_a_widget_option() -> None:
    assert ids(run(WIDGET={"workflow": "not-a-workflow"})) == ["chatkit.E009"]


@pytest.mark.parametrize(
    "hosted", [{"HOSTED_WORKFLOWS": ["wf_a"]}, {"WIDGET": {"workflow": "wf_a"}}]
)
def test_w009_hosted_without_an_api_key(monkeypatch: pytest.MonkeyPatch, hosted: Any) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    messages = run(**hosted)
    assert ids(messages) == ["chatkit.W009"]
    assert "OPENAI_API_KEY" in str(messages[0].hint)
    assert run() == []  # no hosted workflow: no key needed for it


def test_w009_quiet_with_a_key_in_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert run(HOSTED_WORKFLOWS=["wf_a"], OPENAI_API_KEY="sk-settings") == []


def test_w010_hosted_without_a_rate_limit() -> None:
    messages = run(HOSTED_WORKFLOWS=["wf_a"], HOSTED_SESSIONS_PER_MINUTE=None)
    assert ids(messages) == ["chatkit.W010"]
    assert "without limit" in messages[0].msg


def test_w010_rate_limit_counted_in_a_cache_that_cannot_count(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "quotas": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    messages = run(HOSTED_WORKFLOWS=["wf_a"], QUOTA_CACHE="quotas")
    assert ids(messages) == ["chatkit.W010"]
    assert "atomically" in messages[0].msg
    assert run(QUOTA_CACHE="quotas") == []  # no hosted workflow: nothing counted
