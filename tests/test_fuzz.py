"""Property-based fuzzing of protocol request bodies through the real view.

Every example is POSTed through ``AsyncClient`` with a session and CSRF token, as a browser
would, by Alice, Bob or an anonymous visitor (each owning a populated thread, see
``tests.factories.build_world``), under one of a few ``CHATKIT`` settings. Properties:

- no server error: status < 500, no exception out of the view, none in the middle of a stream;
- a 4xx answers ``{"error": {"code": str, "message": str}}`` and changes no row (chatkit
  tables, users, sessions);
- a 200 is JSON, or an SSE stream made only of ``data: <json>\\n\\n`` frames (read to the end);
  a read-only op changes no row; no answer carries another owner's id the request did not name;
  a stream carries no generic ``stream.error`` (a swallowed exception) unless the scripted
  server was told to ``/fail``.

Bugs the fuzz found have regression tests at the end of the module.

Each example runs inside ``transaction.atomic()`` rolled back at the end: the view's ORM work
runs on this thread's connection (``async_to_sync`` sends thread-sensitive calls back here), so
every example starts from the same rows and Hypothesis can replay and shrink failures.
``pytest -s`` prints how many examples ran and how many server errors were seen.
"""

from __future__ import annotations

import base64
import json
import re
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints

import pytest
from asgiref.sync import async_to_sync
from chatkit.store import AttachmentStore
from chatkit.types import AttachmentCreateParams, ChatKitReq, FileAttachment, ImageAttachment
from django.conf import settings as django_settings
from django.db import transaction
from django.test import AsyncClient, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AnyUrl

from django_chatkit.context import ChatKitContext
from django_chatkit.models import Thread
from django_chatkit.testing import ChatKitTestClient, parse_sse_json
from tests.factories import World, build_world, full_snapshot, new_thread, stream_ok

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "tests.servers.ScriptedServer"


class EchoAttachmentStore(AttachmentStore[ChatKitContext]):
    """A plausible two-phase attachment store: the attachment is what the client declared."""

    async def create_attachment(
        self, input: AttachmentCreateParams, context: ChatKitContext
    ) -> FileAttachment | ImageAttachment:
        attachment_id = self.generate_attachment_id(input.mime_type, context)
        if input.mime_type.startswith("image/"):
            return ImageAttachment(
                id=attachment_id,
                name=input.name,
                mime_type=input.mime_type,
                preview_url=AnyUrl("https://files.example.com/preview.png"),
            )
        return FileAttachment(id=attachment_id, name=input.name, mime_type=input.mime_type)

    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        return None


CONFIGS: dict[str, dict[str, Any]] = {
    "anonymous_allowed": {"SERVER": SERVER, "ALLOW_ANONYMOUS": True},
    "attachments": {
        "SERVER": SERVER,
        "ALLOW_ANONYMOUS": True,
        "ATTACHMENT_STORE": "tests.test_fuzz.EchoAttachmentStore",
    },
    "signed_in_only": {"SERVER": SERVER},
}
CLIENTS = ("alice", "bob", "anonymous")
READ_ONLY_OPS = {"threads.get_by_id", "threads.list", "items.list"}
ON_POSTGRES = "postgresql" in django_settings.DATABASES["default"]["ENGINE"]

# -- the protocol's shape, read from the SDK ------------------------------------------------------


def _request_models() -> dict[str, Any]:
    union = get_args(ChatKitReq)[0]
    return {get_args(m.model_fields["type"].annotation)[0]: m for m in get_args(union)}


REQUEST_MODELS = _request_models()
OPS = sorted(REQUEST_MODELS)
PARAM_FIELDS = {
    op: sorted(get_type_hints(model)["params"].model_fields) for op, model in REQUEST_MODELS.items()
}

# -- statistics -----------------------------------------------------------------------------------

