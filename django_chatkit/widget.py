"""The chat widget: what ``{% chatkit %}`` renders, as plain functions tests can call.

``chatkit_options()`` builds the argument of the web component's ``setOptions`` from
``CHATKIT["WIDGET"]`` merged with the tag's arguments and from facts only the server knows (the
endpoint URL, the domain key, the attachment limits). ``chatkit_widget()`` adds what one rendering
of the tag needs around it: element ids, the CSP nonce, the CSRF token and the owner key that
partitions the browser's thread memory. The bootstrap module (static/django_chatkit/
chatkit-bootstrap.js, served by this app's URLconf: bootstrap_asset.py) adds the functions JSON
cannot carry (``api.fetch``, or for a hosted widget, ``workflow=``, ``api.getClientSecret``:
docs/hosted.md) and ``initialThread``, and inserts OpenAI's script.
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext

from django_chatkit.attachments.options import widget_options
from django_chatkit.bootstrap_asset import bootstrap_url
from django_chatkit.conf import DEFAULTS, chatkit_settings
from django_chatkit.context import ANONYMOUS_SESSION_KEY, Owner
from django_chatkit.hosted.workflows import allowed_workflows, is_workflow_id
from django_chatkit.live.routes import live_path

WIDGET_KEYS = frozenset(DEFAULTS["WIDGET"])
COLOR_SCHEMES = ("light", "dark")
RADII = ("pill", "round", "soft", "sharp")
DENSITIES = ("compact", "normal", "spacious")
HISTORY_KEYS = frozenset({"enabled", "showDelete", "showRename"})
# Per-request counter of rendered widgets: numbers the element ids and renders the CDN preload
# link only once (the bootstrap inserts OpenAI's script once per page in any case).
_RENDERED_ATTR = "_django_chatkit_widgets"


class WidgetOptionError(ValueError):
    """A widget option (from ``CHATKIT["WIDGET"]`` or a tag argument) is invalid."""


@dataclass(frozen=True)
class ChatKitWidget:
    """Everything ``django_chatkit/widget.html`` renders for one ``{% chatkit %}``."""

    element_id: str
    options_id: str
    options: dict[str, Any]
    height: str
    remember_thread: bool
    owner_key: str
    csrf_token: str
    nonce: str | None
    cdn_url: str
    include_cdn_script: bool
    bootstrap_url: str
    load_timeout_ms: int
    unavailable_message: str
    # The path prefix of the thread websockets (docs/live.md), or None: no live updates.
    live_path: str | None = None
    # Hosted mode (docs/hosted.md): the workflow, and where its client secrets are minted.
    workflow: str | None = None
    session_url: str | None = None


# --- options -------------------------------------------------------------------------------


def _is_text(value: Any) -> bool:
    return isinstance(value, str | Promise)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> list[str]:
    if value is None or value in choices:
        return []
    return [f"{name} must be None or one of {', '.join(map(repr, choices))}, not {value!r}."]


def _check_prompt(index: int, prompt: Any) -> list[str]:
    if _is_text(prompt):
        return [] if str(prompt).strip() else [f"prompts[{index}] is blank."]
    if isinstance(prompt, Mapping):
        if not _is_text(prompt.get("label")) or not _is_text(prompt.get("prompt")):
            return [f"prompts[{index}] needs a 'label' and a 'prompt' (strings)."]
        unknown = set(prompt) - {"label", "prompt", "icon"}
        if unknown:
            return [f"prompts[{index}] has unknown keys {sorted(unknown)}."]
        return []
    return [f"prompts[{index}] must be a string or a dict, not {type(prompt).__name__}."]


def widget_problems(values: Any) -> list[str]:
    """What is wrong with a widget options dict (settings or tag arguments); [] when valid."""
    if not isinstance(values, Mapping):
        return [f"must be a dict, not {type(values).__name__}."]
    problems: list[str] = []
    for key in sorted(set(values) - WIDGET_KEYS):
        close = difflib.get_close_matches(str(key), WIDGET_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"unknown option {key!r}{hint}.")
    theme = values.get("theme", "light")
    if not (theme in COLOR_SCHEMES or isinstance(theme, Mapping)):
        problems.append(f"theme must be 'light', 'dark' or a ChatKit theme dict, not {theme!r}.")
    accent = values.get("accent")
    accent_dict = isinstance(accent, Mapping) and _is_text(accent.get("primary"))
    if not (accent is None or _is_text(accent) or accent_dict):
        problems.append(
            f"accent must be None, a CSS color or {{'primary': color, 'level': 0-3}}, "
            f"not {accent!r}."
        )
    elif isinstance(accent, Mapping) and accent.get("level", 1) not in (0, 1, 2, 3):
        problems.append(f"accent level must be 0, 1, 2 or 3, not {accent['level']!r}.")
    problems += _check_choice("radius", values.get("radius"), RADII)
    problems += _check_choice("density", values.get("density"), DENSITIES)
    for key in ("greeting", "placeholder", "disclaimer"):
        if not _is_text(values.get(key, "")):
            problems.append(f"{key} must be a string, not {values[key]!r}.")
    locale = values.get("locale")
    if locale is not None and not (_is_text(locale) and str(locale)):
        problems.append(f"locale must be None or a locale name such as 'fr-FR', not {locale!r}.")
    prompts = values.get("prompts", [])
    if not isinstance(prompts, list | tuple):
        problems.append(f"prompts must be a list, not {type(prompts).__name__}.")
    else:
        for index, prompt in enumerate(prompts):
            problems += _check_prompt(index, prompt)
    height = values.get("height", "600px")
    if isinstance(height, bool) or not (
        (isinstance(height, int) and height > 0) or (isinstance(height, str) and height.strip())
    ):
        problems.append(f"height must be a CSS length such as '40rem' or pixels, not {height!r}.")
    history = values.get("history", True)
    if not isinstance(history, bool) and not (
        isinstance(history, Mapping) and set(history) <= HISTORY_KEYS
    ):
        problems.append(
            f"history must be True, False or a dict with {sorted(HISTORY_KEYS)}, not {history!r}."
        )
    for key in ("feedback", "retry", "remember_thread"):
        if not isinstance(values.get(key, True), bool):
            problems.append(f"{key} must be True or False, not {values[key]!r}.")
    workflow = values.get("workflow")
    if workflow is not None and not is_workflow_id(workflow):
        problems.append(
            f"workflow must be None or an Agent Builder workflow id ('wf_...'), not {workflow!r}."
        )
    if not isinstance(values.get("options", {}), Mapping):
        problems.append("options must be a dict of ChatKit options (camelCase keys).")
    return problems


def widget_settings(**overrides: Any) -> dict[str, Any]:
    """``CHATKIT["WIDGET"]`` over the defaults, then ``overrides`` (tag arguments), validated."""
    values = {**chatkit_settings.WIDGET, **overrides}
    problems = widget_problems(values)
    if problems:
        raise WidgetOptionError("Invalid ChatKit widget options: " + " ".join(problems))
    return values


def attachment_options() -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The composer's ``attachments`` block and the ``api.uploadStrategy`` (None when disabled).

    Both come from ``CHATKIT["ATTACHMENTS"]``, the limits the upload views enforce, so the
    widget refuses what the server would refuse before anything is sent. Attachments are on
    when ``ATTACHMENTS["ENABLED"]`` is, or when a custom ``ATTACHMENT_STORE`` is named.
    """
    options = widget_options()
    block: dict[str, Any] = options["composer"]["attachments"]
    if not block["enabled"]:
        return {"enabled": False}, None
    return block, options["uploadStrategy"]


