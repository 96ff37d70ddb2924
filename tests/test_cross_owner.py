"""The cross-owner matrix: another owner's ids behave exactly like ids that never existed.

Alice owns a thread holding a user message, an assistant message (with her vote on it), a
structured input form, a widget and a pending client tool call, plus an attachment. Bob (signed
in) and an anonymous visitor each send every protocol op that takes an id, naming Alice's ids.
Each attempt must be answered exactly as the same request naming a random, never-existing id of
the same shape (404 ``not_found``, same message up to the ids), and must change no row of any
chatkit table (Thread, ThreadItem, Attachment, Feedback, and any table added later).
The owner herself gets 200 on the same requests, so the matrix cannot pass vacuously.

``pytest -s tests/test_cross_owner.py`` prints the matrix as a markdown table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from chatkit.store import AttachmentStore
from django.test import AsyncClient, override_settings

from django_chatkit.context import ChatKitContext
from django_chatkit.testing import ChatKitTestClient, parse_sse_json, user_input
from tests.factories import (
    World,
    asnapshot,
    build_world,
    fresh_like,
    new_thread,
    read_body,
)

pytestmark = pytest.mark.django_db(transaction=True)


class NoopAttachmentStore(AttachmentStore[ChatKitContext]):
    """Deletes nothing itself, so ``attachments.delete`` is answered by DjangoStore's scoping."""

    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        return None


MATRIX_SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "ATTACHMENT_STORE": "tests.test_cross_owner.NoopAttachmentStore",
    "ALLOW_ANONYMOUS": True,
}

# Ids a request may name: Alice's (keys of World.alice_ids()) and "own_thread", the thread
# of whoever sends the request (Bob's, the visitor's; Alice's own for the positive control).
Ids = dict[str, str]


@dataclass(frozen=True)
class Op:
    name: str
    body: Callable[[Ids], dict[str, Any]]
    streaming: bool = False


def _req(op: str, **params: Any) -> dict[str, Any]:
    return {"type": op, "params": params}


ACTION = {"type": "pick", "payload": {"choice": 1}}
ANSWERS = {"status": "answered", "answers": {"q1": {"values": ["Mallory"]}}}

OPS: list[Op] = [
    Op("threads.get_by_id", lambda i: _req("threads.get_by_id", thread_id=i["thread"])),
    Op("threads.update", lambda i: _req("threads.update", thread_id=i["thread"], title="pwned")),
    Op("threads.delete", lambda i: _req("threads.delete", thread_id=i["thread"])),
    Op("threads.list[after=alice thread]", lambda i: _req("threads.list", after=i["thread"])),
    Op("items.list", lambda i: _req("items.list", thread_id=i["thread"])),
    Op(
        "items.list[own thread, after=alice item]",
        lambda i: _req("items.list", thread_id=i["own_thread"], after=i["user_msg"]),
    ),
    Op(
        "items.feedback",
        lambda i: _req(
            "items.feedback", thread_id=i["thread"], item_ids=[i["assistant_msg"]], kind="negative"
        ),
    ),
    Op(
        "items.feedback[own thread, alice item]",
        lambda i: _req(
            "items.feedback",
            thread_id=i["own_thread"],
            item_ids=[i["assistant_msg"]],
            kind="negative",
        ),
    ),
    Op(
        "threads.add_user_message",
        lambda i: _req("threads.add_user_message", thread_id=i["thread"], input=user_input("hi")),
        streaming=True,
    ),
    Op(
        "threads.add_client_tool_output",
        lambda i: _req(
            "threads.add_client_tool_output", thread_id=i["thread"], result={"lat": 0, "lon": 0}
        ),
        streaming=True,
    ),
    Op(
        "threads.add_structured_input",
        lambda i: _req(
            "threads.add_structured_input", thread_id=i["thread"], item_id=i["form"], input=ANSWERS
        ),
        streaming=True,
    ),
    Op(
        "threads.add_structured_input[own thread, alice form]",
        lambda i: _req(
            "threads.add_structured_input",
            thread_id=i["own_thread"],
            item_id=i["form"],
            input=ANSWERS,
        ),
        streaming=True,
    ),
    Op(
        "threads.retry_after_item",
        lambda i: _req("threads.retry_after_item", thread_id=i["thread"], item_id=i["user_msg"]),
        streaming=True,
    ),
    Op(
        "threads.retry_after_item[own thread, alice message]",
        lambda i: _req(
            "threads.retry_after_item", thread_id=i["own_thread"], item_id=i["user_msg"]
        ),
        streaming=True,
    ),
    Op(
        "threads.custom_action",
        lambda i: _req(
            "threads.custom_action", thread_id=i["thread"], item_id=i["widget"], action=ACTION
        ),
        streaming=True,
    ),
    Op(
        "threads.custom_action[no sender]",
        lambda i: _req("threads.custom_action", thread_id=i["thread"], action=ACTION),
        streaming=True,
    ),
    Op(
        "threads.custom_action[own thread, alice widget]",
        lambda i: _req(
            "threads.custom_action", thread_id=i["own_thread"], item_id=i["widget"], action=ACTION
        ),
        streaming=True,
    ),
    Op(
        "threads.sync_custom_action",
        lambda i: _req(
            "threads.sync_custom_action", thread_id=i["thread"], item_id=i["widget"], action=ACTION
        ),
    ),
    Op(
        "threads.sync_custom_action[own thread, alice widget]",
        lambda i: _req(
            "threads.sync_custom_action",
            thread_id=i["own_thread"],
            item_id=i["widget"],
            action=ACTION,
        ),
    ),
    Op(
        "threads.create[attachments=alice's]",
        lambda i: _req("threads.create", input=user_input("hi", [i["attachment"]])),
        streaming=True,
    ),
    Op(
        "threads.add_user_message[own thread, attachments=alice's]",
        lambda i: _req(
            "threads.add_user_message",
            thread_id=i["own_thread"],
            input=user_input("hi", [i["attachment"]]),
        ),
        streaming=True,
    ),
    Op(
        "attachments.delete",
        lambda i: _req("attachments.delete", attachment_id=i["attachment"]),
    ),
]
OPS_BY_NAME = {op.name: op for op in OPS}
CASES = ["bob", "anonymous"]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    events: list[dict[str, Any]] | None = None  # for a 200 stream

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