STATS: dict[str, Counter[str]] = {
    "examples": Counter(),
    "5xx": Counter(),
    "outcomes": Counter(),
}


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    yield
    total = sum(STATS["examples"].values())
    errors = sum(STATS["5xx"].values())
    lines = ["", f"fuzz: {total} examples run, {errors} server errors (5xx or crash)"]
    lines += [
        f"  {name}: {n} examples, {STATS['5xx'][name]} server errors"
        for name, n in sorted(STATS["examples"].items())
    ]
    lines.append(
        "  outcomes: " + ", ".join(f"{key} x{n}" for key, n in STATS["outcomes"].most_common())
    )
    print("\n".join(lines))


# -- the world every example runs against ---------------------------------------------------------


@dataclass
class FuzzWorld:
    clients: dict[str, ChatKitTestClient]
    worlds: dict[str, World]  # each client's active thread, its items and an attachment
    threads: dict[str, dict[str, set[str]]]  # client -> each of its thread ids -> its item ids
    roles: dict[str, list[str]]  # "thread", "form", "widget", ... -> everyone's ids of that role
    pending_forms: set[str]
    locked_threads: set[str]

    def owned_ids(self, client: str) -> set[str]:
        owned = {self.worlds[client].attachment}
        for thread, items in self.threads[client].items():
            owned |= {thread} | items
        return owned

    def all_ids(self) -> list[str]:
        return sorted(set().union(*(self.owned_ids(c) for c in CLIENTS)))

    def pool(self, *roles: str) -> list[str]:
        """Everyone's ids of these roles (``thread``, ``form``, ``attachment``, ...)."""
        return sorted({i for role in roles for i in self.roles[role]})


async def _items(http: ChatKitTestClient, thread_id: str) -> list[dict[str, Any]]:
    reply = await http.request("items.list", thread_id=thread_id, order="asc")
    status, page = reply.status_code, reply.data
    assert status == 200, page
    return list(page["data"])


@pytest.fixture
def fuzz_world(alice, bob) -> FuzzWorld:
    """Built once per test function (outside @given). Alice, Bob and an anonymous visitor each
    own a populated thread (see build_world) and an attachment; Alice also owns a locked thread
    and one whose structured input form was answered."""
    clients = {name: AsyncClient(enforce_csrf_checks=True) for name in CLIENTS}
    clients["alice"].force_login(alice)
    clients["bob"].force_login(bob)
    http = {name: ChatKitTestClient(client=client) for name, client in clients.items()}
    owners = {"alice": alice, "bob": bob, "anonymous": None}

    async def build() -> tuple[dict[str, World], World, str, list[dict[str, Any]]]:
        worlds = {name: await build_world(http[name], owners[name]) for name in CLIENTS}
        locked = await build_world(http["alice"], alice)
        answered, (_, form) = await new_thread(http["alice"], "/form")
        await stream_ok(
            http["alice"],
            "threads.add_structured_input",
            thread_id=answered,
            item_id=form["id"],
            input={"answers": {"q1": {"values": ["Ann"]}}},
        )
        return worlds, locked, answered, await _items(http["alice"], answered)

    with override_settings(CHATKIT=CONFIGS["anonymous_allowed"]):
        worlds, locked, answered, answered_items = async_to_sync(build)()
    Thread.objects.filter(id=locked.thread).update(status="locked", status_reason="fuzz")

    def items_of(world: World) -> set[str]:
        return {v for k, v in world.alice_ids().items() if k not in ("thread", "attachment")}

    threads = {name: {w.thread: items_of(w)} for name, w in worlds.items()}
    threads["alice"][locked.thread] = items_of(locked)
    threads["alice"][answered] = {item["id"] for item in answered_items}
    every_world = [*worlds.values(), locked]
    roles = {
        role: [getattr(w, role) for w in every_world]
        for role in (
            "thread",
            "user_msg",
            "assistant_msg",
            "form",
            "widget",
            "tool_call",
            "attachment",
        )
    }
    roles["thread"].append(answered)
    for item in answered_items:
        role = {
            "user_message": "user_msg",
            "assistant_message": "assistant_msg",
            "structured_input": "form",
        }[item["type"]]
        roles[role].append(item["id"])
    return FuzzWorld(
        clients=http,
        worlds=worlds,
        threads=threads,
        roles=roles,
        pending_forms={w.form for w in every_world},
        locked_threads={locked.thread},
    )


# -- sending one example --------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    content_type: str
    streaming: bool
    body: bytes
    crash: str | None = None  # an exception out of the view, or out of the stream


