"""Hosted mode in headless Chromium (issue #16): the bootstrap's getClientSecret against the
session endpoint of the live site, which mints through the real openai client at the fake
OpenAI server; a hosted and a self-hosted widget on one page.

The stand-in <openai-chatkit> (tests/templates/chatkit_tests/stand_in.js) asks for a secret when
its options are set, as the real widget does, and again with the current secret on
refreshSecret(), as the real widget does when that secret is about to expire.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_chatkit.models import HostedUser, Thread
from django_chatkit.testing import FakeOpenAI, Reply, user_input
from django_chatkit.testing.fake_openai.chatkit_sessions import is_session_request
from tests import test_browser
from tests.live_server import LiveServer
from tests.test_browser import SERVER_SETTINGS, OpenTab, Tab

# test_browser's fixtures, used here as they are there.
browser = test_browser.browser
dana = test_browser.dana
open_tab = test_browser.open_tab
site = test_browser.site
site_live = test_browser.site_live
site_server = test_browser.site_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKFLOW = "wf_browser_tests"
PAGE = "/hosted-widget-test/"


@pytest.fixture
def site_settings(fake_openai: FakeOpenAI) -> dict[str, Any]:
    """The live site mints its secrets at the fake, for WORKFLOW only."""
    return {
        **SERVER_SETTINGS,
        "HOSTED_WORKFLOWS": {WORKFLOW: {"expires_after": 5}},  # short-lived, as when refreshing
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "test",
        "OPENAI_MAX_RETRIES": 0,
    }


async def sign_in(tab: Tab, query: str = "") -> None:
    await tab.page.goto(f"{tab.site.url}/accounts/login/?next={PAGE}{query}")
    await tab.page.fill("input[name=username]", "dana")
    await tab.page.fill("input[name=password]", "dana-pw")
    await tab.page.click("button[type=submit]")
    await tab.page.wait_for_url(f"**{PAGE}*")


async def wait_for_secrets(tab: Tab, count: int, *, errors: int = 0) -> dict[str, Any]:
    """The hosted stand-in's secrets, calls and errors once it holds ``count`` secrets."""
    await tab.page.wait_for_function(
        """([count, errors]) => {
            const el = document.getElementById('hosted');
            return el?.secrets?.length >= count && el.secretErrors.length >= errors;
        }""",
        arg=[count, errors],
        timeout=15_000,
    )
    state: dict[str, Any] = await tab.page.evaluate(
        """() => {
            const el = document.getElementById('hosted');
            return { secrets: el.secrets, calls: el.secretCalls, errors: el.secretErrors };
        }"""
    )
    return state


async def test_the_hosted_widget_gets_a_secret_and_a_new_one_on_expiry(
    open_tab: OpenTab, site: LiveServer, dana: Any, fake_openai: FakeOpenAI
) -> None:
    tab = await open_tab()
    await sign_in(tab)

    [hosted_call] = await tab.set_options_calls("hosted")
    assert hosted_call["getClientSecretIsFunction"] is True
    assert hosted_call["fetchIsFunction"] is False
    assert hosted_call["options"]["api"] == {}  # the function only: no endpoint, no domain key
    assert hosted_call["options"]["startScreen"] == {"greeting": "Hosted by OpenAI"}
    first = await wait_for_secrets(tab, 1)

    # The widget asks again with the secret it holds when that one is about to expire.
    await tab.page.evaluate("document.getElementById('hosted').refreshSecret()")
    state = await wait_for_secrets(tab, 2)

    minted = fake_openai.chatkit_sessions.minted
    assert state["secrets"] == [m["client_secret"] for m in minted], (state, site.describe())
    assert len(set(state["secrets"])) == 2
    assert state["calls"] == [None, first["secrets"][0]]
    assert state["errors"] == []
    sent = [r for r in fake_openai.requests if is_session_request(r)]
    assert [r.workflow_id for r in sent] == [WORKFLOW, WORKFLOW]
    assert sent[0].json["expires_after"] == {"anchor": "created_at", "seconds": 5}
    upstream = await HostedUser.objects.aget(user=dana)
    assert [r.user for r in sent] == [upstream.upstream_user] * 2
    assert tab.console_errors == [], tab.console_errors


async def test_a_self_hosted_widget_on_the_same_page_still_talks_to_this_site(
    open_tab: OpenTab, site: LiveServer, dana: Any, fake_openai: FakeOpenAI
) -> None:
    tab = await open_tab()
    await sign_in(tab)
    await wait_for_secrets(tab, 1)

    [self_hosted] = await tab.set_options_calls("self-hosted")
    assert self_hosted["fetchIsFunction"] is True
    assert "getClientSecretIsFunction" not in self_hosted
    assert self_hosted["options"]["api"]["url"] == f"{site.url}/chatkit/"
    created = await tab.send("self-hosted", "threads.create", input=user_input("hello both"))
    assert created["status"] == 200, (created, site.describe())
    thread_id = created["events"][0]["thread"]["id"]
    assert (await Thread.objects.aget(id=thread_id)).user_id == dana.pk
    # Only the hosted widget asked OpenAI for anything (ScriptedServer answers the other).
    assert {r.path for r in fake_openai.requests} == {"/v1/chatkit/sessions"}
    assert tab.console_errors == [], tab.console_errors


async def test_a_refused_secret_is_a_clear_console_error_and_a_dom_event(
    open_tab: OpenTab, site: LiveServer, dana: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.chatkit_sessions.queue(Reply(status=429, retry_after=9))
    tab = await open_tab()
    await sign_in(tab)
    await tab.page.wait_for_function(
        "() => document.getElementById('hosted')?.secretErrors?.length === 1", timeout=15_000
    )
    errors = [e for e in tab.console_errors if "django_chatkit" in e]
    assert len(errors) == 1, tab.console_errors
    assert f"no client secret for workflow {WORKFLOW}" in errors[0]
    assert "503 upstream_rate_limited" in errors[0]
    assert "retry after 9 s" in errors[0]
    events = [e for e in await tab.site_events() if e["type"] == "chatkit:error"]
    assert events == [
        {
            "type": "chatkit:error",
            "target": "hosted",
            "status": 503,
            "code": "upstream_rate_limited",
            "workflow": WORKFLOW,
        }
    ]

    # The widget tries again later: the next secret is minted.
    await tab.page.evaluate("document.getElementById('hosted').refreshSecret()")
    state = await wait_for_secrets(tab, 1, errors=1)
    assert state["secrets"] == [fake_openai.chatkit_sessions.minted[0]["client_secret"]]
