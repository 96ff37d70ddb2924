"""The app each server of ``benchmarks.live_scale`` serves: ``tests.live_asgi`` (the test project
with the live websockets routed as docs/live.md's ``asgi.py`` does) plus one path the harness
reads, ``/__bench__/commits``.

    uvicorn benchmarks.live_asgi:application

``/__bench__/commits`` answers, as JSON, when writes committed in this process, keyed as the
harness keys the notices they publish: ``{"pid": ..., "commits": {"item.added:<item id>":
time.monotonic(), "item.feedback:<item id>": ...}}``. The times are taken by receivers of
``django_chatkit.signals.item_saved`` and ``feedback_received``, which the store sends right
after the write has committed (its ``on_commit`` callbacks, which hand the notice to the event
loop, run first). An item written again, or voted on again, keeps its first time.
``time.monotonic()`` is one clock for every process of the machine, so the harness subtracts it
from the moment a notice reached a websocket. The path is answered before Django sees the
request: reading it costs no query and adds no request.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from benchmarks.live_clients import COMMITS_PATH
from tests.live_asgi import application as live_application  # sets Django up

# "<notice event>:<item id>" -> when the write that published it committed.
_commits: dict[str, float] = {}


def _item_saved(sender: Any, thread_id: str, item: Any, **kwargs: Any) -> None:
    _commits.setdefault(f"item.added:{item.id}", time.monotonic())


def _feedback(sender: Any, thread_id: str, item_ids: list[str], **kwargs: Any) -> None:
    now = time.monotonic()
    for item_id in item_ids:
        _commits.setdefault(f"item.feedback:{item_id}", now)


def _connect() -> None:
    from django_chatkit import signals  # once Django is set up

    signals.item_saved.connect(_item_saved, weak=False, dispatch_uid="benchmarks.live_asgi")
    signals.feedback_received.connect(_feedback, weak=False, dispatch_uid="benchmarks.live_asgi")


_connect()


async def _answer_commits(send: Any) -> None:
    body = json.dumps({"pid": os.getpid(), "commits": _commits}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == COMMITS_PATH:
        await _answer_commits(send)
        return
    await live_application(scope, receive, send)
