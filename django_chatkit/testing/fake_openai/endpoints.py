"""JSON endpoints of the fake beside the model APIs (ChatKit's hosted-mode resources).

The model APIs answer from the conversation's queue of :class:`Reply`; these endpoints keep
state of their own (sessions minted, threads stored) and answer plain JSON. Each one is an
object the fake asks, for every request, whether it serves it (:meth:`Endpoint.serves`), then
asks for the answer (:meth:`Endpoint.answer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .records import RecordedRequest
    from .script import Reply


@dataclass(frozen=True)
class JsonAnswer:
    """A JSON response: ``status`` and ``payload``, with extra ``headers``."""

    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class Endpoint(Protocol):
    def serves(self, method: str, path: str) -> bool:
        """Whether ``method`` ``path`` (the path without query nor trailing slash) is its."""
        ...

    def answer(self, request: RecordedRequest) -> JsonAnswer | Reply:
        """The answer: JSON, or a scripted fault (an error status, a hang) as a :class:`Reply`."""
        ...


def api_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JsonAnswer:
    """An error shaped as the API sends it: ``{"error": {message, type, param, code}}``."""
    error = {"message": message, "type": type, "param": param, "code": code}
    return JsonAnswer(status, {"error": error})
