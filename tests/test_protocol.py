"""Every ChatKit protocol op through the real view, with a session and CSRF like a browser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.test import AsyncClient, RequestFactory, override_settings

from django_chatkit import models, signals
from django_chatkit.context import OWNER_KEY_HEADER
from django_chatkit.request_body import MAX_DEPTH
from django_chatkit.testing import CSRF_TOKEN, ChatKitTestClient, aiter_sse, user_input
from django_chatkit.titles import MAX_TITLE_LENGTH
from django_chatkit.widget import owner_key
from tests.conftest import ENDPOINT

pytestmark = pytest.mark.django_db(transaction=True)


def json_depth(value) -> int:
    """Levels of nested arrays and objects, counting the outermost."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((json_depth(child) for child in value), default=0)
    return 0


def types_of(events):
    return [event["type"] for event in events]


def assistant_text(events) -> str:
    done = [
        e["item"]
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
    ]
    text: str = done[-1]["content"][0]["text"]
    return text


async def start_thread(
    http: ChatKitTestClient, text: str = "hello"
) -> tuple[str, list[dict[str, Any]]]:
    reply = await http.request("threads.create", input=user_input(text))
    status, events = reply.status_code, reply.json_events
    assert status == 200, reply.data or events
    return events[0]["thread"]["id"], events


async def items_of(http: ChatKitTestClient, thread_id: str) -> list[dict[str, Any]]:
    reply = await http.request("items.list", thread_id=thread_id, order="asc", limit=100)
    status, page = reply.status_code, reply.data
    assert status == 200, page
    items: list[dict[str, Any]] = page["data"]
    return items


