"""Uploading a big file costs bounded memory: the peak does not grow with the file's size.

The whole ASGI stack runs in-process (Django's ASGIHandler, middleware, the upload view,
storage), fed the request body in 64 KiB ``http.request`` messages read from a file on disk, as
an ASGI server would. ``tracemalloc`` records the peak of Python allocations during the request.
``pytest -s tests/test_attachments_memory.py`` prints the table.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings

from tests.attachment_flow import CHATKIT_ORIGIN, Uploader
from tests.attachment_samples import stored_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MB = 1024 * 1024
CHUNK = 64 * 1024
BOUNDARY = "chatkitmemoryboundary"
RESULTS: dict[tuple[str, int], int] = {}


def write_body(path: Path, size: int, multipart: bool) -> int:
    """A PDF-looking file of ``size`` bytes (as a multipart body or raw), written in chunks."""
    block = bytes(range(256)) * (CHUNK // 256)
    with path.open("wb") as out:
        if multipart:
            out.write(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
            )
        out.write(b"%PDF-1.7\n")
        left = size - len(b"%PDF-1.7\n")
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
        if multipart:
            out.write(f"\r\n--{BOUNDARY}--\r\n".encode())
    return path.stat().st_size


async def asgi_upload(url: str, body: Path, length: int, content_type: str) -> tuple[int, int]:
    """POST ``body`` to ``url`` through Django's ASGI handler; return (status, peak bytes)."""
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", content_type.encode()),
            (b"content-length", str(length).encode()),
            (b"origin", CHATKIT_ORIGIN.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    done = asyncio.Event()
    sent: list[Mapping[str, Any]] = []
    with open(body, "rb") as source:  # noqa: ASYNC230  (a local file, read in small chunks)

        async def receive() -> dict[str, Any]:
            chunk = source.read(CHUNK)
            if chunk:
                return {"type": "http.request", "body": chunk, "more_body": source.tell() < length}
            await done.wait()  # the body is over: no disconnect until the response is sent
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            sent.append(message)

        tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            await ASGIHandler()(scope, receive, send)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            done.set()
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], peak


@pytest.fixture
def media(tmp_path):
    storages = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    chatkit = {
        "SERVER": "tests.servers.ScriptedServer",
        "ATTACHMENTS": {"ENABLED": True, "MAX_BYTES": 64 * MB},
    }
    with override_settings(STORAGES=storages, CHATKIT=chatkit):
        yield tmp_path / "media"


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "raw"])
async def test_peak_memory_does_not_grow_with_the_file(http_alice, media, tmp_path, multipart):
    mode = "multipart" if multipart else "raw"
    content_type = f"multipart/form-data; boundary={BOUNDARY}" if multipart else "application/pdf"
    peaks = {}
    for megabytes in (5, 50):
        body = tmp_path / f"body-{megabytes}.bin"
        length = write_body(body, megabytes * MB, multipart)
        _, created = await Uploader(http_alice).create("big.pdf", "application/pdf", megabytes * MB)
        status, peak = await asgi_upload(
            created["upload_descriptor"]["url"], body, length, content_type
        )
        assert status == 200
        body.unlink()
        peaks[megabytes] = peak
        RESULTS[(mode, megabytes)] = peak
    stored = [path.stat().st_size for path in stored_files(media)]
    assert sorted(stored) == [5 * MB, 50 * MB]
    print(f"\n| {mode} upload | peak Python memory (tracemalloc) |\n|---|---|")
    for megabytes, peak in peaks.items():
        print(f"| {megabytes} MB | {peak / MB:.2f} MB |")
    # Ten times the bytes, the same memory (within 1 MiB), and far below one 5 MB copy.
    assert peaks[50] < peaks[5] + MB
    assert peaks[50] < 5 * MB
