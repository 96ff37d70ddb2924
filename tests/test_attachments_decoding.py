"""What the decode budget does to an image upload, through the real views.

An image whose decode would not fit ``ATTACHMENTS["MAX_DECODE_BYTES"]`` is accepted on its header
and structure checks, keeping the placeholder preview; its structure is still checked. Within the
budget, images are decoded (JPEG at a reduced scale, whatever its shape) and previewed upright,
from their first frame. The memory these bounds hold in a real server process is measured in
``test_attachments_decode_memory.py``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from PIL import Image

from django_chatkit import models
from django_chatkit.attachments.previews import PLACEHOLDER_PREVIEW
from tests.attachment_flow import Uploader, body, local_media
from tests.attachment_samples import image_bytes, one_colour_image, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
# 1000x1000 RGB (estimated 5 MB) is over it; a 3000x3000 JPEG decoded at 1/4 (2.8 MB) within.
BUDGET = 4 * MB
MIME_TYPES = {"PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "JPEG": "image/jpeg"}


def chatkit_settings(decode_budget: int) -> dict[str, Any]:
    return {
        "SERVER": "tests.servers.ScriptedServer",
        "ATTACHMENTS": {"ENABLED": True, "MAX_BYTES": 2 * MB, "MAX_DECODE_BYTES": decode_budget},
    }


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "media"
    with local_media(root, chatkit_settings(BUDGET)):
        yield root


@pytest.fixture
def alice_up(http_alice, media) -> Uploader:
    return Uploader(http_alice)


def preview_of(ready: dict[str, Any]) -> Image.Image:
    header, data = ready["preview_url"].split(",", 1)
    assert header == "data:image/webp;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


def png_with_a_bad_checksum(side: int) -> bytes:
    """A PNG whose IDAT chunk's data no longer matches its CRC (the header is intact)."""
    data = bytearray(one_colour_image("PNG", side))
    idat = data.index(b"IDAT")
    data[idat + 8] ^= 0xFF  # a byte of the chunk's data, past its type
    return bytes(data)


class TestOverTheBudget:
    @pytest.mark.parametrize(
        ("fmt", "side"),
        [("PNG", 1000), ("WEBP", 600), ("GIF", 2000), ("JPEG", 1000)],
        ids=["png", "webp", "gif", "jpeg"],
    )
    async def test_is_accepted_on_its_header_without_a_preview(self, alice_up, media, fmt, side):
        data = one_colour_image(fmt, side)
        ready = await alice_up.attach(f"big.{fmt.lower()}", MIME_TYPES[fmt], data)
        assert ready["preview_url"] == PLACEHOLDER_PREVIEW
        row = await models.Attachment.objects.aget(id=ready["id"])
        assert row.status == "ready" and row.size == len(data)
        [stored] = stored_files(media)
        assert stored.read_bytes() == data

    async def test_its_structure_is_still_checked(self, alice_up, media):
        data = png_with_a_bad_checksum(1000)
        _, created = await alice_up.create("big.png", "image/png", len(data))
        response = await alice_up.send(
            created["upload_descriptor"]["url"], data, content_type="image/png"
        )
        assert (response.status_code, body(response)["error"]["code"]) == (415, "unsupported_type")
        assert stored_files(media) == []

    async def test_a_larger_budget_decodes_it(self, alice_up, media):
        with override_settings(CHATKIT=chatkit_settings(8 * MB)):
            ready = await alice_up.attach("big.png", "image/png", one_colour_image("PNG", 1000))
        assert ready["preview_url"] != PLACEHOLDER_PREVIEW


class TestWithinTheBudget:
    @pytest.mark.parametrize(
        "size",
        [(3000, 3000), (8000, 400)],
        ids=["square, decoded at 1/4", "long and thin, decoded at 1/8"],
    )
    async def test_a_large_jpeg_decodes_at_a_reduced_scale(self, alice_up, size):
        # At full size each would take far more than the budget (45 and 16 MB).
        ready = await alice_up.attach("photo.jpg", "image/jpeg", image_bytes("JPEG", size))
        with preview_of(ready) as preview:
            width, height = preview.size
        assert max(width, height) <= 256
        assert (width > height) == (size[0] > size[1])

    async def test_the_preview_is_upright(self, alice_up):
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: the camera was turned; display rotated 90 degrees
        buffer = io.BytesIO()
        Image.new("RGB", (600, 300), "teal").save(buffer, format="JPEG", exif=exif)
        ready = await alice_up.attach("turned.jpg", "image/jpeg", buffer.getvalue())
        with preview_of(ready) as preview:
            assert preview.height > preview.width

    @pytest.mark.parametrize("fmt", ["GIF", "WEBP"])  # (an APNG is sniffed as image/apng)
    async def test_an_animation_is_previewed_from_its_first_frame(self, alice_up, fmt):
        frames = [Image.new("RGB", (120, 80), colour) for colour in ("red", "lime", "blue")]
        buffer = io.BytesIO()
        frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=100)
        ready = await alice_up.attach(f"anim.{fmt.lower()}", MIME_TYPES[fmt], buffer.getvalue())
        with preview_of(ready) as preview:
            # An RGB pixel is a 3-tuple; Pillow's type also covers one-band and missing pixels.
            red, green, blue = preview.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
        assert red > 200 and green < 60 and blue < 60

    async def test_a_16_bit_png_that_does_not_shrink_is_accepted_without_a_preview(self, alice_up):
        # It decodes, so it is a valid PNG; but Pillow cannot reduce 16-bit greyscale, which a
        # thumbnail of an image over 2048 pixels wide needs. Not the uploader's fault.
        buffer = io.BytesIO()
        Image.new("I;16", (2100, 2100), 40000).save(buffer, format="PNG")
        with override_settings(CHATKIT=chatkit_settings(32 * MB)):  # estimated 22 MB
            ready = await alice_up.attach("depth.png", "image/png", buffer.getvalue())
        assert ready["preview_url"] == PLACEHOLDER_PREVIEW
