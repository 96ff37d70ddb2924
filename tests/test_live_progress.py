"""Streaming answers grow on the admin transcript (issue #15: "streaming answers grow").

A real turn of the agent server (in this process, the fake OpenAI over loopback HTTP, slow
tokens), Channels' in-memory layer and WebsocketCommunicator on the documented application:

- a staff socket with ``view_thread`` that asks to watch (``?watch=1``, the transcript page's)
  gets the answer's text as it grows, throttled, from offset 0 when it joins mid-answer, then
  ``answer.ended``; what it pieced together is the stored answer;
- the owner's socket, a reviewer's socket that did not ask (a staff member's own widget) and a
  staff owner without ``view_thread`` never get any of it, whatever they ask;
- nobody watching: the turn announces itself once and publishes no text; no layer: nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from django_chatkit import models
from django_chatkit.live import progress, routes
from django_chatkit.live.progress import AnswerProgress, utf16_length, watch_group
from django_chatkit.testing import ChatKitTestClient, RecordedRequest, Reply
from tests import test_live
from tests.test_live import application, heard, listen, session_cookie, user
from tests.waiting import await_condition

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

layer = test_live.layer  # test_live's fixture: the in-memory channel layer

SETTINGS = {
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    "AGENT": {"model": "answer-model", "instructions": "Be brief."},
    "GENERATE_TITLES": False,
    "OPENAI_MAX_RETRIES": 0,
}
# 30 ms apart: 1.8 s, several throttled messages long.
WORDS = [f"w{i} " for i in range(60)]
FULL = "".join(WORDS)


def is_answer(request: RecordedRequest) -> bool:
    return request.model == "answer-model"


@pytest.fixture
def fake(fake_openai: Any) -> Any:
    with override_settings(CHATKIT={**settings.CHATKIT, **SETTINGS}):
        yield fake_openai


def watch_socket(thread_id: str, cookie: str, *, watch: bool = True) -> WebsocketCommunicator:
    query = "?watch=1" if watch else ""
    headers = [
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    return WebsocketCommunicator(
        application(), f"{routes.THREAD_PATH}{thread_id}/{query}", headers=headers
    )


async def opened(communicator: WebsocketCommunicator) -> WebsocketCommunicator:
    connected, _ = await communicator.connect()
    assert connected
    first = await communicator.receive_json_from()
    assert first["event"] == "subscribed", first
    return communicator


async def read_until_ended(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    """What a watching socket receives until the turn's end (answer.ended)."""
    received = []
    while True:
        message = await communicator.receive_json_from(timeout=10)
        received.append(message)
        if message["event"] == progress.ENDED_EVENT:
            return received


async def until_added(communicator: WebsocketCommunicator, item_id: str) -> list[dict[str, Any]]:
    """What ``communicator`` receives up to the notice that ``item_id`` was stored (published
    after all of the answer's progress: were any sent to it, they would be among these)."""
    received = []
    while True:
        message = await communicator.receive_json_from(timeout=10)
        received.append(message)
        if message["event"] == "item.added" and message.get("item_id") == item_id:
            return received


def pieced_together(messages: list[dict[str, Any]], item_id: str) -> tuple[str, set[int]]:
    """The text the page would show from ``messages``, and the lengths it showed on the way."""
    text = ""
    lengths = set()
    for message in messages:
        if message["event"] != progress.PROGRESS_EVENT or message["item_id"] != item_id:
            continue
        assert message["offset"] <= utf16_length(text), message
        text = text[: message["offset"]] + message["delta"]
        lengths.add(len(text))
    return text, lengths


def world() -> dict[str, Any]:
    alice = user("alice-w")
    reviewer = user("rita", "view_thread", staff=True)
    # Staff, but without view_thread: admitted to their own thread as its owner only.
    sam = user("sam", staff=True)
    return {
        "alice": alice,
        "sam": sam,
        "cookies": {
            "alice": session_cookie(alice),
            "rita": session_cookie(reviewer),
            "sam": session_cookie(sam),
        },
    }


async def turn(chat: ChatKitTestClient, fake: Any, thread_id: str) -> asyncio.Task[Any]:
    fake.queue(Reply(tokens=WORDS, token_delay=0.03, when=is_answer))
    return asyncio.create_task(chat.send(thread_id, "Count"))


async def new_thread(chat: ChatKitTestClient, fake: Any) -> str:
    fake.queue(Reply(text="Hi.", when=is_answer))
    reply = await chat.create_thread("hello")
    assert reply.thread_id
    return str(reply.thread_id)


async def stored_answer(thread_id: str) -> models.ThreadItem:
    return await models.ThreadItem.objects.filter(
        thread_id=thread_id, type="assistant_message"
    ).alatest("created_at", "id")


