"""Database work from async code, without holding a connection across a streamed answer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def release_connections() -> None:
    """Return this thread's pooled database connections to their pool, unless in a transaction.

    Under ASGI, Django runs a request's synchronous code in a thread of its own and gives that
    thread's connections back at ``request_finished``, when the response ends. A streamed answer
    lasts as long as the model talks but needs the database only at its start and end: held
    until then, every open stream would keep a connection, and a pool smaller than the number of
    open streams would make answers wait for each other. Returned after each call, a process
    needs as many connections as it has calls in flight. Connections without a pool are left
    alone: closing one costs a new connection on the next call (see docs/deployment.md).
    """
    for connection in connections.all(initialized_only=True):
        if (
            getattr(connection, "pool", None) is not None
            and connection.connection is not None
            and not connection.in_atomic_block
        ):
            connection.close()


def in_thread(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``func`` as a coroutine run in the request's thread, connections released afterwards."""

    @functools.wraps(func)
    def call_and_release(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            release_connections()

    return sync_to_async(call_and_release, thread_sensitive=True)
