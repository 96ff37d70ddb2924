"""One agent turn issues the same number of queries whatever the answer's length."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_chatkit.testing import Reply
from tests.test_agent import AGENT_SETTINGS, is_answer, is_title
from tests.test_query_counts import Browser

pytestmark = pytest.mark.django_db

# Counted inside the test transaction, so each store write adds a SAVEPOINT/RELEASE pair.
# Later turn: session + user (2), thread check (1), user message (4), history (1, which also
# answers stream_agent_response's look at the newest items), Run opened and closed (2),
# assistant message (4); whether staff took the thread over is read with the thread check. The
# first turn creates the thread instead of checking it and adds the title: its Run and the
# conditional update (the SDK's save of the titled thread then finds nothing changed and writes
# nothing).
EXPECTED_QUERIES = {"first turn": 18, "later turn": 14}


def turn_queries(browser: Browser, fake, words: int, thread_id: str | None) -> tuple[int, str]:
    fake.queue(Reply(tokens=[f"w{i} " for i in range(words)], when=is_answer))
    with CaptureQueriesContext(connection) as queries:
        if thread_id is None:
            events = browser.send("threads.create", input=_input("Hello"))
            thread_id = events[0]["thread"]["id"]
        else:
            events = browser.send(
                "threads.add_user_message", thread_id=thread_id, input=_input("More")
            )
    assert events[-1]["type"] in ("thread.item.done", "thread.updated"), events[-1]
    return len(queries), thread_id


def _input(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


@override_settings(CHATKIT=AGENT_SETTINGS)
def test_queries_per_turn_do_not_depend_on_the_number_of_tokens(alice, fake_openai):
    fake_openai.default_reply = lambda r: Reply(text="A title") if is_title(r) else None
    browser = Browser(alice)
    counts = {}
    for words in (5, 200):
        first, thread_id = turn_queries(browser, fake_openai, words, None)
        later, _ = turn_queries(browser, fake_openai, words, thread_id)
        counts[words] = {"first turn": first, "later turn": later}
    print(f"\nqueries per turn: {counts}")
    assert counts[5] == counts[200] == EXPECTED_QUERIES


@override_settings(CHATKIT=AGENT_SETTINGS)
def test_the_history_is_read_in_the_same_trip_as_the_users_message(alice, fake_openai, monkeypatch):
    # Each trip to the database thread before the model call is a hand-over of the GIL that a
    # busy server makes the request wait for: the user's message and the history share one.
    from django_chatkit import db
    from django_chatkit import store as store_module

    trips: list[str] = []
    real_in_thread = db.in_thread

    def counting_in_thread(func: Any, **options: Any) -> Any:
        trips.append(func.__name__)
        return real_in_thread(func, **options)

    fake_openai.default_reply = lambda r: Reply(text="A title") if is_title(r) else None
    browser = Browser(alice)
    _, thread_id = turn_queries(browser, fake_openai, 3, None)
    monkeypatch.setattr(store_module, "in_thread", counting_in_thread)
    fake_openai.queue(Reply(text="Sure.", when=is_answer))
    events = browser.send("threads.add_user_message", thread_id=thread_id, input=_input("And?"))
    assert events[-1]["type"] == "thread.item.done"
    assert trips.count("_upsert_item_and_read_recent") == 1, trips
    assert "_load_recent_items" not in trips, trips
    # What the model was sent is the history read in that trip, the new message last.
    request = fake_openai.requests[-1]
    assert request.last_user_text == "And?"
    assert [m["content"] for m in request.input if m.get("role") == "user"] == ["Hello", "And?"]
