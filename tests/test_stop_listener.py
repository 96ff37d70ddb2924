"""A turn's stop watch listening on the channel layer (found by benchmarks.live_scale).

It does not hold up the notices of the other sockets of its process on channels_redis, and it
ends with its turn even when the layer loses its listener's cancellation.

channels_redis reads every process-local channel of a process through one receive lock: whoever
holds it blocks on the process's inbox in Redis and hands each message to the channel it names.
The inbox is the channel name's part before ``!``, so a channel made with another prefix than
the default has an inbox of its own: a stop watch listening on ``chatkit.stop.<process>!...``
held the lock while it waited on that inbox, and every websocket of the process heard nothing
until the turn ended (for good, when the watch's cancellation was lost inside the layer).

On Python 3.11, channels_redis loses a receive's cancellation when it lands as redis-py's
``asyncio.wait_for`` finishes sending a command (redis-py sends through it when the connection has
a socket_timeout, which docs/live.md asks for): the receive then waits on for a message. A watch
left so would keep a task and its stop group membership for good: it sends its listener a
message to end it instead of cancelling its receive (which, with channels_redis, may also drop
a notice the receive was taking off Redis for another channel of the process).
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


async def test_a_watch_ends_its_listener_on_a_layer_that_loses_cancellations() -> None:
    from channels.layers import get_channel_layer

    from django_chatkit import stops

    layers = {"default": {"BACKEND": "tests.live_layers.CancelLosingLayer"}}
    with override_settings(CHANNEL_LAYERS=layers):
        layer = get_channel_layer()
        group = stops.stop_group(THREAD)
        watch = stops.StopWatch(THREAD, lambda: None, lambda: None)
        watch.start()
        # Listening: in the stop group, waiting on its channel.
        await await_condition(lambda: layer.groups.get(group) and layer.channels)
        started = asyncio.get_running_loop().time()
        watch.close()
        task = watch._task
        assert task is not None
        done, _ = await asyncio.wait([task], timeout=stops.LISTENER_GRACE_SECONDS + 5)
        assert done, "the watch still waits on its listener"
        assert layer.lost == 0  # ended by a message, not by a cancellation the layer loses
        assert asyncio.get_running_loop().time() - started < stops.LISTENER_GRACE_SECONDS + 2
        # Out of the group, as a listener cancelled in time would be.
        await await_condition(lambda: not layer.groups.get(group))
        assert not watch.stopped
