"""Hosted ChatKit threads (``/v1/chatkit/threads``): what OpenAI keeps for a hosted workflow.

Tests seed threads and items per upstream ``user``, script faults on chosen calls, and read what
was requested through :attr:`FakeOpenAI.requests` (``RecordedRequest.query`` holds the query
string). Shapes follow ``openai.types.beta.chatkit`` (``ChatKitThread``,
``ChatKitThreadItemList``, ``ThreadDeleteResponse``); lists page by cursor as the real API does:
``order`` (``desc`` by default) by creation time, ``after`` / ``before`` an id of the list,
``limit`` (default 20, at most 100), and ``data``, ``first_id``, ``last_id``, ``has_more``.

    with FakeOpenAI() as fake:
        thread_id = fake.chatkit_threads.seed_thread(
            "dck_abc", items=[user_message("Hi"), assistant_message("Hello!")]
        )
        fake.chatkit_threads.fail(Reply(status=429, retry_after=0.01), method="GET", times=2)
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .records import RecordedRequest
from .script import Reply
from .wire import error_body, error_headers

PREFIX = "/v1/chatkit/threads"
BETA_HEADER = "chatkit_beta=v1"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

_THREAD = re.compile(r"^/v1/chatkit/threads/([^/]+)$")
_ITEMS = re.compile(r"^/v1/chatkit/threads/([^/]+)/items$")

Answer = tuple[int, dict[str, Any], Mapping[str, str]]


def serves(path: str) -> bool:
    """Whether ``path`` is one of this module's routes."""
    return path == PREFIX or path.startswith(PREFIX + "/")


# -- item builders: an upstream item without its id, thread and time (seed_thread adds them) --


