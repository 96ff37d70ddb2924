"""The admin transcript page's stop button in headless Chromium (issue #15).

While an answer streams (a slow scripted reply from the fake OpenAI server), the transcript page
shows its text growing (django_chatkit/live/progress.py) and offers "Stop the answer"; clicking
it ends the user's stream within a second, the partial answer stored and the run cancelled by
the moderator who clicked; the page it lands on offers no button. A page open before a turn
starts sees its answer grow too, then replaced by the stored answer.

The test is synchronous (Playwright's sync API): the user's stream is read by a thread, as in
tests/test_live_multiprocess.py, and the database is read once the browser is closed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import reverse

from django_chatkit import models
from django_chatkit.testing import FakeOpenAI, Reply, request_body, user_input
from django_chatkit.testing.titles import is_title_request, title_from_message
from tests.admin_browser import moderator_user, signed_in_admin_page
from tests.live_server import LiveServer, live_asgi_server
from tests.test_live_multiprocess import SETTINGS, Sites, new_thread, stream_in_background
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# 50 ms apart: 20 s, far longer than the page's load and a stop may take.
WORDS = [f"w{i} " for i in range(400)]
FULL = "".join(WORDS)
STOP_WITHIN_SECONDS = 1.0
STOP_BUTTON = "form.chatkit-stop-form input[name=stop]"
GROWING = "li.ck-provisional .ck-streaming-text"
# Resolves once the growing answer shows more than ``n`` characters.
LONGER_THAN = """n => {
  const shown = document.querySelector('li.ck-provisional .ck-streaming-text');
  return shown !== null && shown.textContent.length > n;
}"""


@pytest.fixture
def site(transactional_db: None) -> Iterator[Sites]:
    """One live server (the live ASGI app, an in-memory layer) answering through a fake OpenAI;
    as ``Sites`` with both processes the same, for test_live_multiprocess's helpers."""
    with ExitStack() as stack:
        fake = stack.enter_context(FakeOpenAI(default_reply=title_from_message))
        fake.side_requests = is_title_request
        env = {
            **fake.env,
            "CHATKIT_TEST_SETTINGS": json.dumps(SETTINGS),
            "CHATKIT_TEST_CHANNEL_LAYERS": json.dumps(
                {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
            ),
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
        }
        server = stack.enter_context(
            live_asgi_server("daphne", extra_env=env, app="tests.live_asgi:application")
        )
        yield Sites(server, server, fake)


@pytest.fixture
def dana(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("dana", password="dana-pw")


@pytest.fixture
def moderator(transactional_db: None) -> Any:
    return moderator_user("mod", "mod-pw")


def test_the_stop_button_ends_the_users_stream_and_goes_away(
    site: Sites, dana: Any, moderator: Any
) -> None:
    server: LiveServer = site.a
    thread_id = new_thread(site, dana)
    transcript = reverse("admin:django_chatkit_thread_transcript", args=[quote(thread_id)])
    with signed_in_admin_page(server.url, "mod", "mod-pw", transcript) as admin:
        page = admin.page
        assert page.locator(STOP_BUTTON).count() == 0  # nothing streams yet

        site.fake.queue(Reply(tokens=WORDS, token_delay=0.05))
        body = request_body(
            "threads.add_user_message", thread_id=thread_id, input=user_input("Count")
        )
        stream, reader = stream_in_background(server, dana, body)
        wait_for(lambda: stream.deltas >= 5, describe=server.describe)
        page.reload()
        button = page.locator(STOP_BUTTON)
        button.wait_for(state="visible", timeout=10_000)
        assert button.get_attribute("value") == "Stop the answer"

        # The answer grows on the page while it streams: two lengths at least, each what
        # the model said so far, under the id the stored answer will have.
        growing = page.locator(GROWING)
        growing.wait_for(state="visible", timeout=10_000)
        seen = [growing.text_content() or ""]
        page.wait_for_function(LONGER_THAN, arg=len(seen[0]), timeout=10_000)
        seen.append(growing.text_content() or "")
        assert stream.ended_at is None  # still streaming
        assert len({len(text) for text in seen}) >= 2, seen
        assert all(text and FULL.startswith(text) for text in seen), seen
        shown_id = page.locator("li.ck-provisional").get_attribute("id")

        with page.expect_navigation():  # the form posts, then lands on the transcript
            clicked = time.monotonic()
            button.click()
        reader.join(10)
        assert stream.ended_at is not None, server.describe()
        took = stream.ended_at - clicked
        print(f"\nStop latency: click in Chromium to the end of the stream: {took * 1000:.0f} ms")
        assert took < STOP_WITHIN_SECONDS, took

        assert stream.status == 200
        assert not [e for e in stream.events if e["type"] == "error"], stream.events
        notices = [e["message"] for e in stream.events if e["type"] == "notice"]
        assert notices == ["A moderator stopped this answer."]
        [answer] = [
            e["item"]
            for e in stream.events
            if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
        ]
        partial = answer["content"][0]["text"]
        assert partial and FULL.startswith(partial) and partial != FULL
        assert shown_id == answer["id"]
        assert len(seen[-1]) <= len(partial)

        # The page the form landed on: the stop confirmed, no button left.
        assert "The answer in progress was stopped." in page.inner_text("body")
        assert page.locator(STOP_BUTTON).count() == 0
        assert partial.strip() in page.inner_text(".ck-timeline")
        assert admin.console_errors == [], admin.console_errors
    # After Playwright's block: its sync API runs an event loop in this thread, in which Django
    # refuses database queries.
    row = models.ThreadItem.objects.get(thread_id=thread_id, item_id=answer["id"])
    assert row.text == partial
    run = models.Run.objects.filter(thread_id=thread_id, kind="answer").latest("id")
    assert (run.status, run.error_code, run.stopped_by_id) == ("cancelled", "stopped", moderator.pk)


def test_an_answer_grows_on_an_open_transcript_then_is_replaced_by_the_stored_one(
    site: Sites, dana: Any, moderator: Any
) -> None:
    server: LiveServer = site.a
    thread_id = new_thread(site, dana)
    transcript = reverse("admin:django_chatkit_thread_transcript", args=[quote(thread_id)])
    words = WORDS[:60]  # 3 s
    with signed_in_admin_page(server.url, "mod", "mod-pw", transcript) as admin:
        page = admin.page
        page.wait_for_selector("#ck-takeover[data-live-subscribed]", timeout=10_000)

        # The page was open before the turn: the turn finds its watcher (it asks).
        site.fake.queue(Reply(tokens=words, token_delay=0.05))
        body = request_body(
            "threads.add_user_message", thread_id=thread_id, input=user_input("Count")
        )
        stream, reader = stream_in_background(server, dana, body)
        growing = page.locator(GROWING)
        growing.wait_for(state="visible", timeout=10_000)
        first = growing.text_content() or ""
        page.wait_for_function(LONGER_THAN, arg=len(first), timeout=10_000)
        assert stream.ended_at is None
        shown_id = page.locator("li.ck-provisional").get_attribute("id")

        reader.join(15)
        assert stream.ended_at is not None, server.describe()
        [answer] = [
            e["item"]
            for e in stream.events
            if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
        ]
        assert answer["id"] == shown_id
        # The stored answer takes the growing text's place: same entry, rendered, final.
        page.wait_for_function(
            "id => { const e = document.getElementById(id);"
            " return e !== null && !e.classList.contains('ck-provisional'); }",
            arg=shown_id,
            timeout=10_000,
        )
        assert page.locator("li.ck-provisional").count() == 0
        stored = page.locator(f"li[id='{shown_id}'] .ck-markdown").inner_text()
        assert stored.strip() == "".join(words).strip()
        assert page.locator(f"li[id='{shown_id}']").count() == 1
