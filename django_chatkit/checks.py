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

from django_chatkit.conf import DEFAULTS, DOTTED_PATH_SETTINGS

_INT_SETTINGS = ("MAX_REQUEST_BYTES", "MAX_PAGE_SIZE", "MAX_ATTACHMENTS_PER_MESSAGE")


@register()
def check_sdk_installed(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """The ``chatkit`` module must be OpenAI's SDK, not the unrelated ``django-chatkit`` app."""
    try:
        server = importlib.import_module("chatkit.server")
        found = hasattr(server, "ChatKitServer")
    except Exception:  # any import failure means the SDK is not usable
        found = False
    if found:
        return []
    return [
        Error(
            "The 'chatkit' module is not the OpenAI ChatKit SDK.",
            hint=(
                "Another package (PyPI 'django-chatkit', an unrelated chat app) installs a "
                "top-level 'chatkit' that overwrites the SDK. Run: pip uninstall django-chatkit "
                "openai-chatkit && pip install django-openai-chatkit"
            ),
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
        if path is None and DEFAULTS[key] is None:
            continue
        try:
            import_string(path)
        except Exception as exc:  # ImportError, AttributeError, or an error inside the module
            errors.append(
                Error(
                    f"CHATKIT[{key!r}] = {path!r} cannot be imported: {exc}",
                    hint="Give the dotted path of a class, e.g. 'myapp.chat.MyServer'.",
                    id="chatkit.E004",
                )
            )
    errors.extend(_check_server_class(value.get("SERVER", DEFAULTS["SERVER"])))
    for key in _INT_SETTINGS:
        number = value.get(key, DEFAULTS[key])
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            errors.append(
                Error(
                    f"CHATKIT[{key!r}] must be a positive integer, not {number!r}.",
                    id="chatkit.E006",
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
