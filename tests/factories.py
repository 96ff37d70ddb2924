"""Shared setup for the cross-owner and fuzz tests: a populated thread, snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from chatkit.types import FileAttachment
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db.models import Model

from django_chatkit import models
from django_chatkit.context import ANONYMOUS_SESSION_KEY, ChatKitContext
from django_chatkit.ids import new_typed_id
from django_chatkit.store import DjangoStore
from django_chatkit.testing import ChatKitTestClient, user_input


def chatkit_tables() -> tuple[type[Model], ...]:
    """Every model of the app (Thread, ThreadItem, Attachment, Feedback and any added later)."""
    tables = tuple(apps.get_app_config("django_chatkit").get_models())
    assert {models.Thread, models.ThreadItem, models.Attachment, models.Feedback} <= set(tables)
    return tables


def snapshot(tables: tuple[type[Model], ...] | None = None) -> dict[str, Any]:
    """Every column of every row of ``tables`` (the chatkit tables), in primary-key order."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in (chatkit_tables() if tables is None else tables)
    }


def full_snapshot() -> dict[str, Any]:
    """The chatkit tables plus users and sessions (what a request could conceivably write)."""
    return snapshot((*chatkit_tables(), get_user_model(), Session))


async def asnapshot() -> dict[str, Any]:
    return await sync_to_async(snapshot)()


async def read_body(response: Any) -> bytes:
    if not response.streaming:
        return bytes(response.content)
    buffer = b""
    async for chunk in response.streaming_content:
        buffer += chunk
    return buffer


@dataclass
class World:
    """Alice's thread with one item of each kind a request can name, plus her attachment."""

    thread: str
    user_msg: str
    assistant_msg: str
    form: str
    widget: str
    tool_call: str
    attachment: str
    extra: dict[str, str] = field(default_factory=dict)

    def alice_ids(self) -> dict[str, str]:
        return {
            "thread": self.thread,
            "user_msg": self.user_msg,
            "assistant_msg": self.assistant_msg,
            "form": self.form,
            "widget": self.widget,
            "tool_call": self.tool_call,
            "attachment": self.attachment,
        }


async def stream_ok(http: ChatKitTestClient, op: str, **params: Any) -> list[dict[str, Any]]:
    reply = await http.request(op, **params)
    status, events = reply.status_code, reply.json_events
    assert status == 200, reply.data or events
    assert not [e for e in events if e["type"] == "error"], events
    return events


def done_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "thread.item.done"]


async def new_thread(
    http: ChatKitTestClient, text: str = "hello"
) -> tuple[str, list[dict[str, Any]]]:
    events = await stream_ok(http, "threads.create", input=user_input(text))
    return events[0]["thread"]["id"], done_items(events)


async def owner_context(http_owner: ChatKitTestClient, owner: Any) -> ChatKitContext:
    """The store context of ``owner`` (a user), or of the client's anonymous session (None)."""
    if owner is not None:
        return ChatKitContext.for_user(owner)
    session = await http_owner.client.asession()
    key = await session.aget(ANONYMOUS_SESSION_KEY)
    assert key, "the anonymous client has not been given an owner key yet"
    return ChatKitContext.for_anonymous(key)


async def build_world(http_owner: ChatKitTestClient, owner: Any) -> World:
    """Through the protocol: a thread holding, oldest first, a user message and its echo, a
    structured input form, a widget and, newest, a pending client tool call; a positive vote
    on the echo; and (through the store) an attachment not yet sent with any message.

    ``owner`` is the client's user, or None for an anonymous client (anonymous chat must be
    allowed by the settings in force)."""
    thread_id, items = await new_thread(http_owner, "hello")
    user_msg, assistant = items
    assert (user_msg["type"], assistant["type"]) == ("user_message", "assistant_message")
    form = done_items(
        await stream_ok(
            http_owner, "threads.add_user_message", thread_id=thread_id, input=user_input("/form")
        )
    )[-1]
    widget = done_items(
        await stream_ok(
            http_owner, "threads.add_user_message", thread_id=thread_id, input=user_input("/widget")
        )
    )[-1]
    tool_call = done_items(
        await stream_ok(
            http_owner,
            "threads.add_user_message",
            thread_id=thread_id,
            input=user_input("/client_tool"),
        )
    )[-1]
    assert (form["type"], widget["type"], tool_call["type"]) == (
        "structured_input",
        "widget",
        "client_tool_call",
    )
    reply = await http_owner.request(
        "items.feedback", thread_id=thread_id, item_ids=[assistant["id"]], kind="positive"
    )
    status, _ = reply.status_code, reply.data
    assert status == 200
    attachment = FileAttachment(
        id=new_typed_id("attachment"), name="alice-secret.pdf", mime_type="application/pdf"
    )
    await DjangoStore().save_attachment(attachment, await owner_context(http_owner, owner))
    return World(
        thread=thread_id,
        user_msg=user_msg["id"],
        assistant_msg=assistant["id"],
        form=form["id"],
        widget=widget["id"],
        tool_call=tool_call["id"],
        attachment=attachment.id,
    )


def fresh_like(existing_id: str) -> str:
    """A never-existing id of the same shape (same prefix, same length) as ``existing_id``."""
    prefix = existing_id.split("_", 1)[0]
    for item_type in ("thread", "message", "tool_call", "attachment", "workflow", "task"):
        candidate = new_typed_id(item_type)
        if candidate.startswith(prefix + "_"):
            assert len(candidate) == len(existing_id), (candidate, existing_id)
            return candidate
    raise AssertionError(f"unknown id prefix in {existing_id!r}")
