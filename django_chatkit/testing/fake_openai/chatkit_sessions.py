"""``POST /v1/chatkit/sessions`` and ``POST /v1/chatkit/sessions/{id}/cancel``, as OpenAI's.

What ``client.beta.chatkit.sessions.create(user=..., workflow={"id": ...}, ...)`` of the
``openai`` package sends (with the header ``OpenAI-Beta: chatkit_beta=v1``) and the
``ChatSession`` it parses. Each session gets a new ``client_secret``; it expires
``expires_after.seconds`` after its creation when the request says so, else ``expires_in``
seconds (OpenAI's default: 10 minutes).

Tests script failures with :meth:`ChatKitSessions.queue`: each queued :class:`Reply` answers
the next request it accepts (``Reply.when``), with its error status (``retry_after``,
``error_message``...), or by hanging (``hang``); a queued ``Reply()`` (status 200) lets one
request through. Requests no queued reply accepts are served normally::

    fake.chatkit_sessions.queue(Reply(status=429, retry_after=7))
    fake.chatkit_sessions.expires_in = 2  # sessions minted from now expire after 2 s
    ...
    [minted] = fake.chatkit_sessions.minted
    assert minted["user"].startswith("dck_")
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from .endpoints import JsonAnswer, api_error
from .records import RecordedRequest
from .script import Reply

CREATE_PATH = "/v1/chatkit/sessions"
_CANCEL_PATH = re.compile(r"^/v1/chatkit/sessions/(?P<session_id>[^/]+)/cancel$")
BETA_HEADER = "chatkit_beta=v1"
DEFAULT_EXPIRES_IN = 600  # OpenAI's: 10 minutes
DEFAULT_REQUESTS_PER_MINUTE = 10


def is_session_request(request: RecordedRequest) -> bool:
    """Whether ``request`` mints a session (for ``Reply.when``)."""
    return request.path == CREATE_PATH


def is_cancel_request(request: RecordedRequest) -> bool:
    """Whether ``request`` cancels a session (for ``Reply.when``)."""
    return _CANCEL_PATH.match(request.path) is not None


class ChatKitSessions:
    """The fake's ChatKit sessions: what was minted, and the script of failures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Reply] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self.expires_in = DEFAULT_EXPIRES_IN
        """Seconds a session lives when its request does not say (``expires_after``)."""

    # -- script ------------------------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests each reply accepts with it (a fault, or ``Reply()``: served)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> list[Reply]:
        with self._lock:
            return list(self._queue)

    @property
    def minted(self) -> list[dict[str, Any]]:
        """Every session minted so far (the ``ChatSession`` JSON, as it is now), in order."""
        with self._lock:
            return [dict(session) for session in self._sessions.values()]

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._sessions.clear()
            self.expires_in = DEFAULT_EXPIRES_IN

    # -- Endpoint ----------------------------------------------------------------------------

    def serves(self, method: str, path: str) -> bool:
        return path == CREATE_PATH or _CANCEL_PATH.match(path) is not None

    def answer(self, request: RecordedRequest) -> JsonAnswer | Reply:
        if request.method != "POST":
            return api_error(
                405, f"Invalid method for URL ({request.method} {request.path}).", code=None
            )
        if BETA_HEADER not in request.headers.get("openai-beta", ""):
            return api_error(
                400,
                "You must provide the 'OpenAI-Beta: chatkit_beta=v1' header to use ChatKit.",
                code="missing_beta_header",
            )
        scripted = self._take(request)
        if scripted is not None and (scripted.is_error or scripted.hang):
            return scripted
        cancel = _CANCEL_PATH.match(request.path)
        if cancel is not None:
            return self._cancel(cancel["session_id"])
        return self._create(request.json)

    def _take(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            for position, reply in enumerate(self._queue):
                if reply.when is None or reply.when(request):
                    return self._queue.pop(position)
        return None

    # -- the API -----------------------------------------------------------------------------

    def _create(self, body: Mapping[str, Any]) -> JsonAnswer:
        user = body.get("user")
        if not isinstance(user, str) or not user:
            return _missing("user")
        workflow = body.get("workflow")
        if not isinstance(workflow, Mapping):
            return _missing("workflow")
        workflow_id = workflow.get("id")
        if not isinstance(workflow_id, str) or not workflow_id:
            return _missing("workflow.id")
        expires_in = self.expires_in
        expires_after = body.get("expires_after")
        if expires_after is not None:
            seconds = expires_after.get("seconds") if isinstance(expires_after, Mapping) else None
            if (
                not isinstance(expires_after, Mapping)
                or expires_after.get("anchor") != "created_at"
                or not isinstance(seconds, int)
                or seconds < 1
            ):
                return api_error(
                    400,
                    "Invalid 'expires_after': expected {'anchor': 'created_at', 'seconds': int}.",
                    param="expires_after",
                    code="invalid_value",
                )
            expires_in = seconds
        per_minute = DEFAULT_REQUESTS_PER_MINUTE
        rate_limits = body.get("rate_limits")
        if isinstance(rate_limits, Mapping) and isinstance(
            rate_limits.get("max_requests_per_1_minute"), int
        ):
            per_minute = rate_limits["max_requests_per_1_minute"]
        configuration = body.get("chatkit_configuration")
        configuration = configuration if isinstance(configuration, Mapping) else {}
        tracing = workflow.get("tracing")
        session_id = "cksess_" + secrets.token_hex(24)
        session: dict[str, Any] = {
            "id": session_id,
            "object": "chatkit.session",
            "client_secret": "ek_" + secrets.token_urlsafe(32),
            "expires_at": int(time.time()) + expires_in,
            "max_requests_per_1_minute": per_minute,
            "rate_limits": {"max_requests_per_1_minute": per_minute},
            "status": "active",
            "user": user,
            "workflow": {
                "id": workflow_id,
                "version": workflow.get("version"),
                "state_variables": workflow.get("state_variables"),
                "tracing": {
                    "enabled": bool(tracing.get("enabled", True))
                    if isinstance(tracing, Mapping)
                    else True
                },
            },
            "chatkit_configuration": _resolved_configuration(configuration),
        }
        with self._lock:
            self._sessions[session_id] = session
        return JsonAnswer(200, session)

    def _cancel(self, session_id: str) -> JsonAnswer:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return api_error(404, f"No session found with id '{session_id}'.", code="not_found")
            if session["status"] == "active":
                expired = session["expires_at"] <= time.time()
                session["status"] = "expired" if expired else "cancelled"
            return JsonAnswer(200, dict(session))


def _missing(param: str) -> JsonAnswer:
    return api_error(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _resolved_configuration(requested: Mapping[str, Any]) -> dict[str, Any]:
    """``chatkit_configuration`` with OpenAI's defaults filled in, as the session reports it."""

    def part(name: str) -> Mapping[str, Any]:
        value = requested.get(name)
        return value if isinstance(value, Mapping) else {}

    titling = part("automatic_thread_titling")
    upload, history = part("file_upload"), part("history")
    return {
        "automatic_thread_titling": {"enabled": bool(titling.get("enabled", True))},
        "file_upload": {
            "enabled": bool(upload.get("enabled", False)),
            "max_file_size": upload.get("max_file_size", 512),
            "max_files": upload.get("max_files", 10),
        },
        "history": {
            "enabled": bool(history.get("enabled", True)),
            "recent_threads": history.get("recent_threads"),
        },
    }
