"""Channel layers that misbehave as real ones do: one that fails every send, as an unreachable
Redis would (tests/test_live.py); one that loses a receive's cancellation, as channels_redis
does on Python 3.11 (tests/test_stop_listener.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer


class BrokenLayer(InMemoryChannelLayer):  # type: ignore[misc]
    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("the channel layer is down")


class CancelLosingLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Loses the first cancellation of a receive: it goes on waiting for a message, as
    channels_redis does when the cancellation lands as redis-py's ``asyncio.wait_for`` (Python
    3.11) finishes sending a command."""

    lost = 0

    async def receive(self, channel: str) -> dict[str, Any]:
        while True:
            try:
                return dict(await super().receive(channel))
            except asyncio.CancelledError:
                if self.lost:
                    raise
                self.lost += 1
