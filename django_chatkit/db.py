"""Database work from async code, without holding a connection across a streamed answer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def release_connections(*, unpooled: bool = False) -> None:
    """Give this thread's database connections back, unless one is in a transaction.

    Under ASGI, Django runs a request's synchronous code in a thread of its own and closes (or
    returns) that thread's connections at ``request_finished``, when the response ends. A
    streamed answer lasts as long as the model talks but needs the database only around it:
    held until then, every open stream would keep a connection. So pooled connections go back to
    their pool after every call (taking one again is cheap), and, with ``unpooled``, connections
    without a pool are closed too: a new one costs a few milliseconds, which is worth paying
    once before a wait of seconds but not after every query (see docs/deployment.md).
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue
        if unpooled or getattr(connection, "pool", None) is not None:
            connection.close()


def in_thread(
    func: Callable[P, R], *, before_wait: bool = False
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``func`` as a coroutine run in the request's thread, connections released afterwards.

    ``before_wait``: the caller waits a long time next (a model call), so connections without
    a pool are closed as well: an open stream then holds no connection while the model talks.
    """

    @functools.wraps(func)
    def call_and_release(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            release_connections(unpooled=before_wait)

    return sync_to_async(call_and_release, thread_sensitive=True)
