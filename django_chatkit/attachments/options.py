"""Attachment limits from ``CHATKIT["ATTACHMENTS"]``, read by the server and the widget alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_chatkit.conf import chatkit_settings


@dataclass(frozen=True)
class Limits:
    enabled: bool
    max_bytes: int
    max_count: int
    # Per owner; None: unlimited (see DjangoAttachmentStore and attachments.owner_quota).
    max_pending_per_owner: int | None
    max_bytes_per_owner: int | None
    # MIME type -> accepted file extensions (lowercase, with the dot).
    allowed_types: dict[str, list[str]]

    def extensions(self, mime_type: str) -> list[str]:
        return self.allowed_types.get(mime_type, [])


def limits() -> Limits:
    """The current limits (settings are read on every call, so override_settings works)."""
    values = chatkit_settings.ATTACHMENTS
    allowed = {
        str(mime).lower(): [str(ext).lower() for ext in extensions]
        for mime, extensions in dict(values["ALLOWED_TYPES"]).items()
    }
    return Limits(
        enabled=attachments_enabled(),
        max_bytes=int(values["MAX_BYTES"]),
        max_count=int(values["MAX_COUNT"]),
        max_pending_per_owner=_optional_int(values["MAX_PENDING_PER_OWNER"]),
        max_bytes_per_owner=_optional_int(values["MAX_BYTES_PER_OWNER"]),
        allowed_types=allowed,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def attachments_enabled() -> bool:
    """Whether the server takes attachments: the built-in store is on, or a custom one is set."""
    return bool(chatkit_settings.ATTACHMENTS["ENABLED"]) or bool(chatkit_settings.ATTACHMENT_STORE)


def widget_options() -> dict[str, Any]:
    """The attachment part of the ChatKit widget options, from the same settings the server uses.

    Returns exactly this shape (values from ``CHATKIT["ATTACHMENTS"]``)::

        {
            "composer": {
                "attachments": {
                    "enabled": True,          # False when the server refuses attachments
                    "maxSize": 10485760,      # bytes per file: ATTACHMENTS["MAX_BYTES"]
                    "maxCount": 4,            # files per message: ATTACHMENTS["MAX_COUNT"]
                    "accept": {"image/png": [".png"], ...},  # ATTACHMENTS["ALLOWED_TYPES"]
                },
            },
            "uploadStrategy": {"type": "two_phase"},
        }

    The shape is the same when attachments are disabled (``enabled`` is then ``False``).
    ``composer`` merges into the options' ``composer``; ``uploadStrategy`` belongs in the
    options' ``api`` (ChatKit requires it there once attachments are enabled).
    """
    current = limits()
    return {
        "composer": {
            "attachments": {
                "enabled": current.enabled,
                "maxSize": current.max_bytes,
                "maxCount": current.max_count,
                "accept": {mime: list(exts) for mime, exts in current.allowed_types.items()},
            }
        },
        "uploadStrategy": {"type": "two_phase"},
    }