async def send(http: ChatKitTestClient, body: dict[str, Any]) -> Answer:
    """POST ``body``; an exception out of the view or the stream becomes a "crash" answer, so
    that the matrix still gets a cell for it."""
    try:
        response = await http.raw_post(body)
    except Exception as exc:
        return Answer(500, {"crash": f"{type(exc).__name__}: {exc}"})
    try:
        raw = await read_body(response)
    except Exception as exc:
        return Answer(response.status_code, {"crash": f"mid-stream {type(exc).__name__}: {exc}"})
    if response.streaming:
        return Answer(response.status_code, None, parse_sse_json(raw))
    return Answer(response.status_code, json.loads(raw))


def normalized_message(answer: Answer, ids: Ids) -> str:
    """The error message with each id replaced by its role, so that two answers naming
    different ids of the same roles can be compared word for word."""
    message = str(answer.body["error"]["message"])
    for role, value in sorted(ids.items(), key=lambda kv: -len(kv[1])):
        message = message.replace(value, f"<{role}>")
    return message


@pytest.fixture
def chatkit_settings_for_matrix():
    with override_settings(CHATKIT=MATRIX_SETTINGS):
        yield


@pytest.fixture
def http_visitor(db, chatkit_settings_for_matrix) -> ChatKitTestClient:
    return ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True))


@pytest.fixture
async def world(chatkit_settings_for_matrix, http_alice, alice) -> World:
    return await build_world(http_alice, alice)


@pytest.fixture
async def actors(world, http_bob, http_visitor) -> dict[str, tuple[ChatKitTestClient, str]]:
    """Each case's client and its own thread (created before any snapshot is taken)."""
    bob_thread, _ = await new_thread(http_bob, "bob's own thread")
    visitor_thread, _ = await new_thread(http_visitor, "visitor's own thread")
    return {"bob": (http_bob, bob_thread), "anonymous": (http_visitor, visitor_thread)}


