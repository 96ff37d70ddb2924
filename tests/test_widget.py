"""The {% chatkit %} tag and the functions under it: options, escaping, nonces, owner keys, checks.

The browser side (the bootstrap module in a real Chromium) is in test_browser.py.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import django
import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.utils.translation import gettext_lazy

from django_chatkit.bootstrap_asset import bootstrap_url
from django_chatkit.checks import check_domain_key, check_settings
from django_chatkit.conf import DEFAULTS, DEV_DOMAIN_KEY, chatkit_settings
from django_chatkit.context import ANONYMOUS_SESSION_KEY
from django_chatkit.widget import (
    WidgetOptionError,
    attachment_options,
    chatkit_options,
    chatkit_widget,
    csp_nonce,
    owner_key,
)

CDN = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js"
BASE = {"SERVER": "tests.servers.ScriptedServer", "DOMAIN_KEY": "domain_pk_tests"}
HOSTILE = """</script><script>alert("x")</script><!-- ' " & \u2028 end"""


class Page(HTMLParser):
    """The parts of a rendered page the tests look at: script and link tags, chatkit elements,
    JSON."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.elements: list[dict[str, str | None]] = []
        self.json: dict[str, Any] = {}
        self.attribute_names: set[str] = set()
        self._json_id: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.attribute_names.update(attributes)
        if tag == "script":
            self.scripts.append(attributes)
            if attributes.get("type") == "application/json":
                self._json_id = attributes["id"]
        elif tag == "link":
            self.links.append(attributes)
        elif tag == "openai-chatkit":
            self.elements.append(attributes)

    def handle_data(self, data: str) -> None:
        if self._json_id is not None:
            self.json[self._json_id] = json.loads(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._json_id = None


def make_request(user: Any = None, **attributes: Any):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    request.session = SessionStore()
    for name, value in attributes.items():
        setattr(request, name, value)
    return request


def render(template: str, request: Any = None, **context: Any) -> str:
    source = "{% load chatkit %}" + template
    return Template(source).render(Context({"request": request or make_request(), **context}))


# --- the options ---------------------------------------------------------------------------


def test_default_options_are_the_endpoint_the_domain_key_and_our_server_features():
    assert chatkit_options() == {
        "api": {"url": "/chatkit/", "domainKey": "domain_pk_tests"},
        "theme": {"colorScheme": "light"},
        "history": {"enabled": True, "showDelete": True, "showRename": True},
        "threadItemActions": {"feedback": True, "retry": True},
        "composer": {"attachments": {"enabled": False}},
    }


def test_every_option_maps_onto_chatkit_names():
    options = chatkit_options(
        theme="dark",
        accent="#0f766e",
        radius="soft",
        density="compact",
        greeting="How can we help?",
        prompts=[
            "Opening hours",
            {"label": "Returns", "prompt": "How do I return?", "icon": "mail"},
        ],
        placeholder="Ask us anything",
        locale="fr-FR",
        history=False,
        feedback=False,
        retry=False,
        disclaimer="Answers may be *wrong*.",
    )
    assert options == {
        "api": {"url": "/chatkit/", "domainKey": "domain_pk_tests"},
        "theme": {
            "colorScheme": "dark",
            "color": {"accent": {"primary": "#0f766e", "level": 1}},
            "radius": "soft",
            "density": "compact",
        },
        "history": {"enabled": False, "showDelete": False, "showRename": False},
        "threadItemActions": {"feedback": False, "retry": False},
        "composer": {"attachments": {"enabled": False}, "placeholder": "Ask us anything"},
        "startScreen": {
            "greeting": "How can we help?",
            "prompts": [
                {"label": "Opening hours", "prompt": "Opening hours"},
                {"label": "Returns", "prompt": "How do I return?", "icon": "mail"},
            ],
        },
        "disclaimer": {"text": "Answers may be *wrong*."},
        "locale": "fr-FR",
    }


def test_tag_arguments_replace_the_widget_setting_key_by_key():
    widget = {"greeting": "From settings", "placeholder": "Type here", "accent": "red"}
    with override_settings(CHATKIT={**BASE, "WIDGET": widget}):
        options = chatkit_options(greeting="From the tag", accent={"primary": "blue", "level": 3})
    assert options["startScreen"] == {"greeting": "From the tag"}
    assert options["composer"]["placeholder"] == "Type here"
    assert options["theme"]["color"] == {"accent": {"primary": "blue", "level": 3}}


def test_a_theme_dict_is_passed_through_and_the_shortcuts_apply_on_top():
    theme = {
        "colorScheme": "dark",
        "typography": {"baseSize": 16},
        "color": {"grayscale": {"hue": 220, "tint": 6}},
    }
    options = chatkit_options(theme=theme, accent="#ff0000")
    assert options["theme"] == {
        "colorScheme": "dark",
        "typography": {"baseSize": 16},
        "color": {
            "grayscale": {"hue": 220, "tint": 6},
            "accent": {"primary": "#ff0000", "level": 1},
        },
    }
    assert "accent" not in theme["color"]  # the setting itself is never modified


def test_raw_options_are_deep_merged_last():
    options = chatkit_options(
        placeholder="Hi",
        options={"header": {"title": {"text": "Support"}}, "composer": {"tools": [{"id": "t"}]}},
    )
    assert options["header"] == {"title": {"text": "Support"}}
    assert options["composer"] == {
        "attachments": {"enabled": False},
        "placeholder": "Hi",
        "tools": [{"id": "t"}],
    }


def test_history_can_be_fine_tuned():
    options = chatkit_options(history={"enabled": True, "showDelete": False})
    assert options["history"] == {"enabled": True, "showDelete": False}


def test_lazy_translations_become_strings():
    options = chatkit_options(greeting=gettext_lazy("Hello"), prompts=[gettext_lazy("Help")])
    assert json.dumps(options)  # serialisable
    assert options["startScreen"] == {
        "greeting": "Hello",
        "prompts": [{"label": "Help", "prompt": "Help"}],
    }


@override_settings(CHATKIT={**BASE, "DOMAIN_KEY": "domain_pk_live_123"})
def test_the_domain_key_comes_from_the_setting():
    assert chatkit_options()["api"]["domainKey"] == "domain_pk_live_123"


def test_attachments_follow_the_upload_limits():
    limits = {
        "ENABLED": True,
        "MAX_BYTES": 2048,
        "MAX_COUNT": 2,
        "ALLOWED_TYPES": {"image/png": [".png"]},
    }
    with override_settings(CHATKIT={**BASE, "ATTACHMENTS": limits}):
        assert attachment_options() == (
            {"enabled": True, "maxSize": 2048, "maxCount": 2, "accept": {"image/png": [".png"]}},
            {"type": "two_phase"},
        )
        options = chatkit_options()
    assert options["composer"]["attachments"]["maxSize"] == 2048
    assert options["api"]["uploadStrategy"] == {"type": "two_phase"}


def test_attachments_off_means_no_upload_strategy():
    assert attachment_options() == ({"enabled": False}, None)
    assert "uploadStrategy" not in chatkit_options()["api"]


def test_unknown_option_names_the_closest_known_one():
    with pytest.raises(
        WidgetOptionError, match=r"unknown option 'greting' \(did you mean 'greeting'\?\)"
    ):
        chatkit_options(greting="Hi")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("theme", "blue"),
        ("accent", 12),
        ("accent", {"primary": "red", "level": 7}),
        ("radius", "huge"),
        ("density", "dense"),
        ("greeting", ["not", "text"]),
        ("prompts", "one prompt"),
        ("prompts", [{"label": "no prompt"}]),
        ("prompts", ["  "]),
        ("height", 0),
        ("height", True),
        ("history", {"enabled": True, "sideways": True}),
        ("feedback", "yes"),
        ("remember_thread", None),
        ("locale", ""),
        ("options", ["header"]),
    ],
)
def test_invalid_values_are_refused_with_their_name(name, value):
    with pytest.raises(WidgetOptionError, match=name):
        chatkit_options(**{name: value})


# --- the rendered tag ------------------------------------------------------------------------


def test_the_tag_renders_the_cdn_preload_the_element_the_options_and_the_bootstrap(alice):
    html = render('{% chatkit greeting="Hello" height=480 %}', make_request(alice))
    page = Page(html)
    # OpenAI's script is preloaded, not run: the bootstrap inserts it once it listens for its
    # failure (a <script async> could fail before the module ran, unseen).
    assert page.links == [{"rel": "preload", "href": CDN, "as": "script", "data-chatkit-cdn": None}]
    options_block, bootstrap = page.scripts
    assert options_block == {"id": "chatkit-1-options", "type": "application/json"}
    assert bootstrap == {"type": "module", "src": bootstrap_url()}
    assert bootstrap_url().startswith("/chatkit/bootstrap.")
    [element] = page.elements
    assert element["id"] == "chatkit-1"
    assert element["data-chatkit-options"] == "chatkit-1-options"
    assert element["data-chatkit-height"] == "480px"
    assert element["data-chatkit-remember-thread"] == "true"
    assert element["data-chatkit-load-timeout"] == str(DEFAULTS["LOAD_TIMEOUT_MS"])
    assert element["data-chatkit-csrf-token"]
    assert element["data-chatkit-owner"] == owner_key(make_request(alice))
    assert "could not be loaded" in str(element["data-chatkit-unavailable"])
    assert page.json["chatkit-1-options"] == chatkit_options(greeting="Hello")
    # Nothing a strict Content-Security-Policy would block: no handlers, no style attributes.
    assert not [name for name in page.attribute_names if name.startswith("on")]
    assert "style" not in page.attribute_names


def test_hostile_text_stays_data(alice):
    html = render(
        "{% chatkit greeting=text placeholder=text prompts=prompts disclaimer=text %}",
        make_request(alice),
        text=HOSTILE,
        prompts=[HOSTILE],
    )
    assert "</script><script>" not in html
    assert 'alert("x")' not in html
    page = Page(html)
    assert [s.get("type") for s in page.scripts] == ["application/json", "module"]
    options = page.json["chatkit-1-options"]
    assert options["startScreen"]["greeting"] == HOSTILE
    assert options["startScreen"]["prompts"] == [{"label": HOSTILE, "prompt": HOSTILE}]
    assert options["composer"]["placeholder"] == HOSTILE
    assert options["disclaimer"] == {"text": HOSTILE}


def test_a_hostile_id_cannot_break_out_of_its_attributes():
    html = render("{% chatkit id=element_id %}", element_id='x"><script>alert(1)</script>')
    assert "<script>alert(1)" not in html
    page = Page(html)
    assert page.elements[0]["id"] == 'x"><script>alert(1)</script>'
    assert list(page.json) == ['x"><script>alert(1)</script>-options']


def test_several_widgets_on_one_page_get_their_own_ids_and_one_cdn_script():
    html = render('{% chatkit %}{% chatkit theme="dark" %}{% chatkit id="support" %}')
    page = Page(html)
    assert [e["id"] for e in page.elements] == ["chatkit-1", "chatkit-2", "support"]
    assert [e["data-chatkit-options"] for e in page.elements] == list(page.json)
    assert list(page.json) == ["chatkit-1-options", "chatkit-2-options", "support-options"]
    assert [link["href"] for link in page.links] == [CDN]
    assert CDN not in [s.get("src") for s in page.scripts]
    # The module is deduplicated by the browser: it starts every element once.
    modules = [s for s in page.scripts if s.get("type") == "module"]
    assert len(modules) == 3 and len({m["src"] for m in modules}) == 1
    assert page.json["chatkit-2-options"]["theme"] == {"colorScheme": "dark"}


def test_without_a_request_the_tag_still_renders_a_widget_without_memory():
    html = Template("{% load chatkit %}{% chatkit %}").render(Context({}))
    page = Page(html)
    [element] = page.elements
    assert str(element["id"]).startswith("chatkit-")
    assert element["data-chatkit-owner"] == ""
    assert element["data-chatkit-csrf-token"] == ""
    assert [link["href"] for link in page.links] == [CDN]


def test_the_cdn_url_is_a_setting():
    with override_settings(CHATKIT={**BASE, "CDN_URL": "https://cdn.example.com/chatkit.js"}):
        page = Page(render("{% chatkit %}"))
    assert page.links[0]["href"] == "https://cdn.example.com/chatkit.js"


def test_remember_thread_off_is_rendered():
    page = Page(render("{% chatkit remember_thread=False %}"))
    assert page.elements[0]["data-chatkit-remember-thread"] == "false"


def test_an_invalid_tag_argument_fails_loudly():
    with pytest.raises(WidgetOptionError, match="colour"):
        render('{% chatkit colour="red" %}')


# --- CSP nonces ------------------------------------------------------------------------------


class LazyNonceLike:
    """Like Django 6's LazyNonce: false until first rendered."""

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return "django6-nonce"


