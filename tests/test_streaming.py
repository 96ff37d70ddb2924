"""``cancellable``: every early end of the response reaches the SDK's stream as a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from django_chatkit.streaming import cancellable

# Generous: these waits end within a few event-loop turns unless the code under test is wrong.
TIMEOUT = 10


class Source:
    def __init__(self, chunks: int, fail_at: int | None = None) -> None:
        self.chunks, self.fail_at = chunks, fail_at
        self.writing = asyncio.Event()  # every chunk is out; the rest is still being written
        self.cancelled = asyncio.Event()

    async def __aiter__(self):
        try:
            for n in range(self.chunks):
                if n == self.fail_at:
                    raise RuntimeError("upstream broke")
                yield f"chunk {n}\n".encode()
                await asyncio.sleep(0)
            self.writing.set()
            await asyncio.Event().wait()  # an answer whose end never comes
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_passes_every_chunk_through_in_order():
    frames = [f"data: {n}\n\n".encode() for n in range(50)]

    async def finite():
        for frame in frames:
            yield frame

    received = [c async for c in cancellable(finite())]
    assert b"".join(received) == b"".join(frames)
    # Frames queued together may go out in one chunk, but never split or out of order.
    assert all(chunk.endswith(b"\n\n") for chunk in received)


async def test_sends_queued_frames_together_and_waits_for_nothing():
    # The source gives 3 frames at once, then waits: the 3 go out as one chunk, and the
    # reader gets them without waiting for the 4th.
    release = asyncio.Event()

    async def bursty():
        for n in range(3):
            yield f"data: {n}\n\n".encode()
        await release.wait()
        yield b"data: 3\n\n"

    stream = cancellable(bursty())
    first = await asyncio.wait_for(anext(stream), TIMEOUT)
    assert first == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    release.set()
    assert await asyncio.wait_for(anext(stream), TIMEOUT) == b"data: 3\n\n"
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), TIMEOUT)


async def test_closing_the_response_early_cancels_the_source():
    source = Source(chunks=3)
    stream = cancellable(source)
    assert await anext(stream) == b"chunk 0\n"
    # What happens when the server drops the response iterator. Waited on without cancelling
    # it (wait_for would, and that cancellation would reach the source on its own).
    closing = asyncio.create_task(stream.aclose())
    await asyncio.wait([closing], timeout=TIMEOUT)
    assert closing.done(), "closing the stream does not return"
    assert source.cancelled.is_set()


async def test_cancelling_the_consumer_cancels_the_source():
    source = Source(chunks=2)
    received: list[bytes] = []
    all_received = asyncio.Event()

    async def consume():
        async for chunk in cancellable(source):
            received.append(chunk)
            if len(received) == source.chunks:
                all_received.set()

    task = asyncio.create_task(consume())
    # Cancel mid-answer: the consumer waits for the next chunk, the source is still writing.
    await asyncio.wait_for(all_received.wait(), TIMEOUT)
    await asyncio.wait_for(source.writing.wait(), TIMEOUT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, TIMEOUT)
    await asyncio.wait_for(source.cancelled.wait(), TIMEOUT)


async def test_an_error_in_the_source_reaches_the_consumer():
    received: list[bytes] = []

    async def consume() -> None:
        async for chunk in cancellable(Source(chunks=5, fail_at=2)):
            received.append(chunk)

    with pytest.raises(RuntimeError, match="upstream broke"):
        await consume()
    assert received == [b"chunk 0\n", b"chunk 1\n"]
