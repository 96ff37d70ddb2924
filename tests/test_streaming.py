"""``cancellable``: every early end of the response reaches the SDK's stream as a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from django_chatkit.streaming import cancellable


class Source:
    def __init__(self, chunks: int, fail_at: int | None = None) -> None:
        self.chunks, self.fail_at = chunks, fail_at
        self.cancelled = asyncio.Event()

    async def __aiter__(self):
        try:
            for n in range(self.chunks):
                if n == self.fail_at:
                    raise RuntimeError("upstream broke")
                yield f"chunk {n}\n".encode()
                await asyncio.sleep(0)
            await asyncio.sleep(3600)  # an answer still being written
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_passes_every_chunk_through_in_order():
    async def finite():
        for n in range(50):
            yield bytes([n])

    assert [c async for c in cancellable(finite())] == [bytes([n]) for n in range(50)]


async def test_closing_the_response_early_cancels_the_source():
    source = Source(chunks=3)
    stream = cancellable(source)
    assert await anext(stream) == b"chunk 0\n"
    await stream.aclose()  # what happens when the server drops the response iterator
    await asyncio.wait_for(source.cancelled.wait(), 1)


async def test_cancelling_the_consumer_cancels_the_source():
    source = Source(chunks=2)

    async def consume():
        async for _ in cancellable(source):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(source.cancelled.wait(), 1)


async def test_an_error_in_the_source_reaches_the_consumer():
    received: list[bytes] = []

    async def consume() -> None:
        async for chunk in cancellable(Source(chunks=5, fail_at=2)):
            received.append(chunk)

    with pytest.raises(RuntimeError, match="upstream broke"):
        await consume()
    assert received == [b"chunk 0\n", b"chunk 1\n"]
