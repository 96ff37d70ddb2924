"""Each system check, by id: it fires on the mistake and stays quiet on a correct setup."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import types

import openai
import pytest
from asgiref.sync import iscoroutinefunction
from django.core import checks
from django.test import override_settings
from django.urls import resolve
from django.utils.module_loading import import_string

from django_chatkit.agent_server import AgentChatKitServer
from django_chatkit.checks import (
    _KNOWN_CLASSES,
    check_openai_key,
    check_sdk_installed,
    check_served_over_asgi,
    check_settings,
)
from django_chatkit.openai_client import get_openai_client
from django_chatkit.server import DjangoChatKitServer
from django_chatkit.urls import DeferredView
from tests.live_server import REPO_ROOT

GOOD = {"SERVER": "tests.servers.ScriptedServer"}


class SiteAgentServer(AgentChatKitServer):
    """A site's own agent server."""


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


def test_e001_names_the_requirements_the_sdk_lacks(monkeypatch):
    # Checks do not import the SDK (seconds): what would make its import fail is read from the
    # installed packages' metadata.
    monkeypatch.delitem(sys.modules, "chatkit.server")
    requires = importlib.metadata.requires
    monkeypatch.setattr(
        importlib.metadata,
        "requires",
        lambda name: (
            ["pydantic>=99", "no-such-package-for-chatkit", "jinja2<4,>=3.1", "x; extra == 'y'"]
            if name == "openai-chatkit"
            else requires(name)
        ),
    )
    messages = check_sdk_installed(None)
    assert ids(messages) == ["chatkit.E001"]
    assert f"pydantic>=99 ({importlib.metadata.version('pydantic')} installed)" in messages[0].msg
    assert "no-such-package-for-chatkit (not installed)" in messages[0].msg
    assert "jinja2" not in messages[0].msg and "'y'" not in messages[0].msg
    assert "import chatkit.server" in str(messages[0].hint)


def test_e001_reads_the_sdk_on_disk(monkeypatch, tmp_path):
    # A 'chatkit' package whose server module is not the SDK's, found without importing it.
    (tmp_path / "chatkit").mkdir()
    (tmp_path / "chatkit" / "server.py").write_text("class ChatServer:\n    pass\n")
    impostor = types.ModuleType("chatkit")
    impostor.__path__ = [str(tmp_path / "chatkit")]
    monkeypatch.setitem(sys.modules, "chatkit", impostor)
    monkeypatch.delitem(sys.modules, "chatkit.server")
    messages = check_sdk_installed(None)
    assert ids(messages) == ["chatkit.E001"]
    assert messages[0].msg == "The 'chatkit' module is not the OpenAI ChatKit SDK."
    assert "chatkit.server" not in sys.modules


def test_e001_when_the_unrelated_package_is_installed(monkeypatch, tmp_path):
    dist_info = tmp_path / "django_chatkit-0.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: django-chatkit\nVersion: 0.3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "chatkit.server")
    messages = check_sdk_installed(None)
    assert ids(messages) == ["chatkit.E001"]
    assert "'django-chatkit' (an unrelated chat app) is installed" in messages[0].msg
    assert "pip uninstall django-chatkit" in str(messages[0].hint)


def test_e001_quiet_with_the_real_sdk_not_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "chatkit.server")
    assert check_sdk_installed(None) == []
    assert "chatkit.server" not in sys.modules


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
        {"SERVER": ["not", "a", "path"]},
    ],
)
def test_e004_dotted_path_that_does_not_import(settings_value):
    with override_settings(CHATKIT=settings_value):
        assert ids(check_settings(None)) == ["chatkit.E004"]


@pytest.mark.parametrize(
    "server",
    ["chatkit.store.NotFoundError", "django_chatkit.attachments.store.DjangoAttachmentStore"],
)
def test_e005_server_must_be_a_django_chatkit_server(server):
    with override_settings(CHATKIT={"SERVER": server}):
        assert ids(check_settings(None)) == ["chatkit.E005"]


@pytest.mark.parametrize("path", sorted(_KNOWN_CLASSES))
def test_the_classes_checks_know_without_importing_them_are_what_they_say(path):
    is_server, is_agent_server = _KNOWN_CLASSES[path]
    known = import_string(path)
    assert isinstance(known, type)
    assert issubclass(known, DjangoChatKitServer) == is_server
    assert issubclass(known, AgentChatKitServer) == is_agent_server


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
        ({"tools": [{"not": "a path"}]}, ["chatkit.E004"]),
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


def _installed_apps_without_daphne(settings) -> list[str]:
    return [app for app in settings.INSTALLED_APPS if app != "daphne"]


def test_w001_runserver_without_daphne_serves_wsgi(settings):
    # The common mistake: ASGI_APPLICATION is set, but runserver is Django's own.
    settings.DEBUG = True
    settings.INSTALLED_APPS = _installed_apps_without_daphne(settings)
    assert settings.ASGI_APPLICATION
    messages = check_served_over_asgi(None)
    assert ids(messages) == ["chatkit.W001"]
    assert "runserver (from django.contrib.staticfiles) serves WSGI" in messages[0].msg
    assert "'daphne' first in INSTALLED_APPS" in str(messages[0].hint)


def test_w001_daphne_after_staticfiles_leaves_runserver_to_staticfiles(settings):
    settings.DEBUG = True
    apps = _installed_apps_without_daphne(settings)
    apps.insert(apps.index("django.contrib.staticfiles") + 1, "daphne")
    settings.INSTALLED_APPS = apps
    assert ids(check_served_over_asgi(None)) == ["chatkit.W001"]


