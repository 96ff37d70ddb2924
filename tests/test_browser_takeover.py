"""The admin transcript page in headless Chromium (issue #15): it follows its thread live, so an
item stored by another client (the user's widget, in another browser) appears without a reload.

The live site (tests/live_asgi.py, in-memory channel layer) serves no static files: the page's
admin script and styles are answered from the package's static directory by the test's route.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.urls import reverse

from django_chatkit.models import ThreadItem
from django_chatkit.testing import user_input
from tests import test_browser
from tests.live_server import LiveServer
from tests.test_browser import OpenTab

# test_browser's fixtures, used here as they are there.
browser = test_browser.browser
dana = test_browser.dana
open_tab = test_browser.open_tab
site = test_browser.site
site_live = test_browser.site_live
site_server = test_browser.site_server
site_settings = test_browser.site_settings

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def serve_static(tab: Any) -> None:
    async def route(route: Any) -> None:
        found = finders.find(urlsplit(route.request.url).path.removeprefix("/static/"))
        if not found:
            await route.fulfill(status=404, body="")
            return
        kind = "text/javascript" if found.endswith(".js") else "text/css"
        body = await asyncio.to_thread(Path(found).read_bytes)
        await route.fulfill(status=200, content_type=kind, body=body)

    await tab.page.route("**/static/**", route)


@pytest.mark.parametrize("site_live", [True])
async def test_the_transcript_page_grows_when_the_user_writes(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    await get_user_model().objects.acreate_superuser("root", "root@example.com", "root-pw")
    user_tab = await open_tab()
    await user_tab.sign_in("dana", "dana-pw")
    created = await user_tab.send("chatkit-1", "threads.create", input=user_input("first words"))
    assert created["status"] == 200, (created, site.describe())
    thread_id = created["events"][0]["thread"]["id"]

    staff_tab = await open_tab()
    await serve_static(staff_tab)
    page = staff_tab.page
    transcript = reverse("admin:django_chatkit_thread_transcript", args=[quote(thread_id)])
    await page.goto(f"{site.url}/admin/login/?next={transcript}")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", "root-pw")
    await page.click("input[type=submit]")
    await page.wait_for_url(f"**{transcript}")
    assert "first words" in await page.inner_text(".ck-timeline")
    shown = await page.locator(".ck-timeline > li.ck-item").count()
    await page.wait_for_selector("#ck-takeover[data-live-subscribed='1']", state="attached")

    sent = await user_tab.send(
        "chatkit-1",
        "threads.add_user_message",
        thread_id=thread_id,
        input=user_input("written while staff watch"),
    )
    assert sent["status"] == 200, sent
    await page.wait_for_function(
        "document.querySelector('.ck-timeline')?.innerText.includes('written while staff watch')"
    )
    # The page grew by the new items (the message and its answer), each shown once.
    ids = await page.eval_on_selector_all(".ck-timeline > li[id]", "nodes => nodes.map(n => n.id)")
    assert len(ids) == len(set(ids))
    assert await page.locator(".ck-timeline > li.ck-item").count() > shown
    assert staff_tab.console_errors == [], staff_tab.console_errors


async def sign_in_to_admin(tab: Any, site: LiveServer, next_path: str) -> None:
    page = tab.page
    await page.goto(f"{site.url}/admin/login/?next={next_path}")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", "root-pw")
    await page.click("input[type=submit]")
    await page.wait_for_url(f"**{next_path}")


SUBSCRIBED = "#ck-takeover[data-live-subscribed='1']"
# Waits in the page for a condition, re-checked on a timer. Not page.wait_for_function: that
# evaluates its predicate with eval() while polling, which the widget page's CSP refuses.
WAIT_UNTIL = """(arg) => new Promise((resolve) => {{
  const check = () => (({condition})(arg) ? resolve(true) : setTimeout(check, 20));
  check();
}})"""


async def until(page: Any, condition: str, arg: Any = None) -> None:
    await asyncio.wait_for(page.evaluate(WAIT_UNTIL.format(condition=condition), arg), 15)


@pytest.mark.parametrize("site_live", [True])
async def test_take_over_reply_and_hand_back_between_two_browsers(
    open_tab: OpenTab, site: LiveServer, dana: Any
) -> None:
    """The staff member's clicks reach the user's widget: a message during the takeover gets
    the notice and no answer, the staff reply makes the widget fetch updates."""
    await get_user_model().objects.acreate_superuser("root", "root@example.com", "root-pw")
    user_tab = await open_tab()
    await user_tab.sign_in("dana", "dana-pw")
    created = await user_tab.send("chatkit-1", "threads.create", input=user_input("hello"))
    assert created["status"] == 200, (created, site.describe())
    thread_id = created["events"][0]["thread"]["id"]
    await until(
        user_tab.page, "() => window.siteEvents.some((e) => e.type === 'chatkit:subscribed')"
    )

    staff_tab = await open_tab()
    await serve_static(staff_tab)
    page = staff_tab.page
    transcript = reverse("admin:django_chatkit_thread_transcript", args=[quote(thread_id)])
    await sign_in_to_admin(staff_tab, site, transcript)
    async with page.expect_navigation():  # the form posts, then the page reloads
        await page.click(".ck-takeover-take button")
    await page.wait_for_selector(".ck-takeover-reply textarea", state="visible")
    await page.wait_for_selector(SUBSCRIBED, state="attached")

    during = await user_tab.send(
        "chatkit-1",
        "threads.add_user_message",
        thread_id=thread_id,
        input=user_input("I want a person"),
    )
    assert during["status"] == 200, during
    kinds = [event["type"] for event in during["events"]]
    assert "notice" in kinds and "thread.item.updated" not in kinds, kinds
    await page.wait_for_function(
        "document.querySelector('.ck-timeline')?.innerText.includes('I want a person')"
    )

    before = await user_tab.page.evaluate("document.getElementById('chatkit-1').fetchUpdatesCalls")
    await page.fill(".ck-takeover-reply textarea", "Hello Dana, a person here.")
    async with page.expect_navigation():  # the form posts, then the page reloads
        await page.click(".ck-takeover-reply button")
    await page.wait_for_function(
        "document.querySelector('.ck-timeline')?.innerText.includes('Hello Dana, a person here.')"
    )
    assert "Staff reply by root" in await page.inner_text(".ck-timeline")
    # The user's widget heard of that very reply, and fetched updates.
    reply_id = (
        await ThreadItem.objects.filter(thread_id=thread_id, staff_author__isnull=False)
        .values_list("item_id", flat=True)
        .aget()
    )
    await until(
        user_tab.page,
        """(id) => window.siteEvents.some((e) => e.type === 'chatkit:notice'
            && e.detail.event === 'item.added' && e.detail.item_id === id)""",
        reply_id,
    )
    await until(
        user_tab.page, "(n) => document.getElementById('chatkit-1').fetchUpdatesCalls > n", before
    )
    items = await user_tab.send("chatkit-1", "items.list", thread_id=thread_id, order="asc")
    texts = ["".join(p["text"] for p in item["content"]) for item in items["body"]["data"]]
    assert texts[-1] == "**Support team**\n\nHello Dana, a person here."

    async with page.expect_navigation():  # the form posts, then the page reloads
        await page.click(".ck-takeover-back button")
    await page.wait_for_selector(".ck-takeover-take button", state="visible")
    assert staff_tab.console_errors == [], staff_tab.console_errors
    assert user_tab.console_errors == [], user_tab.console_errors
