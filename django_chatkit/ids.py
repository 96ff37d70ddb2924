"""Prefixed, time-sortable ids with 100 random bits.

The SDK's default ids are ``prefix_`` + 8 hex chars (32 random bits): a collision becomes likely
after ~65k rows. Ours are ``prefix_`` + 10 chars of millisecond timestamp + 20 chars of randomness,
in lowercase Crockford base32, so they sort by creation time as plain strings.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_TIME_CHARS = 10  # 50 bits of milliseconds: good until the year 37648
_RANDOM_CHARS = 20  # 100 random bits

# Same prefixes as the SDK, so ids stay recognisable in logs and the admin.
PREFIXES = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, remainder = divmod(number, 32)
        chars.append(_ALPHABET[remainder])
    return "".join(reversed(chars))


_RANDOM_BITS = 5 * _RANDOM_CHARS
_lock = threading.Lock()
_last: tuple[int, int] = (-1, 0)


def _next_parts(now_ms: int) -> tuple[int, int]:
    """Millisecond and random part, strictly increasing within this process.

    Ids made in the same millisecond (or while the clock steps back) reuse the last millisecond
    and increment the random part, as monotonic ULIDs do: so ids sort in creation order, which
    is what breaks ties between threads created at the same instant.
    """
    global _last
    with _lock:
        last_ms, last_random = _last
        if now_ms > last_ms:
            parts = (now_ms, secrets.randbits(_RANDOM_BITS))
        elif last_random + 1 < 1 << _RANDOM_BITS:
            parts = (last_ms, last_random + 1)
        else:  # the random part ran out within one millisecond: borrow the next one
            parts = (last_ms + 1, secrets.randbits(_RANDOM_BITS))
        _last = parts
        return parts


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """Return ``prefix_<time><random>``; ``now_ms`` is for tests of ordering."""
    millis, random_part = _next_parts(time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    return f"{prefix}_{_encode(millis, _TIME_CHARS)}{_encode(random_part, _RANDOM_CHARS)}"


def new_typed_id(item_type: str) -> str:
    """An id for one of the SDK's store item types (``thread``, ``message``, ...)."""
    return new_id(PREFIXES.get(item_type, item_type))
