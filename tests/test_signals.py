"""Every signal of django_chatkit.signals reaches receivers the way Django's own model signals
do: a plain function, called after the change is committed, free to use the ORM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.dispatch import Signal
from django.test import override_settings

from django_chatkit import models, signals
from django_chatkit.testing import ChatKitTestClient, Reply

pytestmark = pytest.mark.django_db(transaction=True)

AGENT_SETTINGS = {
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    "AGENT": {"model": "answer-model", "instructions": "Be brief."},
    "TITLE_MODEL": "title-model",
    "OPENAI_MAX_RETRIES": 0,
}


class Seen:
    """What ORM-using receivers read from the database, signal by signal."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}

    def add(self, name: str, row: Any) -> None:
        self.rows.setdefault(name, []).append(row)


@pytest.fixture
def seen() -> Iterator[Seen]:
    seen = Seen()

    def thread_created(sender: Any, thread: Any, **kwargs: Any) -> None:
        owner = models.Thread.objects.select_related("user").get(id=thread.id).user
        seen.add("thread_created", owner.username if owner else None)

    def item_saved(sender: Any, thread_id: str, item: Any, **kwargs: Any) -> None:
        row = models.ThreadItem.objects.get(thread_id=thread_id, item_id=item.id)
        seen.add("item_saved", (row.type, row.text))

    def feedback_received(sender: Any, thread_id: str, item_ids: list[str], **kwargs: Any) -> None:
        kinds = models.Feedback.objects.filter(thread_id=thread_id, item_id__in=item_ids)
        seen.add("feedback_received", list(kinds.values_list("kind", flat=True)))

    def run_finished(sender: Any, run_id: int, status: str, **kwargs: Any) -> None:
        run = models.Run.objects.get(pk=run_id)
        seen.add("run_finished", (run.kind, run.status, status))

    connected: list[tuple[Signal, Callable[..., None]]] = [
        (signals.thread_created, thread_created),
        (signals.item_saved, item_saved),
        (signals.feedback_received, feedback_received),
        (signals.run_finished, run_finished),
    ]
    for signal, receiver in connected:
        signal.connect(receiver)
    try:
        yield seen
    finally:
        for signal, receiver in connected:
            signal.disconnect(receiver)


def is_answer(request: Any) -> bool:
    return bool(request.model == "answer-model")


@pytest.fixture
def chat(alice, fake_openai) -> Iterator[ChatKitTestClient]:
    fake_openai.default_reply = Reply(text="Trip to Lyon")  # the title
    with override_settings(CHATKIT=AGENT_SETTINGS):
        yield ChatKitTestClient(user=alice)


async def test_receivers_using_the_orm_see_what_each_signal_reports(chat, fake_openai, seen, alice):
    fake_openai.queue(Reply(text="Lyon is lovely.", when=is_answer))
    turn = await chat.create_thread("Tell me about Lyon")
    assert turn.error is None and turn.answer == "Lyon is lovely."
    answer = turn.done_items[-1]
    vote = await chat.request(
        "items.feedback", thread_id=turn.thread_id, item_ids=[answer.id], kind="positive"
    )
    assert vote.status_code == 200

    assert seen.rows["thread_created"] == [alice.username]
    assert seen.rows["item_saved"] == [
        ("user_message", "Tell me about Lyon"),
        ("assistant_message", "Lyon is lovely."),
    ]
    assert seen.rows["feedback_received"] == [["positive"]]
    assert sorted(seen.rows["run_finished"]) == [
        ("answer", "completed", "completed"),
        ("title", "completed", "completed"),
    ]


async def test_a_failed_run_is_reported_once_its_row_says_so(chat, fake_openai, seen):
    fake_openai.queue(Reply(status=500, when=is_answer))
    turn = await chat.create_thread("Tell me about Lyon")
    assert turn.error is not None and turn.error.allow_retry is True
    assert ("answer", "failed", "failed") in seen.rows["run_finished"]
