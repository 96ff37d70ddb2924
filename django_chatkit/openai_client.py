"""The process-wide OpenAI client, configured from CHATKIT settings and the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

from django_chatkit.conf import chatkit_settings

if TYPE_CHECKING:
    import openai


def configured_api_key() -> str | None:
    """``CHATKIT["OPENAI_API_KEY"]``, else the ``OPENAI_API_KEY`` environment variable.

    Read anew on every call. None when neither is set: the client cannot be built (check
    chatkit.W005 says so before the first chat does).
    """
    return chatkit_settings.OPENAI_API_KEY or os.environ.get("OPENAI_API_KEY") or None


def configured_base_url() -> str | None:
    """``CHATKIT["OPENAI_BASE_URL"]``, else ``OPENAI_BASE_URL`` from the environment, else None
    (OpenAI's API)."""
    return chatkit_settings.OPENAI_BASE_URL or os.environ.get("OPENAI_BASE_URL") or None


def get_openai_client() -> openai.AsyncOpenAI:
    """The client for the current configuration, shared by every request of the process.

    Unset settings fall back to ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` from the environment,
    read on every call (cheap) so that a change to either builds a new client.
    Raises ``openai.OpenAIError`` when no API key is configured anywhere, even with a base URL.
    """
    return _client(
        configured_api_key(),
        configured_base_url(),
        chatkit_settings.OPENAI_CONNECT_TIMEOUT,
        chatkit_settings.OPENAI_READ_TIMEOUT,
        chatkit_settings.OPENAI_MAX_RETRIES,
    )


@lru_cache(maxsize=8)
def _client(
    api_key: str | None,
    base_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_retries: int,
) -> openai.AsyncOpenAI:
    # Imported here: system checks read the key above without loading the openai package.
    import openai

    # One client per configuration: it pools HTTP connections across requests.
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=openai.Timeout(read_timeout, connect=connect_timeout),
        max_retries=max_retries,
    )
