"""``ImageAttachment.preview_url``: a small ``data:`` thumbnail, bounded in size.

The ChatKit UI runs in OpenAI's https iframe, where ``http://localhost`` image URLs do not load
and a private file must not get a public URL: the preview travels inline instead. It is made
once, when the upload is verified, and stored with the attachment.
"""

from __future__ import annotations

import base64
import io

from PIL import Image, features

# The longest a preview data URL may be (it is stored with the attachment and each message).
MAX_PREVIEW_CHARS = 16 * 1024
_SIDES = (256, 192, 128, 96, 64, 48, 32)
_QUALITIES = (80, 60, 40)

# Shown until the upload is verified (a 1x1 light grey PNG).
PLACEHOLDER_PREVIEW = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAWk1v8QAAAABJRU5ErkJggg=="
)


def _encode(image: Image.Image, quality: int) -> str:
    buffer = io.BytesIO()
    if features.check("webp"):
        image.save(buffer, format="WEBP", quality=quality, method=4)
        mime = "image/webp"
    else:  # pragma: no cover - Pillow built without WebP
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
        flat.save(buffer, format="JPEG", quality=quality, optimize=True)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def make_preview(image: Image.Image, max_chars: int = MAX_PREVIEW_CHARS) -> str:
    """A data URL of ``image`` (verified and decoded), at most ``max_chars`` long."""
    try:
        alpha = "A" in image.getbands() or "transparency" in image.info
        source = image.convert("RGBA" if alpha else "RGB")
        for side in _SIDES:
            sized = source.copy()
            sized.thumbnail((side, side))
            for quality in _QUALITIES:
                url = _encode(sized, quality)
                if len(url) <= max_chars:
                    return url
    except (OSError, ValueError):  # an exotic mode that does not convert: no thumbnail
        pass
    return PLACEHOLDER_PREVIEW
