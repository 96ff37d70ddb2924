"""Serving the SDK's event stream so that a client going away always reaches the SDK as a
cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable


async def cancellable(stream: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """Yield ``stream``'s chunks, produced by a task of their own.

    The SDK stores a partial answer only when ``asyncio.CancelledError`` reaches its generator
    (``handle_stream_cancelled``). When a client disconnects, Django cancels the response task:
    if that task is awaiting the server's ``send()`` at that moment rather than the stream, the
    SDK's generator is merely closed later (``GeneratorExit``) and the partial answer is lost.
    Producing in a separate task turns every way this iterator can end early (cancelled, closed,
    garbage-collected) into a cancellation of the producer, which the SDK handles.

    The queue is unbounded so that the producer never waits outside the stream: a cancellation
    then always lands inside the SDK's generator, where it is handled. What it may buffer is
    bounded by the answer itself.
    """
    # The chunks, then None: the end (a chunk is never None).
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def produce() -> None:
        try:
            async for chunk in stream:
                queue.put_nowait(chunk)
        finally:
            # Also when the stream fails or is cancelled: the reader then awaits the producer,
            # which raises what ended it. One wake-up per chunk, no task or wait() per chunk.
            queue.put_nowait(None)

    producer = asyncio.create_task(produce())
    try:
        ended = False
        while not ended and (chunk := await queue.get()) is not None:
            if queue.empty():
                yield chunk
                continue
            # Events the SDK produced while the previous send was under way go out together:
            # one send instead of several when the server is busy or the model is fast, which
            # is when the cost of each send counts. Nothing waits for more to arrive.
            parts = [chunk]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    ended = True
                    break
                parts.append(more)
            yield b"".join(parts)
        await producer
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
