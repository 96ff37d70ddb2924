"""The {% chatkit %} widget in a real browser: Debian's Chromium, headless, driven by Playwright,
against the test project served by daphne, under a strict Content-Security-Policy.

OpenAI's script cannot load here (no internet), so nothing tries: every request that is not for
the live server is aborted, and the CDN URL is either answered with an empty script (the test
page then defines a stand-in <openai-chatkit>, tests/templates/chatkit_tests/stand_in.js), or
aborted, answered 404 or left hanging (to see the fallback message, and when it comes). Everything around the real widget is ours and real: the
tag, the bootstrap module, the login, the session, the CSRF check and the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from django_chatkit.bootstrap_asset import bootstrap_url
from django_chatkit.conf import DEFAULTS
from django_chatkit.models import Thread, ThreadItem
from django_chatkit.testing import user_input
from django_chatkit.widget import chatkit_options
from tests.browser_urls import PROMPTS
from tests.live_server import ASGI_APP, LiveServer, live_asgi_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHATKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
CDN_URL = DEFAULTS["CDN_URL"]
PAGE = "/widget-test/"
PUBLIC_PAGE = "/public-widget-test/"  # the same page without login_required
LOAD_TIMEOUT_MS = 1500
SERVER_SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_browser_tests",
    "LOAD_TIMEOUT_MS": LOAD_TIMEOUT_MS,
    "WIDGET": {"placeholder": "Ask the test site", "disclaimer": "Tests only."},
}
ANONYMOUS_SETTINGS = {**SERVER_SETTINGS, "ALLOW_ANONYMOUS": True}
# A load timeout far above the deadline a failing CDN's message must meet: only the script's
# error event, not the timer, can show it in time.
SLOW_TIMEOUT_MS = 10_000
FAIL_FAST_DEADLINE_MS = 3_000
SLOW_TIMEOUT_SETTINGS = {**SERVER_SETTINGS, "LOAD_TIMEOUT_MS": SLOW_TIMEOUT_MS}
# How late after LOAD_TIMEOUT_MS a hanging CDN's message may come, counted from the navigation:
# the page's parse, the module's download and a loaded machine's timers.
TIMEOUT_MARGIN_MS = 6_000
# The tag arguments of tests/templates/chatkit_tests/widget_page.html.
FIRST_WIDGET = {"greeting": "Hello from the test page", "prompts": PROMPTS, "accent": "#0f766e"}
SECOND_WIDGET = {"theme": "dark", "placeholder": "The second widget", "height": 300}


def chromium_path() -> str:
    # A skipped browser test passes nothing: without Chromium, fail and say how to get it.
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM} (Debian's package): "
            "apt-get install -y chromium, or set CHATKIT_CHROMIUM to its path. "
            ".ci/run installs it. Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    return CHROMIUM


def expected_options(site: LiveServer, **tag_arguments: Any) -> dict[str, Any]:
    """What setOptions must receive: the server's options with the URL made absolute."""
    with override_settings(CHATKIT=SERVER_SETTINGS):
        options = chatkit_options(**tag_arguments)
    options["api"]["url"] = f"{site.url}/chatkit/"
    return options


@pytest.fixture
def site_settings() -> dict[str, Any]:
    """The live server's CHATKIT; a test parametrizes this name to serve other settings."""
    return SERVER_SETTINGS


@pytest.fixture
def site_server() -> tuple[str, str]:
    """The ASGI server and URLconf of the live site; a test parametrizes this name to change it."""
    return ("daphne", "tests.urls")


@pytest.fixture
def site_live() -> bool:
    """Whether the live site serves live updates (tests/live_asgi.py, an in-memory layer)."""
    return False


