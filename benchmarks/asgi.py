"""Our app for the overhead benchmark: the test project (``tests.urls``) on the benchmark database.

    uvicorn benchmarks.asgi:application

Django's ASGI application behind ``BodyLimitMiddleware``, plus one path the harness reads,
``/__bench__/queries``: the number of SQL statements this process has executed so far (every
connection, every thread), as JSON, with the statements each request Django finished since the
``since``-th executed (``?since=N``). A request's statements are counted through a context
variable, which Django's tasks and asgiref's worker threads inherit from the request, so a
request that overlaps another (the previous turn's response still closing) counts only its own.
It is answered before Django sees the request, so reading it costs no query and adds no request
to the list.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qs

from django.core.asgi import get_asgi_application

from django_chatkit.asgi import BodyLimitMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.server_settings")
# What the README's asgi.py serves.
django_application = BodyLimitMiddleware(get_asgi_application())

from django_chatkit.loading import warm_up  # noqa: E402  (needs settings)

# What docs/deployment.md advises; the baseline imports and builds everything at import too.
warm_up()
if os.environ.get("BENCH_GC_FREEZE"):
    gc.freeze()

_executed = itertools.count()
_last = [0]
# Statements each request executed, in the order the requests finished.
_per_request: list[int] = []
# The counter of the request whose code runs (None outside requests).
_request_statements: ContextVar[list[int] | None] = ContextVar("bench_request_statements")


def _count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    _last[0] = next(_executed) + 1
    counter = _request_statements.get(None)
    if counter is not None:
        counter[0] += 1
    return execute(sql, params, many, context)


def _install_counter(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def _connect_signal() -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_install_counter, weak=False)


_connect_signal()
STATS_PATH = "/__bench__/queries"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == STATS_PATH:
        query = parse_qs(scope.get("query_string", b"").decode())
        since = int(query.get("since", ["0"])[0])
        body = json.dumps(
            {
                "queries": _last[0],
                "requests": len(_per_request),
                "per_request": _per_request[since:],
                "pid": os.getpid(),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    counter = [0]
    token = _request_statements.set(counter)
    try:
        await django_application(scope, receive, send)
    finally:
        _request_statements.reset(token)
        if scope["type"] == "http":
            _per_request.append(counter[0])