def user_message(
    text: str,
    *,
    quoted: str | None = None,
    attachments: Sequence[Mapping[str, Any]] = (),
    model: str | None = None,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    if quoted is not None:
        content.append({"type": "quoted_text", "text": quoted})
    options = {"model": model, "tool_choice": None} if model else None
    return {
        "type": "chatkit.user_message",
        "content": content,
        "attachments": [dict(a) for a in attachments],
        "inference_options": options,
    }


def assistant_message(
    text: str, *, urls: Sequence[str] = (), files: Sequence[str] = ()
) -> dict[str, Any]:
    annotations = [{"type": "url", "source": {"type": "url", "url": url}} for url in urls]
    annotations += [
        {"type": "file", "source": {"type": "file", "filename": name}} for name in files
    ]
    return {
        "type": "chatkit.assistant_message",
        "content": [{"type": "output_text", "text": text, "annotations": annotations}],
    }


def widget(tree: Mapping[str, Any] | str) -> dict[str, Any]:
    """A widget item; ``tree`` is the widget (sent serialised, as the API does) or raw text."""
    return {"type": "chatkit.widget", "widget": tree if isinstance(tree, str) else json.dumps(tree)}


def client_tool_call(
    name: str,
    arguments: Mapping[str, Any] | str,
    *,
    output: Any = None,
    status: str = "completed",
) -> dict[str, Any]:
    return {
        "type": "chatkit.client_tool_call",
        "name": name,
        "call_id": "call_" + secrets.token_hex(12),
        "arguments": arguments if isinstance(arguments, str) else json.dumps(dict(arguments)),
        "output": None if output is None else json.dumps(output),
        "status": status,
    }


def task(
    heading: str | None, summary: str | None = None, *, task_type: str = "custom"
) -> dict[str, Any]:
    return {"type": "chatkit.task", "heading": heading, "summary": summary, "task_type": task_type}


def task_group(
    tasks: Iterable[tuple[str | None, str | None]], *, task_type: str = "custom"
) -> dict[str, Any]:
    return {
        "type": "chatkit.task_group",
        "tasks": [{"type": task_type, "heading": h, "summary": s} for h, s in tasks],
    }


# -- the store and its faults -----------------------------------------------------------------


@dataclass
class _Fault:
    reply: Reply
    method: str | None
    path: str | Callable[[str], bool] | None
    times: int

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        return self.path(path) if callable(self.path) else self.path == path


class HostedThreads:
    """Threads and items OpenAI keeps for hosted ChatKit, per upstream user. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, dict[str, Any]] = {}
        self._items: dict[str, list[dict[str, Any]]] = {}
        self._order: dict[str, int] = {}  # id -> creation sequence: breaks created_at ties
        self._sequence = 0
        self._faults: list[_Fault] = []

    # -- seeding ---------------------------------------------------------------------------

    def _next(self, object_id: str) -> None:
        self._sequence += 1
        self._order[object_id] = self._sequence

    def seed_thread(
        self,
        user: str,
        *,
        items: Iterable[Mapping[str, Any]] = (),
        title: str | None = None,
        status: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
        created_at: int | None = None,
    ) -> str:
        """Add a thread of ``user`` with ``items`` (builders above); returns its id."""
        thread_id = thread_id or "cthr_" + secrets.token_hex(16)
        created = int(time.time()) if created_at is None else created_at
        with self._lock:
            self._threads[thread_id] = {
                "id": thread_id,
                "object": "chatkit.thread",
                "created_at": created,
                "status": dict(status or {"type": "active"}),
                "title": title,
                "user": user,
            }
            self._items[thread_id] = []
            self._next(thread_id)
        self.add_items(thread_id, *items, created_at=created)
        return thread_id

    def add_items(
        self, thread_id: str, *items: Mapping[str, Any], created_at: int | None = None
    ) -> list[str]:
        """Append items to a thread (a conversation going on); returns their ids."""
        ids = []
        with self._lock:
            listed = self._items[thread_id]
            for item in items:
                item_id = "cthi_" + secrets.token_hex(16)
                created = int(time.time()) if created_at is None else created_at
                listed.append(
                    {
                        **item,
                        "id": item_id,
                        "object": "chatkit.thread_item",
                        "thread_id": thread_id,
                        "created_at": created,
                    }
                )
                self._next(item_id)
                ids.append(item_id)
        return ids

    def update_thread(self, thread_id: str, **fields: Any) -> None:
        """Change a thread's ``title`` or ``status`` upstream."""
        with self._lock:
            self._threads[thread_id].update(fields)

    def remove_thread(self, thread_id: str) -> None:
        """Delete a thread upstream behind the importer's back (as the user's widget may)."""
        with self._lock:
            self._threads.pop(thread_id, None)
            self._items.pop(thread_id, None)

    def thread_ids(self, user: str | None = None) -> list[str]:
        with self._lock:
            return [t["id"] for t in self._threads.values() if user is None or t["user"] == user]

    def exists(self, thread_id: str) -> bool:
        with self._lock:
            return thread_id in self._threads

    def items(self, thread_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._items[thread_id]]

    def fail(
        self,
        reply: Reply,
        *,
        method: str | None = None,
        path: str | Callable[[str], bool] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests (any when ``method`` / ``path`` are None;
        ``path`` exact or a predicate) with the error ``reply`` (its status, ``retry_after``,
        message) instead of serving them."""
        with self._lock:
            self._faults.append(_Fault(reply, method, path, times))

    # -- answering -------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Reply | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault.reply
        return None

    def answer(self, request: RecordedRequest) -> Answer:
        """The status, JSON body and headers for one request to a path :func:`serves`."""
        method, path = request.method, request.path
        if request.headers.get("openai-beta") != BETA_HEADER:
            return _error(400, f"ChatKit endpoints need the header OpenAI-Beta: {BETA_HEADER}.")
        fault = self._take_fault(method, path)
        if fault is not None:
            return fault.status, error_body(fault), error_headers(fault)
        query = request.query
        if path == PREFIX and method == "GET":
            user = query.get("user")
            with self._lock:
                rows = [t for t in self._threads.values() if user is None or t["user"] == user]
                return self._page(rows, query)
        if (found := _ITEMS.match(path)) and method == "GET":
            with self._lock:
                if found[1] not in self._items:
                    return _missing(found[1])
                return self._page(self._items[found[1]], query)
        if found := _THREAD.match(path):
            with self._lock:
                thread = self._threads.get(found[1])
                if thread is None:
                    return _missing(found[1])
                if method == "GET":
                    return 200, dict(thread), {}
                if method == "DELETE":
                    del self._threads[found[1]], self._items[found[1]]
                    return (
                        200,
                        {"id": found[1], "object": "chatkit.thread.deleted", "deleted": True},
                        {},
                    )
        return _error(404, f"FakeOpenAI does not serve {method} {path}.", "unknown_url")

    def _page(self, rows: list[dict[str, Any]], query: Mapping[str, str]) -> Answer:
        """One page of ``rows`` as the API's cursor lists return it (call under the lock)."""
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return _error(400, "order must be 'asc' or 'desc'.")
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _error(400, "limit must be an integer.")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}.")
        ordered = sorted(rows, key=lambda r: (r["created_at"], self._order[r["id"]]))
        if order == "desc":
            ordered.reverse()
        ids = [row["id"] for row in ordered]
        start, end = 0, len(ordered)
        for name in ("after", "before"):
            cursor = query.get(name)
            if cursor is None:
                continue
            if cursor not in ids:
                return _error(400, f"No object with id {cursor!r} to page {name}.")
            if name == "after":
                start = ids.index(cursor) + 1
            else:
                end = ids.index(cursor)
        if "before" in query and "after" not in query:
            # Before a cursor: the ``limit`` closest to it, still in ``order``.
            page = ordered[max(start, end - limit) : end]
            has_more = end - limit > start
        else:
            page = ordered[start : min(end, start + limit)]
            has_more = start + limit < end
        data = [dict(row) for row in page]
        return (
            200,
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            },
            {},
        )


def _error(status: int, message: str, code: str | None = None) -> Answer:
    reply = Reply(status=status, error_message=message, error_code=code)
    return status, error_body(reply), error_headers(reply)


def _missing(thread_id: str) -> Answer:
    return _error(404, f"No thread found with id '{thread_id}'.", "not_found")