async def _exchange(http: ChatKitTestClient, body: bytes) -> Outcome:
    try:
        response = await http.raw_post(body)
    except Exception:
        return Outcome(500, "", False, b"", crash="raised by the view:\n" + traceback.format_exc())
    outcome = Outcome(
        response.status_code, response.get("Content-Type", ""), response.streaming, b""
    )
    try:
        if response.streaming:
            async for chunk in response.streaming_content:  # type: ignore[attr-defined]
                outcome.body += chunk
        else:
            outcome.body = bytes(response.content)  # type: ignore[attr-defined]
    except Exception:
        outcome.crash = "raised mid-stream:\n" + traceback.format_exc()
    return outcome


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def exchange_and_rollback(
    http: ChatKitTestClient, config: str, body: bytes
) -> tuple[Outcome, dict[str, Any], dict[str, Any]]:
    """POST ``body``; return the outcome and the database before and after, then roll back."""
    with override_settings(CHATKIT=CONFIGS[config]), transaction.atomic():
        before = full_snapshot()
        # A savepoint of its own, so that a database error the view turned into a 500 cannot
        # leave this transaction unusable for the snapshot below.
        with transaction.atomic():
            outcome = async_to_sync(_exchange)(http, body)
        after = full_snapshot()
        transaction.set_rollback(True)
    return outcome, before, after


def check_outcome(
    outcome: Outcome, before: Any, after: Any, body: bytes, where: str, stats: str | None = None
) -> None:
    """The properties every answer must have (see the module docstring)."""
    assert outcome.crash is None, f"{where}\n{outcome.crash}"
    assert outcome.status < 500, f"{where}\n{outcome.status} {outcome.body[:2000]!r}"
    if 400 <= outcome.status < 500:
        assert outcome.content_type == "application/json", where
        answer = json.loads(outcome.body)
        assert isinstance(answer, dict) and set(answer) == {"error"}, (where, answer)
        error = answer["error"]
        assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), (
            where,
            answer,
        )
        assert after == before, f"a {outcome.status} changed the database: {where}"
        if stats:
            STATS["outcomes"][f"{outcome.status} {error['code']}"] += 1
        return
    assert outcome.status == 200, (where, outcome.status, outcome.body[:2000])
    if outcome.streaming:
        assert outcome.content_type == "text/event-stream; charset=utf-8", where
        events = parse_sse_json(outcome.body)
        assert events, where
        errors = [e.get("code") for e in events if e["type"] == "error"]
        # A generic stream error means an exception was swallowed inside the stream: only the
        # scripted server's /fail may cause one.
        assert "stream.error" not in errors or b"/fail" in body, (where, events)
        if stats:
            STATS["outcomes"]["200 stream" + (f" + error {errors[0]}" if errors else "")] += 1
    else:
        assert outcome.content_type == "application/json", where
        json.loads(outcome.body)
        if stats:
            STATS["outcomes"]["200 json"] += 1
    data = _parsed(body)
    if isinstance(data, dict) and data.get("type") in READ_ONLY_OPS:
        assert after == before, f"a read-only {data['type']} changed the database: {where}"


def run_example(test: str, world: FuzzWorld, common: tuple[str, str], body: bytes) -> None:
    """Send ``body`` as ``client`` under ``config`` (``common``) and check every property."""
    client, config = common
    STATS["examples"][test] += 1
    outcome, before, after = exchange_and_rollback(world.clients[client], config, body)
    where = f"client={client} config={config} body={body[:2000]!r}"
    if outcome.crash is not None or outcome.status >= 500:
        STATS["5xx"][test] += 1
    check_outcome(outcome, before, after, body, where, stats=test)
    if outcome.status == 200:
        # No answer may carry another owner's id unless the request itself named it.
        foreign = set(world.all_ids()) - world.owned_ids(client)
        leaked = [i for i in foreign if i.encode() in outcome.body and i.encode() not in body]
        assert not leaked, f"{client} was shown {leaked}: {where}"


