"""Real files for attachment tests, made in memory: images through Pillow, the rest by hand."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

# The multipart field, raw bodies and helpers used by the attachment tests.
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# A Windows executable's first bytes: what a "photo.png" from an attacker may really be.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
TEXT = "Quarterly numbers: 12, 15, 19 — all up. Ünïcödé is fine.\n".encode()


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (640, 480), mode: str = "RGB") -> bytes:
    # Gradients, so that the picture has content (and a thumbnail worth the name).
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    vertical = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    image = Image.merge("RGB", (horizontal, vertical, radial))
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (a decompression bomb's
    calling card: the size is read before any pixel is decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def png_with_broken_pixels() -> bytes:
    """Every chunk well formed (checksums right, so Pillow's verify() passes), but the pixel
    data does not decompress: only decoding finds out."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    garbage = b"\x78\x9c" + bytes(range(200))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", garbage) + chunk(b"IEND", b"")
    )


def stored_files(root: Path) -> list[Path]:
    """Every file under a storage root (an empty list: nothing was left behind)."""
    return sorted(path for path in root.rglob("*") if path.is_file())


def one_colour_image(fmt: str, side: int) -> bytes:
    """A ``side`` x ``side`` image of one colour: a tiny file that decodes to many pixels (at
    ``side=7071``, 50 megapixels in under 200 KiB, a decompression bomb just under the cap).
    PNG and WebP are RGB (Pillow keeps four bytes per pixel), GIF is a palette image."""
    mode = "P" if fmt == "GIF" else "RGB"
    image = Image.new(mode, (side, side), 1 if mode == "P" else (200, 30, 30))
    options = {"lossless": True, "method": 0} if fmt == "WEBP" else {}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
