"""Waiting on a condition, never on the clock: tests synchronise with servers and threads by
polling what they can observe (a row, a log line, a counter) until it holds or a generous,
explicit deadline passes. A busy machine then makes a test slower, not wrong."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Polling interval: short against the deadlines, long enough not to load a busy machine.
POLL_SECONDS = 0.02


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Return ``predicate()``'s first truthy value; fail once ``timeout`` seconds have passed.

    ``describe`` adds what the failure message should show (the server's output, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting. {describe()}")
        time.sleep(POLL_SECONDS)


async def await_condition(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not for one await
    describe: Callable[[], str] = lambda: "",
) -> T:
    """:func:`wait_for` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting. {describe()}")
        await asyncio.sleep(POLL_SECONDS)