# -- strategies -----------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "x\udfffy",
    "\ud83d",
    "😀",
    "👩‍👩‍👧‍👦" * 20,
    "e\u0301",
    "\u202e",
    "\ufeff",
    "\u2028",
    "x" * 255,
    "x" * 256,
    "x" * 300,
    "y" * 100_000,
    "🧵" * 5000,
    "../../etc/passwd",
    "' OR '1'='1' --",
    "%",
    "_",
    "\\",
    "null",
    "NaN",
    "thr_",
    "msg_",
    "\n\n",
    "data: x\n\n",
    "<script>alert(1)</script>",
    "/form",
    "/widget",
    "/client_tool",
    "/fail",
    "hello",
]
UNICODE_CHARS = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(["\x00", "😀", "\u0301", "\n", '"', "\\"]),
)


def _defuse(text: str) -> str:
    # The scripted server's /slow and /words take a count: keep the fuzz from asking for 10**9.
    return "x" + text if text.startswith(("/slow", "/words")) else text


texts = st.one_of(
    st.text(max_size=30),
    st.text(UNICODE_CHARS, max_size=30),
    st.sampled_from(SPECIAL_STRINGS),
).map(_defuse)
keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            "type",
            "params",
            "metadata",
            "thread_id",
            "item_id",
            "id",
            "__proto__",
            "\u0000",
            "\ud800",
        ]
    ),
)
BIG_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 10**30, -(10**30), 10**4000]
ints = st.one_of(st.integers(-5, 150), st.integers(), st.sampled_from(BIG_INTS))
floats = st.floats()  # NaN and +-Infinity too: json.dumps writes them as NaN / Infinity
# Nesting depths around the parsers' limits: pydantic's JSON parser stops at 200 levels, the
# json module and Python's own recursion near 1000 (BUG-1, a 500, fixed in a0494f4).
DEPTHS = [2, 63, 64, 65, 127, 128, 199, 200, 201, 255, 256, 300, 500, 999, 1000, 5000, 100_000]
# A marker string that encode() swaps for that many nested arrays or objects, written as raw
# text since json.dumps itself cannot nest that deep.
deep_markers = st.builds(
    lambda depth, kind: f"__DEEP_{kind}_{depth}__",
    st.sampled_from(DEPTHS),
    st.sampled_from(["list", "dict"]),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    scalars | deep_markers,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
fresh_ids = st.builds(
    lambda prefix, tail: f"{prefix}_{tail}",
    st.sampled_from(["thr", "msg", "tc", "atc", "wf", "tsk", "shcx"]),
    st.text(CROCKFORD, min_size=30, max_size=30),
)


def ids_for(world: FuzzWorld) -> st.SearchStrategy[str]:
    existing = st.sampled_from(world.all_ids())
    return st.one_of(existing, existing, fresh_ids, texts)


def content_parts(ids: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("input_text"), "text": texts}),
        st.fixed_dictionaries(
            {
                "type": st.just("input_tag"),
                "id": ids,
                "text": texts,
                "data": st.dictionaries(keys, json_values, max_size=3),
            },
            optional={"group": texts, "interactive": st.booleans()},
        ),
        json_values,
    )


def user_inputs(ids: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "content": st.lists(content_parts(ids), max_size=3),
            "attachments": st.one_of(
                st.lists(ids, max_size=3), st.lists(ids, min_size=11, max_size=12)
            ),
            "inference_options": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "model": texts | st.none(),
                        "tool_choice": st.fixed_dictionaries({"id": texts}),
                    },
                ),
                json_values,
            ),
        },
        optional={"quoted_text": texts | st.none()},
    )


submissions = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["answered", "skipped", "pending", ""]),
        "answers": st.dictionaries(
            st.sampled_from(["q1", "q2"]) | texts,
            st.fixed_dictionaries(
                {}, optional={"values": st.lists(texts, max_size=3), "skipped": st.booleans()}
            )
            | json_values,
            max_size=3,
        ),
    },
)
actions = st.one_of(
    st.fixed_dictionaries({"type": texts}, optional={"payload": json_values}), json_values
)


