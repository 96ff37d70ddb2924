"""Whose fault is it: a body that is not a ChatKit request is the client's (400); a stored row
that no longer validates is the server's (a logged 500, naming the row, telling the client
nothing of it); a well-formed request that makes no sense stays the client's (400)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from chatkit.types import FileAttachment
from django.test import override_settings

from django_chatkit import models
from django_chatkit.context import ChatKitContext
from django_chatkit.errors import SERVER_FAULT
from django_chatkit.ids import new_typed_id
from django_chatkit.store import DjangoStore
from django_chatkit.testing import user_input
from tests.factories import new_thread

pytestmark = pytest.mark.django_db(transaction=True)


def fault_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "django_chatkit" and record.levelno == logging.ERROR
    ]


def assert_server_fault(status: int, body: dict[str, Any], *secrets: str) -> None:
    assert status == 500
    assert body == {"error": {"code": "internal_error", "message": SERVER_FAULT}}
    for secret in secrets:  # nothing of the row reaches the client
        assert secret not in str(body)


async def corrupt_item(thread_id: str, item_id: str, payload: object) -> None:
    updated = await models.ThreadItem.objects.filter(thread_id=thread_id, item_id=item_id).aupdate(
        payload=payload
    )
    assert updated == 1


class TestCorruptItem:
    async def test_listing_items_is_a_logged_500_naming_thread_and_item(self, http_alice, caplog):
        thread_id, (_, answer) = await new_thread(http_alice)
        await corrupt_item(
            thread_id, answer["id"], {**answer, "content": "no longer a list", "secret": "s3"}
        )
        for op, params in [
            ("items.list", {"thread_id": thread_id}),
            ("threads.get_by_id", {"thread_id": thread_id}),
        ]:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="django_chatkit"):
                reply = await http_alice.request(op, **params)
                status, body = reply.status_code, reply.data
            assert_server_fault(status, body, "s3", "content")
            [line] = fault_logs(caplog)
            assert thread_id in line and answer["id"] in line and op in line

    async def test_a_payload_naming_nothing_is_logged_with_the_request_thread(
        self, http_alice, caplog
    ):
        thread_id, (user_msg, _) = await new_thread(http_alice)
        await corrupt_item(thread_id, user_msg["id"], "garbage")
        with caplog.at_level(logging.ERROR, logger="django_chatkit"):
            reply = await http_alice.request("items.list", thread_id=thread_id)
            status, body = reply.status_code, reply.data
        assert_server_fault(status, body, "garbage")
        [line] = fault_logs(caplog)
        assert f"thread {thread_id}" in line

    async def test_a_turn_naming_a_corrupt_item_is_refused_before_streaming(
        self, http_alice, caplog
    ):
        thread_id, (user_msg, _) = await new_thread(http_alice)
        await corrupt_item(thread_id, user_msg["id"], {**user_msg, "type": "no_such_type"})
        with caplog.at_level(logging.ERROR, logger="django_chatkit"):
            response = await http_alice.raw_post(
                {
                    "type": "threads.retry_after_item",
                    "params": {"thread_id": thread_id, "item_id": user_msg["id"]},
                }
            )
        assert response["Content-Type"] == "application/json"
        assert_server_fault(response.status_code, response.json())
        [line] = fault_logs(caplog)
        assert thread_id in line and user_msg["id"] in line

    @override_settings(CHATKIT={"SERVER": "django_chatkit.agent_server.AgentChatKitServer"})
    async def test_a_corrupt_history_ends_the_stream_with_an_error_event(
        self, http_alice, fake_openai, caplog
    ):
        fake_openai.queue("First answer.")
        thread_id, (_, answer) = await new_thread(http_alice)
        await corrupt_item(thread_id, answer["id"], {**answer, "created_at": "yesterday"})
        calls = len(fake_openai.requests)
        with caplog.at_level(logging.ERROR, logger="django_chatkit"):
            reply = await http_alice.request(
                "threads.add_user_message", thread_id=thread_id, input=user_input("again")
            )
            status, events = reply.status_code, reply.json_events
        assert status == 200
        assert events[-1] == {
            "type": "error",
            "code": "custom",
            "message": SERVER_FAULT,
            "allow_retry": False,  # retrying cannot mend the row
        }
        assert len(fake_openai.requests) == calls  # the model never saw a history with a hole
        [line] = fault_logs(caplog)
        assert thread_id in line and answer["id"] in line


class TestCorruptThread:
    async def test_reading_or_continuing_a_corrupt_thread_is_a_logged_500(self, http_alice, caplog):
        thread_id, _ = await new_thread(http_alice)
        await models.Thread.objects.filter(id=thread_id).aupdate(metadata=["not", "a", "dict"])
        for op, params in [
            ("threads.get_by_id", {"thread_id": thread_id}),
            ("threads.list", {}),
            ("threads.add_user_message", {"thread_id": thread_id, "input": user_input("hi")}),
        ]:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="django_chatkit"):
                response = await http_alice.raw_post({"type": op, "params": params})
            assert not response.streaming, op
            assert_server_fault(response.status_code, response.json(), "not")
            [line] = fault_logs(caplog)
            assert thread_id in line, op
        # Stored data is not touched by a failed read.
        assert await models.ThreadItem.objects.filter(thread_id=thread_id).acount() == 2


class TestCorruptAttachment:
    async def test_a_message_carrying_it_ends_with_an_error_event(self, http_alice, alice, caplog):
        attachment = FileAttachment(
            id=new_typed_id("attachment"), name="notes.pdf", mime_type="application/pdf"
        )
        await DjangoStore().save_attachment(attachment, ChatKitContext.for_user(alice))
        await models.Attachment.objects.filter(id=attachment.id).aupdate(
            payload={"id": attachment.id, "type": "file", "name": ["not", "a", "name"]}
        )
        thread_id, _ = await new_thread(http_alice)
        with caplog.at_level(logging.ERROR, logger="django_chatkit"):
            reply = await http_alice.request(
                "threads.add_user_message",
                thread_id=thread_id,
                input=user_input("see attached", [attachment.id]),
            )
            status, events = reply.status_code, reply.json_events
        assert status == 200
        assert events[-1] == {
            "type": "error",
            "code": "custom",
            "message": SERVER_FAULT,
            "allow_retry": False,
        }
        [line] = fault_logs(caplog)
        assert attachment.id in line and thread_id in line


class TestClientMistakesStayClientMistakes:
    async def test_a_body_that_is_not_a_request_is_a_400_naming_the_problem(self, http_alice):
        reply = await http_alice.request("threads.list", limit="many")
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "invalid_request"
        assert "params.limit" in body["error"]["message"]

    @override_settings(CHATKIT={"SERVER": "tests.servers.DictatingServer"})
    async def test_a_value_error_of_the_sdk_is_a_400(self, http_alice):
        # The SDK decodes the audio itself: a body that is valid JSON but not base64.
        reply = await http_alice.request(
            "input.transcribe", audio_base64="not base64!", mime_type="audio/webm"
        )
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "invalid_request"
        reply = await http_alice.request(
            "input.transcribe",
            audio_base64=base64.b64encode(b"hello").decode(),
            mime_type="audio/webm",
        )
        ok, transcript = reply.status_code, reply.data
        assert ok == 200 and transcript == {"text": "5 bytes"}

    async def test_a_foreign_thread_is_still_a_404(self, http_alice, http_bob):
        thread_id, _ = await new_thread(http_alice)
        await models.Thread.objects.filter(id=thread_id).aupdate(metadata=["not", "a", "dict"])
        reply = await http_bob.request("threads.get_by_id", thread_id=thread_id)
        status, body = reply.status_code, reply.data
        assert status == 404 and body["error"]["code"] == "not_found"
