"""A channel layer that fails every send, as an unreachable Redis would (tests/test_live.py)."""

from __future__ import annotations

from typing import Any

from channels.layers import InMemoryChannelLayer


class BrokenLayer(InMemoryChannelLayer):  # type: ignore[misc]
    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("the channel layer is down")