def field_values(name: str, ids: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Plausible values for a params field (right type, odd values), mixed with garbage."""
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "thread_id": ids,
        "item_id": ids | st.none(),
        "attachment_id": ids,
        "after": ids | st.none(),
        "limit": st.one_of(ints, floats, st.sampled_from(["10", "1e3", True, None, []])),
        "order": st.sampled_from(["asc", "desc", "ASC", "Desc", "", "random", None, 0, ["asc"]]),
        "kind": st.sampled_from(["positive", "negative", "neutral", "", "POSITIVE", None, 1]),
        "title": texts,
        "item_ids": st.one_of(st.lists(ids, max_size=5), st.lists(ids, min_size=95, max_size=110)),
        "input": st.one_of(user_inputs(ids), submissions),
        "result": json_values,
        "action": actions,
        "name": texts,
        "size": ints,
        "mime_type": st.one_of(
            texts, st.sampled_from(["image/png", "text/plain", "image/" + "x" * 300])
        ),
        "audio_base64": st.one_of(
            texts, st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
        ),
    }
    return st.one_of(plausible.get(name, json_values), json_values)


_DEEP = re.compile(r'"__DEEP_(list|dict)_(\d+)__"')


def _deep(match: re.Match[str]) -> str:
    depth = int(match.group(2))
    if match.group(1) == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def encode(data: Any, how: str) -> bytes:
    text = json.dumps(data) if how == "ascii" else json.dumps(data, ensure_ascii=False)
    text = _DEEP.sub(_deep, text)
    # Raw UTF-8 text; lone surrogates become (invalid) 3-byte sequences.
    return text.encode("ascii" if how == "ascii" else "utf-8", "surrogatepass")


encodings = st.sampled_from(["ascii", "utf8"])
examples_common = st.tuples(
    st.sampled_from(CLIENTS),
    st.sampled_from(["anonymous_allowed", "attachments"] * 2 + ["signed_in_only"]),
)


def valid_body(op: str, mine: World) -> dict[str, Any]:
    """A request for ``op`` that its owner's client could send successfully."""
    text_input: dict[str, Any] = {
        "content": [{"type": "input_text", "text": "hello"}],
        "attachments": [],
        "inference_options": {},
    }
    every_op: dict[str, dict[str, Any]] = {
        "threads.create": {"input": text_input},
        "threads.add_user_message": {"thread_id": mine.thread, "input": text_input},
        "threads.add_client_tool_output": {"thread_id": mine.thread, "result": {"ok": True}},
        "threads.add_structured_input": {
            "thread_id": mine.thread,
            "item_id": mine.form,
            "input": {"status": "answered", "answers": {"q1": {"values": ["Ann"]}}},
        },
        "threads.retry_after_item": {"thread_id": mine.thread, "item_id": mine.user_msg},
        "threads.custom_action": {
            "thread_id": mine.thread,
            "item_id": mine.widget,
            "action": {"type": "pick", "payload": {"n": 1}},
        },
        "threads.sync_custom_action": {
            "thread_id": mine.thread,
            "item_id": mine.widget,
            "action": {"type": "pick", "payload": {"n": 1}},
        },
        "threads.get_by_id": {"thread_id": mine.thread},
        "threads.list": {"limit": 5, "order": "asc", "after": mine.thread},
        "threads.update": {"thread_id": mine.thread, "title": "renamed"},
        "threads.delete": {"thread_id": mine.thread},
        "items.list": {
            "thread_id": mine.thread,
            "limit": 3,
            "order": "asc",
            "after": mine.user_msg,
        },
        "items.feedback": {
            "thread_id": mine.thread,
            "item_ids": [mine.assistant_msg],
            "kind": "negative",
        },
        "attachments.create": {"name": "notes.txt", "size": 10, "mime_type": "text/plain"},
        "attachments.delete": {"attachment_id": mine.attachment},
        "input.transcribe": {"audio_base64": "AAAA", "mime_type": "audio/webm"},
    }
    params = every_op[op]
    return {"type": op, "params": params, "metadata": {}}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any], ids: st.SearchStrategy[str]) -> Any:
    """``body`` with one field deleted, replaced, retyped or given a sibling."""
    body = json.loads(json.dumps(body))
    path = draw(st.sampled_from(_paths(body)))
    if not path:
        return draw(json_values)
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    name = last if isinstance(last, str) else (path[-2] if len(path) > 1 else "")
    how = draw(
        st.sampled_from(
            ["delete", "replace", "replace", "retype", "sibling", "null", "wrap", "deep"]
        )
    )
    if how == "delete":
        del parent[last]
    elif how == "replace":
        parent[last] = draw(field_values(str(name), ids))
    elif how == "retype":
        parent[last] = draw(
            scalars | st.lists(scalars, max_size=2) | st.dictionaries(keys, scalars, max_size=2)
        )
    elif how == "null":
        parent[last] = None
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif how == "deep":
        parent[last] = draw(deep_markers)
    elif isinstance(parent, dict):
        parent[draw(keys)] = draw(json_values)
    else:
        parent.append(draw(json_values))
    return body


