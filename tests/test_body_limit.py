"""BodyLimitMiddleware in front of Django's ASGI handler: oversized bodies to the protocol endpoint
and to upload URLs are refused as they arrive, everything else passes through untouched.

Each request goes through ``BodyLimitMiddleware(ASGIHandler())`` in-process, fed as an ASGI
server feeds it (64 KiB ``http.request`` messages made on the fly), counting how much of the
body the application took. tests/test_body_limit_live.py does the same through real servers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings

from django_chatkit.asgi import BodyLimitMiddleware
from django_chatkit.attachments.views import MULTIPART_OVERHEAD
from tests.attachment_flow import CHATKIT_ORIGIN, Uploader, local_media, path_of
from tests.body_probe import (
    CHUNK,
    MB,
    MULTIPART_TYPE,
    PDF_START,
    filler,
    multipart,
    temp_bytes,
)
from tests.conftest import ENDPOINT

MAX_REQUEST_BYTES = 64 * 1024
MAX_FILE_BYTES = 256 * 1024
CHATKIT = {
    "SERVER": "tests.servers.ScriptedServer",
    "MAX_REQUEST_BYTES": MAX_REQUEST_BYTES,
    "ATTACHMENTS": {"ENABLED": True, "MAX_BYTES": MAX_FILE_BYTES},
}
UPLOAD = "/chatkit/attachments/atc_anything/upload/"


@dataclass
class Exchange:
    status: int
    headers: dict[str, str]
    body: bytes
    taken: int  # body bytes the application received

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/json", self
        return dict(json.loads(self.body)["error"])


async def exchange(
    app: Any,
    target: str,
    body: Iterable[bytes] = (),
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Exchange:
    """Send one request through the ASGI ``app`` as a server would; return what came back."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")]
        + [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    chunks: Iterator[bytes] = iter(body)
    upcoming: bytes | None = next(chunks, b"")
    body_over = False
    taken = 0
    answered = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal upcoming, body_over, taken
        if not body_over:
            assert upcoming is not None
            chunk, upcoming = upcoming, next(chunks, None)
            body_over = upcoming is None
            taken += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": not body_over}
        await answered.wait()  # no disconnect before the answer is out
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=60)
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Exchange(start["status"], answer_headers, content, taken)


@pytest.fixture
def app() -> BodyLimitMiddleware:
    return BodyLimitMiddleware(ASGIHandler())


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The directory of this process's temporary files (Django spools request bodies there)."""
    directory = tmp_path / "spool"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    with override_settings(CHATKIT=CHATKIT):
        yield str(directory)


@pytest.fixture
def media(tmp_path: Path, spool: str) -> Iterator[Path]:
    root = tmp_path / "media"
    with local_media(root):
        yield root


async def upload_url(http_alice: Any, size: int) -> str:
    status, created = await Uploader(http_alice).create("big.pdf", "application/pdf", size)
    assert status == 200, created
    return path_of(created["upload_descriptor"]["url"])


def multipart_length(size: int) -> int:
    return sum(len(chunk) for chunk in multipart(size))


# -- a declared Content-Length over the limit: 413 before any byte of the body is taken ------------


@pytest.mark.parametrize(
    ("target", "content_type", "declared", "code"),
    [
        (ENDPOINT, "application/json", MAX_REQUEST_BYTES + 1, "request_too_large"),
        (UPLOAD, "application/pdf", MAX_FILE_BYTES + 1, "file_too_large"),
        (UPLOAD, MULTIPART_TYPE, MAX_FILE_BYTES + MULTIPART_OVERHEAD + 1, "file_too_large"),
        (ENDPOINT, "application/json", 300 * MB, "request_too_large"),
    ],
    ids=["endpoint", "upload-raw", "upload-multipart", "endpoint-300MB"],
)
async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    app, spool, target, content_type, declared, code
):
    answer = await exchange(
        app,
        target,
        filler(declared),
        headers={"Content-Type": content_type, "Content-Length": str(declared)},
    )
    assert answer.status == 413
    assert answer.error()["code"] == code
    assert answer.headers["connection"] == "close"
    assert answer.taken == 0


async def test_the_limits_are_read_at_request_time(app, spool):
    def declaring(size: int) -> dict[str, str]:
        return {"Content-Type": "application/json", "Content-Length": str(size)}

    at_limit = await exchange(app, ENDPOINT, [b"x" * 1000], headers=declaring(1000))
    with override_settings(CHATKIT={**CHATKIT, "MAX_REQUEST_BYTES": 999}):
        over_limit = await exchange(app, ENDPOINT, [b"x" * 1000], headers=declaring(1000))
    assert at_limit.status == 401, at_limit  # the view answered: signed out
    assert over_limit.status == 413, over_limit
    assert over_limit.taken == 0
    assert over_limit.error() == {
        "code": "request_too_large",
        "message": "The body exceeds 999 bytes.",
    }


# -- a chunked (or longer than declared) body: counted, cut off at the first chunk past the limit --