@pytest.mark.parametrize(
    ("request_attributes", "context", "expected"),
    [
        ({}, {}, None),
        ({"csp_nonce": "django-csp-nonce"}, {}, "django-csp-nonce"),  # django-csp
        ({}, {"csp_nonce": LazyNonceLike()}, "django6-nonce"),  # Django 6 context processor
        # Django 6's middleware alone (get_nonce); Django 5.2 has no CSP of its own.
        ({"_csp_nonce": LazyNonceLike()}, {}, "django6-nonce" if django.VERSION >= (6,) else None),
    ],
)
def test_our_scripts_carry_the_requests_csp_nonce(request_attributes, context, expected):
    request = make_request(**request_attributes)
    page = Page(render("{% chatkit %}{% chatkit %}", request, **context))
    executable = [s for s in page.scripts if s.get("type") != "application/json"]
    assert len(executable) == 2
    assert all(s.get("nonce") == expected for s in executable), executable
    # The preload link carries it too: the bootstrap copies it onto OpenAI's script.
    [link] = page.links
    assert link.get("nonce") == expected


def test_csp_nonce_prefers_the_template_context():
    assert csp_nonce(make_request(csp_nonce="b"), "a") == "a"
    assert csp_nonce(None) is None


# --- the owner key of the thread memory ----------------------------------------------------