# The settings every fuzz test shares (each sets its own max_examples).
FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# -- the fuzz tests -------------------------------------------------------------------------------


@settings(FUZZ_SETTINGS, max_examples=300)
@given(
    common=examples_common,
    body=st.one_of(
        st.binary(max_size=300),
        st.sampled_from(
            [
                b"",
                b"{",
                b"[]",
                b"null",
                b'"x"',
                b"1e999",
                b"NaN",
                b"\xef\xbb\xbf{}",
                b'{"type": "threads.list", "params": {}}'.decode().encode("utf-16"),
                b'{"type": "threads.list", "params": {"limit": 1' + b"0" * 5000 + b"}}",
                b'{"type": "threads.list", "params": {}, "x": "' + b"x" * (1024 * 1024) + b'"}',
                b'{"type": "threads.list", "type": "threads.delete", "params": {}}',
            ]
        ),
    ),
)
def test_fuzz_arbitrary_bytes(fuzz_world, common, body):
    run_example("arbitrary_bytes", fuzz_world, common, body)


@settings(FUZZ_SETTINGS, max_examples=300)
@given(common=examples_common, data=json_values, how=encodings)
def test_fuzz_arbitrary_json(fuzz_world, common, data, how):
    run_example("arbitrary_json", fuzz_world, common, encode(data, how))


@settings(FUZZ_SETTINGS, max_examples=700)
@given(common=examples_common, how=encodings, data=st.data())
def test_fuzz_known_type_random_params(fuzz_world, common, how, data):
    ids = ids_for(fuzz_world)
    op = data.draw(st.sampled_from(OPS))
    params: dict[str, Any] = {}
    for name in PARAM_FIELDS[op]:
        if data.draw(st.integers(0, 4)):  # each known field present 4 times out of 5
            params[name] = data.draw(field_values(name, ids), label=name)
    params.update(data.draw(st.dictionaries(keys, json_values, max_size=2), label="extra"))
    body: dict[str, Any] = {
        "type": op,
        "params": data.draw(st.just(params) | json_values, label="params"),
    }
    if data.draw(st.booleans()):
        body["metadata"] = data.draw(json_values, label="metadata")
    run_example("known_type_random_params", fuzz_world, common, encode(body, how))


@settings(FUZZ_SETTINGS, max_examples=1000)
@given(common=examples_common, how=encodings, data=st.data())
def test_fuzz_valid_request_one_mutation(fuzz_world, common, how, data):
    client, _ = common
    op = data.draw(st.sampled_from(OPS))
    # Mostly the sender's own ids (so mutations reach deep into the ops), sometimes another's.
    owner = data.draw(st.sampled_from([client] * 3 + [c for c in CLIENTS if c != client]))
    body = valid_body(op, fuzz_world.worlds[owner])
    if data.draw(st.integers(0, 9)):  # 1 in 10 is sent as is
        body = data.draw(mutated(body, ids_for(fuzz_world)), label="mutated")
    run_example("valid_request_one_mutation", fuzz_world, common, encode(body, how))


def _typed(world: FuzzWorld, *roles: str) -> st.SearchStrategy[str]:
    """An id of one of these roles, anyone's, now and then a fresh one."""
    return st.one_of(
        st.sampled_from(world.pool(*roles)),
        st.sampled_from(world.pool(*roles)),
        st.sampled_from(world.pool(*roles)),
        fresh_ids,
    )


