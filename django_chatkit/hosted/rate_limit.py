"""How many client secrets one owner may mint per minute (``HOSTED_SESSIONS_PER_MINUTE``).

Every secret is an upstream call on the site's API key, and the sessions it opens run on the
site's OpenAI bill: a script that asks for secrets in a loop must be stopped here. Counted
like the chat's own quotas (:mod:`django_chatkit.quotas`): fixed one-minute windows in
``QUOTA_CACHE``, incremented atomically, anonymous visitors per visitor and per client address,
and the same ``QUOTA_FAIL_OPEN`` rule when the cache is down.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.utils.translation import ngettext

from django_chatkit import quotas
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.quotas import (
    QuotaExceeded,
    QuotaUnavailable,
    counter_keys,
)

logger = logging.getLogger("django_chatkit")


def _check_and_count(keys: list[str], per_minute: int) -> None:
    quotas.count_per_minute(
        caches[chatkit_settings.QUOTA_CACHE],
        "hosted",
        keys,
        per_minute,
        lambda limit: (
            ngettext(
                "the limit of %(count)d chat session per minute",
                "the limit of %(count)d chat sessions per minute",
                limit,
            )
            % {"count": limit}
        ),
    )


async def check_and_count_session(context: ChatKitContext) -> None:
    """Count one client secret; raise ``QuotaExceeded`` (429) past the limit, or
    ``QuotaUnavailable`` (503) when the cache fails and ``QUOTA_FAIL_OPEN`` is off."""
    per_minute = chatkit_settings.HOSTED_SESSIONS_PER_MINUTE
    if per_minute is None:
        return
    keys = counter_keys(context)
    try:
        await sync_to_async(_check_and_count, thread_sensitive=False)(keys, per_minute)
    except QuotaExceeded:
        raise
    except Exception as exc:  # the cache's own errors: connection refused, timeouts, ...
        if chatkit_settings.QUOTA_FAIL_OPEN:
            logger.warning("ChatKit quota cache unavailable, session allowed (fail open): %r", exc)
            return
        logger.error("ChatKit quota cache unavailable, session refused: %r", exc)
        raise QuotaUnavailable() from exc
