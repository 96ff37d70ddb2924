"""Each system check, by id: it fires on the mistake and stays quiet on a correct setup."""

from __future__ import annotations

import sys
import types

import pytest
from django.core import checks
from django.test import override_settings

from django_chatkit.checks import check_sdk_installed, check_served_over_asgi, check_settings

GOOD = {"SERVER": "tests.servers.ScriptedServer"}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.mark.django_db  # Django 6.1's JSONField check asks SQLite whether it has JSON support
def test_a_correct_setup_passes_every_check():
    assert checks.run_checks() == []


def test_e001_chatkit_module_is_not_the_sdk(monkeypatch):
    # What the unrelated PyPI package "django-chatkit" leaves behind: a 'chatkit' without a server.
    impostor = types.ModuleType("chatkit.server")
    monkeypatch.setitem(sys.modules, "chatkit.server", impostor)
    messages = check_sdk_installed(None)
    assert ids(messages) == ["chatkit.E001"]
    assert messages[0].hint and "django-chatkit" in messages[0].hint


class _BrokenSdk:
    """A meta path finder under which importing the SDK fails as a missing dependency does."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "chatkit.server":
            raise ImportError("cannot import name 'Annotated' from 'pydantic' (too old?)")
        return None


def test_e001_shows_why_the_sdk_does_not_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "chatkit.server")
    monkeypatch.setattr(sys, "meta_path", [_BrokenSdk, *sys.meta_path])
    messages = check_sdk_installed(None)
    assert ids(messages) == ["chatkit.E001"]
    assert "cannot import name 'Annotated' from 'pydantic' (too old?)" in messages[0].msg
    assert "import chatkit.server" in str(messages[0].hint)


def test_e001_says_when_another_package_took_the_name(monkeypatch):
    # The unrelated package's 'chatkit' may have no 'server' module at all.
    impostor = types.ModuleType("chatkit")
    impostor.__path__ = []
    monkeypatch.setitem(sys.modules, "chatkit", impostor)
    monkeypatch.delitem(sys.modules, "chatkit.server")
    messages = check_sdk_installed(None)
    assert ids(messages) == ["chatkit.E001"]
    assert "No module named 'chatkit.server'" in messages[0].msg
    assert "django-chatkit" in str(messages[0].hint)


def test_e001_quiet_with_the_real_sdk():
    assert check_sdk_installed(None) == []


@override_settings(CHATKIT=["not", "a", "dict"])
def test_e002_chatkit_setting_must_be_a_dict():
    assert ids(check_settings(None)) == ["chatkit.E002"]


@override_settings(CHATKIT={**GOOD, "ALLOW_ANONYMUS": True, "COLOR": "red"})
def test_e003_unknown_keys_with_a_suggestion():
    messages = check_settings(None)
    assert ids(messages) == ["chatkit.E003", "chatkit.E003"]
    assert messages[0].msg == "Unknown CHATKIT setting 'ALLOW_ANONYMUS'."
    assert messages[0].hint == "Did you mean 'ALLOW_ANONYMOUS'?"


@pytest.mark.parametrize(
    "settings_value",
    [
        {"SERVER": "tests.servers.NoSuchServer"},
        {"SERVER": "no_such_module.Server"},
        {**GOOD, "ATTACHMENT_STORE": "tests.nowhere.Store"},
    ],
)
def test_e004_dotted_path_that_does_not_import(settings_value):
    with override_settings(CHATKIT=settings_value):
        assert ids(check_settings(None)) == ["chatkit.E004"]


@override_settings(CHATKIT={"SERVER": "chatkit.store.NotFoundError"})
def test_e005_server_must_be_a_django_chatkit_server():
    assert ids(check_settings(None)) == ["chatkit.E005"]


@pytest.mark.parametrize("value", [0, -1, "10", 2.5, True])
def test_e006_sizes_must_be_positive_integers(value):
    with override_settings(CHATKIT={**GOOD, "MAX_PAGE_SIZE": value}):
        assert ids(check_settings(None)) == ["chatkit.E006"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("REQUESTS_PER_MINUTE", 0),
        ("TOKENS_PER_DAY", "lots"),
        ("OPENAI_READ_TIMEOUT", 0),
        ("OPENAI_CONNECT_TIMEOUT", "5"),
        ("OPENAI_MAX_RETRIES", -1),
        ("HISTORY_ITEMS", None),
        ("TRUSTED_PROXY_COUNT", -1),
        ("TRUSTED_PROXY_COUNT", "1"),
    ],
)
def test_e006_numbers_of_the_agent_settings(key, value):
    with override_settings(CHATKIT={**GOOD, key: value}):
        assert ids(check_settings(None)) == ["chatkit.E006"]


def test_e006_quiet_for_valid_numbers_and_unlimited_quotas():
    valid = {
        **GOOD,
        "REQUESTS_PER_MINUTE": None,
        "TOKENS_PER_DAY": 50_000,
        "OPENAI_READ_TIMEOUT": 2.5,
        "OPENAI_MAX_RETRIES": 0,
    }
    with override_settings(CHATKIT=valid):
        assert check_settings(None) == []


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ({"model": "m", "temperature": 0.2}, ["chatkit.E007"]),
        (["not", "valid"], ["chatkit.E007"]),
        ({"tools": ["tests.agent_tools.no_such_tool"]}, ["chatkit.E004"]),
        ("tests.nowhere.agent", ["chatkit.E004"]),
    ],
)
def test_e007_and_e004_agent_setting(agent, expected):
    with override_settings(CHATKIT={**GOOD, "AGENT": agent}):
        assert ids(check_settings(None)) == expected


def test_agent_setting_accepts_a_dict_with_tools_or_a_path():
    for agent in (
        {"model": "m", "tools": ["tests.agent_tools.get_weather"]},
        "tests.test_agent.make_agent",
    ):
        with override_settings(CHATKIT={**GOOD, "AGENT": agent}):
            assert check_settings(None) == []


@override_settings(CHATKIT={**GOOD, "QUOTA_CACHE": "quotas"})
def test_e008_quota_cache_must_exist():
    assert ids(check_settings(None)) == ["chatkit.E008"]


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.db.DatabaseCache",
        "django.core.cache.backends.filebased.FileBasedCache",
        "django.core.cache.backends.dummy.DummyCache",
    ],
)
def test_w004_quota_cache_that_cannot_count_atomically(backend, settings):
    settings.CACHES = {**settings.CACHES, "quotas": {"BACKEND": backend, "LOCATION": "x"}}
    with override_settings(CHATKIT={**GOOD, "QUOTA_CACHE": "quotas", "REQUESTS_PER_MINUTE": 5}):
        assert ids(check_settings(None)) == ["chatkit.W004"]
    with override_settings(CHATKIT={**GOOD, "QUOTA_CACHE": "quotas"}):
        assert check_settings(None) == []  # no quota set: nothing is counted


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.redis.RedisCache",
        "django.core.cache.backends.memcached.PyMemcacheCache",
    ],
)
def test_w004_quiet_for_caches_that_increment_atomically(backend, settings):
    settings.CACHES = {**settings.CACHES, "quotas": {"BACKEND": backend, "LOCATION": "x"}}
    with override_settings(CHATKIT={**GOOD, "QUOTA_CACHE": "quotas", "TOKENS_PER_DAY": 5}):
        assert check_settings(None) == []


def test_w001_not_served_over_asgi(settings):
    del settings.ASGI_APPLICATION
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "daphne"]
    assert ids(check_served_over_asgi(None)) == ["chatkit.W001"]


def test_w001_quiet_with_daphne_or_an_asgi_application(settings):
    assert check_served_over_asgi(None) == []
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "daphne"]
    assert check_served_over_asgi(None) == []  # ASGI_APPLICATION is still set
