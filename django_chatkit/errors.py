"""Client-facing errors: an HTTP status, a stable code and a readable message."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class RequestRejected(Exception):
    """A request the server refuses before doing anything; becomes a 4xx JSON response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **details: Any) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error.update(details)
    return JsonResponse({"error": error}, status=status)