def _theme(values: Mapping[str, Any]) -> dict[str, Any]:
    theme = values["theme"]
    result: dict[str, Any] = (
        _plain(theme) if isinstance(theme, Mapping) else {"colorScheme": str(theme)}
    )
    accent = values.get("accent")
    if accent is not None:
        color = dict(result.get("color") or {})
        if isinstance(accent, Mapping):
            color["accent"] = {"primary": str(accent["primary"]), "level": accent.get("level", 1)}
        else:
            color["accent"] = {"primary": str(accent), "level": 1}
        result["color"] = color
    for key in ("radius", "density"):
        if values.get(key) is not None:
            result[key] = values[key]
    return result


def _prompt(prompt: Any) -> dict[str, Any]:
    if isinstance(prompt, Mapping):
        return {key: str(value) for key, value in prompt.items()}
    return {"label": str(prompt), "prompt": str(prompt)}


def _plain(value: Any) -> Any:
    """A JSON-ready copy: lazy translations become strings, tuples lists."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Promise):
        return str(value)
    return value


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = _plain(value)
    return base


def chatkit_options(**overrides: Any) -> dict[str, Any]:
    """The options for the web component's ``setOptions``, as JSON-ready data.

    ``overrides`` are tag arguments (the keys of ``CHATKIT["WIDGET"]``). ``api.fetch`` and
    ``initialThread`` are added in the browser by the bootstrap module (for a hosted widget, with
    ``workflow``: ``api.getClientSecret``).
    """
    return _options(widget_settings(**overrides))


def _options(values: Mapping[str, Any]) -> dict[str, Any]:
    api: dict[str, Any]
    if values.get("workflow"):
        # Hosted: the bootstrap makes api {getClientSecret}; OpenAI stores the uploads, when
        # the workflow's chatkit_configuration enables them (and options turn them on here).
        api, attachments = {}, {"enabled": False}
    else:
        attachments, upload_strategy = attachment_options()
        api = {"url": reverse("chatkit:endpoint"), "domainKey": chatkit_settings.DOMAIN_KEY}
        if upload_strategy is not None:
            api["uploadStrategy"] = upload_strategy
    history = values["history"]
    options: dict[str, Any] = {
        "api": api,
        "theme": _theme(values),
        "history": (
            _plain(history)
            if isinstance(history, Mapping)
            else {"enabled": history, "showDelete": history, "showRename": history}
        ),
        "threadItemActions": {"feedback": values["feedback"], "retry": values["retry"]},
        "composer": {"attachments": attachments},
    }
    if str(values["placeholder"]):
        options["composer"]["placeholder"] = str(values["placeholder"])
    start_screen: dict[str, Any] = {}
    if str(values["greeting"]):
        start_screen["greeting"] = str(values["greeting"])
    if values["prompts"]:
        start_screen["prompts"] = [_prompt(prompt) for prompt in values["prompts"]]
    if start_screen:
        options["startScreen"] = start_screen
    if str(values["disclaimer"]):
        options["disclaimer"] = {"text": str(values["disclaimer"])}
    if values["locale"]:
        options["locale"] = str(values["locale"])
    return _deep_merge(options, values["options"])


# --- one rendering of the tag ---------------------------------------------------------------


def owner_key(request: HttpRequest | None) -> str:
    """A stable, opaque key of who is chatting, to keep each user's thread memory apart.

    ``Owner.memory_key()`` of the user, or of the anonymous visitor's owner token when
    ``ALLOW_ANONYMOUS`` is on. Empty when there is no owner yet. A new visitor's token is made by
    the endpoint when it accepts their first request, not here: rendering a page must not create
    a session for every visitor (crawlers included). The endpoint's answers carry the key
    (``X-ChatKit-Owner``), and the bootstrap module takes it from there, so a new visitor's
    first thread is remembered all the same.
    """
    if request is None:
        return ""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Owner(user_id=user.pk).memory_key()
    if chatkit_settings.ALLOW_ANONYMOUS and hasattr(request, "session"):
        token = request.session.get(ANONYMOUS_SESSION_KEY)
        if token:
            return Owner(anonymous_key=str(token)).memory_key()
    return ""


def csp_nonce(request: HttpRequest | None, context_nonce: Any = None) -> str | None:
    """The request's Content-Security-Policy nonce, if a CSP middleware made one.

    Looks at the template's ``csp_nonce`` (Django 6's context processor), ``request.csp_nonce``
    (django-csp) and Django 6's ``get_nonce()``. Django's lazy nonce is false until first used,
    so each candidate is rendered rather than tested for truth: using it puts it in the header.
    """
    candidates: list[Callable[[], Any]] = [lambda: context_nonce]
    if request is not None:
        candidates += [
            lambda: getattr(request, "csp_nonce", None),
            lambda: _django_csp_nonce(request),
        ]
    for candidate in candidates:
        value = candidate()
        if value is not None and str(value):
            return str(value)
    return None


def _django_csp_nonce(request: HttpRequest) -> Any:
    """The nonce of Django's own ContentSecurityPolicyMiddleware (Django 6.0+)."""
    try:
        from django.middleware.csp import get_nonce
    except ImportError:  # Django < 6.0 has no CSP support of its own
        return None
    return get_nonce(request)


