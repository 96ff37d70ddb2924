"""The admin's "Live conversations" page in headless Chromium (issue #15): a conversation the
user starts in another client appears on the open page without a reload, fetched through the
page's rows view when the staff socket says something changed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.urls import reverse

from tests import test_browser_stop
from tests.admin_browser import signed_in_admin_page
from tests.test_live_multiprocess import Sites, new_thread

# test_browser_stop's fixtures: one live server (in-memory layer), a user, a moderator.
site = test_browser_stop.site
dana = test_browser_stop.dana
moderator = test_browser_stop.moderator

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_new_conversation_appears_on_the_open_live_list(
    site: Sites, dana: Any, moderator: Any
) -> None:
    server = site.a
    page_url = reverse("admin:django_chatkit_thread_live")
    earlier = new_thread(site, dana)
    with signed_in_admin_page(server.url, "mod", "mod-pw", page_url) as admin:
        page = admin.page
        page.wait_for_selector("#chatkit-live[data-live-subscribed]", timeout=10_000)
        assert page.locator(f"tr[data-thread-id='{earlier}']").count() == 1
        assert page.locator("[data-live-state=live]").is_visible()

        # Through the chat endpoint, not this page; from a thread of its own: Playwright's
        # sync API runs an event loop in this one, where Django refuses database queries.
        with ThreadPoolExecutor(1) as pool:
            started = pool.submit(new_thread, site, dana).result(30)
        row = page.locator(f"tr[data-thread-id='{started}']")
        row.wait_for(state="attached", timeout=10_000)
        # Newest first, with its owner and a link to its transcript.
        first = page.locator("#chatkit-live-rows tr.chatkit-live-row").first
        assert first.get_attribute("data-thread-id") == started
        assert "dana" in row.inner_text()
        assert row.locator("a[href$='/transcript/']").count() == 1
        assert page.locator(f"tr[data-thread-id='{earlier}']").count() == 1
        assert admin.console_errors == [], admin.console_errors
