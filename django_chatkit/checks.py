"""System checks, with stable ids (documented in docs/checks.md).

They import neither the ChatKit nor the Agents SDK, nor openai (seconds of imports, for every
``manage.py`` command): the SDK is looked for on disk and in the installed packages' metadata,
and the classes of ours that settings name by default are known here without importing their
modules. A dotted path to the site's own code is imported, at whatever that costs.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import PathFinder
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.management import get_commands
from django.utils.module_loading import import_string

from django_chatkit.attachments.checks import attachment_setting_errors, presigned_upload_warnings
from django_chatkit.conf import (
    DEFAULTS,
    DEV_DOMAIN_KEY,
    DOTTED_PATH_SETTINGS,
    SESSION_RETENTION,
)
from django_chatkit.hosted.checks import hosted_setting_messages
from django_chatkit.openai_client import configured_api_key
from django_chatkit.types import AgentConfig

_POSITIVE_INTS = (
    "MAX_REQUEST_BYTES",
    "MAX_PAGE_SIZE",
    "HISTORY_ITEMS",
    "LOAD_TIMEOUT_MS",
    "UPLOAD_TOKEN_MAX_AGE",
    "ORPHAN_UPLOAD_MAX_AGE",
)
_OPTIONAL_POSITIVE_INTS = ("REQUESTS_PER_MINUTE", "TOKENS_PER_DAY")
# Checked as those, but no quota: not in _OPTIONAL_POSITIVE_INTS, which chatkit.W004 reads.
_OTHER_OPTIONAL_POSITIVE_INTS = ("LIVE_MAX_CONNECTIONS_PER_USER",)
_POSITIVE_NUMBERS = ("OPENAI_CONNECT_TIMEOUT", "OPENAI_READ_TIMEOUT")


_OVERWRITTEN_HINT = (
    "Another package (PyPI 'django-chatkit', an unrelated chat app) installs a top-level "
    "'chatkit' that overwrites the SDK. Run: pip uninstall django-chatkit openai-chatkit && "
    "pip install django-openai-chatkit"
)
_BROKEN_HINT = (
    "Reinstall it with what it requires: pip install --force-reinstall django-openai-chatkit "
    "(python -c 'import chatkit.server' shows what fails)."
)


# The SDK's distribution, and the unrelated one whose top-level 'chatkit' overwrites it.
_SDK_DISTRIBUTION = "openai-chatkit"
_IMPOSTOR_DISTRIBUTION = "django-chatkit"
_SERVER_CLASS = re.compile(r"^class ChatKitServer\b", re.MULTILINE)
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")


@register()
def check_sdk_installed(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """The ``chatkit`` module must be OpenAI's SDK, not the unrelated ``django-chatkit`` app's,
    with the packages it requires. Found on disk, not imported (seconds, and most of them the
    Agents SDK's): an SDK that fails to import anyway shows it when the server starts."""
    problem = _sdk_problem()
    if problem is None:
        return []
    message, hint = problem
    return [Error(message, hint=hint, id="chatkit.E001")]


def _sdk_problem() -> tuple[str, str] | None:
    imported = sys.modules.get("chatkit.server")
    if imported is not None:  # imported already (by the site's own code): it is the truth
        if hasattr(imported, "ChatKitServer"):
            return None
        return "The 'chatkit' module is not the OpenAI ChatKit SDK.", _OVERWRITTEN_HINT
    if _distribution_version(_IMPOSTOR_DISTRIBUTION) is not None:
        return (
            f"The package {_IMPOSTOR_DISTRIBUTION!r} (an unrelated chat app) is installed: its "
            "'chatkit' module overwrites the OpenAI ChatKit SDK's.",
            _OVERWRITTEN_HINT,
        )
    locations = _package_locations("chatkit")
    if locations is None:
        return (
            "The OpenAI ChatKit SDK cannot be found: No module named 'chatkit'",
            _OVERWRITTEN_HINT,
        )
    spec = PathFinder.find_spec("chatkit.server", locations)
    if spec is None:
        return (
            "The OpenAI ChatKit SDK cannot be found: No module named 'chatkit.server'",
            _OVERWRITTEN_HINT,
        )
    if spec.origin and spec.origin.endswith(".py"):
        with open(spec.origin, encoding="utf-8", errors="replace") as source:
            if not _SERVER_CLASS.search(source.read()):
                return "The 'chatkit' module is not the OpenAI ChatKit SDK.", _OVERWRITTEN_HINT
    unmet = _unmet_sdk_requirements()
    if unmet:
        return (
            f"The OpenAI ChatKit SDK lacks packages it requires: {', '.join(unmet)}.",
            _BROKEN_HINT,
        )
    return None


def _package_locations(name: str) -> list[str] | None:
    """Where the package ``name`` has its modules, without importing it; None if not found."""
    module = sys.modules.get(name)
    if module is not None:
        return list(getattr(module, "__path__", []))
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return None
    return list(spec.submodule_search_locations)


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _unmet_sdk_requirements() -> list[str]:
    """The SDK's unconditional requirements missing, or installed at a version it excludes
    (compared when the ``packaging`` library is there to compare them)."""
    try:
        requirements = importlib.metadata.requires(_SDK_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []  # not installed as a distribution (a source checkout): nothing to compare
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:
        SpecifierSet = None  # type: ignore[assignment,misc]
    unmet = []
    for requirement in requirements:
        match = None if ";" in requirement else _REQUIREMENT.fullmatch(requirement)
        if match is None:
            continue  # conditional (an extra, a Python version): not evaluated here
        name, specifier = match.group(1), match.group(2).strip().strip("()")
        version = _distribution_version(name)
        if version is None:
            unmet.append(f"{name} (not installed)")
        elif specifier and SpecifierSet is not None:
            try:
                allowed = SpecifierSet(specifier).contains(version, prereleases=True)
            except InvalidSpecifier:
                continue
            if not allowed:
                unmet.append(f"{name}{specifier} ({version} installed)")
    return unmet


def _check_staff_display_name(value: Any) -> list[CheckMessage]:
    from django_chatkit.live.staff import display_name_errors

    problem = display_name_errors(value)
    if problem is None:
        return []
    return [
        Error(
            f"CHATKIT['STAFF_DISPLAY_NAME'] {problem}",
            hint='A non-empty string such as "Support team", or None for the default; '
            "placeholders: {first_name}, {last_name}, {username}.",
            id="chatkit.E014",
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
    errors.extend(_check_retention(value))
    errors.extend(_check_hosted_import(value))
    errors.extend(attachment_setting_errors(value))
    errors.extend(presigned_upload_warnings(value))
    errors.extend(_check_staff_display_name(value.get("STAFF_DISPLAY_NAME")))
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
    atomic = (
        str(settings.CACHES[quota_cache].get("BACKEND", "")) not in _NON_ATOMIC_CACHES
        if quota_cache in settings.CACHES
        else None
    )
    errors.extend(hosted_setting_messages(value, quota_cache_atomic=atomic))
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
    for key in (*_OPTIONAL_POSITIVE_INTS, *_OTHER_OPTIONAL_POSITIVE_INTS):
        number = value.get(key, DEFAULTS[key])
        if number is not None and (not _is_int(number) or number < 1):
            problems.append((key, number, "None or a positive integer"))
    for key in _POSITIVE_NUMBERS:
        number = value.get(key, DEFAULTS[key])
        if not isinstance(number, int | float) or isinstance(number, bool) or number <= 0:
            problems.append((key, number, "a positive number of seconds"))
    for key in ("OPENAI_MAX_RETRIES", "TRUSTED_PROXY_COUNT", "USAGE_CACHE_SECONDS"):
        number = value.get(key, DEFAULTS[key])
        if not _is_int(number) or number < 0:
            problems.append((key, number, "an integer >= 0"))
    return [
        Error(f"CHATKIT[{key!r}] must be {expected}, not {number!r}.", id="chatkit.E006")
        for key, number, expected in problems
    ]


def _check_hosted_import(value: dict[str, Any]) -> list[CheckMessage]:
    """The hosted import's settings (docs/hosted.md): a page size the API accepts, at
    least one attempt, and waits and bounds that are numbers of seconds >= 0."""
    problems: list[tuple[str, Any, str]] = []
    page = value.get("HOSTED_IMPORT_PAGE_SIZE", DEFAULTS["HOSTED_IMPORT_PAGE_SIZE"])
    if not _is_int(page) or not 1 <= page <= 100:
        problems.append(("HOSTED_IMPORT_PAGE_SIZE", page, "an integer from 1 to 100"))
    attempts = value.get("HOSTED_IMPORT_MAX_ATTEMPTS", DEFAULTS["HOSTED_IMPORT_MAX_ATTEMPTS"])
    if not _is_int(attempts) or attempts < 1:
        problems.append(("HOSTED_IMPORT_MAX_ATTEMPTS", attempts, "a positive integer"))
    for key in (
        "HOSTED_IMPORT_BACKOFF",
        "HOSTED_IMPORT_MAX_WAIT",
        "HOSTED_IMPORT_ADMIN_SECONDS",
        "HOSTED_IMPORT_ACTIVE_WINDOW",
    ):
        number = value.get(key, DEFAULTS[key])
        if not isinstance(number, int | float) or isinstance(number, bool) or not number >= 0:
            problems.append((key, number, "a number of seconds >= 0"))
    messages: list[CheckMessage] = [
        Error(
            f"CHATKIT[{key!r}] must be {expected}, not {number!r}.",
            hint="See the hosted import's settings in docs/settings.md.",
            id="chatkit.E018",
        )
        for key, number, expected in problems
    ]
    if not any(key == "HOSTED_IMPORT_ACTIVE_WINDOW" for key, _, _ in problems):
        window = value.get("HOSTED_IMPORT_ACTIVE_WINDOW", DEFAULTS["HOSTED_IMPORT_ACTIVE_WINDOW"])
        messages.extend(_outlived_windows(value, window))
    return messages


def _outlived_windows(value: dict[str, Any], window: float) -> list[CheckMessage]:
    """chatkit.W011: a workflow's secrets live longer than the import's active window, so a
    user can still chat after the import stopped visiting them (their last threads' changes
    would never be imported without --all)."""
    workflows = value.get("HOSTED_WORKFLOWS", DEFAULTS["HOSTED_WORKFLOWS"])
    if not isinstance(workflows, Mapping):
        return []
    outlived = [
        (workflow_id, seconds)
        for workflow_id, options in workflows.items()
        if isinstance(options, Mapping)
        and isinstance(seconds := options.get("expires_after"), int)
        and not isinstance(seconds, bool)
        and seconds > window
    ]
    return [
        Warning(
            f"The client secrets of hosted workflow {workflow_id!r} live {seconds} seconds "
            f"(expires_after), longer than CHATKIT['HOSTED_IMPORT_ACTIVE_WINDOW'] ({window:g} "
            "seconds): chatkit_import_hosted may stop visiting a user while they still chat.",
            hint="Make HOSTED_IMPORT_ACTIVE_WINDOW at least the longest expires_after.",
            id="chatkit.W011",
        )
        for workflow_id, seconds in outlived
    ]


def _check_retention(value: dict[str, Any]) -> list[CheckMessage]:
    """RETENTION and ANONYMOUS_RETENTION: None or a positive number of days (and "session")."""
    errors: list[CheckMessage] = []
    for key, extra in (("RETENTION", ()), ("ANONYMOUS_RETENTION", (SESSION_RETENTION,))):
        days = value.get(key, DEFAULTS[key])
        if days is None or (isinstance(days, str) and days in extra):
            continue
        if isinstance(days, int | float) and not isinstance(days, bool) and days > 0:
            continue
        expected = "None or a positive number of days" + "".join(f" or {word!r}" for word in extra)
        errors.append(
            Error(
                f"CHATKIT[{key!r}] must be {expected}, not {days!r}.",
                hint="See the retention settings in docs/settings.md and docs/retention.md.",
                id="chatkit.E013",
            )
        )
    return errors


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
    known_keys = AgentConfig.__optional_keys__  # agent_config's, without the Agents SDK it imports
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
            hint=f"Known keys: {', '.join(sorted(known_keys))}.",
            id="chatkit.E007",
        )
        for key in sorted(set(agent) - known_keys)
    ]
    return errors + _import_errors("AGENT tools", list(agent.get("tools", [])))


# Our classes that settings name by default or as documented, known without importing their
# modules (which import the SDKs): dotted path -> whether it is a DjangoChatKitServer, and an
# AgentChatKitServer. tests/test_checks.py imports each to hold this table to the truth.
_KNOWN_CLASSES: dict[str, tuple[bool, bool]] = {
    "django_chatkit.agent_server.AgentChatKitServer": (True, True),
    "django_chatkit.server.DjangoChatKitServer": (True, False),
    "django_chatkit.attachments.store.DjangoAttachmentStore": (False, False),
}


def _import_errors(label: str, paths: list[Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for path in paths:
        if isinstance(path, str) and path in _KNOWN_CLASSES:
            continue
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


def _subclass_of_loaded(value: Any, module: str, name: str) -> bool:
    """Whether ``value`` subclasses ``module.name``, importing nothing: a subclass of a class
    exists only once the class's module has been imported."""
    loaded = sys.modules.get(module)
    base = getattr(loaded, name, None)
    return isinstance(value, type) and isinstance(base, type) and issubclass(value, base)


def _server_kind(path: Any) -> tuple[bool, bool] | None:
    """Whether ``CHATKIT["SERVER"]`` is a DjangoChatKitServer, and an AgentChatKitServer;
    None when it does not import (chatkit.E004)."""
    if isinstance(path, str) and path in _KNOWN_CLASSES:
        return _KNOWN_CLASSES[path]
    try:
        server_class = import_string(path)
    except Exception:
        return None
    return (
        _subclass_of_loaded(server_class, "django_chatkit.server", "DjangoChatKitServer"),
        _subclass_of_loaded(server_class, "django_chatkit.agent_server", "AgentChatKitServer"),
    )


def _check_server_class(path: Any) -> list[CheckMessage]:
    kind = _server_kind(path)
    if kind is None or kind[0]:
        return []  # a server, or reported as chatkit.E004
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
    """Streaming needs ASGI, and in development ``runserver`` serves WSGI unless it is daphne's.

    Checked with DEBUG on only: a deployed site's server (uvicorn, daphne, or a WSGI one) is
    invisible from its settings, and the view logs a warning if a request arrives over WSGI.
    """
    if not settings.DEBUG:
        return []
    # The app whose runserver command manage.py runs: the first in INSTALLED_APPS that has one.
    runserver = get_commands().get("runserver")
    if runserver == "daphne":
        return []
    return [
        Warning(
            f"manage.py runserver (from {runserver}) serves WSGI: ChatKit's streamed answers "
            "arrive only once complete.",
            hint=(
                "Put 'daphne' first in INSTALLED_APPS, before django.contrib.staticfiles "
                "(daphne's runserver then serves ASGI_APPLICATION), or develop with an ASGI "
                "server (daphne, uvicorn) and silence this check."
            ),
            id="chatkit.W001",
        )
    ]


@register()
def check_openai_key(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The agent server answers through the OpenAI client, which refuses to exist without a key."""
    value = getattr(settings, "CHATKIT", {})
    if not isinstance(value, dict):
        return []  # chatkit.E002
    kind = _server_kind(value.get("SERVER", DEFAULTS["SERVER"]))
    if kind is None or not kind[1] or configured_api_key():
        return []
    return [
        Warning(
            "No OpenAI API key is configured: every chat will fail (the agent server answers "
            "through the OpenAI client, which needs one).",
            hint=(
                "Set the OPENAI_API_KEY environment variable, or CHATKIT['OPENAI_API_KEY']. "
                "A server named by OPENAI_BASE_URL that needs no key still needs a value: "
                "any placeholder, e.g. 'unused'."
            ),
            id="chatkit.W005",
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


_IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
_REDIS_LAYER = "channels_redis.core.RedisChannelLayer"
# How long channels_redis blocks on Redis for a socket's next message (RedisChannelLayer's
# brpop_timeout): a client read timeout must be longer.
_REDIS_LAYER_BLOCKING_SECONDS = 5


@register()
def check_channel_layer(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """Live updates (docs/live.md): a layer that cannot carry them where it matters. A site
    without CHANNEL_LAYERS hears nothing: it may not want live updates at all."""
    from django_chatkit.live.layer import DEFAULT_ALIAS, channels_installed, configured_layers

    layers = configured_layers()
    if DEFAULT_ALIAS not in layers:
        return []
    if not channels_installed():
        return [
            Warning(
                "CHANNEL_LAYERS is set but Channels is not installed: ChatKit publishes no live "
                "notices.",
                hint='pip install "django-openai-chatkit[live]" (docs/live.md).',
                id="chatkit.W006",
            )
        ]
    backend = str(layers[DEFAULT_ALIAS].get("BACKEND", ""))
    if backend == _REDIS_LAYER:
        return _redis_layer_timeouts(layers[DEFAULT_ALIAS])
    if backend == _IN_MEMORY_LAYER and not settings.DEBUG:
        return [
            Warning(
                "CHANNEL_LAYERS uses InMemoryChannelLayer with DEBUG off: its notices reach only "
                "sockets served by the process that published them. With several workers "
                "(processes), a socket on one misses the turns streamed by another.",
                hint="Use channels_redis (RedisChannelLayer), or silence this warning if the "
                "site runs one process.",
                id="chatkit.W007",
            )
        ]
    return []


def _redis_layer_timeouts(layer: dict[str, Any]) -> list[CheckMessage]:
    """redis-py 8 reads with a 5 s timeout by default, no longer than channels_redis's blocking
    reads: each idle socket's receive fails every 5 s, and Channels drops the socket."""
    version = _distribution_version("redis")
    if version is None or not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 8:
        return []
    config = layer.get("CONFIG") or {}
    hosts = config.get("hosts") if isinstance(config, dict) else None
    hosts = hosts or ["redis://localhost:6379"]  # channels_redis's default host
    for host in hosts if isinstance(hosts, list | tuple) else []:
        timeout = host.get("socket_timeout", 5.0) if isinstance(host, dict) else 5.0
        if timeout is not None and (
            not isinstance(timeout, int | float) or timeout <= _REDIS_LAYER_BLOCKING_SECONDS
        ):
            return [
                Warning(
                    f"CHANNEL_LAYERS' Redis host {host!r} reads with a timeout of {timeout!r} s "
                    f"(redis-py {version}'s default is 5 s), no longer than the channel layer's "
                    f"{_REDIS_LAYER_BLOCKING_SECONDS} s blocking reads: every idle live socket "
                    "fails and is dropped about every 5 seconds.",
                    hint='Give each host a longer timeout: {"address": "redis://...", '
                    '"socket_timeout": 15} (docs/live.md).',
                    id="chatkit.W008",
                )
            ]
    return []