def _next_widget_number(request: HttpRequest | None) -> int:
    if request is None:
        return 0
    number = int(getattr(request, _RENDERED_ATTR, 0)) + 1
    setattr(request, _RENDERED_ATTR, number)
    return number


def chatkit_widget(
    request: HttpRequest | None,
    *,
    id: str | None = None,
    csp_nonce_value: Any = None,
    **overrides: Any,
) -> ChatKitWidget:
    """One widget: its options and the element around them, for ``widget.html``.

    ``request`` supplies the CSRF token, the owner key and the CSP nonce; without it (rendering
    outside a request) the widget has no thread memory and its ``api.fetch`` sends no token.
    """
    values = widget_settings(**overrides)
    workflow = values.get("workflow")
    if workflow and workflow not in allowed_workflows():
        raise WidgetOptionError(
            f"workflow {workflow!r} is not in CHATKIT['HOSTED_WORKFLOWS']: the session endpoint "
            "would refuse to mint its client secrets. Add it there."
        )
    options = _options(values)
    number = _next_widget_number(request)
    element_id = id or (f"chatkit-{number}" if number else f"chatkit-{secrets.token_hex(4)}")
    if not isinstance(element_id, str) or not element_id.strip() or " " in element_id:
        raise WidgetOptionError(f"id must be a non-empty HTML id without spaces: {id!r}.")
    height = values["height"]
    return ChatKitWidget(
        element_id=element_id,
        options_id=f"{element_id}-options",
        options=options,
        height=f"{height}px" if isinstance(height, int) else str(height),
        remember_thread=bool(values["remember_thread"]),
        owner_key=owner_key(request),
        csrf_token=get_token(request) if request is not None else "",
        nonce=csp_nonce(request, csp_nonce_value),
        cdn_url=chatkit_settings.CDN_URL,
        include_cdn_script=number <= 1,
        bootstrap_url=bootstrap_url(),
        load_timeout_ms=chatkit_settings.LOAD_TIMEOUT_MS,
        # Hosted threads live at OpenAI: no socket of ours hears of them.
        live_path=None if workflow else live_path(),
        workflow=workflow or None,
        session_url=reverse("chatkit:hosted-session") if workflow else None,
        unavailable_message=gettext(
            "The chat could not be loaded: its script, from OpenAI's servers, did not arrive. "
            "A content blocker or a network filter may be stopping it. Reload the page to "
            "try again."
        ),
    )
