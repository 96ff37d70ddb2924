"""The public test kit's stream readers and clients (``django_chatkit.testing``), which the rest
of this suite uses too: here they are checked against hand-made bytes and the real endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chatkit.types import ThreadCreatedEvent, ThreadItemDoneEvent
from django.contrib.auth import get_user_model

from django_chatkit.models import Attachment, ThreadItem
from django_chatkit.testing import (
    ChatKitTestClient,
    SSEFormatError,
    aiter_sse,
    async_live_client,
    iter_sse,
    live_client,
    parse_sse,
    parse_sse_json,
    request_body,
    user_input,
)
from tests.attachment_flow import local_media
from tests.live_server import LiveServer, live_asgi_server
from tests.test_live_asgi import TEXT_DELTA
from tests.waiting import wait_for

EVENTS = [
    {"type": "progress_update", "icon": None, "text": "Thinking: a\u00e9\u20ac"},
    {"type": "notice", "level": "info", "message": "two\nlines in JSON", "title": None},
]
BODY = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in EVENTS)


class TestReaders:
    def test_every_chunk_boundary_gives_the_same_events(self) -> None:
        # Boundaries inside the prefix, the JSON, a multi-byte character and the separator.
        for cut in range(len(BODY) + 1):
            assert list(iter_sse([BODY[:cut], BODY[cut:]])) == EVENTS, cut
        assert list(iter_sse(BODY[i : i + 1] for i in range(len(BODY)))) == EVENTS

    def test_an_event_is_yielded_as_soon_as_its_frame_is_complete(self) -> None:
        first_frame_end = BODY.index(b"\n\n") + 2
        sent: list[bytes] = []

        def chunks() -> Iterator[bytes]:
            for chunk in (BODY[:first_frame_end], BODY[first_frame_end:]):
                sent.append(chunk)
                yield chunk

        events = iter_sse(chunks())
        assert next(events) == EVENTS[0]
        assert len(sent) == 1  # the second chunk has not been asked for yet
        assert list(events) == EVENTS[1:]

    async def test_async_chunks(self) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(BODY), 7):
                yield BODY[i : i + 7]

        assert [event async for event in aiter_sse(chunks())] == EVENTS

    @pytest.mark.parametrize(
        ("body", "why"),
        [
            (b'data: {"type": "notice"}', "ended inside a frame"),
            (b'data: {"type": "notice"}\n', "ended inside a frame"),
            (b'event: x\ndata: {"type": "notice"}\n\n', "Not a ChatKit frame"),
            (b": keep-alive\n\n", "Not a ChatKit frame"),
            (b'data:{"type": "notice"}\n\n', "Not a ChatKit frame"),
            (b'data: {"type":\ndata: "notice"}\n\n', "more than one line"),
            (b"data: {not json}\n\n", "not JSON"),
            (b"data: [1]\n\n", "not an event"),
            (b'data: {"kind": "notice"}\n\n', "not an event"),
            (b"\n\n", "Not a ChatKit frame"),
        ],
    )
    def test_anything_but_strict_frames_is_refused(self, body: bytes, why: str) -> None:
        with pytest.raises(SSEFormatError, match=why):
            parse_sse_json(body)

    async def test_the_async_reader_refuses_a_cut_stream_too(self) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield BODY[:-1]

        with pytest.raises(SSEFormatError, match="ended inside a frame"):
            _ = [event async for event in aiter_sse(chunks())]

    def test_typed_events(self) -> None:
        assert parse_sse(b"") == []
        [progress, notice] = parse_sse(BODY)
        assert progress.type == "progress_update" and notice.type == "notice"

    def test_request_body(self) -> None:
        assert json.loads(request_body("items.list", thread_id="thr_1", limit=2)) == {
            "type": "items.list",
            "params": {"thread_id": "thr_1", "limit": 2},
        }


@pytest.fixture
def chat(alice: Any) -> ChatKitTestClient:
    return ChatKitTestClient(user=alice)  # signs in on its first request


@pytest.mark.django_db(transaction=True)  # the async view reaches the DB from another thread
class TestChatKitTestClient:
    async def test_a_stream_keeps_its_bytes_its_json_and_its_typed_events(self, chat) -> None:
        reply = await chat.create_thread("/words 3")
        assert reply.status_code == 200 and reply.streaming and reply.data is None
        assert reply.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert reply.json_events == parse_sse_json(reply.content)
        assert [e["type"] for e in reply.json_events] == [e.type for e in reply.events]
        assert isinstance(reply.events[0], ThreadCreatedEvent)
        assert reply.thread_id == reply.json_events[0]["thread"]["id"]
        assert reply.answer == "w0 w1 w2 " and reply.error is None
        assert isinstance(reply.events[-1], ThreadItemDoneEvent)

    async def test_a_json_answer_and_a_json_error(self, chat) -> None:
        created = await chat.create_thread("hello")
        page = await chat.request("threads.list", limit=5)
        assert page.status_code == 200 and not page.streaming and page.events == []
        assert [t["id"] for t in page.data["data"]] == [created.thread_id]
        assert json.loads(page.content) == page.data
        missing = await chat.request("threads.get_by_id", thread_id="thr_missing")
        assert missing.status_code == 404 and missing.data["error"]["code"] == "not_found"
        assert [i["type"] for i in await chat.items(created.thread_id)] == [
            "user_message",
            "assistant_message",
        ]

    async def test_a_body_that_is_not_json_leaves_data_empty(self, alice) -> None:
        # The login page answers HTML: the reply keeps it in ``content`` without decoding it.
        page = await ChatKitTestClient(alice, endpoint="/accounts/login/").post(b"x=1")
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.data is None and b"<form" in page.content

    async def test_raw_post_leaves_the_stream_unread_and_sends_extra_headers(self, chat) -> None:
        response = await chat.raw_post(
            {"type": "threads.create", "params": {"input": user_input("/words 2")}}
        )
        assert response.streaming
        events = [event async for event in aiter_sse(response.streaming_content)]
        assert events[0]["type"] == "thread.created"
        refused = await chat.post(b"{}", headers={"X-CSRFToken": "w" * 32})
        assert refused.status_code == 403 and refused.data["error"]["code"] == "csrf_failed"

    async def test_attach_uploads_as_the_widget_does(self, chat, tmp_path) -> None:
        settings = {"SERVER": "tests.servers.ScriptedServer", "ATTACHMENTS": {"ENABLED": True}}
        with local_media(tmp_path, settings):
            ready = await chat.attach("notes.txt", "text/plain", b"some notes")
            assert ready["name"] == "notes.txt" and ready.get("upload_descriptor") is None
            row = await Attachment.objects.aget(id=ready["id"])
            assert row.status == "ready" and row.size == len(b"some notes")
            reply = await chat.create_thread("read this", attachments=[ready["id"]])
        assert reply.status_code == 200 and reply.error is None, reply
        [message, _] = await chat.items(reply.thread_id)
        assert [a["id"] for a in message["attachments"]] == [ready["id"]]


@pytest.fixture
def uvicorn(transactional_db: None) -> Iterator[LiveServer]:
    with live_asgi_server("uvicorn") as server:
        yield server


@pytest.fixture
def erin(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("erin", password="pw")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class TestLiveClients:
    def test_signed_in_or_anonymous(self, uvicorn: LiveServer, erin: Any) -> None:
        with live_client(uvicorn.url, erin) as http:
            assert http.post("/chatkit/", content=request_body("threads.list")).status_code == 200
        with live_client(uvicorn.url) as http:
            refused = http.post("/chatkit/", content=request_body("threads.list"))
            assert refused.status_code == 401, (refused.text, uvicorn.describe())

    def test_async_streaming_and_hanging_up(self, uvicorn: LiveServer, erin: Any) -> None:
        body = request_body("threads.create", input=user_input("/slow 200"))  # about 10 s

        async def hang_up_after_the_first_words(http: httpx.AsyncClient) -> str | None:
            thread_id = None
            async with http, http.stream("POST", "/chatkit/", content=body) as response:
                assert response.status_code == 200, uvicorn.describe()
                async for event in aiter_sse(response.aiter_raw()):
                    if event["type"] == "thread.created":
                        thread_id = event["thread"]["id"]
                    elif event.get("update", {}).get("type") == TEXT_DELTA:
                        break  # leaving both blocks closes the connection
            return thread_id

        # Made here, outside the event loop: signing in writes a session through the ORM.
        thread_id = asyncio.run(hang_up_after_the_first_words(async_live_client(uvicorn.url, erin)))
        assert thread_id is not None

        # The server saw the hang-up: the SDK stores the partial answer and a hidden item.
        wait_for(
            lambda: ThreadItem.objects.filter(
                thread_id=thread_id, type="sdk_hidden_context"
            ).exists(),
            timeout=30,
            describe=uvicorn.describe,
        )


def test_the_kit_imports_without_httpx_which_only_the_live_clients_need():
    # A subprocess: this one has imported httpx already. httpx is no dependency of the package,
    # so an installation without it must still get the kit and its pytest fixtures.
    code = """
import sys
sys.modules["httpx"] = None  # as if not installed
import django
django.setup()
from django_chatkit.testing import FakeOpenAI, live_client
try:
    live_client("http://127.0.0.1:1")
except ModuleNotFoundError as error:
    print(error)
"""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=root
    )
    assert result.returncode == 0, result.stderr
    assert "django-openai-chatkit[testing]" in result.stdout
