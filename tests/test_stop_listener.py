"""A turn's stop watch listening on channels_redis does not hold up the notices of the other
sockets of its process (found by benchmarks.live_scale).

channels_redis reads every process-local channel of a process through one receive lock: whoever
holds it blocks on the process's inbox in Redis and hands each message to the channel it names.
The inbox is the channel name's part before ``!``, so a channel made with another prefix than
the default has an inbox of its own: a stop watch listening on ``chatkit.stop.<process>!...``
held the lock while it waited on that inbox, and every websocket of the process heard nothing
until the turn ended (for good, when the watch's cancellation was lost inside the layer).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_chatkit.live.groups import thread_group
from tests.waiting import await_condition

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
THREAD = "thr_stoplistener"


@pytest.fixture
def redis_layer() -> Iterator[Any]:
    pytest.importorskip("channels_redis")
    from channels.layers import get_channel_layer

    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": f"ckt{uuid.uuid4().hex[:8]}",  # parallel runs share the server
            },
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        yield get_channel_layer()


async def test_a_stop_watch_does_not_hold_up_the_sockets_of_its_process(redis_layer: Any) -> None:
    from django_chatkit import stops
    from django_chatkit.live.notices import MESSAGE_TYPE

    layer = redis_layer
    socket = await layer.new_channel()  # what Channels gives each websocket consumer
    await layer.group_add(thread_group(THREAD), socket)
    stopped: list[bool] = []
    watch = stops.StopWatch(THREAD, lambda: None, lambda: stopped.append(True))
    watch.start()
    try:
        # The watch listens first: as the process's first receiver it takes the layer's
        # receive lock, before the socket's consumer asks to receive.
        await await_condition(
            lambda: layer.receive_lock is not None and layer.receive_lock.locked()
        )
        received = asyncio.create_task(layer.receive(socket))
        await layer.group_send(thread_group(THREAD), {"type": MESSAGE_TYPE, "event": "x"})
        message = await asyncio.wait_for(received, 2.0)
        assert message["event"] == "x"
        assert not stopped
    finally:
        watch.close()
        if watch._task is not None:
            await asyncio.wait([watch._task], timeout=5)
        await layer.flush()
