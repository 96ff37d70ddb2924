"""Receiving an upload's bytes into a temporary file: streamed, counted, hashed, size-capped.

Nothing here holds the file in memory: a raw body is read in chunks, and a multipart body goes
through an upload handler that writes each chunk to disk as Django's parser yields it. A body
over the limit stops at the first byte too many and its temporary file is removed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext

from django_chatkit.errors import RequestRejected

CHUNK_SIZE = 64 * 1024
FILE_FIELD = "file"


def too_large(max_bytes: int) -> RequestRejected:
    return RequestRejected(
        413,
        "file_too_large",
        gettext("The file is larger than %(max)d bytes.") % {"max": max_bytes},
    )


def empty_file() -> RequestRejected:
    return RequestRejected(400, "empty_file", gettext("The file is empty."))


@dataclass
class ReceivedFile:
    """An upload on local disk; ``close()`` removes it."""

    file: IO[bytes]
    size: int = 0
    sha256: str = ""
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    @classmethod
    def new(cls) -> ReceivedFile:
        return cls(file=tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR))

    def write(self, chunk: bytes, max_bytes: int) -> None:
        self.size += len(chunk)
        if self.size > max_bytes:
            raise too_large(max_bytes)
        self._hash.update(chunk)
        self.file.write(chunk)

    def finish(self) -> ReceivedFile:
        self.sha256 = self._hash.hexdigest()
        self.file.flush()
        self.file.seek(0)
        return self

    def close(self) -> None:
        self.file.close()


def copy_limited(chunks: Iterable[bytes], max_bytes: int) -> ReceivedFile:
    """Copy ``chunks`` into a new :class:`ReceivedFile`, refusing more than ``max_bytes``."""
    received = ReceivedFile.new()
    try:
        for chunk in chunks:
            received.write(chunk, max_bytes)
    except BaseException:
        received.close()
        raise
    return received.finish()


def _read_chunks(stream: Any) -> Iterable[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


class _LimitedFileHandler(FileUploadHandler):
    """Writes the multipart field ``file`` to a :class:`ReceivedFile`; skips every other file."""

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.current: ReceivedFile | None = None
        self.received: ReceivedFile | None = None
        self.rejection: RequestRejected | None = None

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        if field_name != FILE_FIELD or self.received is not None:
            raise SkipFile()
        self.current = ReceivedFile.new()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        assert self.current is not None
        try:
            self.current.write(raw_data, self.max_bytes)
        except RequestRejected as exc:
            self.rejection = exc
            self.current.close()
            self.current = None
            raise StopUpload(connection_reset=False) from exc
        return None

    def file_complete(self, file_size: int) -> None:
        if self.current is not None:
            self.received = self.current.finish()
            self.current = None
        return None  # kept here, not in request.FILES

    def upload_interrupted(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


def _receive_multipart(request: HttpRequest, max_bytes: int) -> ReceivedFile:
    handler = _LimitedFileHandler(request, max_bytes)
    try:
        request.upload_handlers = [handler]
    except AttributeError:
        # Something read the form before this view: copy what Django's handlers kept.
        upload = request.FILES.get(FILE_FIELD)
        if upload is None:
            raise _no_file() from None
        return copy_limited(upload.chunks(CHUNK_SIZE), max_bytes)
    try:
        request.FILES  # noqa: B018  (parses the body through the handler)
    except (MultiPartParserError, TooManyFieldsSent, RequestDataTooBig) as exc:
        if handler.received is not None:
            handler.received.close()
        raise RequestRejected(
            400, "invalid_upload", f"The multipart body is invalid: {exc}"
        ) from exc
    finally:
        handler.upload_interrupted()
    if handler.rejection is not None:
        raise handler.rejection
    if handler.received is None:
        raise _no_file()
    return handler.received


def _no_file() -> RequestRejected:
    return RequestRejected(
        400,
        "invalid_upload",
        f"Send the file as a multipart field named {FILE_FIELD!r}, or as the raw request body.",
    )


def receive_upload(request: HttpRequest, max_bytes: int) -> ReceivedFile:
    """The request's file (multipart field ``file``, or else the raw body) on local disk.

    Raises :class:`RequestRejected`: 413 past ``max_bytes``, 400 for a malformed or empty body.
    """
    if request.content_type == "multipart/form-data":
        received = _receive_multipart(request, max_bytes)
    else:
        received = copy_limited(_read_chunks(request), max_bytes)
    if received.size == 0:
        received.close()
        raise empty_file()
    return received