def test_w001_quiet_with_daphne_first(settings):
    settings.DEBUG = True
    assert settings.INSTALLED_APPS[0] == "daphne"
    assert check_served_over_asgi(None) == []


def test_w001_quiet_in_deployment(settings):
    # DEBUG off: served by uvicorn, daphne or gunicorn, which settings do not show (the view
    # logs a warning when a request arrives over WSGI); ASGI_APPLICATION is not even needed.
    settings.DEBUG = False
    del settings.ASGI_APPLICATION
    settings.INSTALLED_APPS = _installed_apps_without_daphne(settings)
    assert check_served_over_asgi(None) == []


@pytest.fixture
def no_openai_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.mark.parametrize(
    "server",
    [None, "django_chatkit.agent_server.AgentChatKitServer", "tests.test_checks.SiteAgentServer"],
)
def test_w005_agent_server_without_an_openai_key(no_openai_env, server):
    chatkit = {} if server is None else {"SERVER": server}
    with override_settings(CHATKIT=chatkit):
        messages = check_openai_key(None)
    assert ids(messages) == ["chatkit.W005"]
    assert "OPENAI_API_KEY" in str(messages[0].hint)


def test_w005_a_base_url_alone_is_not_enough(no_openai_env, monkeypatch):
    # The openai client refuses to be built without a key, whatever server it talks to.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    with override_settings(CHATKIT={"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}):
        assert ids(check_openai_key(None)) == ["chatkit.W005"]
        with pytest.raises(openai.OpenAIError):
            get_openai_client()


def test_w005_quiet_with_a_key_in_the_settings(no_openai_env):
    with override_settings(CHATKIT={"OPENAI_API_KEY": "sk-settings"}):
        assert check_openai_key(None) == []
        assert get_openai_client().api_key == "sk-settings"


def test_w005_quiet_with_a_key_in_the_environment(no_openai_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-environment")
    with override_settings(CHATKIT={}):
        assert check_openai_key(None) == []


@pytest.mark.parametrize(
    "chatkit",
    [
        GOOD,
        {"SERVER": "django_chatkit.server.DjangoChatKitServer"},
        {"SERVER": "tests.nowhere.Server"},  # chatkit.E004's
        ["not", "a", "dict"],  # chatkit.E002's
    ],
)
def test_w005_quiet_without_the_agent_server(no_openai_env, chatkit):
    with override_settings(CHATKIT=chatkit):
        assert check_openai_key(None) == []


# The README's quickstart site: our checks must not load the SDKs (seconds for every manage.py
# command); the demo site too. Its tool is a plain function.
@pytest.mark.parametrize("settings_module", ["tests.bare_settings", "example_project.settings"])
def test_checks_import_no_sdk(settings_module, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import django
        from django.core import checks
        django.setup()
        messages = checks.run_checks(include_deployment_checks=False)
        print([message.id for message in messages])
        print(sorted({name.split(".")[0] for name in sys.modules} & {"agents", "chatkit", "openai"}))
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "OPENAI_API_KEY": "sk-test",
    }
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found, imported = done.stdout.strip().splitlines()[-2:]
    assert found == "[]"
    assert imported == "[]"


@pytest.mark.parametrize(
    ("url", "view_class_path"),
    [
        ("/chatkit/", "django_chatkit.views.ChatKitView"),
        ("/chatkit/attachments/a1/upload/", "django_chatkit.attachments.views.UploadView"),
        ("/chatkit/attachments/a1/", "django_chatkit.attachments.views.DownloadView"),
        ("/chatkit/hosted/session/", "django_chatkit.hosted.views.HostedSessionView"),
    ],
)
def test_the_urlconf_imports_its_views_on_their_first_request(url, view_class_path):
    # What the URL check imports holds no SDK; Django sees the deferred views as the real ones.
    match = resolve(url)
    deferred = match.func
    assert isinstance(deferred, DeferredView)
    real = import_string(view_class_path).as_view()
    assert deferred.load_view_class() is real.view_class
    assert iscoroutinefunction(deferred) and iscoroutinefunction(real)
    assert deferred.csrf_exempt is getattr(real, "csrf_exempt", False)
    assert deferred.login_required is getattr(real, "login_required", True) is False
    assert match._func_path == view_class_path


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RETENTION", 0),
        ("RETENTION", -30),
        ("RETENTION", "30"),
        ("RETENTION", True),
        ("RETENTION", "session"),  # only anonymous threads live as long as a session
        ("ANONYMOUS_RETENTION", 0),
        ("ANONYMOUS_RETENTION", "forever"),
        ("ANONYMOUS_RETENTION", [30]),
    ],
)
def test_e013_retention_must_be_none_or_positive_days(key, value):
    with override_settings(CHATKIT={**GOOD, key: value}):
        messages = check_settings(None)
    assert ids(messages) == ["chatkit.E013"]
    assert key in messages[0].msg


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"RETENTION": None, "ANONYMOUS_RETENTION": None},
        {"RETENTION": 365, "ANONYMOUS_RETENTION": "session"},
        {"RETENTION": 0.5, "ANONYMOUS_RETENTION": 30},
    ],
)
def test_e013_quiet_for_valid_retention(values):
    with override_settings(CHATKIT={**GOOD, **values}):
        assert ids(check_settings(None)) == []
