"""Channel layer group names: one per thread, and one for staff.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100
characters. Thread ids made by this package (``thr_`` and 26 characters) are used as they are;
any other id (a custom server's, a client-chosen one) is hashed, so that every thread has a
valid name of its own.
"""

from __future__ import annotations

import hashlib
import re

THREAD_PREFIX = "chatkit.thread."
# Every notice also goes here, for a staff-wide live list (docs/live.md).
STAFF_GROUP = "chatkit.staff"

_PLAIN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def thread_group(thread_id: str) -> str:
    """The group a thread's notices go to (valid for Channels, at most 79 characters)."""
    if _PLAIN.match(thread_id):
        return THREAD_PREFIX + thread_id
    # "." marks the hashed form: a plain id has none, so the two forms never collide.
    digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{THREAD_PREFIX}h.{digest}"
