"""System checks, with stable ids (documented in docs/checks.md)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from django_chatkit.attachments.checks import attachment_setting_errors, presigned_upload_warnings
from django_chatkit.conf import DEFAULTS, DEV_DOMAIN_KEY, DOTTED_PATH_SETTINGS

_POSITIVE_INTS = (
    "MAX_REQUEST_BYTES",
    "MAX_PAGE_SIZE",
    "HISTORY_ITEMS",
    "LOAD_TIMEOUT_MS",
    "UPLOAD_TOKEN_MAX_AGE",
    "ORPHAN_UPLOAD_MAX_AGE",
)
_OPTIONAL_POSITIVE_INTS = ("REQUESTS_PER_MINUTE", "TOKENS_PER_DAY")
_POSITIVE_NUMBERS = ("OPENAI_CONNECT_TIMEOUT", "OPENAI_READ_TIMEOUT")


_OVERWRITTEN_HINT = (
    "Another package (PyPI 'django-chatkit', an unrelated chat app) installs a top-level "
    "'chatkit' that overwrites the SDK. Run: pip uninstall django-chatkit openai-chatkit && "
    "pip install django-openai-chatkit"
)
_BROKEN_HINT = (
    "The SDK is installed but fails to import; run python -c 'import chatkit.server' for the "
    "traceback. A dependency missing or at an incompatible version is the usual cause: "
    "pip install --force-reinstall django-openai-chatkit"
)


@register()
def check_sdk_installed(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """The ``chatkit`` module must be OpenAI's SDK, importable, not the unrelated
    ``django-chatkit`` app. The import's own error is shown: it is what the site must fix."""
    try:
        server = importlib.import_module("chatkit.server")
    except Exception as exc:
        overwritten = isinstance(exc, ModuleNotFoundError) and exc.name in (
            "chatkit",
            "chatkit.server",
        )
        return [
            Error(
                f"The OpenAI ChatKit SDK cannot be imported: {type(exc).__name__}: {exc}",
                hint=_OVERWRITTEN_HINT if overwritten else _BROKEN_HINT,
                id="chatkit.E001",
            )
        ]
    if hasattr(server, "ChatKitServer"):
        return []
    return [
        Error(
            "The 'chatkit' module is not the OpenAI ChatKit SDK.",
            hint=_OVERWRITTEN_HINT,
            id="chatkit.E001",
        )
    ]


@register()
def check_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    value = getattr(settings, "CHATKIT", {})
    if not isinstance(value, dict):
        return [
            Error(
                f"settings.CHATKIT must be a dict, not {type(value).__name__}.",
                hint="Set CHATKIT = {...} with the keys listed in docs/settings.md.",
                id="chatkit.E002",
            )
        ]
    errors: list[CheckMessage] = []
    for key in sorted(set(value) - set(DEFAULTS)):
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        errors.append(
            Error(
                f"Unknown CHATKIT setting {key!r}.",
                hint=f"Did you mean {close[0]!r}?" if close else "See docs/settings.md.",
                id="chatkit.E003",
            )
        )
    for key in DOTTED_PATH_SETTINGS:
        path = value.get(key, DEFAULTS[key])
        if path is not None:
            errors.extend(_import_errors(key, [path]))
    errors.extend(_check_server_class(value.get("SERVER", DEFAULTS["SERVER"])))
    errors.extend(_check_agent(value.get("AGENT", DEFAULTS["AGENT"])))
    errors.extend(_check_numbers(value))
    errors.extend(_check_widget(value))
    errors.extend(attachment_setting_errors(value))
    errors.extend(presigned_upload_warnings(value))
    quota_cache = value.get("QUOTA_CACHE", DEFAULTS["QUOTA_CACHE"])
    if quota_cache not in settings.CACHES:
        errors.append(
            Error(
                f"CHATKIT['QUOTA_CACHE'] = {quota_cache!r} is not a cache in settings.CACHES.",
                hint="Name a configured cache; use one shared by all workers (Redis).",
                id="chatkit.E008",
            )
        )
    else:
        errors.extend(_check_quota_cache_counts_atomically(value, quota_cache))
    return errors