def test_owner_key_is_stable_per_user_and_differs_between_users(alice, bob):
    alice_key = owner_key(make_request(alice))
    assert alice_key == owner_key(make_request(alice))
    assert alice_key != owner_key(make_request(bob))
    assert len(alice_key) == 32


def test_owner_key_depends_on_the_secret_key(alice):
    key = owner_key(make_request(alice))
    with override_settings(SECRET_KEY="another-secret-key-for-this-test-only"):
        assert owner_key(make_request(alice)) != key


def test_anonymous_visitors_have_no_memory_unless_they_may_chat():
    request = make_request()
    request.session[ANONYMOUS_SESSION_KEY] = "token-from-the-endpoint"
    assert owner_key(request) == ""


@override_settings(CHATKIT={**BASE, "ALLOW_ANONYMOUS": True})
def test_anonymous_visitors_are_keyed_by_the_endpoints_owner_token():
    first, second = make_request(), make_request()
    first.session[ANONYMOUS_SESSION_KEY] = "token-one"
    second.session[ANONYMOUS_SESSION_KEY] = "token-two"
    assert owner_key(first) and owner_key(first) != owner_key(second)


@override_settings(CHATKIT={**BASE, "ALLOW_ANONYMOUS": True})
def test_rendering_the_widget_creates_no_session_for_a_new_visitor():
    request = make_request()
    assert owner_key(request) == ""
    assert not request.session.modified
    assert ANONYMOUS_SESSION_KEY not in request.session


