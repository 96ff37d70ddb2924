"""The Django storage side of attachments: names, saving, removal, and S3's presigned URLs.

Storage names are generated (``chatkit/attachments/<attachment id>/<random>.<ext>``); the
client's file name never reaches the storage. django-storages is optional: S3 features are
used only when the configured backend is its ``S3Storage``.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import transaction

logger = logging.getLogger("django_chatkit.attachments")

PREFIX = "chatkit/attachments"
INCOMING_PREFIX = "chatkit/incoming"
READ_CHUNK = 64 * 1024


def get_storage(alias: str) -> Storage:
    return storages[alias]


def is_s3(storage: Storage) -> bool:
    try:
        from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]
    except ImportError:
        return False
    return isinstance(storage, S3Storage)


def new_name(attachment_id: str, extension: str, *, incoming: bool = False) -> str:
    prefix = INCOMING_PREFIX if incoming else PREFIX
    return f"{prefix}/{attachment_id}/{secrets.token_hex(8)}{extension}"


# File is generic only in django-stubs: File[bytes] would fail at runtime.
class _TypedFile(File):  # type: ignore[type-arg]
    """A file carrying the verified content type (S3 stores it as the object's type)."""

    def __init__(self, file: IO[bytes], name: str, content_type: str) -> None:
        super().__init__(file, name)
        self.content_type = content_type


def save(alias: str, name: str, file: IO[bytes], content_type: str) -> str:
    """Store ``file`` under ``name`` (generated, so never clobbering); return the stored name."""
    file.seek(0)
    stored = get_storage(alias).save(name, _TypedFile(file, name, content_type))
    return str(stored)


def remove(alias: str, names: Iterable[str]) -> None:
    """Delete stored files; a failure is logged, never raised (the rows are already gone)."""
    wanted = [name for name in names if name]
    if not wanted:
        return
    try:
        storage = get_storage(alias)
    except Exception:
        logger.exception("Cannot remove %s: storage %r is not configured", wanted, alias)
        return
    for name in wanted:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("Could not remove %r from storage %r", name, alias)


def remove_on_commit(alias: str, names: Iterable[str], using: str | None = None) -> None:
    """Delete the files once the current transaction commits (now, outside a transaction)."""
    wanted = [name for name in names if name]
    if wanted:
        transaction.on_commit(lambda: remove(alias, wanted), using=using)


def iter_chunks(alias: str, name: str) -> Iterator[bytes]:
    with get_storage(alias).open(name, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk


def copy(alias: str, source: str, target: str, content_type: str) -> str:
    """Store a copy of the file ``source`` under ``target``; return the stored name.

    Streamed through a temporary file, so memory stays flat (S3's ``open`` would hold the whole
    object in memory).
    """
    storage = get_storage(alias)
    chunks = s3_iter_chunks(alias, source) if is_s3(storage) else iter_chunks(alias, source)
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as buffer:
        for chunk in chunks:
            buffer.write(chunk)
        return save(alias, target, buffer, content_type)


def size(alias: str, name: str) -> int:
    return int(get_storage(alias).size(name))


# -- S3 (django-storages) -----------------------------------------------------------------------


def _s3_key(storage: Any, name: str) -> str:
    from storages.utils import clean_name  # type: ignore[import-untyped]

    return str(storage._normalize_name(clean_name(name)))


def _s3_client(storage: Any) -> Any:
    # The signed connection, whatever querystring_auth or custom_domain say: files are private.
    return storage.connection.meta.client


def presigned_put(alias: str, name: str, content_type: str, expires: int) -> str:
    storage: Any = get_storage(alias)
    return str(
        _s3_client(storage).generate_presigned_url(
            "put_object",
            Params={
                "Bucket": storage.bucket_name,
                "Key": _s3_key(storage, name),
                "ContentType": content_type,
            },
            ExpiresIn=expires,
            HttpMethod="PUT",
        )
    )


def presigned_get(
    alias: str, name: str, *, content_type: str, disposition: str, expires: int = 60
) -> str:
    storage: Any = get_storage(alias)
    return str(
        _s3_client(storage).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": storage.bucket_name,
                "Key": _s3_key(storage, name),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=expires,
        )
    )


def s3_object_size(alias: str, name: str) -> int | None:
    """The size of an S3 object, or None when there is none."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    storage: Any = get_storage(alias)
    try:
        head = _s3_client(storage).head_object(
            Bucket=storage.bucket_name, Key=_s3_key(storage, name)
        )
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise
    return int(head["ContentLength"])


def s3_iter_chunks(alias: str, name: str) -> Iterator[bytes]:
    """Stream an S3 object (``storage.open`` would buffer all of it in memory)."""
    storage: Any = get_storage(alias)
    body = _s3_client(storage).get_object(Bucket=storage.bucket_name, Key=_s3_key(storage, name))[
        "Body"
    ]
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()
