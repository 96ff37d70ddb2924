"""OpenAI's hosted ChatKit threads API, called with our own bounded retries.

The ``openai`` client's retries are off (``max_retries=0``) for these calls: its backoff is
fixed (at most ~8 s) and invisible, while an import must honour ``Retry-After``, bound its
attempts by setting, give up cleanly when told to wait longer than it may, and stay fast in
tests (``HOSTED_IMPORT_BACKOFF``). Retried: 429, 5xx (and 408/409, as the client would),
connection errors and timeouts. Every other error is the caller's to handle (404 included).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from django_chatkit.conf import chatkit_settings
from django_chatkit.openai_client import configured_api_key, configured_base_url

if TYPE_CHECKING:
    import openai
    from openai.types.beta.chatkit import ChatKitThread

logger = logging.getLogger("django_chatkit.hosted")

T = TypeVar("T")
_RETRIED_STATUSES = {408, 409, 429}


class UpstreamError(Exception):
    """OpenAI did not answer after the allowed attempts (or asked for a longer wait)."""


class Deadline(Exception):
    """The run's time bound would pass during the wait: stop here, resume later."""


@lru_cache(maxsize=4)
def _client(api_key: str | None, base_url: str | None, read_timeout: float) -> openai.OpenAI:
    import openai

    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=openai.Timeout(read_timeout, connect=chatkit_settings.OPENAI_CONNECT_TIMEOUT),
        max_retries=0,  # ours: see the module's docstring
    )


def default_client() -> openai.OpenAI:
    """A synchronous client for the configured key and base URL, without retries of its own."""
    return _client(
        configured_api_key(), configured_base_url(), chatkit_settings.OPENAI_READ_TIMEOUT
    )


def _retry_after(error: Exception) -> float | None:
    """Seconds the response asked us to wait (``retry-after-ms``, ``retry-after``: seconds or
    an HTTP date), or None."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(float(ms) / 1000, 0.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(parsed.timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _retryable(error: Exception) -> bool:
    import openai

    if isinstance(error, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in _RETRIED_STATUSES or error.status_code >= 500
    return False


def describe(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {error.message}"
    return f"{type(error).__name__}: {error}"


@dataclass
class Upstream:
    """The threads API with retries; ``calls`` counts the HTTP requests made."""

    client: Any = None
    max_attempts: int = field(default_factory=lambda: chatkit_settings.HOSTED_IMPORT_MAX_ATTEMPTS)
    backoff: float = field(default_factory=lambda: chatkit_settings.HOSTED_IMPORT_BACKOFF)
    max_wait: float = field(default_factory=lambda: chatkit_settings.HOSTED_IMPORT_MAX_WAIT)
    page_size: int = field(default_factory=lambda: chatkit_settings.HOSTED_IMPORT_PAGE_SIZE)
    # time.monotonic() after which no wait starts (an import run from the admin is bounded).
    deadline: float | None = None
    sleep: Callable[[float], None] = time.sleep
    calls: int = 0
    retries: int = 0

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = default_client()

    def _call(self, what: str, function: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                return function()
            except Exception as error:
                if not _retryable(error):
                    raise
                if attempt >= self.max_attempts:
                    raise UpstreamError(
                        f"{what}: gave up after {attempt} attempt(s); last answer: "
                        f"{describe(error)}"
                    ) from error
                wait = _retry_after(error)
                if wait is None:
                    wait = self.backoff * 2 ** (attempt - 1)
                if wait > self.max_wait:
                    raise UpstreamError(
                        f"{what}: OpenAI asked to wait {wait:g}s, more than "
                        f"HOSTED_IMPORT_MAX_WAIT ({self.max_wait:g}s); run again later."
                    ) from error
                if self.deadline is not None and time.monotonic() + wait > self.deadline:
                    raise Deadline(what) from error
                logger.info("%s: %s; retrying in %.3gs", what, describe(error), wait)
                self.retries += 1
                self.sleep(wait)

    def list_threads(self, user: str, after: str | None = None) -> Any:
        """One page of ``user``'s threads, oldest first."""
        threads = self.client.beta.chatkit.threads
        extra = {"after": after} if after else {}
        return self._call(
            f"listing the threads of {user}",
            lambda: threads.list(user=user, order="asc", limit=self.page_size, **extra),
        )

    def list_items(self, thread_id: str, after: str | None = None) -> Any:
        """One page of a thread's items, oldest first, after the item ``after``."""
        threads = self.client.beta.chatkit.threads
        extra = {"after": after} if after else {}
        return self._call(
            f"listing the items of {thread_id}",
            lambda: threads.list_items(thread_id, order="asc", limit=self.page_size, **extra),
        )

    def retrieve(self, thread_id: str) -> ChatKitThread | None:
        """The thread, or None when OpenAI has no such thread (404)."""
        import openai

        threads = self.client.beta.chatkit.threads
        try:
            found: ChatKitThread = self._call(
                f"retrieving {thread_id}", lambda: threads.retrieve(thread_id)
            )
        except openai.NotFoundError:
            return None
        return found

    def delete(self, thread_id: str) -> bool:
        """Delete the thread upstream; False when it was already gone (404), which counts as
        deleted too."""
        import openai

        threads = self.client.beta.chatkit.threads
        try:
            self._call(f"deleting {thread_id}", lambda: threads.delete(thread_id))
        except openai.NotFoundError:
            return False
        return True