ITEM_ROLES = ("user_msg", "assistant_msg", "form", "widget", "tool_call")
STORABLE_STRINGS = [t for t in SPECIAL_STRINGS if not re.search("[\x00\ud800-\udfff]", t)]
storable_texts = st.one_of(st.text(max_size=30), st.sampled_from(STORABLE_STRINGS)).map(_defuse)


@st.composite
def well_typed_requests(draw: st.DrawFn, world: FuzzWorld) -> dict[str, Any]:
    """Requests that pass validation, naming anyone's threads, items and attachments (or none),
    with odd but well-typed values: these reach the server's checks, the store and the stream."""
    op = draw(st.sampled_from(OPS))
    thread = _typed(world, "thread")
    item = _typed(world, *ITEM_ROLES)
    attachment = _typed(world, "attachment")
    part = st.one_of(
        st.fixed_dictionaries({"type": st.just("input_text"), "text": storable_texts}),
        st.fixed_dictionaries(
            {
                "type": st.just("input_tag"),
                "id": storable_texts,
                "text": storable_texts,
                "data": st.dictionaries(st.text(max_size=5), json_values, max_size=2),
            }
        ),
    )
    message = st.fixed_dictionaries(
        {
            "content": st.lists(part, max_size=2),
            "attachments": st.lists(attachment, max_size=2),
            "inference_options": st.fixed_dictionaries({}, optional={"model": storable_texts}),
        },
        optional={"quoted_text": storable_texts},
    )
    answers = st.fixed_dictionaries(
        {
            "status": st.sampled_from(["answered", "skipped"]),
            "answers": st.dictionaries(
                st.sampled_from(["q1", "q2", "x"]),
                st.fixed_dictionaries(
                    {"values": st.lists(storable_texts, max_size=2), "skipped": st.booleans()}
                ),
                max_size=2,
            ),
        }
    )
    action = st.fixed_dictionaries({"type": storable_texts, "payload": json_values})
    limit = st.one_of(st.none(), st.integers(-3, 120), st.sampled_from(BIG_INTS[:-1]))
    order = st.sampled_from(["asc", "desc"])
    params = {
        "threads.create": st.fixed_dictionaries({"input": message}),
        "threads.add_user_message": st.fixed_dictionaries({"thread_id": thread, "input": message}),
        "threads.add_client_tool_output": st.fixed_dictionaries(
            {"thread_id": thread, "result": json_values}
        ),
        "threads.add_structured_input": st.fixed_dictionaries(
            {"thread_id": thread, "item_id": item, "input": answers}
        ),
        "threads.retry_after_item": st.fixed_dictionaries({"thread_id": thread, "item_id": item}),
        "threads.custom_action": st.fixed_dictionaries(
            {"thread_id": thread, "action": action}, optional={"item_id": item | st.none()}
        ),
        "threads.sync_custom_action": st.fixed_dictionaries(
            {"thread_id": thread, "action": action}, optional={"item_id": item | st.none()}
        ),
        "threads.get_by_id": st.fixed_dictionaries({"thread_id": thread}),
        "threads.list": st.fixed_dictionaries(
            {}, optional={"limit": limit, "order": order, "after": thread | st.none()}
        ),
        "threads.update": st.fixed_dictionaries({"thread_id": thread, "title": storable_texts}),
        "threads.delete": st.fixed_dictionaries({"thread_id": thread}),
        "items.list": st.fixed_dictionaries(
            {"thread_id": thread},
            optional={"limit": limit, "order": order, "after": item | st.none()},
        ),
        "items.feedback": st.fixed_dictionaries(
            {
                "thread_id": thread,
                "item_ids": st.lists(item, max_size=4),
                "kind": st.sampled_from(["positive", "negative"]),
            }
        ),
        "attachments.create": st.fixed_dictionaries(
            {
                "name": storable_texts,
                "size": st.integers(-1, 10**12),
                "mime_type": st.sampled_from(
                    [
                        "text/plain",
                        "image/png",
                        "application/pdf",
                        "x" * 255,
                        "x" * 256,
                        "image/" + "y" * 300,
                    ]
                ),
            }
        ),
        "attachments.delete": st.fixed_dictionaries({"attachment_id": attachment}),
        "input.transcribe": st.fixed_dictionaries(
            {
                "audio_base64": st.binary(max_size=32).map(lambda b: base64.b64encode(b).decode()),
                "mime_type": st.sampled_from(["audio/webm", "audio/ogg"]),
            }
        ),
    }[op]
    body = {"type": op, "params": draw(params)}
    if draw(st.booleans()):
        body["metadata"] = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=2))
    return body