async def test_staff_watching_see_the_answer_grow_and_nobody_else_does(layer, fake):
    people = await sync_to_async(world)()
    cookies = people["cookies"]
    chat = ChatKitTestClient(user=people["alice"])
    thread_id = await new_thread(chat, fake)
    watcher = await opened(watch_socket(thread_id, cookies["rita"]))
    # The owner asks too: the owner-facing socket never joins the watch group.
    owner = await opened(watch_socket(thread_id, cookies["alice"]))
    # A reviewer's socket that did not ask (their own widget, say): notices only.
    widget = await opened(watch_socket(thread_id, cookies["rita"], watch=False))

    task = await turn(chat, fake, thread_id)
    received = await read_until_ended(watcher)
    reply = await asyncio.wait_for(task, 10)
    assert reply.error is None and reply.answer == FULL

    answer = await stored_answer(thread_id)
    assert answer.text == FULL
    text, lengths = pieced_together(received, answer.item_id)
    # What the model said up to the last message (its last words may come with the stored
    # item, which replaces the text on the page).
    assert text and FULL.startswith(text), text
    # Throttled: several messages, far fewer than tokens.
    grown = [m for m in received if m["event"] == progress.PROGRESS_EVENT]
    assert 2 <= len(grown) < len(WORDS) / 2, len(grown)
    assert len(lengths) >= 2
    assert received[-1] == {
        "event": progress.ENDED_EVENT,
        "thread_id": thread_id,
        "item_ids": [answer.item_id],
    }
    # The stored answer's notice came too (the page then fetches the stored item).
    assert {"event": "item.added", "thread_id": thread_id, "item_id": answer.item_id} in received

    for other in (owner, widget):
        events = {message["event"] for message in await until_added(other, answer.item_id)}
        assert not events & {progress.PROGRESS_EVENT, progress.ENDED_EVENT}, events
        await other.disconnect()
    await watcher.disconnect()


async def test_staff_without_view_permission_get_no_text_of_their_own_thread(layer, fake):
    people = await sync_to_async(world)()
    chat = ChatKitTestClient(user=people["sam"])
    thread_id = await new_thread(chat, fake)
    own = await opened(watch_socket(thread_id, people["cookies"]["sam"]))
    task = await turn(chat, fake, thread_id)
    reply = await asyncio.wait_for(task, 10)
    assert reply.answer == FULL
    answer = await stored_answer(thread_id)
    events = [message["event"] for message in await until_added(own, answer.item_id)]
    assert progress.PROGRESS_EVENT not in events and progress.ENDED_EVENT not in events
    await own.disconnect()


async def test_a_watcher_joining_mid_answer_gets_the_text_from_its_start(layer, fake):
    people = await sync_to_async(world)()
    chat = ChatKitTestClient(user=people["alice"])
    thread_id = await new_thread(chat, fake)
    task = await turn(chat, fake, thread_id)
    await await_condition(lambda: any(r.first_delta_at for r in fake.requests if is_answer(r)))
    watcher = await opened(watch_socket(thread_id, people["cookies"]["rita"]))
    received = await read_until_ended(watcher)
    await asyncio.wait_for(task, 10)
    first = next(m for m in received if m["event"] == progress.PROGRESS_EVENT)
    assert first["offset"] == 0 and first["delta"].startswith("w0 w1 "), first
    answer = await stored_answer(thread_id)
    text = pieced_together(received, answer.item_id)[0]
    assert answer.text == FULL and FULL.startswith(text) and len(text) > len(first["delta"])
    await watcher.disconnect()


async def test_nobody_watching_the_turn_publishes_no_text(layer, fake):
    people = await sync_to_async(world)()
    chat = ChatKitTestClient(user=people["alice"])
    thread_id = await new_thread(chat, fake)
    # Listening on the watch group as a raw channel: hears what is published, watches nothing.
    channel = await listen(layer, watch_group(thread_id))
    task = await turn(chat, fake, thread_id)
    assert (await asyncio.wait_for(task, 10)).answer == FULL
    await asyncio.gather(*progress._sending, return_exceptions=True)
    messages = await heard(layer, channel)
    assert messages == [{"type": progress.STARTED_TYPE, "thread_id": thread_id}]


async def test_without_a_channel_layer_nothing_listens_or_publishes(fake, monkeypatch):
    assert not getattr(settings, "CHANNEL_LAYERS", None)
    told: list[str] = []
    real_listening = AnswerProgress.listening

    def listening(self: AnswerProgress, layer: Any) -> None:
        told.append(self.thread_id)
        real_listening(self, layer)

    monkeypatch.setattr(AnswerProgress, "listening", listening)
    people = await sync_to_async(world)()
    chat = ChatKitTestClient(user=people["alice"])
    thread_id = await new_thread(chat, fake)
    task = await turn(chat, fake, thread_id)
    assert (await asyncio.wait_for(task, 10)).answer == FULL
    assert told == [] and not progress._sending


class Sent:
    """A layer that keeps what is sent (AnswerProgress's unit tests)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.messages.append((group, message))


async def test_deltas_count_utf16_units_and_a_reused_placeholder_starts_again() -> None:
    texts: dict[str, list[str]] = {"__fake_id__": ["héllo ", "😀 "]}
    current = {"__fake_id__": "msg_1"}
    publisher = AnswerProgress("thr_x", lambda: texts, current.get)
    publisher.listening(Sent())
    publisher.watched()
    publisher.close()  # the loop is not needed here: pending() is what it sends
    first = publisher.pending()
    assert [(m["item_id"], m["offset"], m["delta"]) for m in first] == [("msg_1", 0, "héllo 😀 ")]
    texts["__fake_id__"].append("again")
    [second] = publisher.pending()
    assert (second["offset"], second["delta"]) == (9, "again")  # the emoji counts two
    assert publisher.pending() == []
    # The next item under the placeholder id: a new list, from offset 0 under its own id.
    texts["__fake_id__"] = ["next"]
    current["__fake_id__"] = "msg_2"
    [third] = publisher.pending()
    assert (third["item_id"], third["offset"], third["delta"]) == ("msg_2", 0, "next")
    # No ChatKit id yet: nothing published for it.
    current.pop("__fake_id__")
    texts["__fake_id__"].append(" more")
    assert publisher.pending() == []
