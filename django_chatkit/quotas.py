"""Per-owner request rate and daily token budget, counted in the Django cache.

The cache is shared by every worker (Redis, Memcached, the database), so limits hold across
processes; with the default local-memory cache they hold per process only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import caches
from django.utils import timezone

from django_chatkit.conf import chatkit_settings
from django_chatkit.context import Owner


@dataclass
class QuotaExceeded(Exception):
    limit: str
    resets_at: datetime

    def __str__(self) -> str:
        seconds = max(1, int((self.resets_at - timezone.now()).total_seconds()))
        local = timezone.localtime(self.resets_at, timezone.get_default_timezone())
        wait = (
            f"{seconds} s" if seconds < 120 else f"{seconds // 3600} h {seconds % 3600 // 60} min"
        )
        return f"You have reached {self.limit}. It resets at {local:%H:%M:%S} (in {wait})."


def _owner_key(owner: Owner) -> str:
    return f"u{owner.user_id}" if owner.user_id is not None else f"a{owner.anonymous_key}"


def _day_start(now: datetime) -> datetime:
    local = timezone.localtime(now, timezone.get_default_timezone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _tokens_key(owner: Owner, now: datetime) -> str:
    return f"chatkit:tokens:{_owner_key(owner)}:{_day_start(now):%Y%m%d}"


async def check_and_count_request(owner: Owner) -> None:
    """Raise :class:`QuotaExceeded` if this owner may not start a model request now."""
    cache = caches[chatkit_settings.QUOTA_CACHE]
    now = timezone.now()
    budget = chatkit_settings.TOKENS_PER_DAY
    if budget is not None:
        used = await cache.aget(_tokens_key(owner, now), 0)
        if used >= budget:
            tomorrow = _day_start(now) + timedelta(days=1)
            raise QuotaExceeded(f"today's budget of {budget:,} tokens", tomorrow)
    per_minute = chatkit_settings.REQUESTS_PER_MINUTE
    if per_minute is not None:
        window = int(time.time() // 60)
        key = f"chatkit:rpm:{_owner_key(owner)}:{window}"
        await cache.aadd(key, 0, timeout=120)
        count = await cache.aincr(key)
        if count > per_minute:
            resets = datetime.fromtimestamp((window + 1) * 60, tz=timezone.get_default_timezone())
            raise QuotaExceeded(f"the limit of {per_minute} messages per minute", resets)


async def add_tokens(owner: Owner, tokens: int) -> None:
    if chatkit_settings.TOKENS_PER_DAY is None or tokens <= 0:
        return
    cache = caches[chatkit_settings.QUOTA_CACHE]
    key = _tokens_key(owner, timezone.now())
    await cache.aadd(key, 0, timeout=2 * 24 * 3600)
    await cache.aincr(key, tokens)
