"""Oversized bodies through real server processes: uvicorn serving ``tests.asgi`` (wrapped in
``BodyLimitMiddleware``) and daphne through ``python -m django_chatkit.daphne``.

The server gets a temporary directory of its own (``TMPDIR``): every temporary file it makes,
Django's spooled bodies and Twisted's alike, is there. ``ServerWatch`` follows the server's peak
RSS and the bytes of the files it holds open in that directory during each request. Bodies are
made as they are sent, never stored. Bounds: RSS growth under 50 MB for a 300 MB body (before:
0.3 to 1.1 GB on daphne), temporary files no larger than the limit (before: the whole body, twice
on daphne), none left once answered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_chatkit.attachments.views import MULTIPART_OVERHEAD
from django_chatkit.testing import iter_sse, live_client, request_body, user_input
from tests.attachment_flow import CHATKIT_ORIGIN, path_of
from tests.body_probe import (
    MB,
    MULTIPART_TYPE,
    Answer,
    ServerWatch,
    filler,
    multipart,
    send_body,
    send_headers_only,
    temp_bytes,
)
from tests.conftest import ENDPOINT
from tests.live_server import LiveServer, live_asgi_server
from tests.test_live_asgi import TEXT_DELTA

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MAX_REQUEST_BYTES = 1 * MB  # the default
MAX_FILE_BYTES = 10 * MB  # the default
SERVER_SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_tests",
    "ATTACHMENTS": {"ENABLED": True},
}
RSS_BOUND = 50 * MB
SERVERS = ("uvicorn", "chatkit-daphne")


@dataclass
class Server:
    live: LiveServer
    temp_dir: Path
    media: Path

    @property
    def url(self) -> str:
        return self.live.url

    def watch(self) -> ServerWatch:
        return ServerWatch(self.live.process.pid, str(self.temp_dir))

    def temp_files_closed(self, timeout: float = 5.0) -> bool:
        """Whether the server holds no temporary file (waiting up to ``timeout`` for it)."""
        deadline = time.monotonic() + timeout
        while temp_bytes(self.live.process.pid, str(self.temp_dir)) > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return not any(self.temp_dir.iterdir())


@contextmanager
def started(kind: str, tmp: pytest.TempPathFactory) -> Iterator[Server]:
    temp_dir, media = tmp.mktemp("server-tmp"), tmp.mktemp("media")
    env = {
        "TMPDIR": str(temp_dir),
        "CHATKIT_TEST_MEDIA_ROOT": str(media),
        "CHATKIT_TEST_SETTINGS": json.dumps(SERVER_SETTINGS),
    }
    with live_asgi_server(kind, extra_env=env) as live:
        server = Server(live, temp_dir, media)
        # The first requests import the views and the SDK: not what the tests measure.
        for target in (ENDPOINT, "/chatkit/attachments/atc_warm/upload/"):
            send_body(server.url, target, {"Content-Type": "application/json"}, [b"{}"], length=2)
        yield server


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    # One server per module and kind: it holds no database connection between requests
    # (CONN_MAX_AGE=0), so each test's flush of the test database goes through.
    with started(request.param, tmp_path_factory) as server:
        yield server


@pytest.fixture(params=SERVERS)
def fresh_server(
    request: pytest.FixtureRequest,
    transactional_db: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A server of its own: memory that earlier requests took and freed, a process keeps and
    reuses, which would hide what this test's request costs."""
    with started(request.param, tmp_path_factory) as server:
        yield server


