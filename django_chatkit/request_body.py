"""Reading and vetting a protocol request body before the SDK sees it."""

from __future__ import annotations

import json
import re
from typing import Any, get_args

from chatkit.types import ChatKitReq

from django_chatkit.errors import RequestRejected


def _known_ops() -> frozenset[str]:
    union = get_args(ChatKitReq)[0]
    return frozenset(
        get_args(model.model_fields["type"].annotation)[0] for model in get_args(union)
    )


KNOWN_OPS = _known_ops()

# NUL cannot be stored in PostgreSQL text or jsonb, and unpaired surrogates cannot be encoded
# as UTF-8 at all: either would fail deep in the database as a server error.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _has_unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(v) for v in value)
    return False


def vet_body(body: bytes) -> str:
    """Return the request's op, or raise :class:`RequestRejected` for a body no op could accept."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise RequestRejected(400, "invalid_json", f"The body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestRejected(400, "invalid_request", "The body must be a JSON object.")
    op = data.get("type")
    if not isinstance(op, str) or op not in KNOWN_OPS:
        raise RequestRejected(
            400,
            "unknown_operation",
            f"Unknown request type {op!r}. Known types: {', '.join(sorted(KNOWN_OPS))}.",
        )
    if _has_unstorable_text(data):
        raise RequestRejected(
            400, "invalid_request", "Text may not contain NUL characters or unpaired surrogates."
        )
    return op
