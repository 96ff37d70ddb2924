"""A moderator stops an answer in progress (issue #15, deliverable 4), on one process.

The stop button of the transcript page, a lock or a close end the stream within a second: the
user's stream ends cleanly (no error) with the partial answer as the final message and a notice,
the partial answer and a hidden note for the model are stored, the Run records ``cancelled``
and who stopped it. Without a channel layer (these tests have none): the same process wakes the
stream at once, another process's stop is read from the run's flag.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from django_chatkit.testing import ChatKitTestClient, RecordedRequest, Reply
from tests.test_admin_moderation import confirm, staff
from tests.waiting import await_condition

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SETTINGS = {
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    "AGENT": {"model": "answer-model", "instructions": "Be brief."},
    "TITLE_MODEL": "title-model",
    "OPENAI_MAX_RETRIES": 0,
}
WORDS = [f"w{i} " for i in range(100)]  # 50 ms apart: 5 s, far longer than a stop may take
FULL = "".join(WORDS)
STOP_WITHIN_SECONDS = 1.0


def is_answer(request: RecordedRequest) -> bool:
    return request.model == "answer-model"


@pytest.fixture
def fake(fake_openai: Any) -> Any:
    fake_openai.default_reply = lambda request: (
        None if is_answer(request) else Reply(text="A title")
    )
    with override_settings(CHATKIT=SETTINGS):
        yield fake_openai


def transcript_url(thread_id: str) -> str:
    return reverse("admin:django_chatkit_thread_transcript", args=[quote(thread_id)])


def stop_url(thread_id: str) -> str:
    return reverse("admin:django_chatkit_thread_stop", args=[quote(thread_id)])


class Turn:
    """One slow answer streaming in a task of this loop, as the widget would read it."""

    def __init__(self, chat: ChatKitTestClient, fake: Any, thread_id: str) -> None:
        fake.queue(Reply(tokens=WORDS, token_delay=0.05, when=is_answer))
        self.fake = fake
        self.thread_id = thread_id
        self.earlier = len([r for r in fake.requests if is_answer(r)])
        self.task = asyncio.create_task(chat.send(thread_id, "Count"))

    async def streaming(self) -> models.Run:
        """Wait until the model has sent some words and the run is open; the run."""

        def answering() -> bool:
            mine = [r for r in self.fake.requests if is_answer(r)][self.earlier :]
            return any(r.first_delta_at for r in mine)

        await await_condition(answering)
        runs = models.Run.objects.filter(thread_id=self.thread_id, kind="answer", status="running")
        return await runs.aget()

    async def ended_within(self, seconds: float) -> tuple[Any, float]:
        started = time.monotonic()
        reply = await asyncio.wait_for(self.task, 10)
        return reply, time.monotonic() - started


async def first_thread(chat: ChatKitTestClient, fake: Any) -> str:
    fake.queue(Reply(text="Hi.", when=is_answer))
    reply = await chat.create_thread("hello")
    assert reply.thread_id
    return reply.thread_id


async def check_stopped(turn: Turn, reply: Any, stopper: Any) -> str:
    """The stream ended cleanly with the partial answer; what is stored says so. The text."""
    assert reply.error is None, reply.error
    notices = [event for event in reply.events if event.type == "notice"]
    assert [n.message for n in notices] == ["A moderator stopped this answer."]
    partial = reply.answer
    assert partial and FULL.startswith(partial) and partial != FULL, partial
    rows = [
        row
        async for row in models.ThreadItem.objects.filter(thread_id=turn.thread_id).order_by(
            "created_at", "id"
        )
    ]
    assert [row.type for row in rows[-3:]] == [
        "user_message",
        "assistant_message",
        "sdk_hidden_context",
    ]
    assert rows[-2].text == partial
    assert "moderator stopped" in rows[-1].payload["content"]
    run = await models.Run.objects.filter(thread_id=turn.thread_id, kind="answer").alatest("id")
    assert (run.status, run.error_code, run.stopped_by_id) == ("cancelled", "stopped", stopper.pk)
    assert run.finished_at is not None and run.stop_requested_at is not None
    # The model's request was dropped, not read to its end.
    requests = [r for r in turn.fake.requests if is_answer(r)]
    await await_condition(lambda: turn.fake.requests[requests[-1].index].finished_at)
    assert turn.fake.requests[requests[-1].index].disconnected
    return str(partial)


def moderator_client() -> tuple[Client, Any]:
    client = staff("moderator", "view_thread", "moderate_thread")
    return client, get_user_model().objects.get(username="moderator")


async def test_the_stop_button_stops_the_answer_within_a_second(fake: Any, alice: Any) -> None:
    chat = ChatKitTestClient(user=alice)
    thread_id = await first_thread(chat, fake)
    client, moderator = await sync_to_async(moderator_client)()
    # No answer in progress: no button.
    page = await sync_to_async(client.get)(transcript_url(thread_id))
    assert page.status_code == 200 and stop_url(thread_id) not in page.content.decode()

    turn = Turn(chat, fake, thread_id)
    await turn.streaming()
    page = await sync_to_async(client.get)(transcript_url(thread_id))
    html = page.content.decode()
    assert f'action="{stop_url(thread_id)}"' in html and "csrfmiddlewaretoken" in html

    clicked = time.monotonic()
    response = await sync_to_async(client.post)(stop_url(thread_id))
    assert response.status_code == 302 and response["Location"] == transcript_url(thread_id)
    reply = await asyncio.wait_for(turn.task, 10)
    took = time.monotonic() - clicked
    assert took < STOP_WITHIN_SECONDS, took
    await check_stopped(turn, reply, moderator)
    entries = [
        entry.get_change_message()
        async for entry in LogEntry.objects.filter(object_id=thread_id, action_flag=CHANGE)
    ]
    assert entries == ["Stopped the answer in progress."]
    # The transcript names who stopped the run, and offers no button any more.
    page = await sync_to_async(client.get)(transcript_url(thread_id))
    html = page.content.decode()
    assert "stopped by moderator" in html and stop_url(thread_id) not in html
    # The thread stays active: the user may ask again.
    fake.queue(Reply(text="Again.", when=is_answer))
    again = await chat.send(thread_id, "Go on")
    assert again.answer == "Again."


async def test_locking_a_thread_stops_its_answer(fake: Any, alice: Any) -> None:
    chat = ChatKitTestClient(user=alice)
    thread_id = await first_thread(chat, fake)
    client, moderator = await sync_to_async(moderator_client)()
    turn = Turn(chat, fake, thread_id)
    await turn.streaming()
    clicked = time.monotonic()
    response = await sync_to_async(confirm)(
        client, "lock_threads", [thread_id], **{"moderation-status_reason": "Spam"}
    )
    assert response.status_code == 302
    reply = await asyncio.wait_for(turn.task, 10)
    assert time.monotonic() - clicked < STOP_WITHIN_SECONDS
    await check_stopped(turn, reply, moderator)
    assert (await models.Thread.objects.aget(pk=thread_id)).status == "locked"


async def test_closing_a_thread_stops_its_answer(fake: Any, alice: Any) -> None:
    chat = ChatKitTestClient(user=alice)
    thread_id = await first_thread(chat, fake)
    client, moderator = await sync_to_async(moderator_client)()
    turn = Turn(chat, fake, thread_id)
    await turn.streaming()
    await sync_to_async(confirm)(
        client, "close_threads", [thread_id], **{"moderation-status_reason": "Done"}
    )
    reply = await asyncio.wait_for(turn.task, 10)
    await check_stopped(turn, reply, moderator)


async def test_taking_a_thread_over_stops_its_answer(fake: Any, alice: Any) -> None:
    chat = ChatKitTestClient(user=alice)
    thread_id = await first_thread(chat, fake)
    client, moderator = await sync_to_async(moderator_client)()
    turn = Turn(chat, fake, thread_id)
    await turn.streaming()
    clicked = time.monotonic()
    url = reverse("admin:django_chatkit_thread_takeover", args=[thread_id])
    response = await sync_to_async(client.post)(url, {"action": "take"})
    assert response.status_code == 302
    reply = await asyncio.wait_for(turn.task, 10)
    assert time.monotonic() - clicked < STOP_WITHIN_SECONDS
    await check_stopped(turn, reply, moderator)
    assert (await models.Thread.objects.aget(pk=thread_id)).taken_over_by_id == moderator.pk


async def test_a_stop_flagged_by_another_process_is_read_within_a_second(
    fake: Any, alice: Any
) -> None:
    """No layer, no wake-up in this process: the run's flag alone, as another worker without a
    channel layer (or with one that lost the message) would leave it."""
    chat = ChatKitTestClient(user=alice)
    thread_id = await first_thread(chat, fake)
    moderator = await sync_to_async(moderator_client)()
    turn = Turn(chat, fake, thread_id)
    run = await turn.streaming()
    flagged = time.monotonic()
    await models.Run.objects.filter(pk=run.pk).aupdate(
        stop_requested_at=timezone.now(), stopped_by=moderator[1]
    )
    reply = await asyncio.wait_for(turn.task, 10)
    assert time.monotonic() - flagged < STOP_WITHIN_SECONDS
    await check_stopped(turn, reply, moderator[1])


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_staff_without_moderate_see_no_button_and_a_forged_post_is_refused(
    role: str, alice: Any
) -> None:
    codenames = {"viewer": ("view_thread",), "editor": ("view_thread", "change_thread")}[role]
    client = staff(role, *codenames)
    thread = models.Thread.objects.create(
        user=alice, title="t", created_at=timezone.now(), updated_at=timezone.now()
    )
    run = models.Run.objects.create(
        thread=thread, user=alice, kind="answer", model="m", started_at=timezone.now()
    )
    page = client.get(transcript_url(thread.pk))
    assert page.status_code == 200 and stop_url(thread.pk) not in page.content.decode()
    assert client.post(stop_url(thread.pk)).status_code == 403
    run.refresh_from_db()
    assert run.stop_requested_at is None and run.stopped_by is None
    assert not LogEntry.objects.filter(object_id=thread.pk).exists()


def test_the_stop_needs_a_post_with_the_csrf_token(alice: Any) -> None:
    staff("moderator", "view_thread", "moderate_thread")
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="moderator"))
    thread = models.Thread.objects.create(
        user=alice, title="t", created_at=timezone.now(), updated_at=timezone.now()
    )
    run = models.Run.objects.create(
        thread=thread, user=alice, kind="answer", model="m", started_at=timezone.now()
    )
    assert client.get(stop_url(thread.pk)).status_code == 405
    assert client.post(stop_url(thread.pk)).status_code == 403  # no token
    run.refresh_from_db()
    assert run.stop_requested_at is None
    page = client.get(transcript_url(thread.pk))
    token = page.context["csrf_token"]
    assert client.post(stop_url(thread.pk), {"csrfmiddlewaretoken": str(token)}).status_code == 302
    run.refresh_from_db()
    assert run.stop_requested_at is not None and run.stopped_by is not None


def test_nothing_to_stop_says_so(alice: Any) -> None:
    client = staff("moderator", "view_thread", "moderate_thread")
    thread = models.Thread.objects.create(
        user=alice, title="t", created_at=timezone.now(), updated_at=timezone.now()
    )
    response = client.post(stop_url(thread.pk), follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "No answer was in progress: nothing to stop."
    ]
    assert not LogEntry.objects.filter(object_id=thread.pk).exists()


def test_the_watch_also_stops_an_answer_whose_thread_was_taken_over_meanwhile(alice: Any) -> None:
    """The server decides on the takeover as the request loaded the thread (no query of its
    own); a takeover committed after that load reaches the answer through its stop watch."""
    from django_chatkit import stops

    now = timezone.now()
    thread = models.Thread.objects.create(user=alice, title="t", created_at=now, updated_at=now)
    run = models.Run.objects.create(
        thread=thread, user=alice, kind="answer", model="m", status="running", started_at=now
    )
    assert stops._flagged([run.pk]) == set()
    models.Thread.objects.filter(pk=thread.pk).update(taken_over_at=timezone.now())
    assert stops._flagged([run.pk]) == {run.pk}


async def test_one_read_per_poll_serves_every_answer_of_the_process(
    alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags of all the answers a process streams are read together: one statement every
    POLL_SECONDS, however many streams (50 streams used to make 100 reads a second), in a
    context of its own (no request's), and nothing once the last answer ends."""
    from django_chatkit import stops

    now = timezone.now()
    thread = await models.Thread.objects.acreate(
        user=alice, title="t", created_at=now, updated_at=now
    )
    runs = [
        await models.Run.objects.acreate(
            thread=thread, user=alice, kind="answer", model="m", status="running", started_at=now
        )
        for _ in range(5)
    ]
    reads: list[set[int]] = []
    read = stops._flagged
    request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")
    request_var.set("the request that started the first answer")
    contexts: list[str | None] = []

    def counted(run_pks: Any) -> set[int]:
        reads.append(set(run_pks))
        contexts.append(request_var.get(None))
        return read(run_pks)

    monkeypatch.setattr(stops, "flagged", sync_to_async(counted, thread_sensitive=False))
    stopped: list[int] = []

    def new_watch(run_pk: int) -> stops.StopWatch:
        return stops.StopWatch(thread.pk, lambda: run_pk, lambda: stopped.append(run_pk))

    watches = [new_watch(run.pk) for run in runs]
    for watch in watches:
        watch.start()
    try:
        await await_condition(lambda: len(reads) >= 2, timeout=10)
        assert all(ids == {run.pk for run in runs} for ids in reads)
        assert set(contexts) == {None}
        await models.Run.objects.filter(pk=runs[2].pk).aupdate(stop_requested_at=timezone.now())
        await await_condition(lambda: stopped == [runs[2].pk], timeout=10)
        assert [watch.stopped for watch in watches] == [False, False, True, False, False]
    finally:
        for watch in watches:
            watch.close()
    poller = stops._pollers[asyncio.get_running_loop()]
    assert poller.task is not None
    # The task ends: nothing polls while no answer streams.
    await asyncio.wait_for(poller.task, stops.POLL_SECONDS * 4)
    assert not poller.watches