def test_widget_function_is_what_the_tag_renders(alice):
    request = make_request(alice, csp_nonce="n1")
    widget = chatkit_widget(request, greeting="Hi")
    assert widget.element_id == "chatkit-1"
    assert widget.include_cdn_script is True
    assert widget.nonce == "n1"
    assert widget.options == chatkit_options(greeting="Hi")
    assert chatkit_widget(request).include_cdn_script is False  # second widget of the request


# --- settings and system checks ------------------------------------------------------------


def test_widget_settings_have_typed_properties():
    with override_settings(CHATKIT={**BASE, "WIDGET": {"greeting": "Hi"}, "LOAD_TIMEOUT_MS": 500}):
        assert {**DEFAULTS["WIDGET"], "greeting": "Hi"} == chatkit_settings.WIDGET
        assert chatkit_settings.LOAD_TIMEOUT_MS == 500
        assert chatkit_settings.CDN_URL == CDN
    with override_settings(CHATKIT={}):
        assert chatkit_settings.DOMAIN_KEY == DEV_DOMAIN_KEY


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.mark.parametrize("domain_key", [None, "", "  ", DEV_DOMAIN_KEY])
def test_w002_placeholder_domain_key_without_debug(domain_key):
    chatkit = {"SERVER": BASE["SERVER"]}
    if domain_key is not None:
        chatkit["DOMAIN_KEY"] = domain_key
    with override_settings(DEBUG=False, CHATKIT=chatkit):
        messages = check_domain_key(None)
    assert ids(messages) == ["chatkit.W002"]
    assert "Domain allowlist" in str(messages[0].hint)


def test_w002_quiet_with_debug_or_a_real_key():
    with override_settings(DEBUG=True, CHATKIT={"SERVER": BASE["SERVER"]}):
        assert check_domain_key(None) == []
    with override_settings(DEBUG=False, CHATKIT=BASE):
        assert check_domain_key(None) == []


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"WIDGET": ["greeting"]}, "must be a dict"),
        ({"WIDGET": {"greting": "Hi"}}, "did you mean 'greeting'"),
        ({"WIDGET": {"theme": "purple"}}, "theme"),
        ({"DOMAIN_KEY": 42}, "DOMAIN_KEY"),
        ({"CDN_URL": "http://cdn.example.com/chatkit.js"}, "CDN_URL"),
    ],
)
def test_e009_invalid_widget_settings(extra, fragment):
    with override_settings(CHATKIT={**BASE, **extra}):
        messages = check_settings(None)
    assert ids(messages) == ["chatkit.E009"]
    assert fragment in messages[0].msg


@pytest.mark.parametrize("value", [0, -1, "5000", 1.5])
def test_e006_load_timeout_must_be_a_positive_integer(value):
    with override_settings(CHATKIT={**BASE, "LOAD_TIMEOUT_MS": value}):
        messages = check_settings(None)
    assert ids(messages) == ["chatkit.E006"]
    assert "LOAD_TIMEOUT_MS" in messages[0].msg


def test_valid_widget_settings_pass():
    widget = {
        "theme": {"colorScheme": "dark"},
        "prompts": [{"label": "a", "prompt": "b"}],
        "height": 500,
    }
    with override_settings(CHATKIT={**BASE, "WIDGET": widget, "CDN_URL": "/static/shim.js"}):
        assert check_settings(None) == []
