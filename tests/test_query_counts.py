"""Every protocol op issues a constant number of queries: independent of history and stream length.

Sync tests drive the async view through the public test client under ``async_to_sync``, so the
view's ORM work comes back to this thread (asgiref's thread-sensitive mode) where the queries are
captured.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_chatkit.testing import user_input
from tests.conftest import signed_in_client

pytestmark = pytest.mark.django_db

# Queries per op, session and user lookups included (2 of them), and the SAVEPOINT/RELEASE pair
# each store write opens inside the test's transaction (in production each write is one
# transaction of its own). Pinned so that any new query on a hot path is a deliberate change.
# Whether staff took a thread over is read with the thread (no query of its own); a retry, which
# deletes items, asks the database first (it is refused while staff have the thread).
EXPECTED = {
    "threads.create": 13,
    "threads.add_user_message": 11,
    "threads.retry_after_item": 15,
    "threads.add_client_tool_output": 17,
    "threads.custom_action": 9,
    "threads.add_structured_input": 13,
    "threads.get_by_id": 5,
    "threads.list": 3,
    "threads.list (after)": 4,
    "items.list": 4,
    "items.list (after)": 4,
    "items.feedback": 4,
    "threads.update": 4,
    "threads.delete": 10,
    "threads.sync_custom_action": 5,
}


class Browser:
    """The public test client, driven from this thread: the view's thread-sensitive ORM work
    runs here (``async_to_sync``), where ``CaptureQueriesContext`` sees it."""

    def __init__(self, user) -> None:
        self.chat = signed_in_client(user)  # signed in now, so no count includes the login

    def send(self, op: str, **params: Any) -> list[dict[str, Any]]:
        reply = async_to_sync(self.chat.request)(op, **params)
        assert reply.status_code == 200, reply.content
        return reply.json_events if reply.streaming else [reply.data]

    def count(self, op: str, **params: Any) -> tuple[int, list[dict[str, Any]]]:
        with CaptureQueriesContext(connection) as queries:
            result = self.send(op, **params)
        return len(queries), result


def thread_with_history(browser: Browser, turns: int, first: str = "hello") -> str:
    events = browser.send("threads.create", input=user_input(first))
    thread_id: str = events[0]["thread"]["id"]
    for n in range(turns - 1):
        browser.send("threads.add_user_message", thread_id=thread_id, input=user_input(f"m{n}"))
    return thread_id


def measure(browser: Browser, turns: int, words: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    counts["threads.create"], _ = browser.count(
        "threads.create", input=user_input(f"/words {words}")
    )
    thread_id = thread_with_history(browser, turns)
    counts["threads.add_user_message"], _ = browser.count(
        "threads.add_user_message", thread_id=thread_id, input=user_input(f"/words {words}")
    )
    items = browser.send("items.list", thread_id=thread_id, order="asc", limit=100)[0]["data"]
    last_user = [i for i in items if i["type"] == "user_message"][-1]["id"]
    counts["threads.retry_after_item"], _ = browser.count(
        "threads.retry_after_item", thread_id=thread_id, item_id=last_user
    )
    counts["threads.get_by_id"], _ = browser.count("threads.get_by_id", thread_id=thread_id)
    counts["threads.list"], page = browser.count("threads.list", limit=1)
    counts["threads.list (after)"], _ = browser.count(
        "threads.list", limit=1, after=page[0]["after"]
    )
    counts["items.list"], page = browser.count("items.list", thread_id=thread_id, limit=5)
    # The last item shown as the cursor: a short history fits one page, which has no "after".
    counts["items.list (after)"], _ = browser.count(
        "items.list", thread_id=thread_id, limit=5, after=page[0]["data"][-1]["id"]
    )
    items = browser.send("items.list", thread_id=thread_id, order="asc", limit=100)[0]["data"]
    answers = [i["id"] for i in items if i["type"] == "assistant_message"][:3]
    counts["items.feedback"], _ = browser.count(
        "items.feedback", thread_id=thread_id, item_ids=answers, kind="positive"
    )
    counts["threads.update"], _ = browser.count("threads.update", thread_id=thread_id, title="t")

    tool_thread = thread_with_history(browser, turns)
    browser.send(
        "threads.add_user_message", thread_id=tool_thread, input=user_input("/client_tool")
    )
    counts["threads.add_client_tool_output"], _ = browser.count(
        "threads.add_client_tool_output", thread_id=tool_thread, result={"ok": True}
    )
    widget_thread = thread_with_history(browser, turns, first="/widget")
    widget_events = browser.send(
        "threads.add_user_message", thread_id=widget_thread, input=user_input("/widget")
    )
    widget_id = widget_events[-1]["item"]["id"]
    counts["threads.custom_action"], _ = browser.count(
        "threads.custom_action",
        thread_id=widget_thread,
        item_id=widget_id,
        action={"type": "go", "payload": {}},
    )
    counts["threads.sync_custom_action"], _ = browser.count(
        "threads.sync_custom_action",
        thread_id=widget_thread,
        item_id=widget_id,
        action={"type": "go", "payload": {}},
    )
    form_events = browser.send(
        "threads.add_user_message", thread_id=widget_thread, input=user_input("/form")
    )
    counts["threads.add_structured_input"], _ = browser.count(
        "threads.add_structured_input",
        thread_id=widget_thread,
        item_id=form_events[-1]["item"]["id"],
        input={"answers": {"q1": {"values": ["x"]}}},
    )
    counts["threads.delete"], _ = browser.count("threads.delete", thread_id=thread_id)
    return counts


def test_query_counts_do_not_grow_with_history_or_stream_length(alice, bob):
    short = measure(Browser(alice), turns=1, words=3)
    long = measure(Browser(bob), turns=12, words=300)
    print("\n| op | queries |\n|---|---|")
    for op, count in short.items():
        print(f"| {op} | {count} |")
    assert short == long
    assert short == EXPECTED
