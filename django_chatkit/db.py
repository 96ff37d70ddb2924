"""Database work from async code, without holding a connection across a streamed answer."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connections, router
from django.db.models import Model

logger = logging.getLogger("django_chatkit")

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


def close_dropped_connections() -> bool:
    """Close this thread's connections that the database dropped; True if there was one.

    Django notices a dropped connection only at the start and end of a request
    (``close_if_unusable_or_obsolete``); a streamed answer lasts long enough for a restart, a
    failover, an idle timeout or ``pg_terminate_backend`` to happen in between, and a pooled
    connection can die while it waits in the pool.
    """
    dropped = False
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        if connection.connection is None:
            # Closed already: a transaction that failed on a dropped connection closes it
            # when its rollback fails too (or it never connected, and connecting again will say).
            dropped = True
        elif connection.errors_occurred and not connection.is_usable():
            connection.close()
            dropped = True
        pool = getattr(connection, "pool", None) if dropped else None
        if pool is not None:
            # What dropped one connection (a restart, a failover) dropped the idle ones in the
            # pool as well, which would be handed out next: test them now, replace the dead.
            pool.check()
    return dropped


def in_thread(
    func: Callable[P, R],
    *,
    before_wait: bool = False,
    on_retry: Callable[P, R] | None = None,
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``func`` as a coroutine run in the request's thread, connections released afterwards.

    ``before_wait``: the caller waits a long time next (a model call), so connections without
    a pool are closed as well: an open stream then holds no connection while the model talks.

    When the call fails because the database dropped the connection, it is made once more on
    a new connection (``on_retry`` instead of ``func`` when given). That is safe because every
    function run this way is idempotent: reads, upserts, conditional updates, and inserts that
    first look for the row a dropped commit may have written (``on_retry``). A second failure,
    or a database that is really down, raises as usual.
    """

    @functools.wraps(func)
    def call_and_release(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                return func(*args, **kwargs)
            except (OperationalError, InterfaceError):
                if not close_dropped_connections():
                    raise  # the connection is fine: a lock timeout, a bad query, ...
                logger.warning("ChatKit: the database dropped a connection; trying once more")
                return (on_retry or func)(*args, **kwargs)
        finally:
            release_connections(unpooled=before_wait)

    return sync_to_async(call_and_release, thread_sensitive=True)


def upsert_options(
    model: type[Model], unique_fields: list[str], update_fields: list[str]
) -> dict[str, Any]:
    """``bulk_create`` arguments that update the row ``unique_fields`` identify when it exists.

    MySQL and MariaDB's ``ON DUPLICATE KEY UPDATE`` names no conflict target (it fires on any
    unique key) and Django refuses ``unique_fields`` there; each model upserted this way has no
    other unique key that an insert can hit (its primary key is automatic, or is the target), so
    leaving the target out updates the same row.
    """
    options: dict[str, Any] = {"update_conflicts": True, "update_fields": update_fields}
    if connections[router.db_for_write(model)].features.supports_update_conflicts_with_target:
        options["unique_fields"] = unique_fields
    return options
