"""Streaming and cancellation under real ASGI server processes (daphne and uvicorn).

- Streaming ops answer ``text/event-stream`` with no-buffering headers, and events reach the
  client as they are produced, not when the stream ends.
- A client that drops the connection mid-stream cancels the response: the SDK's
  ``handle_stream_cancelled`` stores the partial assistant text and a hidden "cancelled" item,
  and the server stops producing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_chatkit.models import ThreadItem
from django_chatkit.testing import iter_sse, live_client, request_body, user_input
from tests.conftest import ENDPOINT
from tests.live_server import SERVERS, LiveServer, live_asgi_server
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TEXT_DELTA = "assistant_message.content_part.text_delta"


@pytest.fixture(params=SERVERS)
def asgi_server(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[LiveServer]:
    # Depends on transactional_db so the server stops before the test database is flushed.
    with live_asgi_server(request.param) as server:
        yield server


@pytest.fixture
def carol(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("carol", password="pw")


def full_reply(words: int) -> str:
    return "".join(f"w{i} " for i in range(words))


def thread_rows(thread_id: str) -> list[ThreadItem]:
    return list(ThreadItem.objects.filter(thread_id=thread_id).order_by("created_at", "id"))


def assistant_text(row: ThreadItem) -> str:
    return "".join(part["text"] for part in row.payload["content"])


def test_streaming_is_sse_and_unbuffered(asgi_server: LiveServer, carol: Any) -> None:
    words = 40  # 50 ms apart: about 2 s of streaming
    with live_client(asgi_server.url, carol) as client:
        # The first request imports the URLconf, the view and the SDK (seconds): warm up first
        # so the measurement below is about streaming, not about a cold worker.
        warm_up_started = time.monotonic()
        warm_up = client.post(ENDPOINT, content=request_body("threads.list"))
        warm_up_time = time.monotonic() - warm_up_started
        assert warm_up.status_code == 200, (warm_up.text, asgi_server.describe())
        assert warm_up.headers["content-type"] == "application/json"

        started = time.monotonic()
        with client.stream(
            "POST",
            ENDPOINT,
            content=request_body("threads.create", input=user_input(f"/slow {words}")),
        ) as response:
            assert response.status_code == 200, (response.read(), asgi_server.describe())
            assert response.headers["content-type"].split(";")[0] == "text/event-stream"
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            assert "content-length" not in response.headers
            timed = [(time.monotonic(), event) for event in iter_sse(response.iter_raw())]
        finished = time.monotonic()

    events = [event for _, event in timed]
    assert events[0]["type"] == "thread.created", events[:3]
    deltas = [(t, e) for t, e in timed if e.get("update", {}).get("type") == TEXT_DELTA]
    assert "".join(e["update"]["delta"] for _, e in deltas) == full_reply(words)

    first_event = timed[0][0] - started
    first_delta, last_delta = deltas[0][0] - started, deltas[-1][0] - started
    total = finished - started
    print(
        f"\n[{asgi_server.kind}] cold first request (threads.list) {warm_up_time:.3f} s; "
        f"/slow {words}: first event {first_event:.3f} s, "
        f"first delta {first_delta:.3f} s, last delta {last_delta:.3f} s, total {total:.3f} s"
    )
    assert total >= words * 0.05 * 0.9
    # Buffering would deliver everything at the end: the first event must arrive early, and
    # the deltas must arrive spread over the time the server spent producing them.
    assert first_event < 1.0, (first_event, total)
    assert first_event < total / 3, (first_event, total)
    assert last_delta - first_delta > words * 0.05 * 0.6, (first_delta, last_delta)

    # The completed stream stored the whole answer.
    rows = thread_rows(events[0]["thread"]["id"])
    assert [row.type for row in rows] == ["user_message", "assistant_message"]
    assert assistant_text(rows[1]) == full_reply(words)


def test_disconnect_cancels_and_keeps_partial_answer(asgi_server: LiveServer, carol: Any) -> None:
    words = 200  # 50 ms apart: about 10 s if nobody stopped it
    wanted_deltas = 5
    thread_id = None
    received = ""
    with live_client(asgi_server.url, carol) as client:
        with client.stream(
            "POST",
            ENDPOINT,
            content=request_body("threads.create", input=user_input(f"/slow {words}")),
        ) as response:
            assert response.status_code == 200, (response.read(), asgi_server.describe())
            for event in iter_sse(response.iter_raw()):
                if event["type"] == "thread.created":
                    thread_id = event["thread"]["id"]
                elif event.get("update", {}).get("type") == TEXT_DELTA:
                    received += event["update"]["delta"]
                    if received.count(" ") >= wanted_deltas:
                        break
        # Leaving both blocks closes the unfinished response and its connection.
        dropped = time.monotonic()
    assert thread_id is not None
    assert received.count(" ") >= wanted_deltas

    # handle_stream_cancelled stores the partial answer, then the hidden "cancelled" item.
    def cancellation_recorded() -> list[ThreadItem] | None:
        rows = thread_rows(thread_id)
        return rows if any(row.type == "sdk_hidden_context" for row in rows) else None

    rows = wait_for(
        cancellation_recorded,
        timeout=30,
        describe=lambda: (
            f"No cancellation recorded after the disconnect: "
            f"{[r.type for r in thread_rows(thread_id)]}\n{asgi_server.describe()}"
        ),
    )
    recorded = time.monotonic() - dropped

    types = [row.type for row in rows]
    assert types == ["user_message", "assistant_message", "sdk_hidden_context"], (
        types,
        asgi_server.describe(),
    )
    assert rows[0].text == f"/slow {words}"
    stored = assistant_text(rows[1])
    assert stored == rows[1].text
    assert stored.startswith(received), (received, stored)
    assert full_reply(words).startswith(stored), stored
    stored_words = stored.count(" ")
    assert stored_words < words // 2, stored_words  # stopped well before the end
    assert "cancelled" in rows[2].payload["content"]

    # The server stopped producing: once Django has finished with the request (the stream was
    # cancelled and cleaned up, not run to its end), the thread is as it was when the
    # cancellation was recorded.
    asgi_server.wait_for_finished_requests(1)
    later = thread_rows(thread_id)
    assert [(r.item_id, r.type, r.text) for r in later] == [
        (r.item_id, r.type, r.text) for r in rows
    ], asgi_server.describe()
    print(
        f"\n[{asgi_server.kind}] /slow {words}: {received.count(' ')} words received before the "
        f"disconnect, {stored_words} stored, cancellation recorded {recorded:.3f} s after it"
    )

    # The server still serves after the cancelled request.
    with live_client(asgi_server.url, carol) as client:
        reply = client.post(ENDPOINT, content=request_body("threads.list", limit=5))
    assert reply.status_code == 200, (reply.text, asgi_server.describe())
    assert [t["id"] for t in reply.json()["data"]] == [thread_id]