@pytest.fixture
def site(
    transactional_db: None,
    site_settings: dict[str, Any],
    site_server: tuple[str, str],
    site_live: bool,
) -> Iterator[LiveServer]:
    kind, urlconf = site_server
    extra_env = {
        "CHATKIT_TEST_SETTINGS": json.dumps(site_settings),
        "CHATKIT_TEST_URLCONF": urlconf,
    }
    app = ASGI_APP
    if site_live:
        app = "tests.live_asgi:application"
        extra_env["CHATKIT_TEST_CHANNEL_LAYERS"] = json.dumps(
            {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        )
    with live_asgi_server(kind, extra_env=extra_env, app=app) as server:
        yield server


@pytest.fixture
def dana(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("dana", password="dana-pw")


@pytest.fixture
def erin(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("erin", password="erin-pw")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    path = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


class Tab:
    """One browser page on the live site, with what it tried to fetch elsewhere and logged."""

    def __init__(self, page: Any, site: LiveServer) -> None:
        self.page = page
        self.site = site
        self.elsewhere: list[str] = []
        self.console_errors: list[str] = []
        self.endpoint_requests: list[dict[str, str]] = []
        self.cdn_requests = 0  # requests for OpenAI's script (a preload, then the script)
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _request(self, request: Any) -> None:
        if request.url == f"{self.site.url}/chatkit/":
            self.endpoint_requests.append(request.headers)

    async def sign_in(self, username: str, password: str, query: str = "") -> None:
        """Through the real login form, landing on the widget page."""
        await self.page.goto(f"{self.site.url}/accounts/login/?next={PAGE}{query}")
        await self.page.fill("input[name=username]", username)
        await self.page.fill("input[name=password]", password)
        await self.page.click("button[type=submit]")
        await self.page.wait_for_url(f"**{PAGE}*")

    async def set_options_calls(self, element_id: str) -> list[dict[str, Any]]:
        """setOptions calls of the stand-in element, once the bootstrap has made the first."""
        await self.page.wait_for_function(
            "id => document.getElementById(id)?.setOptionsCalls?.length > 0", arg=element_id
        )
        calls: list[dict[str, Any]] = await self.page.evaluate(
            "id => document.getElementById(id).setOptionsCalls", element_id
        )
        return calls

    async def send(self, element_id: str, op: str, **params: Any) -> dict[str, Any]:
        """One protocol request through the stand-in, i.e. through the bootstrap's api.fetch."""
        answer: dict[str, Any] = await self.page.evaluate(
            "([id, op, params]) => document.getElementById(id).send(op, params)",
            [element_id, op, params],
        )
        return answer

    async def site_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = await self.page.evaluate("window.siteEvents")
        return events

    async def csp_violations(self) -> list[dict[str, Any]]:
        violations: list[dict[str, Any]] = await self.page.evaluate("window.cspViolations")
        return violations


OpenTab = Callable[..., Awaitable[Tab]]


@pytest.fixture
async def open_tab(browser: Any, site: LiveServer) -> AsyncIterator[OpenTab]:
    contexts = []

    async def open_tab(
        *, cdn: str = "empty", context: Any = None, module_after_cdn: bool = False
    ) -> Tab:
        """``cdn``: "empty" (an empty script), "blocked" (a network error), "404", or "hang"
        (never answered). ``module_after_cdn``: the bootstrap module is only answered once the
        page has seen OpenAI's script fail (the race a content blocker, failing that request at
        once, wins against a module from a slower origin)."""
        if context is None:
            context = await browser.new_context()
            contexts.append(context)
        page = await context.new_page()
        tab = Tab(page, site)
        cdn_failed = asyncio.Event()

        async def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(site.url + "/"):
                if module_after_cdn and url.startswith(f"{site.url}{bootstrap_url()}"):
                    # Bounded: a page that never asks for the script still gets its module.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cdn_failed.wait(), timeout=5)
                await route.continue_()
                return
            if url == CDN_URL:
                tab.cdn_requests += 1
            if url == CDN_URL and cdn == "empty":
                await route.fulfill(status=200, content_type="text/javascript", body="")
            elif url == CDN_URL and cdn == "404":
                await route.fulfill(status=404, content_type="text/plain", body="Not Found")
            elif url == CDN_URL and cdn == "hang":
                pass  # neither answered nor failed: the request stays pending until the tab closes
            else:
                if url != CDN_URL:
                    tab.elsewhere.append(url)
                await route.abort()

        if module_after_cdn:
            # Called by the test page once an element of OpenAI's script (the tag's preload link,
            # or a <script>) has dispatched its error event: the page has seen it fail.
            await page.expose_function("chatkitCdnFailed", cdn_failed.set)
        await page.route("**/*", route)
        return tab

    yield open_tab
    for context in contexts:
        await context.close()


async def test_widget_talks_to_the_real_endpoint_through_the_supplied_fetch(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    tab = await open_tab()
    await tab.sign_in("dana", "dana-pw")
    page = tab.page

    # One setOptions per widget, with the full options: ours plus the functions JSON can't carry.
    first = await tab.set_options_calls("chatkit-1")
    second = await tab.set_options_calls("second")
    assert first == [
        {"options": expected_options(site, **FIRST_WIDGET), "fetchIsFunction": True}
    ], first
    assert second == [
        {"options": expected_options(site, **SECOND_WIDGET), "fetchIsFunction": True}
    ], second
    assert first[0]["options"]["api"]["domainKey"] == "domain_pk_browser_tests"
    assert "initialThread" not in first[0]["options"]  # nothing remembered yet
    # OpenAI's script is included once for the two widgets: preloaded by the tag, inserted by
    # the bootstrap with the page's nonce.
    assert await page.locator("link[data-chatkit-cdn]").count() == 1
    assert await page.locator("script[data-chatkit-cdn]").count() == 1
    assert await page.evaluate(
        """() => {
            const cdn = document.querySelector('script[data-chatkit-cdn]');
            const module = document.querySelector('script[type=module]');
            return cdn.src === cdn.ownerDocument.querySelector('link[data-chatkit-cdn]').href
                && cdn.nonce !== '' && cdn.nonce === module.nonce;
        }"""
    )
    assert await page.evaluate("document.getElementById('chatkit-1').style.height") == "600px"
    assert await page.evaluate("document.getElementById('second').style.height") == "300px"
    # The stand-in drew itself inside the element (this is what the screenshot shows).
    await page.get_by_text("Hello from the test page").wait_for()

    # threads.create, streamed: the whole SSE stream is read through the bootstrap's fetch.
    created = await tab.send(
        "chatkit-1", "threads.create", input=user_input("hello from the browser")
    )
    assert created["status"] == 200, (created, site.describe())
    assert created["contentType"].startswith("text/event-stream")
    assert created["rest"] == ""  # the stream ended on a frame boundary
    events = created["events"]
    assert events[0]["type"] == "thread.created"
    thread_id = events[0]["thread"]["id"]
    done = [e["item"] for e in events if e["type"] == "thread.item.done"]
    assert [item["type"] for item in done] == ["user_message", "assistant_message"]
    assert done[1]["content"][0]["text"] == "echo: hello from the browser"

    # items.list, JSON, in the same session.
    listed = await tab.send("chatkit-1", "items.list", thread_id=thread_id, order="asc")
    assert listed["status"] == 200, listed
    assert listed["contentType"] == "application/json"
    assert [item["type"] for item in listed["body"]["data"]] == [
        "user_message",
        "assistant_message",
    ]

    # The rows belong to the user who signed in through the form.
    thread = await Thread.objects.aget(id=thread_id)
    assert thread.user_id == dana.pk
    assert await ThreadItem.objects.filter(thread_id=thread_id).acount() == 2

    # Every request carried the CSRF token and the session cookie, with same-origin credentials.
    assert len(tab.endpoint_requests) == 2
    for headers in tab.endpoint_requests:
        assert headers.get("x-csrftoken"), headers
        assert headers["content-type"] == "application/json"
    assert tab.console_errors == [], tab.console_errors  # (the next request logs a 403)
    # ...and the token is what made them pass: the same request without it is refused.
    refused = await page.evaluate(
        """() => fetch('/chatkit/', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({type: 'threads.list', params: {}})})
            .then(async (r) => [r.status, (await r.json()).error.code])"""
    )
    assert refused == [403, "csrf_failed"]

    # The site saw the widget's events as bubbling DOM events, in order, from each element.
    seen = await tab.site_events()
    assert [e["type"] for e in seen if e["target"] == "chatkit-1"] == [
        "chatkit:configure",
        "chatkit:ready",
        "chatkit:response-start",
        "chatkit:thread-change",
        "chatkit:response-end",
    ], seen
    assert [e["type"] for e in seen if e["target"] == "second"] == [
        "chatkit:configure",
        "chatkit:ready",
    ], seen
    change = next(e for e in seen if e["type"] == "chatkit:thread-change")
    assert change["detail"] == {"threadId": thread_id}

    # A strict CSP held and nothing tried the internet.
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []


async def test_blocked_cdn_shows_a_readable_message_in_the_widgets_place(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    tab = await open_tab(cdn="blocked")
    await tab.sign_in("dana", "dana-pw", query="?stand_in=0")
    page = tab.page

    notes = page.locator(".django-chatkit-unavailable")
    await notes.nth(1).wait_for(timeout=30_000)
    assert await notes.count() == 2  # one per widget
    for index in range(2):
        note = notes.nth(index)
        assert await note.is_visible()
        assert await note.get_attribute("role") == "alert"
        text = await note.inner_text()
        assert text.startswith("The chat could not be loaded"), text
        assert "Reload the page" in text
    # The message takes the element's place; the element itself is hidden.
    assert await page.locator("#chatkit-1").is_hidden()
    assert await page.locator("#second").is_hidden()
    assert await page.evaluate(
        "document.getElementById('chatkit-1').nextElementSibling.className"
    ) == ("django-chatkit-unavailable")
    unavailable = [e for e in await tab.site_events() if e["type"] == "chatkit:unavailable"]
    assert sorted(e["target"] for e in unavailable) == ["chatkit-1", "second"]
    assert {e["detail"]["reason"] for e in unavailable} <= {"error", "timeout"}
    # The setting's timeout (or the script's error) decided, not the 15 s default: the
    # messages came well before it, counted from the navigation to the page.
    assert await page.get_attribute("#chatkit-1", "data-chatkit-load-timeout") == str(
        LOAD_TIMEOUT_MS
    )
    assert max(e["time"] for e in unavailable) < DEFAULTS["LOAD_TIMEOUT_MS"], unavailable
    assert await page.evaluate("customElements.get('openai-chatkit')") is None
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []


async def test_the_current_thread_is_remembered_per_user_across_visits(
    open_tab: OpenTab, site: LiveServer, browser: Any, dana: Any, erin: Any
) -> None:
    context = await browser.new_context()
    try:
        tab = await open_tab(context=context)
        await tab.sign_in("dana", "dana-pw")
        await tab.set_options_calls("chatkit-1")
        created = await tab.send("chatkit-1", "threads.create", input=user_input("remember me"))
        assert created["status"] == 200, created
        thread_id = created["events"][0]["thread"]["id"]

        # The next visit reopens it: initialThread is the thread created before.
        await tab.page.reload()
        [call] = await tab.set_options_calls("chatkit-1")
        assert call["options"]["initialThread"] == thread_id
        assert call["options"] == {
            **expected_options(site, **FIRST_WIDGET),
            "initialThread": thread_id,
        }
        # Each widget remembers its own thread.
        [other] = await tab.set_options_calls("second")
        assert "initialThread" not in other["options"]

        # Another user of the same browser (same localStorage) does not get dana's thread.
        other_tab = await open_tab(context=context)
        await other_tab.sign_in("erin", "erin-pw")
        [erin_call] = await other_tab.set_options_calls("chatkit-1")
        assert "initialThread" not in erin_call["options"]
        # The memory is keyed by an opaque owner key, not by the username or the user id.
        keys = await other_tab.page.evaluate("Object.keys(localStorage)")
        assert len(keys) == 1 and keys[0].startswith("django_chatkit:thread:"), keys
        assert "dana" not in keys[0]
        assert keys[0].endswith(":chatkit-1")

        # Dana again: her thread is still remembered; starting a new thread forgets it.
        await other_tab.page.close()
        dana_again = await open_tab(context=context)
        await dana_again.sign_in("dana", "dana-pw")
        [again] = await dana_again.set_options_calls("chatkit-1")
        assert again["options"]["initialThread"] == thread_id
        await dana_again.page.evaluate("document.getElementById('chatkit-1').newThread()")
        await dana_again.page.reload()
        [fresh] = await dana_again.set_options_calls("chatkit-1")
        assert "initialThread" not in fresh["options"]
        assert await dana_again.csp_violations() == []
        assert tab.elsewhere == other_tab.elsewhere == dana_again.elsewhere == []
    finally:
        await context.close()


async def test_a_second_copy_of_the_module_by_another_url_starts_no_widget_twice(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    # The page loads the bootstrap as the tag renders it (/chatkit/bootstrap.<hash>.js) and again
    # from static files, as ...?v=2 (a site's own import of a hashed static name does the same):
    # two module instances, which share only the page.
    tab = await open_tab()
    await tab.sign_in("dana", "dana-pw", query="?second_copy=1")
    page = tab.page
    await page.wait_for_function("window.secondCopyLoaded === true")
    loaded = await page.evaluate(
        """performance.getEntriesByType('resource').map((entry) => entry.name)
            .filter((name) => name.includes('bootstrap'))"""
    )
    assert sorted(loaded) == [
        f"{site.url}{bootstrap_url()}",  # the tag's
        f"{site.url}/static/django_chatkit/chatkit-bootstrap.js?v=2",  # the site's own import
    ], loaded

    # The second copy ran its own startChatKit() on load and once more when the page called it,
    # after the first copy had started both widgets: each widget was still started once.
    for element_id, tag_arguments in (("chatkit-1", FIRST_WIDGET), ("second", SECOND_WIDGET)):
        calls = await tab.set_options_calls(element_id)
        assert calls == [
            {"options": expected_options(site, **tag_arguments), "fetchIsFunction": True}
        ], calls
    # ...and its events are relayed once, not once per copy.
    seen = await tab.site_events()
    for element_id in ("chatkit-1", "second"):
        assert [e["type"] for e in seen if e["target"] == element_id] == [
            "chatkit:configure",
            "chatkit:ready",
        ], seen
    created = await tab.send("chatkit-1", "threads.create", input=user_input("only once"))
    assert created["status"] == 200, created
    changes = [e for e in await tab.site_events() if e["type"] == "chatkit:thread-change"]
    assert len(changes) == 1, changes
    assert len(tab.endpoint_requests) == 1
    assert tab.console_errors == [], tab.console_errors
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []


@pytest.mark.parametrize("site_settings", [ANONYMOUS_SETTINGS])
async def test_an_anonymous_visitors_first_thread_is_remembered_from_the_first_page(
    open_tab: OpenTab, site: LiveServer
) -> None:
    tab = await open_tab()
    page = tab.page
    await page.goto(f"{site.url}{PUBLIC_PAGE}")
    [first] = await tab.set_options_calls("chatkit-1")
    assert "initialThread" not in first["options"]
    # A new visitor has no owner key yet: rendering a page makes no session, the endpoint makes
    # the visitor's token when it accepts their first request.
    assert await page.get_attribute("#chatkit-1", "data-chatkit-owner") == ""

    created = await tab.send("chatkit-1", "threads.create", input=user_input("hello, anonymously"))
    assert created["status"] == 200, (created, site.describe())
    thread_id = created["events"][0]["thread"]["id"]
    thread = await Thread.objects.aget(id=thread_id)
    assert thread.user_id is None and thread.anonymous_key

    # The next page reopens the thread started on the first one.
    await page.reload()
    [call] = await tab.set_options_calls("chatkit-1")
    assert call["options"] == {
        **expected_options(site, **FIRST_WIDGET),
        "initialThread": thread_id,
    }
    [other] = await tab.set_options_calls("second")
    assert "initialThread" not in other["options"]
    # Remembered under the key this page rendered, the one the endpoint's answer told page one.
    owner = await page.get_attribute("#chatkit-1", "data-chatkit-owner")
    assert owner
    keys = await page.evaluate("Object.keys(localStorage)")
    assert keys == [f"django_chatkit:thread:{owner}:chatkit-1"], keys
    # And the thread loads for this visitor: the memory is theirs.
    listed = await tab.send("chatkit-1", "items.list", thread_id=thread_id, order="asc")
    assert listed["status"] == 200, listed
    assert tab.console_errors == [], tab.console_errors
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []


async def unavailable_events(tab: Tab, timeout_ms: float) -> list[dict[str, Any]]:
    """The chatkit:unavailable events of the page's two widgets, once both came."""
    await tab.page.wait_for_function(
        """() => (window.siteEvents || [])
            .filter((event) => event.type === 'chatkit:unavailable').length >= 2""",
        timeout=timeout_ms,
    )
    return [e for e in await tab.site_events() if e["type"] == "chatkit:unavailable"]


@pytest.mark.parametrize("site_settings", [SLOW_TIMEOUT_SETTINGS])
@pytest.mark.parametrize("cdn", ["blocked", "404"])
async def test_a_failing_cdn_shows_the_message_at_once_not_after_the_load_timeout(
    open_tab: OpenTab, site: LiveServer, cdn: str
) -> None:
    # A network error, or an HTTP error, of OpenAI's script: however fast it fails, the
    # bootstrap hears of it (the script is inserted after its error listener). Here it fails
    # before the module has even arrived, the order in which the error used to go unheard.
    tab = await open_tab(cdn=cdn, module_after_cdn=True)
    page = tab.page
    await page.goto(f"{site.url}{PUBLIC_PAGE}?stand_in=0", wait_until="commit")
    # Waits for the timer too, so that a late message fails the assertion below, which says when.
    unavailable = await unavailable_events(tab, SLOW_TIMEOUT_MS + TIMEOUT_MARGIN_MS)
    assert sorted(e["target"] for e in unavailable) == ["chatkit-1", "second"], unavailable
    assert {e["detail"]["reason"] for e in unavailable} == {"error"}, unavailable
    # Counted from the navigation to the page (event.timeStamp).
    assert max(e["time"] for e in unavailable) < FAIL_FAST_DEADLINE_MS, unavailable
    assert await page.get_attribute("#chatkit-1", "data-chatkit-load-timeout") == str(
        SLOW_TIMEOUT_MS
    )
    notes = page.locator(".django-chatkit-unavailable")
    assert await notes.count() == 2
    assert await notes.nth(0).is_visible()
    assert await page.locator("#chatkit-1").is_hidden()
    assert tab.cdn_requests >= 1
    assert await page.locator("script[data-chatkit-cdn]").count() == 1
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []


async def test_a_hanging_cdn_shows_the_message_after_the_load_timeout(
    open_tab: OpenTab, site: LiveServer
) -> None:
    tab = await open_tab(cdn="hang")
    page = tab.page
    await page.goto(f"{site.url}{PUBLIC_PAGE}?stand_in=0", wait_until="commit")
    unavailable = await unavailable_events(tab, LOAD_TIMEOUT_MS + 2 * TIMEOUT_MARGIN_MS)
    assert sorted(e["target"] for e in unavailable) == ["chatkit-1", "second"], unavailable
    assert {e["detail"]["reason"] for e in unavailable} == {"timeout"}, unavailable
    # Not before the timeout (the timer starts after the navigation), and not long after it.
    for event in unavailable:
        assert LOAD_TIMEOUT_MS <= event["time"] <= LOAD_TIMEOUT_MS + TIMEOUT_MARGIN_MS, unavailable
    # The script's request was made and is still pending: the timer, not an error, decided.
    assert tab.cdn_requests >= 1
    assert await page.evaluate("customElements.get('openai-chatkit')") is None
    assert await page.locator(".django-chatkit-unavailable").count() == 2
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []


@pytest.mark.parametrize("site_server", [("uvicorn", "tests.urls_without_static")])
async def test_the_widget_starts_under_bare_uvicorn_without_any_static_files(
    open_tab: OpenTab, site: LiveServer
) -> None:
    # uvicorn with the application alone: no runserver, no collectstatic, no WhiteNoise, and
    # no static files route. The tag's module comes from the app's own URL.
    tab = await open_tab()
    page = tab.page
    await page.goto(f"{site.url}{PUBLIC_PAGE}")
    first = await tab.set_options_calls("chatkit-1")
    assert first == [
        {"options": expected_options(site, **FIRST_WIDGET), "fetchIsFunction": True}
    ], first
    second = await tab.set_options_calls("second")
    assert len(second) == 1
    loaded = await page.evaluate(
        """performance.getEntriesByType('resource').map((entry) => entry.name)
            .filter((name) => name.includes('bootstrap'))"""
    )
    assert loaded == [f"{site.url}{bootstrap_url()}"], loaded
    assert tab.console_errors == [], tab.console_errors
    assert await tab.csp_violations() == []
    assert tab.elsewhere == []
    # ...where the static URL the tag used to render is a 404.
    status = await page.evaluate(
        "fetch('/static/django_chatkit/chatkit-bootstrap.js').then((r) => r.status)"
    )
    assert status == 404


@pytest.mark.parametrize("site_live", [True])
async def test_the_widget_fetches_updates_when_its_thread_changes_elsewhere(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    """Live updates (docs/live.md): the page is rendered with the websocket path, the bootstrap
    subscribes to the thread the widget shows once it is announced, and a change made by another
    request (a second tab renaming it) makes it call the widget's fetchUpdates()."""
    tab = await open_tab()
    await tab.sign_in("dana", "dana-pw")
    page = tab.page
    assert await page.get_attribute("#chatkit-1", "data-chatkit-live") == "/ws/chatkit/threads/"
    created = await tab.send("chatkit-1", "threads.create", input=user_input("hello"))
    assert created["status"] == 200, (created, site.describe())
    thread_id = created["events"][0]["thread"]["id"]
    # Subscribed, through the real consumer: the socket said so.
    await page.wait_for_function(
        """id => window.siteEvents.some(
            (e) => e.type === 'chatkit:subscribed' && e.detail.threadId === id)""",
        arg=thread_id,
    )
    # Another tab of the same user (another widget, its own requests) renames the thread.
    other = await open_tab(context=page.context)
    await other.page.goto(f"{site.url}{PAGE}")
    await other.set_options_calls("second")
    renamed = await other.send("second", "threads.update", thread_id=thread_id, title="Renamed")
    assert renamed["status"] == 200, renamed
    await page.wait_for_function(
        """id => window.siteEvents.some((e) => e.type === 'chatkit:notice'
            && e.detail.event === 'thread.title' && e.detail.thread_id === id)""",
        arg=thread_id,
    )
    await page.wait_for_function("document.getElementById('chatkit-1').fetchUpdatesCalls > 0")
    notices = [e["detail"] for e in await tab.site_events() if e["type"] == "chatkit:notice"]
    assert all(set(notice) <= {"event", "thread_id", "item_id"} for notice in notices), notices
    # The second widget shows no thread: it opened no socket and heard nothing.
    assert not any(
        e["target"] == "second" for e in await tab.site_events() if "notice" in e["type"]
    )
    assert await tab.csp_violations() == []  # connect-src 'self' allows the same host's ws:
    assert tab.console_errors == [], tab.console_errors


async def test_without_live_updates_the_page_opens_no_socket(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    tab = await open_tab()
    sockets: list[str] = []
    tab.page.on("websocket", lambda ws: sockets.append(ws.url))
    await tab.sign_in("dana", "dana-pw")
    assert await tab.page.get_attribute("#chatkit-1", "data-chatkit-live") is None
    created = await tab.send("chatkit-1", "threads.create", input=user_input("hello"))
    assert created["status"] == 200
    await tab.page.wait_for_function(
        "window.siteEvents.some((e) => e.type === 'chatkit:thread-change')"
    )
    assert sockets == []
    assert tab.console_errors == [], tab.console_errors
