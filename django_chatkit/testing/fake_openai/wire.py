"""Wire-level pieces shared by both APIs: ids, SSE frames, error bodies."""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .script import Reply

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, *, separator: str = "_") -> str:
    """An id shaped like the API's: ``resp_<48 hex>``, ``msg_...``, ``fc_...``."""
    return f"{prefix}{separator}{secrets.token_hex(24)}"


def new_call_id() -> str:
    """A tool ``call_id`` shaped like the API's: ``call_`` + 24 letters and digits."""
    return "call_" + "".join(secrets.choice(_ALNUM) for _ in range(24))


@dataclass(frozen=True)
class Frame:
    """One server-sent event, ready to write.

    ``is_delta`` marks the streamed tokens that delays, ``drop_after`` and ``stall_after``
    count; ``is_final`` marks the event that ends the answer (``response.completed``, the
    ``finish_reason`` chunk), where those faults strike when there are fewer deltas.
    """

    data: bytes
    is_delta: bool = False
    is_final: bool = False


def sse(
    payload: dict[str, Any] | str,
    *,
    event: str | None = None,
    is_delta: bool = False,
    is_final: bool = False,
) -> Frame:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return Frame(f"{head}data: {data}\n\n".encode(), is_delta, is_final)


_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error",
          "model_not_found"),
    429: ("Rate limit reached for requests. Please try again in {retry_after:g}s.", "requests",
          "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}  # fmt: skip


def error_body(reply: Reply) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}`` as the API sends it for ``reply.status``."""
    status = reply.status
    default = _ERRORS.get(status) or (
        HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "server_error" if status >= 500 else "invalid_request_error",
        None,
    )
    seconds = retry_after(reply)
    message = reply.error_message or default[0].format(retry_after=seconds or 0)
    return {
        "error": {
            "message": message,
            "type": reply.error_type or default[1],
            "param": None,
            "code": reply.error_code if reply.error_code is not None else default[2],
        }
    }


def retry_after(reply: Reply) -> float | None:
    if reply.retry_after is None and reply.status == 429:
        return 1.0
    return reply.retry_after


def error_headers(reply: Reply) -> dict[str, str]:
    headers = {}
    seconds = retry_after(reply)
    if seconds is not None:
        headers["retry-after"] = f"{seconds:g}"
        headers["retry-after-ms"] = f"{round(seconds * 1000)}"
    headers.update(reply.headers)
    return headers