async def attempt(
    op: Op, world: World, http: ChatKitTestClient, own_thread: str
) -> tuple[str, str]:
    """Send ``op`` naming Alice's ids, then naming fresh ids of the same shape; check both
    answer the same 404, and return the cell for the matrix ("404" or what went wrong)."""
    alice_ids = {**world.alice_ids(), "own_thread": own_thread}
    random_ids = {
        **{role: fresh_like(value) for role, value in world.alice_ids().items()},
        "own_thread": own_thread,
    }
    foreign = await send(http, op.body(alice_ids))
    missing = await send(http, op.body(random_ids))
    problems = []
    if (missing.status, missing.code) != (404, "not_found"):
        problems.append(f"random id: {missing.status} {missing.code or missing.body}")
    if (foreign.status, foreign.code) != (missing.status, missing.code):
        problems.append(f"alice's id: {foreign.status} {foreign.code or foreign.body}")
    elif foreign.code and normalized_message(foreign, alice_ids) != normalized_message(
        missing, random_ids
    ):
        problems.append(
            f"messages differ: {foreign.body['error']['message']!r} vs "
            f"{missing.body['error']['message']!r}"
        )
    cell = "; ".join(problems) if problems else str(foreign.status)
    detail = (
        f"alice-id: {foreign.status} {foreign.body}; random-id: {missing.status} {missing.body}"
    )
    return cell, detail


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("op_name", [op.name for op in OPS])
async def test_foreign_id_looks_missing(op_name, case, world, actors):
    http, own_thread = actors[case]
    before = await asnapshot()
    cell, detail = await attempt(OPS_BY_NAME[op_name], world, http, own_thread)
    assert cell == "404", detail
    assert await asnapshot() == before


async def test_cross_owner_matrix(world, actors):
    """Every op x case in one go, printed as a markdown table (``pytest -s``)."""
    before = await asnapshot()
    matrix: dict[str, dict[str, str]] = {}
    details = []
    for op in OPS:
        for case in CASES:
            http, own_thread = actors[case]
            cell, detail = await attempt(op, world, http, own_thread)
            matrix.setdefault(op.name, {})[case] = cell
            if cell != "404":
                details.append(f"{op.name} / {case}: {detail}")
    after = await asnapshot()

    lines = [
        "",
        "Cross-owner matrix: HTTP status when naming Alice's ids "
        "(each also compared with a never-existing id of the same shape)",
        "",
        "| op | " + " | ".join(CASES) + " |",
        "|---|" + "---|" * len(CASES),
    ]
    lines += [
        f"| {name} | " + " | ".join(row[c] for c in CASES) + " |" for name, row in matrix.items()
    ]
    print("\n".join(lines))

    assert len(matrix) == len(OPS) and all(len(row) == len(CASES) for row in matrix.values())
    denied = [cell == "404" for row in matrix.values() for cell in row.values()]
    assert all(denied), "\n".join(details)
    assert after == before


@pytest.mark.parametrize("op_name", [op.name for op in OPS])
async def test_owner_succeeds(op_name, world, http_alice):
    """Positive control: the same requests from Alice, on her own thread, are served."""
    op = OPS_BY_NAME[op_name]
    answer = await send(http_alice, op.body({**world.alice_ids(), "own_thread": world.thread}))
    assert answer.status == 200, answer.body
    if op.streaming:
        assert answer.events, "an empty stream"
        assert not [e for e in answer.events if e["type"] == "error"], answer.events
    else:
        assert answer.code is None and answer.body is not None, answer.body


async def test_owner_sees_the_protected_rows(world, http_alice):
    """The rows Bob cannot see are really there (so the 404s above are not vacuous)."""
    reply = await http_alice.request("threads.get_by_id", thread_id=world.thread)
    status, thread = reply.status_code, reply.data
    assert status == 200
    ids = [item["id"] for item in thread["items"]["data"]]
    for role in ("user_msg", "assistant_msg", "form", "widget", "tool_call"):
        assert getattr(world, role) in ids
    assert ids[-1] == world.tool_call  # the pending call is the newest item
    reply = await http_alice.request("items.list", thread_id=world.thread, order="asc")
    status, page = reply.status_code, reply.data
    assert status == 200 and [item["id"] for item in page["data"]] == ids


@override_settings(CHATKIT={"SERVER": "tests.servers.ScriptedServer"})
async def test_attachments_delete_without_attachment_store_is_refused_alike(
    http_alice, alice, http_bob
):
    """With no attachment store, attachments.delete is refused before any lookup, whoever asks
    and whatever the id: no existence oracle there either."""
    world = await build_world(http_alice, alice)
    before = await asnapshot()
    answers = []
    for http in (http_bob, http_alice):
        for attachment_id in (world.attachment, fresh_like(world.attachment)):
            answer = await send(http, _req("attachments.delete", attachment_id=attachment_id))
            answers.append((answer.status, answer.code))
    assert answers == [(400, "unsupported_operation")] * 4
    assert await asnapshot() == before