@settings(FUZZ_SETTINGS, max_examples=800)
@given(common=examples_common, how=encodings, data=st.data())
def test_fuzz_well_typed_requests(fuzz_world, common, how, data):
    body = data.draw(well_typed_requests(fuzz_world), label="body")
    run_example("well_typed_requests", fuzz_world, common, encode(body, how))


# -- bugs the fuzz found: regression tests ------------------------------------------------------


def _alice_world(alice: Any, config: str = "anonymous_allowed") -> tuple[ChatKitTestClient, World]:
    client = AsyncClient(enforce_csrf_checks=True)
    client.force_login(alice)
    http = ChatKitTestClient(client=client)
    with override_settings(CHATKIT=CONFIGS[config]):
        return http, async_to_sync(build_world)(http, alice)


def _assert_no_server_error(
    http: ChatKitTestClient, config: str, body: dict[str, Any] | bytes
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    outcome, before, after = exchange_and_rollback(http, config, raw)
    check_outcome(outcome, before, after, raw, where=f"config={config} body={raw[:300]!r}")


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_nested(1000).encode(), id="top-level array, depth 1000"),
        pytest.param(
            (
                '{"type": "threads.list", "params": {}, "metadata": {"a": ' + _nested(500) + "}}"
            ).encode(),
            id="metadata, depth 500",
        ),
        pytest.param(
            (
                '{"type": "threads.add_client_tool_output", "params": {"thread_id": "thr_x", '
                '"result": ' + _nested(100_000) + "}}"
            ).encode(),
            id="params.result, depth 100000",
        ),
    ],
)
def test_bug_1_deep_nesting_is_refused_not_a_server_error(alice, body):
    """BUG-1 (fixed in a0494f4): these bodies were a RecursionError in vet_body, a 500."""
    http, _ = _alice_world(alice)
    _assert_no_server_error(http, "anonymous_allowed", body)


@pytest.mark.parametrize("role", ["user_msg", "assistant_msg", "widget", "tool_call"])
def test_bug_2_structured_input_on_another_item_kind_is_a_4xx(alice, role):
    http, world = _alice_world(alice)
    body = {
        "type": "threads.add_structured_input",
        "params": {
            "thread_id": world.thread,
            "item_id": getattr(world, role),
            "input": {"answers": {"q1": {"values": ["x"]}}},
        },
    }
    _assert_no_server_error(http, "anonymous_allowed", body)


def test_bug_2_structured_input_answered_twice_is_a_4xx(alice):
    http, world = _alice_world(alice)
    body = {
        "type": "threads.add_structured_input",
        "params": {
            "thread_id": world.thread,
            "item_id": world.form,
            "input": {"answers": {"q1": {"values": ["x"]}}},
        },
    }
    with override_settings(CHATKIT=CONFIGS["anonymous_allowed"]):
        first = async_to_sync(_exchange)(http, json.dumps(body).encode())
    assert (first.status, first.crash) == (200, None)
    _assert_no_server_error(http, "anonymous_allowed", body)


def test_bug_3_long_mime_type_is_a_4xx(alice):
    http, _ = _alice_world(alice, "attachments")
    body = {
        "type": "attachments.create",
        "params": {"name": "a.txt", "size": 1, "mime_type": "text/" + "x" * 300},
    }
    _assert_no_server_error(http, "attachments", body)


def test_issue_4_rejected_anonymous_request_writes_no_session(db):
    http = ChatKitTestClient(
        client=AsyncClient(enforce_csrf_checks=True)
    )  # a visitor's first request
    _assert_no_server_error(http, "anonymous_allowed", b"{not json")