@pytest.fixture
def dora(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("dora", password="pw")


def upload_target(server: Server, user: Any, size: int) -> str:
    """The path and query of a fresh upload URL (with its valid token) for ``user``."""
    with live_client(server.live.url, user) as client:
        response = client.post(
            ENDPOINT,
            content=request_body(
                "attachments.create", name="big.pdf", size=size, mime_type="application/pdf"
            ),
        )
    assert response.status_code == 200, (response.text, server.live.describe())
    return path_of(response.json()["upload_descriptor"]["url"])


def error_code(answer: Answer) -> str:
    assert answer.headers["content-type"] == "application/json", answer
    return str(json.loads(answer.body)["error"]["code"])


# -- declared too large: answered before the body is sent ----------------------------------------


def test_a_declared_length_over_the_endpoint_limit_is_answered_without_the_body(server):
    answer = send_headers_only(
        server.url,
        ENDPOINT,
        {"Content-Type": "application/json", "Content-Length": str(300 * MB)},
        timeout=10,
    )
    assert answer.status == 413, server.live.describe()
    assert error_code(answer) == "request_too_large"


@pytest.mark.parametrize("token", ["valid-token", "no-token"])
def test_a_declared_length_over_the_upload_limit_is_answered_without_the_body(server, dora, token):
    target = (
        upload_target(server, dora, MAX_FILE_BYTES)
        if token == "valid-token"
        else "/chatkit/attachments/atc_nothing/upload/"
    )
    answer = send_headers_only(
        server.url,
        target,
        {
            "Content-Type": MULTIPART_TYPE,
            "Content-Length": str(MAX_FILE_BYTES + MULTIPART_OVERHEAD + 1),
            "Origin": CHATKIT_ORIGIN,
        },
        timeout=10,
    )
    assert answer.status == 413, server.live.describe()
    assert error_code(answer) == "file_too_large"
    assert answer.headers["access-control-allow-origin"] == CHATKIT_ORIGIN


# -- chunked, hundreds of MB: refused as it arrives, bounded memory, no temporary file left ---------


def test_a_300mb_chunked_body_to_the_endpoint_is_refused_as_it_arrives(server):
    with server.watch() as watch:
        answer = send_body(
            server.url, ENDPOINT, {"Content-Type": "application/json"}, filler(300 * MB)
        )
    assert answer.status == 413, server.live.describe()
    assert error_code(answer) == "request_too_large"
    # The client learnt early: what it had sent is the limit plus what was in flight.
    assert answer.sent < 50 * MB, answer.sent
    assert watch.rss_growth < RSS_BOUND, watch
    assert watch.temp_peak <= MAX_REQUEST_BYTES, watch
    assert server.temp_files_closed(), list(server.temp_dir.iterdir())


@pytest.mark.parametrize("token", ["valid-token", "no-token"])
@pytest.mark.parametrize("form", ["multipart", "raw"])
def test_a_100mb_chunked_upload_is_refused_as_it_arrives(server, dora, token, form):
    target = (
        upload_target(server, dora, MAX_FILE_BYTES)
        if token == "valid-token"
        else "/chatkit/attachments/atc_nothing/upload/"
    )
    if form == "multipart":
        content_type, body, limit = (
            MULTIPART_TYPE,
            multipart(100 * MB),
            MAX_FILE_BYTES + MULTIPART_OVERHEAD,
        )
    else:
        content_type, body, limit = "application/pdf", filler(100 * MB), MAX_FILE_BYTES
    with server.watch() as watch:
        answer = send_body(server.url, target, {"Content-Type": content_type}, body)
    assert answer.status == 413, server.live.describe()
    assert error_code(answer) == "file_too_large"
    assert answer.sent < 50 * MB, answer.sent
    assert watch.rss_growth < RSS_BOUND, watch
    assert watch.temp_peak <= limit, watch
    assert server.temp_files_closed(), list(server.temp_dir.iterdir())
    assert not any(path.stat().st_size > MAX_FILE_BYTES for path in server.media.rglob("*")), (
        "a file over the limit was stored"
    )


# -- everything a client normally sends still works -------------------------------------------------


def test_protocol_requests_of_a_normal_size_are_answered(server, dora):
    with live_client(server.live.url, dora) as client:
        listed = client.post(ENDPOINT, content=request_body("threads.list"))
        # Chunked, as a client streaming its request body would send it.
        chunks = iter([request_body("threads.list", limit=5)])
        chunked = client.post(ENDPOINT, content=chunks)
    assert listed.status_code == 200, (listed.text, server.live.describe())
    assert chunked.status_code == 200, (chunked.text, server.live.describe())
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert listed.json()["data"] == chunked.json()["data"] == []


def test_an_upload_just_under_the_limit_is_stored_with_bounded_memory(fresh_server, dora):
    server = fresh_server
    size = MAX_FILE_BYTES - 1024
    target = upload_target(server, dora, size)
    length = sum(len(chunk) for chunk in multipart(size))
    with server.watch() as watch:
        answer = send_body(
            server.url,
            target,
            {"Content-Type": MULTIPART_TYPE, "Origin": CHATKIT_ORIGIN},
            multipart(size),
            length=length,
        )
    print(
        f"\n[{server.live.kind}] {size / MB:.1f} MB multipart upload: RSS +{watch.rss_growth / MB:.0f}"
        f" MB, temporary files up to {watch.temp_peak / MB:.0f} MB"
    )
    assert answer.status == 200, (answer, server.live.describe())
    assert json.loads(answer.body)["name"] == "big.pdf"
    assert [path.stat().st_size for path in server.media.rglob("*.pdf")] == [size]
    # Plain daphne parses every multipart POST in memory on top (Twisted's request.args).
    assert watch.rss_growth < RSS_BOUND, watch
    assert server.temp_files_closed()


def test_answers_still_stream(server, dora):
    words = 20  # 50 ms apart: about 1 s of streaming
    with live_client(server.live.url, dora) as client:
        started = time.monotonic()
        with client.stream(
            "POST",
            ENDPOINT,
            content=request_body("threads.create", input=user_input(f"/slow {words}")),
        ) as response:
            assert response.status_code == 200, (response.read(), server.live.describe())
            timed = [(time.monotonic(), event) for event in iter_sse(response.iter_raw())]
        total = time.monotonic() - started
    deltas = [at for at, event in timed if event.get("update", {}).get("type") == TEXT_DELTA]
    assert len(deltas) == words
    # Buffered, every event would arrive at the end together.
    assert timed[0][0] - started < total / 2, (timed[0][0] - started, total)
    assert deltas[-1] - deltas[0] > words * 0.05 * 0.5
