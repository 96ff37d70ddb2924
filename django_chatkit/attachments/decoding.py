"""How much memory decoding an image takes, and how many images a process decodes at once.

A small file can declare a huge picture (a 189 KiB PNG of 50 megapixels decodes to 200 MB), so
what decoding costs is estimated from the header before a pixel is decoded, and the decode is
skipped when it would not fit ``ATTACHMENTS["MAX_DECODE_BYTES"]``. A process inspects at most
``ATTACHMENTS["MAX_CONCURRENT_DECODES"]`` images at a time, so that a burst of uploads cannot
multiply that budget by the number of requests in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

from django_chatkit.conf import chatkit_settings

# Modes Pillow stores in one byte per pixel; every other mode takes four (RGB included).
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
# Resizing these premultiplies alpha into a full-size copy first.
_PREMULTIPLIED_ON_RESIZE = frozenset({"LA", "RGBA"})
# libwebp decodes into two RGBA canvases of its own and hands Pillow a copy of the frame.
_WEBP_EXTRA_BYTES_PER_PIXEL = 12


def decode_cost(image: Image.Image) -> int:
    """Peak bytes that decoding ``image`` (opened, not loaded) and shrinking it would take.

    Counts the decoded pixels (after any ``draft``), the full-size copy ``resize()`` makes of
    images with alpha, the quarter-size intermediate of ``thumbnail()``'s reduce step, and the
    WebP decoder's own canvases. Measured peaks stay below this estimate.
    """
    width, height = image.size
    pixels = width * height
    per_pixel = 1 if image.mode in _ONE_BYTE_MODES else 4
    if image.mode in _PREMULTIPLIED_ON_RESIZE:
        per_pixel *= 2
    cost = pixels * per_pixel * 5 // 4
    if image.format == "WEBP":
        cost += pixels * _WEBP_EXTRA_BYTES_PER_PIXEL
    return cost


def decode_at_most(image: Image.Image, side: int) -> None:
    """Ask the decoder for a reduced scale (JPEG decodes at 1/2 to 1/8) still >= ``side`` wide.

    The box keeps the image's aspect ratio, so a very long, thin JPEG shrinks too (a square
    box would be limited by its short side and decode it at full size).
    """
    width, height = image.size
    longest = max(width, height, 1)
    if longest <= side:
        return
    box = (max(1, width * side // longest), max(1, height * side // longest))
    image.draft("RGB", box)


def max_decode_bytes() -> int:
    return int(chatkit_settings.ATTACHMENTS["MAX_DECODE_BYTES"])


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _current_slots() -> threading.BoundedSemaphore:
    """The semaphore for the current setting (a new one when the setting changes)."""
    global _slots
    limit = int(chatkit_settings.ATTACHMENTS["MAX_CONCURRENT_DECODES"])
    with _slots_lock:
        if _slots is None or _slots[0] != limit:
            _slots = (limit, threading.BoundedSemaphore(limit))
        return _slots[1]


@contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of the process's decode slots, waiting for one to be free.

    A thread, not a coroutine, waits: checks run in worker threads, and a threading semaphore
    bounds them whichever event loop (or none) started them. Each holder finishes within its
    memory budget, so the wait is bounded too.
    """
    slots = _current_slots()
    with slots:
        yield