# Cache backends whose incr() is a read followed by a write: concurrent turns lose counts.
_NON_ATOMIC_CACHES = (
    "django.core.cache.backends.db.DatabaseCache",
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _check_quota_cache_counts_atomically(value: dict[str, Any], alias: str) -> list[CheckMessage]:
    limited = any(value.get(key) is not None for key in _OPTIONAL_POSITIVE_INTS)
    backend = str(settings.CACHES[alias].get("BACKEND", ""))
    if not limited or backend not in _NON_ATOMIC_CACHES:
        return []
    return [
        Warning(
            f"CHATKIT['QUOTA_CACHE'] = {alias!r} uses {backend.rsplit('.', 1)[-1]}, which cannot "
            "count atomically: concurrent turns can pass REQUESTS_PER_MINUTE / TOKENS_PER_DAY.",
            hint="Count quotas in Redis or Memcached (one cache all workers share).",
            id="chatkit.W004",
        )
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_numbers(value: dict[str, Any]) -> list[CheckMessage]:
    problems: list[tuple[str, Any, str]] = []
    for key in _POSITIVE_INTS:
        number = value.get(key, DEFAULTS[key])
        if not _is_int(number) or number < 1:
            problems.append((key, number, "a positive integer"))
    for key in _OPTIONAL_POSITIVE_INTS:
        number = value.get(key, DEFAULTS[key])
        if number is not None and (not _is_int(number) or number < 1):
            problems.append((key, number, "None or a positive integer"))
    for key in _POSITIVE_NUMBERS:
        number = value.get(key, DEFAULTS[key])
        if not isinstance(number, int | float) or isinstance(number, bool) or number <= 0:
            problems.append((key, number, "a positive number of seconds"))
    for key in ("OPENAI_MAX_RETRIES", "TRUSTED_PROXY_COUNT"):
        number = value.get(key, DEFAULTS[key])
        if not _is_int(number) or number < 0:
            problems.append((key, number, "an integer >= 0"))
    return [
        Error(f"CHATKIT[{key!r}] must be {expected}, not {number!r}.", id="chatkit.E006")
        for key, number, expected in problems
    ]


def _check_widget(value: dict[str, Any]) -> list[CheckMessage]:
    """The widget's settings: WIDGET (validated as the tag validates it), DOMAIN_KEY, CDN_URL."""
    from django_chatkit.widget import widget_problems

    widget = value.get("WIDGET", {})
    problems = (
        widget_problems({**DEFAULTS["WIDGET"], **widget})
        if isinstance(widget, dict)
        else [f"must be a dict, not {type(widget).__name__}."]
    )
    messages = [f"CHATKIT['WIDGET']: {problem}" for problem in problems]
    domain_key = value.get("DOMAIN_KEY", DEFAULTS["DOMAIN_KEY"])
    if not isinstance(domain_key, str):
        messages.append(f"CHATKIT['DOMAIN_KEY'] must be a string, not {domain_key!r}.")
    cdn_url = value.get("CDN_URL", DEFAULTS["CDN_URL"])
    if not isinstance(cdn_url, str) or not cdn_url.startswith(("https://", "/")):
        messages.append(f"CHATKIT['CDN_URL'] must be an https:// URL, not {cdn_url!r}.")
    return [
        Error(
            message,
            hint="See the widget settings in docs/settings.md.",
            id="chatkit.E009",
        )
        for message in messages
    ]


def _check_agent(agent: Any) -> list[CheckMessage]:
    from django_chatkit.agent_config import AGENT_DICT_KEYS

    if isinstance(agent, str):
        return _import_errors("AGENT", [agent])
    if not isinstance(agent, dict):
        return [
            Error(
                f"CHATKIT['AGENT'] must be a dotted path or a dict, not {type(agent).__name__}.",
                id="chatkit.E007",
            )
        ]
    errors: list[CheckMessage] = [
        Error(
            f"Unknown CHATKIT['AGENT'] key {key!r}.",
            hint=f"Known keys: {', '.join(sorted(AGENT_DICT_KEYS))}.",
            id="chatkit.E007",
        )
        for key in sorted(set(agent) - AGENT_DICT_KEYS)
    ]
    return errors + _import_errors("AGENT tools", list(agent.get("tools", [])))


def _import_errors(label: str, paths: list[Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for path in paths:
        try:
            import_string(path)
        except Exception as exc:
            errors.append(
                Error(
                    f"CHATKIT[{label!r}] = {path!r} cannot be imported: {exc}",
                    hint="Give the dotted path of an object, e.g. 'myapp.chat.assistant'.",
                    id="chatkit.E004",
                )
            )
    return errors


def _check_server_class(path: Any) -> list[CheckMessage]:
    try:
        server_class = import_string(path)
    except Exception:
        return []  # reported as chatkit.E004
    from django_chatkit.server import DjangoChatKitServer

    if isinstance(server_class, type) and issubclass(server_class, DjangoChatKitServer):
        return []
    return [
        Error(
            f"CHATKIT['SERVER'] = {path!r} is not a subclass of DjangoChatKitServer.",
            hint="Subclass django_chatkit.server.DjangoChatKitServer: it scopes every query "
            "to the user and enforces thread status.",
            id="chatkit.E005",
        )
    ]


@register(Tags.compatibility)
def check_served_over_asgi(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """Streaming needs ASGI: Django's WSGI runserver would buffer every answer whole."""
    if getattr(settings, "ASGI_APPLICATION", None) or apps.is_installed("daphne"):
        return []
    return [
        Warning(
            "ChatKit streams answers, but nothing shows this site is served over ASGI: "
            "under WSGI (including the default runserver) each answer arrives only when done.",
            hint=(
                "Put 'daphne' first in INSTALLED_APPS and set ASGI_APPLICATION (runserver then "
                "serves ASGI), and deploy with an ASGI server (daphne, uvicorn). Silence this "
                "check if you already serve ASGI another way."
            ),
            id="chatkit.W001",
        )
    ]


@register(Tags.security)
def check_domain_key(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """A public site needs the domain key registered for it: ChatKit refuses the placeholder."""
    value = getattr(settings, "CHATKIT", {})
    if settings.DEBUG or not isinstance(value, dict):
        return []
    domain_key = value.get("DOMAIN_KEY", DEFAULTS["DOMAIN_KEY"])
    if isinstance(domain_key, str) and domain_key.strip() and domain_key != DEV_DOMAIN_KEY:
        return []
    return [
        Warning(
            "CHATKIT['DOMAIN_KEY'] is unset or the development placeholder while DEBUG is off: "
            "the {% chatkit %} widget will not load on a public host.",
            hint=(
                "Register the site's domain on the OpenAI platform (Settings > Security > "
                "Domain allowlist) and set CHATKIT['DOMAIN_KEY'] to its key (domain_pk_...). "
                "Silence this check if the site does not use the widget."
            ),
            id="chatkit.W002",
        )
    ]
