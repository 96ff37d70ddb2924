"""Reading and vetting a protocol request body before the SDK sees it."""

from __future__ import annotations

import json
import re
from typing import Any, get_args

from chatkit.types import ChatKitReq, StreamingReq

from django_chatkit.errors import RequestRejected


def _known_ops() -> frozenset[str]:
    union = get_args(ChatKitReq)[0]
    return frozenset(
        get_args(model.model_fields["type"].annotation)[0] for model in get_args(union)
    )


KNOWN_OPS = _known_ops()
STREAMING_OPS = frozenset(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(StreamingReq)
)

# NUL cannot be stored in PostgreSQL text or jsonb, and unpaired surrogates cannot be encoded
# as UTF-8 at all: either would fail deep in the database as a server error.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# MariaDB's JSON columns refuse documents nested 32 levels deep (JSON_VALID's limit). What a
# request carries into an item sits at least one level shallower in the item's payload (a
# message's content two, a client tool's output one), so bodies of up to 32 levels store on
# every database alike; no ChatKit request needs more.
MAX_DEPTH = 32


def _storage_problem(value: Any) -> str | None:
    """Why ``value`` could not be stored, or None."""
    # Iterative, so that a deeply nested body cannot exhaust the interpreter's stack.
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, str):
            if _UNSTORABLE.search(current) is not None:
                return "Text may not contain NUL characters or unpaired surrogates."
        elif isinstance(current, dict | list):
            if depth > MAX_DEPTH:
                return f"The body is nested too deeply (more than {MAX_DEPTH} levels)."
            if isinstance(current, dict):
                pending.extend((key, depth + 1) for key in current)
                current = list(current.values())
            pending.extend((child, depth + 1) for child in current)
    return None


def vet_body(body: bytes) -> str:
    """Return the request's op, or raise :class:`RequestRejected` for a body no op could accept."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise RequestRejected(400, "invalid_json", f"The body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise RequestRejected(400, "invalid_json", "The body is nested too deeply.") from exc
    if not isinstance(data, dict):
        raise RequestRejected(400, "invalid_request", "The body must be a JSON object.")
    op = data.get("type")
    if not isinstance(op, str) or op not in KNOWN_OPS:
        raise RequestRejected(
            400,
            "unknown_operation",
            f"Unknown request type {op!r}. Known types: {', '.join(sorted(KNOWN_OPS))}.",
        )
    problem = _storage_problem(data)
    if problem is not None:
        raise RequestRejected(400, "invalid_request", problem)
    return op
