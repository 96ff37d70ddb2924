"""What an upload is allowed to be, judged on its name and size first, then on its real bytes.

The declared MIME type and the file name's extension are only claims. The bytes decide: a
binary format must be sniffed (``filetype``, magic numbers) as exactly the declared type, an
image must also open with Pillow, pass its header checks and decode (when decoding fits the
memory budget, see ``decoding``), and a text type must be UTF-8 without NUL bytes and without
the signature of any binary format.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

import filetype  # type: ignore[import-untyped]
from django.utils.translation import gettext
from PIL import Image, ImageOps

from django_chatkit.attachments import decoding
from django_chatkit.attachments.options import Limits
from django_chatkit.attachments.receiving import empty_file, too_large
from django_chatkit.errors import RequestRejected

SNIFF_BYTES = 8192
# Decoding an image costs memory per pixel, whatever its file size: refuse the huge ones.
MAX_IMAGE_PIXELS = 50_000_000
# Non-"text/*" types whose content is checked as UTF-8 text.
TEXT_TYPES = frozenset({"application/json"})
MAX_NAME_LENGTH = 255

_SNIFFABLE = frozenset(kind.mime for kind in filetype.types)
# Images are decoded at most about this size (JPEG decodes at a reduced scale) for the preview.
DECODE_SIDE = 512


def is_text_type(mime_type: str) -> bool:
    return mime_type.startswith("text/") or mime_type in TEXT_TYPES


def is_image_type(mime_type: str) -> bool:
    return mime_type.startswith("image/")


def can_verify(mime_type: str) -> bool:
    """Whether uploads of this type can be checked on their bytes (a check refuses the others)."""
    if is_text_type(mime_type):
        return True
    if is_image_type(mime_type):
        Image.init()
        return mime_type in _SNIFFABLE and mime_type in set(Image.MIME.values())
    return mime_type in _SNIFFABLE


def unsupported(message: str) -> RequestRejected:
    return RequestRejected(415, "unsupported_type", message)


def clean_name(name: str) -> str:
    """The client's file name as display metadata: its last path part, printable, bounded."""
    last = PurePosixPath(name.replace("\\", "/")).name
    printable = "".join(ch for ch in last if unicodedata.category(ch)[0] != "C").strip()
    if printable in {"", ".", ".."}:
        return "file"
    return printable[:MAX_NAME_LENGTH]


def extension_of(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


@dataclass(frozen=True)
class Declared:
    name: str
    mime_type: str
    size: int

    @property
    def is_image(self) -> bool:
        return is_image_type(self.mime_type)


def check_declared(name: str, mime_type: str, size: int, limits: Limits) -> Declared:
    """Vet ``attachments.create``'s claims before any byte is sent."""
    mime = mime_type.split(";")[0].strip().lower()
    clean = clean_name(name)
    if mime not in limits.allowed_types:
        allowed = ", ".join(sorted(limits.allowed_types)) or gettext("none")
        raise unsupported(
            gettext("Files of type %(type)s are not accepted (allowed: %(allowed)s).")
            % {"type": repr(mime or gettext("(none)")), "allowed": allowed}
        )
    extension = extension_of(clean)
    if extension and extension not in limits.extensions(mime):
        raise unsupported(
            gettext(
                "The extension %(extension)s does not match the type %(type)s "
                "(expected one of: %(expected)s)."
            )
            % {
                "extension": repr(extension),
                "type": repr(mime),
                "expected": ", ".join(limits.extensions(mime)),
            }
        )
    if size > limits.max_bytes:
        raise too_large(limits.max_bytes)
    if size <= 0:
        raise empty_file()
    return Declared(name=clean, mime_type=mime, size=size)


def _head(file: IO[bytes]) -> bytes:
    file.seek(0)
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    return head


def _check_text(file: IO[bytes], declared: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    file.seek(0)
    try:
        while chunk := file.read(64 * 1024):
            if b"\x00" in chunk:
                raise unsupported(
                    gettext("The file is not %(type)s text: it holds NUL bytes.")
                    % {"type": declared}
                )
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise unsupported(
            gettext("The file is not %(type)s text: it is not valid UTF-8.") % {"type": declared}
        ) from exc
    finally:
        file.seek(0)


def _check_header(file: IO[bytes], declared: str) -> None:
    """Format, dimensions and structure (PNG chunk checksums), without decoding a pixel."""
    with Image.open(file) as image:
        found = Image.MIME.get(image.format or "", "")
        width, height = image.size
        if found != declared:
            raise unsupported(gettext("The file is not a %(type)s image.") % {"type": declared})
        if width * height > MAX_IMAGE_PIXELS:
            raise RequestRejected(
                413,
                "image_too_large",
                gettext(
                    "The image has %(width)dx%(height)d pixels; at most %(limit)d megapixels "
                    "are accepted."
                )
                % {"width": width, "height": height, "limit": MAX_IMAGE_PIXELS // 1_000_000},
            )
        image.verify()


def _decode_small(file: IO[bytes]) -> Image.Image | None:
    """Decode the image (its first frame) and return it at most DECODE_SIDE pixels wide.

    None when decoding would not fit the memory budget: the image is then accepted on its
    header checks alone, without a preview.
    """
    with Image.open(file) as image:
        decoding.decode_at_most(image, DECODE_SIDE)
        if decoding.decode_cost(image) > decoding.max_decode_bytes():
            return None
        image.load()  # every pixel decodes: truncated or corrupt data fails here
        try:
            # Shrunk in place first, so that turning it upright copies only the small image.
            image.thumbnail((DECODE_SIDE, DECODE_SIDE))
            return ImageOps.exif_transpose(image)
        except (OSError, ValueError):  # decoded fine, but a mode that does not resize
            return None


def _check_image(file: IO[bytes], declared: str) -> Image.Image | None:
    """Check the image within the decode budget; return it small (None: no preview)."""
    file.seek(0)
    try:
        with decoding.decode_slot():
            _check_header(file, declared)
            file.seek(0)
            return _decode_small(file)
    except RequestRejected:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise RequestRejected(
            413, "image_too_large", gettext("The image has too many pixels.")
        ) from exc
    except Exception as exc:  # Pillow raises many kinds of errors for broken files
        raise unsupported(
            gettext("The file is not a valid %(type)s image.") % {"type": declared}
        ) from exc
    finally:
        file.seek(0)


def check_content(file: IO[bytes], declared: Declared) -> Image.Image | None:
    """Raise :class:`RequestRejected` unless the bytes really are of the declared type.

    For an image, return it decoded and downscaled (the preview is made from it), or None
    when it is too large to decode within ``ATTACHMENTS["MAX_DECODE_BYTES"]``.
    """
    mime = declared.mime_type
    sniffed = filetype.guess_mime(_head(file))
    if is_text_type(mime):
        if sniffed is not None:
            raise unsupported(
                gettext("The file is not %(type)s text: its content is %(found)s.")
                % {"type": mime, "found": sniffed}
            )
        _check_text(file, mime)
        return None
    if sniffed != mime:
        found = sniffed or gettext("of an unknown type")
        raise unsupported(
            gettext("The file was declared as %(type)s, but its content is %(found)s.")
            % {"type": mime, "found": found}
        )
    if is_image_type(mime):
        return _check_image(file, mime)
    return None
