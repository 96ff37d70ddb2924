"""System checks of the attachment settings (ids documented in docs/checks.md)."""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from django_chatkit.conf import DEFAULTS

ATTACHMENT_KEYS = frozenset(DEFAULTS["ATTACHMENTS"])


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _attachments_problems(value: Any) -> list[str]:
    from django_chatkit.attachments.validation import can_verify

    if not isinstance(value, dict):
        return [f"must be a dict, not {type(value).__name__}."]
    problems = []
    for key in sorted(set(value) - ATTACHMENT_KEYS, key=str):
        close = difflib.get_close_matches(str(key), ATTACHMENT_KEYS, n=1)
        problems.append(
            f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)." if close else ".")
        )
    merged = {**DEFAULTS["ATTACHMENTS"], **value}
    if not isinstance(merged["ENABLED"], bool):
        problems.append(f"ENABLED must be True or False, not {merged['ENABLED']!r}.")
    for key in ("MAX_BYTES", "MAX_COUNT", "MAX_DECODE_BYTES", "MAX_CONCURRENT_DECODES"):
        if not _is_positive_int(merged[key]):
            problems.append(f"{key} must be a positive integer, not {merged[key]!r}.")
    problems.extend(_per_owner_problems(merged))
    types = merged["ALLOWED_TYPES"]
    if not isinstance(types, dict):
        return [*problems, "ALLOWED_TYPES must be a dict of MIME type -> list of extensions."]
    for mime, extensions in types.items():
        if not isinstance(mime, str) or mime.count("/") != 1 or mime != mime.lower():
            problems.append(f"ALLOWED_TYPES key {mime!r} is not a lowercase MIME type.")
            continue
        if not isinstance(extensions, list | tuple) or not all(
            isinstance(ext, str) and ext.startswith(".") and len(ext) > 1 for ext in extensions
        ):
            problems.append(
                f"ALLOWED_TYPES[{mime!r}] must be a list of extensions like ['.png'], "
                f"not {extensions!r}."
            )
        if not can_verify(mime):
            problems.append(
                f"ALLOWED_TYPES has {mime!r}, whose content cannot be verified: uploads of it "
                "would all be refused (accepted: text types, images Pillow reads, and types "
                "the 'filetype' package recognises)."
            )
    return problems


def _per_owner_problems(merged: dict[str, Any]) -> list[str]:
    """The per-owner limits: None or positive, and roomy enough for one full message."""
    problems = []
    for key in ("MAX_PENDING_PER_OWNER", "MAX_BYTES_PER_OWNER"):
        if merged[key] is not None and not _is_positive_int(merged[key]):
            problems.append(f"{key} must be None or a positive integer, not {merged[key]!r}.")
    pending, count = merged["MAX_PENDING_PER_OWNER"], merged["MAX_COUNT"]
    if _is_positive_int(pending) and _is_positive_int(count) and pending < count:
        problems.append(
            f"MAX_PENDING_PER_OWNER ({pending}) is below MAX_COUNT ({count}): "
            "nobody could attach the most files a message may carry."
        )
    stored, largest = merged["MAX_BYTES_PER_OWNER"], merged["MAX_BYTES"]
    if _is_positive_int(stored) and _is_positive_int(largest) and stored < largest:
        problems.append(
            f"MAX_BYTES_PER_OWNER ({stored}) is below MAX_BYTES ({largest}): "
            "a file of the largest accepted size could never be stored."
        )
    return problems


def _origin_problems(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        return [f"must be a list of origins, not {type(value).__name__}."]
    problems = []
    for origin in value:
        parts = urlsplit(origin) if isinstance(origin, str) else None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.path
            or parts.query
            or parts.fragment
        ):
            problems.append(f"{origin!r} is not an origin like 'https://example.com'.")
    return problems


def attachment_setting_errors(value: dict[str, Any]) -> list[CheckMessage]:
    """chatkit.E010 (ATTACHMENTS), E011 (STORAGE), E012 (UPLOAD_ALLOWED_ORIGINS)."""
    errors: list[CheckMessage] = [
        Error(
            f"CHATKIT['ATTACHMENTS']: {problem}",
            hint="See ATTACHMENTS in docs/settings.md.",
            id="chatkit.E010",
        )
        for problem in _attachments_problems(value.get("ATTACHMENTS", DEFAULTS["ATTACHMENTS"]))
    ]
    alias = value.get("STORAGE", DEFAULTS["STORAGE"])
    if not isinstance(alias, str) or alias not in settings.STORAGES:
        errors.append(
            Error(
                f"CHATKIT['STORAGE'] = {alias!r} is not an alias in settings.STORAGES.",
                hint="Name a configured storage (local disk, or S3 through django-storages).",
                id="chatkit.E011",
            )
        )
    origins = value.get("UPLOAD_ALLOWED_ORIGINS", DEFAULTS["UPLOAD_ALLOWED_ORIGINS"])
    errors.extend(
        Error(
            f"CHATKIT['UPLOAD_ALLOWED_ORIGINS']: {problem}",
            hint="Origins are scheme://host[:port], without a path.",
            id="chatkit.E012",
        )
        for problem in _origin_problems(origins)
    )
    return errors


def presigned_upload_warnings(value: dict[str, Any]) -> list[CheckMessage]:
    """chatkit.W003: presigned uploads asked for, but the storage is not S3."""
    if not value.get("S3_PRESIGNED_UPLOADS", DEFAULTS["S3_PRESIGNED_UPLOADS"]):
        return []
    alias = value.get("STORAGE", DEFAULTS["STORAGE"])
    backend = settings.STORAGES.get(alias, {}).get("BACKEND", "") if isinstance(alias, str) else ""
    try:
        from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

        backend_class = import_string(backend)
        is_s3 = isinstance(backend_class, type) and issubclass(backend_class, S3Storage)
    except ImportError:
        is_s3 = False
    if is_s3:
        return []
    return [
        Warning(
            f"CHATKIT['S3_PRESIGNED_UPLOADS'] is on, but the storage {alias!r} is not "
            "django-storages' S3 backend: uploads go through this site instead.",
            hint="Point CHATKIT['STORAGE'] at an S3Storage alias, or turn the setting off.",
            id="chatkit.W003",
        )
    ]