class TestStreamingOps:
    async def test_threads_create_streams_events_in_order_and_persists_them(self, http_alice):
        response = await http_alice.raw_post(
            {"type": "threads.create", "params": {"input": user_input("hi there")}}
        )
        assert response.status_code == 200
        # The charset is said: non-browser clients would decode the UTF-8 text wrongly.
        assert response["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response["Cache-Control"] == "no-cache"
        assert response["X-Accel-Buffering"] == "no"
        events = [event async for event in aiter_sse(response.streaming_content)]
        assert types_of(events) == [
            "thread.created",
            "thread.item.done",  # the user message, stored before the responder runs
            "stream_options",
            "thread.item.added",
            "thread.item.updated",  # content part added
            "thread.item.updated",
            "thread.item.updated",
            "thread.item.updated",  # three text deltas
            "thread.item.updated",  # content part done
            "thread.item.done",
        ]
        assert assistant_text(events) == "echo: hi there"
        thread_id = events[0]["thread"]["id"]
        stored = await items_of(http_alice, thread_id)
        assert [item["type"] for item in stored] == ["user_message", "assistant_message"]
        assert stored[0]["content"][0]["text"] == "hi there"

    async def test_add_user_message_continues_the_thread(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        reply = await http_alice.request(
            "threads.add_user_message", thread_id=thread_id, input=user_input("again")
        )
        status, events = reply.status_code, reply.json_events
        assert status == 200
        assert assistant_text(events) == "echo: again"
        assert len(await items_of(http_alice, thread_id)) == 4

    async def test_retry_after_item_replaces_the_answer(self, http_alice):
        thread_id, _ = await start_thread(http_alice, "first")
        await http_alice.request(
            "threads.add_user_message", thread_id=thread_id, input=user_input("second")
        )
        items = await items_of(http_alice, thread_id)
        first_user = items[0]["id"]
        reply = await http_alice.request(
            "threads.retry_after_item", thread_id=thread_id, item_id=first_user
        )
        status, events = reply.status_code, reply.json_events
        assert status == 200 and assistant_text(events) == "echo: first"
        after = await items_of(http_alice, thread_id)
        assert [i["type"] for i in after] == ["user_message", "assistant_message"]
        assert after[0]["id"] == first_user and after[1]["id"] != items[1]["id"]

    async def test_retry_of_a_non_user_message_is_a_400(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        assistant = (await items_of(http_alice, thread_id))[1]["id"]
        reply = await http_alice.request(
            "threads.retry_after_item", thread_id=thread_id, item_id=assistant
        )
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "invalid_request"

    async def test_client_tool_output_completes_the_pending_call(self, http_alice):
        thread_id, events = await start_thread(http_alice, "/client_tool")
        assert events[-1]["item"]["type"] == "client_tool_call"
        reply = await http_alice.request(
            "threads.add_client_tool_output", thread_id=thread_id, result={"city": "Lyon"}
        )
        status, events = reply.status_code, reply.json_events
        assert status == 200 and assistant_text(events) == "continued"
        call = (await items_of(http_alice, thread_id))[1]
        assert call["status"] == "completed" and call["output"] == {"city": "Lyon"}

    async def test_client_tool_output_without_a_pending_call_is_a_400(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        reply = await http_alice.request(
            "threads.add_client_tool_output", thread_id=thread_id, result=1
        )
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "invalid_request"

    async def test_structured_input_is_recorded_and_answered(self, http_alice):
        thread_id, events = await start_thread(http_alice, "/form")
        form_id = events[-1]["item"]["id"]
        reply = await http_alice.request(
            "threads.add_structured_input",
            thread_id=thread_id,
            item_id=form_id,
            input={"answers": {"q1": {"values": ["Ada"]}}},
        )
        status, events = reply.status_code, reply.json_events
        assert status == 200
        assert "thread.item.replaced" in types_of(events)
        form = next(i for i in await items_of(http_alice, thread_id) if i["id"] == form_id)
        assert form["status"] == "answered"
        assert form["inputs"][0]["answer"]["values"] == ["Ada"]

    async def test_custom_action_from_a_widget(self, http_alice):
        thread_id, events = await start_thread(http_alice, "/widget")
        widget_id = events[-1]["item"]["id"]
        reply = await http_alice.request(
            "threads.custom_action",
            thread_id=thread_id,
            item_id=widget_id,
            action={"type": "track", "payload": {}},
        )
        status, events = reply.status_code, reply.json_events
        assert status == 200 and assistant_text(events) == "action track"

    async def test_custom_action_from_a_non_widget_is_a_400(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        user_item = (await items_of(http_alice, thread_id))[0]["id"]
        reply = await http_alice.request(
            "threads.custom_action",
            thread_id=thread_id,
            item_id=user_item,
            action={"type": "x", "payload": {}},
        )
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "invalid_request"

    async def test_a_failing_responder_keeps_the_user_message(self, http_alice):
        thread_id, events = await start_thread(http_alice, "/fail")
        assert events[-1] == {"type": "error", "code": "stream.error", "allow_retry": True}
        assert [i["type"] for i in await items_of(http_alice, thread_id)] == ["user_message"]


class TestJsonOps:
    async def test_get_by_id_returns_the_thread_and_its_first_items(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        reply = await http_alice.request("threads.get_by_id", thread_id=thread_id)
        status, thread = reply.status_code, reply.data
        assert status == 200
        assert thread["id"] == thread_id and thread["status"] == {"type": "active"}
        assert len(thread["items"]["data"]) == 2
        assert "metadata" not in json.dumps(thread["items"])

    async def test_list_update_delete(self, http_alice):
        first, _ = await start_thread(http_alice)
        second, _ = await start_thread(http_alice)
        reply = await http_alice.request("threads.list", limit=1, order="desc")
        status, page = reply.status_code, reply.data
        assert status == 200 and [t["id"] for t in page["data"]] == [second]
        assert page["has_more"] is True and page["after"] == second
        reply = await http_alice.request("threads.list", limit=1, after=page["after"])
        status, page = reply.status_code, reply.data
        assert [t["id"] for t in page["data"]] == [first] and page["has_more"] is False
        assert page.get("after") is None  # no cursor past the last page

        reply = await http_alice.request("threads.update", thread_id=first, title="Lyon")
        status, renamed = reply.status_code, reply.data
        assert status == 200 and renamed["title"] == "Lyon"
        assert await models.Thread.objects.filter(title="Lyon").acount() == 1

        reply = await http_alice.request("threads.delete", thread_id=first)
        status, body = reply.status_code, reply.data
        assert status == 200 and body == {}
        assert not await models.Thread.objects.filter(id=first).aexists()
        assert not await models.ThreadItem.objects.filter(thread_id=first).aexists()

    async def test_titles_are_bounded(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        reply = await http_alice.request(
            "threads.update", thread_id=thread_id, title="x" * (MAX_TITLE_LENGTH + 1)
        )
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "invalid_request"
        assert str(MAX_TITLE_LENGTH) in body["error"]["message"]
        reply = await http_alice.request(
            "threads.update", thread_id=thread_id, title="y" * MAX_TITLE_LENGTH
        )
        status, body = reply.status_code, reply.data
        assert status == 200 and body["title"] == "y" * MAX_TITLE_LENGTH

    async def test_items_list_hides_hidden_context(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        thread = await models.Thread.objects.aget(id=thread_id)
        await models.ThreadItem.objects.acreate(
            thread=thread,
            item_id="shcx_x",
            type="sdk_hidden_context",
            created_at=thread.created_at,
            payload={
                "id": "shcx_x",
                "thread_id": thread_id,
                "type": "sdk_hidden_context",
                "created_at": "2030-01-01T00:00:00",
                "content": "secret",
            },
        )
        assert "sdk_hidden_context" not in [
            i["type"] for i in await items_of(http_alice, thread_id)
        ]

    async def test_feedback_is_stored_and_changeable(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        answer = (await items_of(http_alice, thread_id))[1]["id"]
        for kind in ("positive", "negative"):
            reply = await http_alice.request(
                "items.feedback", thread_id=thread_id, item_ids=[answer], kind=kind
            )
            status, body = reply.status_code, reply.data
            assert status == 200 and body == {}
        votes = [(f.item_id, f.kind) async for f in models.Feedback.objects.all()]
        assert votes == [(answer, "negative")]

    async def test_feedback_for_an_unknown_item_is_a_404(self, http_alice):
        thread_id, _ = await start_thread(http_alice)
        reply = await http_alice.request(
            "items.feedback", thread_id=thread_id, item_ids=["msg_nope"], kind="positive"
        )
        status, body = reply.status_code, reply.data
        assert status == 404 and body["error"]["code"] == "not_found"

    async def test_sync_custom_action(self, http_alice):
        thread_id, events = await start_thread(http_alice, "/widget")
        widget_id = events[-1]["item"]["id"]
        reply = await http_alice.request(
            "threads.sync_custom_action",
            thread_id=thread_id,
            item_id=widget_id,
            action={"type": "refresh", "payload": {}},
        )
        status, body = reply.status_code, reply.data
        assert status == 200 and body["updated_item"]["id"] == widget_id

    @pytest.mark.parametrize(
        ("op", "params"),
        [
            ("attachments.create", {"name": "a.txt", "size": 3, "mime_type": "text/plain"}),
            ("attachments.delete", {"attachment_id": "atc_1"}),
            ("input.transcribe", {"audio_base64": "AAAA", "mime_type": "audio/webm"}),
        ],
    )
    async def test_ops_this_server_does_not_offer_are_a_clear_400(self, http_alice, op, params):
        reply = await http_alice.request(op, **params)
        status, body = reply.status_code, reply.data
        assert status == 400 and body["error"]["code"] == "unsupported_operation"


class TestThreadStatus:
    async def lock(self, thread_id: str, status: str, reason: str = "") -> None:
        await models.Thread.objects.filter(id=thread_id).aupdate(
            status=status, status_reason=reason
        )

    @pytest.mark.parametrize("status", ["locked", "closed"])
    async def test_new_messages_are_refused_with_an_error_event(self, http_alice, status):
        thread_id, _ = await start_thread(http_alice)
        await self.lock(thread_id, status, "Spam review")
        before = await models.ThreadItem.objects.filter(thread_id=thread_id).acount()
        reply = await http_alice.request(
            "threads.add_user_message", thread_id=thread_id, input=user_input("more")
        )
        status_code, events = reply.status_code, reply.json_events
        assert status_code == 200
        assert events == [
            {
                "type": "error",
                "code": "custom",
                "allow_retry": False,
                "message": f"This conversation is {status} and cannot take new messages. "
                "Reason: Spam review",
            }
        ]
        assert await models.ThreadItem.objects.filter(thread_id=thread_id).acount() == before

    async def test_retries_tool_outputs_and_actions_are_refused_too(self, http_alice):
        thread_id, events = await start_thread(http_alice, "/widget")
        widget_id = events[-1]["item"]["id"]
        user_id = events[1]["item"]["id"]
        await self.lock(thread_id, "locked")
        for op, params in [
            ("threads.retry_after_item", {"item_id": user_id}),
            ("threads.add_client_tool_output", {"result": 1}),
            ("threads.custom_action", {"item_id": widget_id, "action": {"type": "a"}}),
            ("threads.add_structured_input", {"item_id": widget_id, "input": {}}),
        ]:
            reply = await http_alice.request(op, thread_id=thread_id, **params)
            status, events = reply.status_code, reply.json_events
            assert status == 200 and events[0]["type"] == "error", op
            assert events[0]["allow_retry"] is False
        reply = await http_alice.request(
            "threads.sync_custom_action",
            thread_id=thread_id,
            item_id=widget_id,
            action={"type": "a"},
        )
        status, body = reply.status_code, reply.data
        assert status == 409 and body["error"]["code"] == "thread_locked"
        assert await models.ThreadItem.objects.filter(thread_id=thread_id).acount() == 2

    async def test_a_locked_thread_can_be_read_and_deleted_but_not_renamed(self, http_alice):
        # Renaming is refused as new messages are (tests/test_admin_moderation.py has the rest);
        # deleting is not: only a legal hold keeps a thread from its owner's delete.
        thread_id, _ = await start_thread(http_alice)
        await self.lock(thread_id, "locked")
        assert (
            await http_alice.request("threads.get_by_id", thread_id=thread_id)
        ).status_code == 200
        reply = await http_alice.request("threads.update", thread_id=thread_id, title="x")
        assert reply.status_code == 409 and reply.data["error"]["code"] == "thread_locked"
        assert (await http_alice.request("threads.delete", thread_id=thread_id)).status_code == 200


class TestSignals:
    async def test_thread_created_item_saved_and_feedback_received(self, http_alice, alice):
        received = []

        def record(signal_name):
            def receiver(sender, **kwargs):
                received.append((signal_name, kwargs))

            return receiver

        receivers = {
            signals.thread_created: record("thread_created"),
            signals.item_saved: record("item_saved"),
            signals.feedback_received: record("feedback_received"),
        }
        for signal, receiver in receivers.items():
            signal.connect(receiver)
        try:
            thread_id, _ = await start_thread(http_alice)
            answer = (await items_of(http_alice, thread_id))[1]["id"]
            await http_alice.request(
                "items.feedback", thread_id=thread_id, item_ids=[answer], kind="positive"
            )
        finally:
            for signal, receiver in receivers.items():
                signal.disconnect(receiver)
        names = [name for name, _ in received]
        assert names == ["thread_created", "item_saved", "item_saved", "feedback_received"]
        assert received[0][1]["thread"].id == thread_id
        assert received[0][1]["context"].user.pk == alice.pk
        assert received[2][1]["item"].type == "assistant_message"
        assert received[3][1]["item_ids"] == [answer] and received[3][1]["kind"] == "positive"


class TestHttpContract:
    async def test_only_post(self, http_alice):
        for method in ("get", "put", "delete", "options"):
            response = await getattr(http_alice.client, method)(ENDPOINT)
            assert response.status_code == 405, method
            assert json.loads(response.content)["error"]["code"] == "method_not_allowed"
            assert response["Allow"] == "POST"

    async def test_signed_out_is_401(self, http_anonymous):
        reply = await http_anonymous.request("threads.list")
        status, body = reply.status_code, reply.data
        assert status == 401 and body["error"]["code"] == "not_authenticated"

    async def test_csrf_is_enforced_with_a_json_403(self, alice):
        client = AsyncClient(enforce_csrf_checks=True)
        await client.aforce_login(alice)
        response = await client.post(
            ENDPOINT, data=b'{"type":"threads.list","params":{}}', content_type="application/json"
        )
        assert response.status_code == 403
        assert json.loads(response.content)["error"]["code"] == "csrf_failed"
        client.cookies["csrftoken"] = CSRF_TOKEN
        response = await client.post(
            ENDPOINT,
            data=b'{"type":"threads.list","params":{}}',
            content_type="application/json",
            headers={"X-CSRFToken": "w" * 32},
        )
        assert response.status_code == 403

    async def test_oversized_body_is_413(self, http_alice, settings):
        settings.CHATKIT = {**settings.CHATKIT, "MAX_REQUEST_BYTES": 200}
        body = {"type": "threads.create", "params": {"input": user_input("x" * 500)}}
        response = await http_alice.raw_post(body)
        assert response.status_code == 413
        assert json.loads(response.content)["error"]["code"] == "request_too_large"
        assert await models.Thread.objects.acount() == 0

    @pytest.mark.parametrize(
        ("raw", "code"),
        [
            (b"{not json", "invalid_json"),
            (b"\xff\xfe", "invalid_json"),
            (b"[1, 2]", "invalid_request"),
            (b'{"type": "threads.explode", "params": {}}', "unknown_operation"),
            (b'{"params": {}}', "unknown_operation"),
            (b'{"type": "threads.list", "params": {"limit": "many"}}', "invalid_request"),
            (b'{"type": "threads.create", "params": {}}', "invalid_request"),
            (
                b'{"type": "threads.update", "params": {"thread_id": "t", "title": "a\\u0000"}}',
                "invalid_request",
            ),
            (
                b'{"type": "threads.update", "params": {"thread_id": "t", "title": "\\ud800"}}',
                "invalid_request",
            ),
        ],
    )
    async def test_client_mistakes_are_400_json(self, http_alice, raw, code):
        response = await http_alice.raw_post(raw)
        assert response.status_code == 400
        error = json.loads(response.content)["error"]
        assert error["code"] == code and error["message"]

    async def test_bodies_nested_up_to_the_limit_are_stored_deeper_ones_are_400(self, http_alice):
        """MAX_DEPTH is what every database stores: MariaDB's JSON columns refuse a document
        nested 32 levels deep, which a deeper body's tag data would make (a 500 mid-stream)."""

        def body(depth: int) -> dict[str, Any]:
            tag: dict[str, Any] = {"type": "input_tag", "id": "t", "text": "t", "data": {"v": []}}
            content = {**user_input("x"), "content": [tag]}
            request = {"type": "threads.create", "params": {"input": content}}
            innermost = tag["data"]["v"]
            while json_depth(request) < depth:
                innermost.append([])
                innermost = innermost[0]
            assert json_depth(request) == depth
            return request

        reply = await http_alice.post(body(MAX_DEPTH))
        assert reply.status_code == 200
        events = reply.json_events
        assert "error" not in types_of(events), events
        stored = await items_of(http_alice, events[0]["thread"]["id"])
        sent_tag = body(MAX_DEPTH)["params"]["input"]["content"][0]
        assert stored[0]["content"][0]["data"] == sent_tag["data"]

        reply = await http_alice.post(body(MAX_DEPTH + 1))
        assert reply.status_code == 400
        error = reply.data["error"]
        assert error["code"] == "invalid_request" and "nested too deeply" in error["message"]
        assert await models.Thread.objects.acount() == 1

    @pytest.mark.parametrize(
        ("op", "params"),
        [
            ("threads.add_user_message", {"input": user_input("x")}),
            ("threads.retry_after_item", {"item_id": "msg_x"}),
            ("threads.add_client_tool_output", {"result": 1}),
            ("threads.custom_action", {"action": {"type": "a"}}),
            ("threads.get_by_id", {}),
            ("items.list", {}),
            ("threads.update", {"title": "x"}),
            ("threads.delete", {}),
        ],
    )
    async def test_missing_thread_is_a_404_before_any_stream(self, http_alice, op, params):
        response = await http_alice.raw_post(
            {"type": op, "params": {"thread_id": "thr_missing", **params}}
        )
        assert response.status_code == 404 and not response.streaming
        assert json.loads(response.content)["error"]["code"] == "not_found"

    async def test_missing_attachment_is_a_404_before_the_thread_is_made(self, http_alice):
        reply = await http_alice.request(
            "threads.create", input=user_input("x", attachments=["atc_missing"])
        )
        status, body = reply.status_code, reply.data
        assert status == 404 and body["error"]["code"] == "not_found"
        assert await models.Thread.objects.acount() == 0


class TestAnonymous:
    @override_settings(CHATKIT={"SERVER": "tests.servers.ScriptedServer", "ALLOW_ANONYMOUS": True})
    async def test_visitors_chat_by_session_and_only_see_their_own(self, db):
        visitor, stranger = (
            ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True)) for _ in range(2)
        )
        thread_id, _ = await start_thread(visitor)
        reply = await visitor.request("threads.list")
        assert reply.status_code == 200 and [t["id"] for t in reply.data["data"]] == [thread_id]
        reply = await stranger.request("threads.list")
        assert reply.status_code == 200 and reply.data["data"] == []
        reply = await stranger.request("threads.get_by_id", thread_id=thread_id)
        assert reply.status_code == 404
        row = await models.Thread.objects.aget(id=thread_id)
        assert row.user_id is None and len(row.anonymous_key) >= 32

    @override_settings(CHATKIT={"SERVER": "tests.servers.ScriptedServer", "ALLOW_ANONYMOUS": True})
    async def test_answers_carry_the_owner_key_the_next_page_renders(self, db):
        # A new visitor's page had no owner key to render (there was no session yet): the
        # widget's thread memory learns it from the first answer, streamed or not.
        visitor = ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True))
        created = await visitor.raw_post(
            {"type": "threads.create", "params": {"input": user_input("hi")}}
        )
        assert created.status_code == 200 and created.streaming
        key = created[OWNER_KEY_HEADER]
        listed = await visitor.raw_post({"type": "threads.list", "params": {}})
        assert listed.status_code == 200 and not listed.streaming
        assert listed[OWNER_KEY_HEADER] == key
        # ...the key the tag renders for this session from now on.
        page_request = RequestFactory().get("/")
        page_request.user = AnonymousUser()
        page_request.session = await visitor.client.asession()
        assert await sync_to_async(owner_key)(page_request) == key
        # Another visitor gets another key; a refused request tells nothing.
        stranger = ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True))
        other = await stranger.raw_post({"type": "threads.list", "params": {}})
        assert other[OWNER_KEY_HEADER] not in ("", key)
        refused = await stranger.client.post(  # no X-CSRFToken header
            ENDPOINT,
            data=b'{"type": "threads.list", "params": {}}',
            content_type="application/json",
        )
        assert refused.status_code == 403 and OWNER_KEY_HEADER not in refused

    async def test_a_users_answers_carry_their_owner_key(self, alice, http_alice):
        listed = await http_alice.raw_post({"type": "threads.list", "params": {}})
        assert listed.status_code == 200
        page_request = RequestFactory().get("/")
        page_request.user = alice
        assert listed[OWNER_KEY_HEADER] == owner_key(page_request) != ""
