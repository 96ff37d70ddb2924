"""Per-owner request rate and daily token budget, counted atomically in the Django cache.

The quota is checked and counted before a turn stores anything (see
``DjangoChatKitServer.check_request``): a refused turn leaves no thread, message or session.
Anonymous visitors are counted twice, per visitor and per client address, because a visitor
without a cookie is a new visitor on every request.

Counting uses the cache's synchronous ``add`` + ``incr``: Redis (``INCRBY``), Memcached and the
local-memory cache (under its lock) increment atomically, so concurrent turns cannot all pass.
Django's async ``aincr`` is a read followed by a write on every backend and loses concurrent
increments: it is never used here. The database and file caches cannot increment atomically
(check ``chatkit.W004``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.core.cache import BaseCache, caches
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from django_chatkit.client_address import client_address
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.errors import RequestRejected

logger = logging.getLogger("django_chatkit")

RPM_WINDOW_SECONDS = 60
# Seconds a client is asked to wait when the quota cache cannot be reached.
UNAVAILABLE_RETRY_AFTER = 5


class QuotaExceeded(RequestRejected):
    """A turn refused because a limit is reached; ``retry_after`` says when it resets."""

    def __init__(self, limit: str, resets_at: datetime) -> None:
        self.limit = limit
        self.resets_at = resets_at
        seconds = max(1, int((resets_at - timezone.now()).total_seconds() + 0.999))
        local = timezone.localtime(resets_at, timezone.get_default_timezone())
        wait = (
            f"{seconds} s" if seconds < 120 else f"{seconds // 3600} h {seconds % 3600 // 60} min"
        )
        super().__init__(
            429,
            "quota_exceeded",
            gettext("You have reached %(limit)s. It resets at %(time)s (in %(wait)s).")
            % {"limit": limit, "time": f"{local:%H:%M:%S}", "wait": wait},
            retry_after=seconds,
        )


class QuotaUnavailable(RequestRejected):
    """The quota cache did not answer, and ``QUOTA_FAIL_OPEN`` is off."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "quota_unavailable",
            gettext(
                "The chat is unavailable for a moment (usage limits cannot be checked). Retry soon."
            ),
            retry_after=UNAVAILABLE_RETRY_AFTER,
        )


def counter_keys(context: ChatKitContext) -> list[str]:
    """Who a turn is counted against: the owner, and an anonymous visitor's client address."""
    owner = context.owner
    if owner.user_id is not None:
        return [f"u{owner.user_id}"]
    keys = [f"a{owner.anonymous_key}"]
    if context.request is not None and chatkit_settings.ANONYMOUS_LIMITS_PER_ADDRESS:
        keys.append(f"ip{client_address(context.request)}")
    return keys


def _day_start(now: datetime) -> datetime:
    local = timezone.localtime(now, timezone.get_default_timezone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _tokens_key(who: str, now: datetime) -> str:
    return f"chatkit:tokens:{who}:{_day_start(now):%Y%m%d}"


def increment(cache: BaseCache, key: str, delta: int, timeout: int) -> int:
    """Add ``delta`` to the counter ``key`` (created with ``timeout``) and return its value.

    ``add`` creates the key only if it is missing, and ``incr`` is atomic on Redis, Memcached
    and the local-memory cache. A key that expires between the two is created again.
    """
    for _ in range(2):
        cache.add(key, 0, timeout=timeout)
        try:
            return int(cache.incr(key, delta))
        except ValueError:  # expired (or evicted) between add and incr
            continue
    raise RuntimeError(f"The quota counter {key!r} could not be created.")


def current_window() -> int:
    """The number of the current fixed one-minute window (its counter's key)."""
    return int(time.time() // RPM_WINDOW_SECONDS)


def _check_and_count(keys: list[str]) -> None:
    cache = caches[chatkit_settings.QUOTA_CACHE]
    now = timezone.now()
    budget = chatkit_settings.TOKENS_PER_DAY
    if budget is not None:
        used = cache.get_many([_tokens_key(who, now) for who in keys])
        if any(int(value) >= budget for value in used.values()):
            tomorrow = _day_start(now) + timedelta(days=1)
            raise QuotaExceeded(
                gettext("today's budget of %(budget)s tokens") % {"budget": f"{budget:,}"},
                tomorrow,
            )
    per_minute = chatkit_settings.REQUESTS_PER_MINUTE
    if per_minute is not None:
        count_per_minute(
            cache,
            "rpm",
            keys,
            per_minute,
            lambda limit: (
                ngettext(
                    "the limit of %(count)d message per minute",
                    "the limit of %(count)d messages per minute",
                    limit,
                )
                % {"count": limit}
            ),
        )


def _add_tokens(keys: list[str], tokens: int) -> None:
    cache = caches[chatkit_settings.QUOTA_CACHE]
    now = timezone.now()
    for who in keys:
        increment(cache, _tokens_key(who, now), tokens, 2 * 24 * 3600)


def quotas_enabled() -> bool:
    return (
        chatkit_settings.REQUESTS_PER_MINUTE is not None
        or chatkit_settings.TOKENS_PER_DAY is not None
    )


async def check_and_count_request(context: ChatKitContext) -> None:
    """Count one model turn; raise :class:`QuotaExceeded` if this owner may not start it now.

    Raises :class:`QuotaUnavailable` when the cache fails, unless ``QUOTA_FAIL_OPEN`` is set.
    """
    if not quotas_enabled():
        return
    keys = counter_keys(context)
    try:
        await sync_to_async(_check_and_count, thread_sensitive=False)(keys)
    except RequestRejected:
        raise
    except Exception as exc:  # the cache's own errors: connection refused, timeouts, ...
        if chatkit_settings.QUOTA_FAIL_OPEN:
            logger.warning("ChatKit quota cache unavailable, turn allowed (fail open): %r", exc)
            return
        logger.error("ChatKit quota cache unavailable, turn refused: %r", exc)
        raise QuotaUnavailable() from exc


async def add_tokens(context: ChatKitContext, tokens: int) -> None:
    """Count tokens a model call used against today's budget. Never fails the turn."""
    if chatkit_settings.TOKENS_PER_DAY is None or tokens <= 0:
        return
    keys = counter_keys(context)
    try:
        await sync_to_async(_add_tokens, thread_sensitive=False)(keys, tokens)
    except Exception as exc:
        logger.warning("ChatKit could not count %d tokens in the quota cache: %r", tokens, exc)


def count_per_minute(
    cache: BaseCache,
    kind: str,
    keys: list[str],
    per_minute: int,
    limit_text: Callable[[int], str],
) -> None:
    """Count one more ``kind`` of request for each of ``keys`` in the current minute; raise
    ``QuotaExceeded`` (``limit_text(per_minute)`` says which limit) once any is past it."""
    window = current_window()
    # Every key is counted (no early exit), so each holds its own true count.
    counts = [
        increment(cache, f"chatkit:{kind}:{who}:{window}", 1, 2 * RPM_WINDOW_SECONDS)
        for who in keys
    ]
    if max(counts) > per_minute:
        resets = datetime.fromtimestamp(
            (window + 1) * RPM_WINDOW_SECONDS, tz=timezone.get_default_timezone()
        )
        raise QuotaExceeded(limit_text(per_minute), resets)
