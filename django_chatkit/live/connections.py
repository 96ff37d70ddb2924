"""How many live sockets each user (or anonymous visitor) has open, bounded by
``CHATKIT["LIVE_MAX_CONNECTIONS_PER_USER"]`` and counted in the ``QUOTA_CACHE`` cache.

With a cache every worker shares (Redis, Memcached) the bound holds across workers; with the
local-memory cache it holds per process (docs/live.md).

A plain counter would leak: a worker that is killed never decrements it, and its user would
stay refused. So each socket is counted in fixed periods (``PERIOD_SECONDS``): it increments the
counter of the period it opens in, and, a little before each period ends, the next period's
(its ``renew`` loop); closing decrements those it counted in. The counters expire after two
periods, so the sockets of a process that died stop counting after at most two periods.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from django.core.cache import BaseCache, caches

from django_chatkit.conf import chatkit_settings
from django_chatkit.context import Owner

logger = logging.getLogger("django_chatkit")

PERIOD_SECONDS: Final = 60
# A socket counts itself in the next period this long before it starts, so that a socket opened
# just after the start already finds every older socket counted.
RENEW_AHEAD_SECONDS: Final = 5


def who(owner: Owner) -> str:
    """The counter's subject: the user's pk, or the visitor's opaque key (never the token)."""
    if owner.user_id is not None:
        return f"u{owner.user_id}"
    return f"a{owner.memory_key()}"


def _period(now: float) -> int:
    return int(now // PERIOD_SECONDS)


def _key(subject: str, period: int) -> str:
    return f"chatkit:live:{subject}:{period}"


async def _increment(cache: BaseCache, key: str) -> int:
    # add then incr: atomic on Redis, Memcached and the local-memory cache (as quotas.increment).
    for _ in range(2):
        await cache.aadd(key, 0, timeout=2 * PERIOD_SECONDS)
        try:
            return int(await cache.aincr(key))
        except ValueError:  # expired between add and incr
            continue
    raise RuntimeError(f"The live connection counter {key!r} could not be created.")


class ConnectionSlot:
    """One socket's place in its owner's count: :meth:`acquire`, then :meth:`release`."""

    def __init__(
        self, subject: str, clock: Callable[[], float] = time.time, *, auto_renew: bool = True
    ) -> None:
        """``clock`` and ``auto_renew`` False: a test's own time, renewed by calling renew()."""
        self.subject = subject
        self.clock = clock
        self.auto_renew = auto_renew
        self.cache: BaseCache = caches[chatkit_settings.QUOTA_CACHE]
        self.periods: list[int] = []  # the periods this socket is counted in
        self._renewing: asyncio.Task[None] | None = None

    async def acquire(self) -> bool:
        """Count this socket; False (and not counted) when its owner has too many open.

        Unlimited when the setting is None. A cache that fails lets the socket in (logged): a
        live view is not worth refusing over a counter.
        """
        limit = chatkit_settings.LIVE_MAX_CONNECTIONS_PER_USER
        if limit is None:
            return True
        period = _period(self.clock())
        try:
            count = await _increment(self.cache, _key(self.subject, period))
            if count > limit:
                await self.cache.adecr(_key(self.subject, period))
                return False
        except Exception as exc:
            logger.warning("ChatKit live connections not counted (cache unavailable): %r", exc)
            return True
        self.periods.append(period)
        if self.auto_renew:
            self._renewing = asyncio.create_task(self._renew())
        return True

    def renewal_due(self) -> float:
        """When this socket counts itself in the period after the last one it is counted in."""
        return (self.periods[-1] + 1) * PERIOD_SECONDS - RENEW_AHEAD_SECONDS

    async def renew(self) -> None:
        """Count this socket in the period after the last one it is counted in."""
        following = self.periods[-1] + 1
        try:
            await _increment(self.cache, _key(self.subject, following))
        except Exception as exc:
            logger.warning("ChatKit live connection not renewed (cache unavailable): %r", exc)
        self.periods.append(following)
        del self.periods[:-2]  # older counters have expired or soon will

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.renewal_due() - self.clock()))
            await self.renew()

    async def release(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            self._renewing = None
        current = _period(self.clock())
        counted, self.periods = self.periods, []
        for period in counted:
            if period < current:
                continue  # that counter no longer matters (and expires)
            try:
                await self.cache.adecr(_key(self.subject, period))
            except ValueError:
                pass  # expired already
            except Exception as exc:
                logger.warning("ChatKit live connection not uncounted: %r", exc)
