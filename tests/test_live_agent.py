"""The agent server under a real ASGI server process, talking to the fake OpenAI over loopback:
a client that disconnects mid-answer leaves the partial text stored, the Run marked cancelled,
and the upstream request closed."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from django_chatkit.models import Run, ThreadItem
from django_chatkit.testing import (
    FakeOpenAI,
    Reply,
    iter_sse,
    live_client,
    request_body,
    user_input,
)
from tests.live_server import SERVERS, live_asgi_server
from tests.test_live_asgi import TEXT_DELTA
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORDS = [f"word{i} " for i in range(200)]
SERVER_SETTINGS = {
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    "AGENT": {"model": "answer-model", "instructions": "Be brief."},
    "GENERATE_TITLES": False,
    "OPENAI_MAX_RETRIES": 0,
}


@pytest.mark.parametrize("kind", SERVERS)
def test_disconnect_mid_answer_cancels_everything_and_keeps_the_partial_text(kind):
    user = get_user_model().objects.create_user("dora", password="pw")
    with FakeOpenAI() as fake:
        fake.queue(Reply(tokens=WORDS, token_delay=0.05))
        env = {
            **fake.env,
            "CHATKIT_TEST_SETTINGS": json.dumps(SERVER_SETTINGS),
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
        }
        with live_asgi_server(kind, extra_env=env) as server, live_client(server.url, user) as http:
            received = ""
            with http.stream(
                "POST",
                "/chatkit/",
                content=request_body("threads.create", input=user_input("Tell me a story")),
            ) as r:
                assert r.status_code == 200, server.describe()
                for event in iter_sse(r.iter_raw()):
                    if event["type"] == "thread.created":
                        thread_id = event["thread"]["id"]
                    if (
                        event["type"] == "thread.item.updated"
                        and event["update"]["type"] == TEXT_DELTA
                    ):
                        received += event["update"]["delta"]
                        if received.count(" ") >= 5:
                            break  # leaving the block closes the connection mid-answer

            def cancelled_run():
                return Run.objects.filter(thread_id=thread_id, status="cancelled").first()

            run = wait_for(cancelled_run, describe=server.describe)
            [upstream] = fake.wait_for_requests(1, timeout=5)
            assert upstream.disconnected and not upstream.completed
            assert upstream.finished_at is not None
            assert upstream.finished_at - upstream.started_at < 0.05 * len(WORDS) / 2

            items = wait_for(
                lambda: (
                    list(
                        ThreadItem.objects.filter(thread_id=thread_id)
                        .order_by("created_at", "id")
                        .values_list("type", "text")
                    )
                    if ThreadItem.objects.filter(
                        thread_id=thread_id, type="sdk_hidden_context"
                    ).exists()
                    else None
                ),
                describe=server.describe,
            )
            assert [kind_ for kind_, _ in items] == [
                "user_message",
                "assistant_message",
                "sdk_hidden_context",
            ]
            partial = items[1][1]
            full = "".join(WORDS)
            assert partial.startswith(received) and full.startswith(partial)
            assert len(partial) < len(full) / 2
            assert run.error_code == "cancelled" and run.finished_at is not None
            assert run.first_token_at is not None