@pytest.mark.parametrize(
    ("target", "content_type", "limit", "code"),
    [
        (ENDPOINT, "application/json", MAX_REQUEST_BYTES, "request_too_large"),
        (UPLOAD, "application/pdf", MAX_FILE_BYTES, "file_too_large"),
        (UPLOAD, MULTIPART_TYPE, MAX_FILE_BYTES + MULTIPART_OVERHEAD, "file_too_large"),
    ],
    ids=["endpoint", "upload-raw", "upload-multipart"],
)
@pytest.mark.parametrize("framing", ["chunked", "lying-length"])
async def test_a_streamed_body_is_refused_at_the_first_chunk_past_the_limit(
    app, spool, target, content_type, limit, code, framing
):
    headers = {"Content-Type": content_type}
    headers.update(
        {"Transfer-Encoding": "chunked"} if framing == "chunked" else {"Content-Length": "10"}
    )
    answer = await exchange(app, target, filler(64 * MB), headers=headers)
    assert answer.status == 413, answer
    assert answer.error()["code"] == code
    assert limit < answer.taken <= limit + CHUNK
    assert temp_bytes(os.getpid(), spool) == 0


async def test_a_body_at_the_limit_reaches_the_view(app, spool):
    at_limit = await exchange(
        app, ENDPOINT, filler(MAX_REQUEST_BYTES), headers={"Transfer-Encoding": "chunked"}
    )
    assert at_limit.status == 401, at_limit  # the view answered: signed out
    assert at_limit.taken == MAX_REQUEST_BYTES


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("form", ["multipart-length", "raw-chunked"])
async def test_an_upload_of_the_largest_file_is_stored(app, media, http_alice, form):
    url = await upload_url(http_alice, MAX_FILE_BYTES)
    headers = {"Origin": CHATKIT_ORIGIN}
    if form == "multipart-length":
        # Django parses multipart bodies of a declared length only (chunked ones look empty).
        body = multipart(MAX_FILE_BYTES)
        headers.update(
            {
                "Content-Type": MULTIPART_TYPE,
                "Content-Length": str(multipart_length(MAX_FILE_BYTES)),
            }
        )
    else:
        body = itertools.chain([PDF_START], filler(MAX_FILE_BYTES - len(PDF_START)))
        headers.update({"Content-Type": "application/pdf", "Transfer-Encoding": "chunked"})
    answer = await exchange(app, url, body, headers=headers)
    assert answer.status == 200, answer
    assert json.loads(answer.body)["name"] == "big.pdf"
    assert [path.stat().st_size for path in media.rglob("*.pdf")] == [MAX_FILE_BYTES]


@pytest.mark.django_db(transaction=True)
async def test_a_valid_token_does_not_lift_the_limit(app, media, http_alice):
    url = await upload_url(http_alice, MAX_FILE_BYTES)
    answer = await exchange(
        app,
        url,
        filler(64 * MB),
        headers={"Content-Type": "application/pdf", "Transfer-Encoding": "chunked"},
    )
    assert answer.status == 413
    assert answer.error() == {
        "code": "file_too_large",
        "message": f"The file is larger than {MAX_FILE_BYTES} bytes.",
    }
    assert answer.taken <= MAX_FILE_BYTES + CHUNK
    assert temp_bytes(os.getpid(), str(tempfile.gettempdir())) == 0
    assert not media.exists() or not any(media.rglob("*.pdf"))


@pytest.mark.parametrize(
    ("origin", "allowed"), [(CHATKIT_ORIGIN, True), ("https://elsewhere.example", False)]
)
async def test_a_refused_upload_answers_the_chatkit_origin_with_cors(app, spool, origin, allowed):
    answer = await exchange(
        app,
        UPLOAD,
        headers={
            "Content-Type": "application/pdf",
            "Content-Length": str(MAX_FILE_BYTES + 1),
            "Origin": origin,
        },
    )
    assert answer.status == 413
    assert answer.headers.get("access-control-allow-origin") == (origin if allowed else None)


# -- everything else passes through ---------------------------------------------------------------


class Recorder:
    """A bare ASGI application remembering the receive and send it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((receive, send))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", ENDPOINT, {}),
        ("POST", "/admin/login/", {"Content-Length": str(2 * MB)}),
        ("POST", "/chatkit/attachments/atc_1/", {"Transfer-Encoding": "chunked"}),  # download
        ("POST", "/nowhere/", {"Content-Length": str(2 * MB)}),
    ],
    ids=["no-body", "other-view", "download-view", "no-view"],
)
async def test_other_requests_reach_the_application_untouched(spool, method, target, headers):
    recorder = Recorder()
    answer = await exchange(
        BodyLimitMiddleware(recorder), target, filler(2 * MB), method=method, headers=headers
    )
    assert answer.status == 204
    assert answer.taken == 2 * MB
    [(receive, send)] = recorder.calls
    # The server's own callables: no wrapper, no cost per message.
    assert getattr(receive, "__qualname__", "") == "exchange.<locals>.receive"
    assert getattr(send, "__qualname__", "") == "exchange.<locals>.send"


async def test_websocket_and_lifespan_scopes_pass_through(spool):
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = BodyLimitMiddleware(inner)
    for kind in ("websocket", "lifespan"):
        # No receive/send: they are handed on untouched, never called for these scopes.
        await middleware({"type": kind, "path": ENDPOINT, "headers": []}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket", "lifespan"]
