"""Image uploads cost a real server process bounded memory, whatever pixels the files declare.

Four uploads at once go through the two-phase upload (``attachments.create``, then the upload
URL) to a daphne or uvicorn process. Its peak resident memory (``VmHWM``, reset through
``/proc/<pid>/clear_refs`` after warm-up uploads) is read once all four are answered.

- Four decompression bombs of one format, with the default settings: files of 38 bytes (WebP)
  to 160 KiB (PNG) declaring 7071x7071 pixels, 50 megapixels, just under the accepted cap.
  Decoded at full size whatever their size, four took the process 1.0-1.2 GB (PNG), 2.8-3.0 GB
  (WebP), 270-350 MB (GIF). PNG and WebP are now over the decode budget (header checks only);
  a palette GIF is within it, two decoded at a time.
- Four images each just within a small decode budget, with one decode slot: all are decoded
  (they get real previews), one at a time, so the peak is about one decode's, not four.

Each test starts its own server: memory a process has freed often stays resident (malloc keeps
it for reuse), which would hide the growth of the next measurement in the same process.
``pytest -s tests/test_attachments_decode_memory.py`` prints the growth and each upload's time.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model

from django_chatkit.attachments.previews import PLACEHOLDER_PREVIEW
from django_chatkit.testing import live_client, request_body
from tests.attachment_flow import CHATKIT_ORIGIN
from tests.attachment_samples import image_bytes, one_colour_image
from tests.conftest import ENDPOINT
from tests.live_server import SERVERS, LiveServer, live_asgi_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MB = 1024 * 1024
BOMB_SIDE = 7071  # 49,999,041 pixels: under the 50 MP cap, so only a decode budget stops it
BOMB_GROWTH_LIMIT = 200 * MB
MIME_TYPES = {"PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
CONCURRENT = 4


@functools.cache
def bomb(fmt: str) -> bytes:
    return one_colour_image(fmt, BOMB_SIDE)


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise LookupError(f"{field} not in /proc/{pid}/status")


class PeakMemory:
    """How far a process's peak resident memory rose above its size when :meth:`start` ran."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = 0

    def start(self) -> None:
        try:  # "5" resets the peak (VmHWM) to the current resident size (Linux >= 4.0)
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.baseline = _status_bytes(self.pid, "VmRSS")
        except OSError:  # no reset allowed: measure from the peak so far
            self.baseline = _status_bytes(self.pid, "VmHWM")

    def growth(self) -> int:
        return _status_bytes(self.pid, "VmHWM") - self.baseline


@dataclass(frozen=True)
class Upload:
    name: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    seconds: float


def create(http: httpx.Client, upload: Upload) -> str:
    """``attachments.create`` with the owner's session; return the upload URL."""
    body = request_body(
        "attachments.create", name=upload.name, size=len(upload.data), mime_type=upload.mime_type
    )
    response = http.post(ENDPOINT, content=body)
    assert response.status_code == 200, response.text
    return str(response.json()["upload_descriptor"]["url"])


def send(url: str, upload: Upload) -> Answer:
    """POST the bytes as ChatKit's iframe does: multipart, no cookies, its Origin."""
    with httpx.Client(timeout=120) as client:
        started = time.monotonic()
        response = client.post(
            url,
            files={"file": (upload.name, upload.data, upload.mime_type)},
            headers={"Origin": CHATKIT_ORIGIN},
        )
        seconds = time.monotonic() - started
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return Answer(response.status_code, response.json() if is_json else response.text, seconds)


def upload_at_once(http: httpx.Client, uploads: list[Upload]) -> list[Answer]:
    """Create every attachment, then send all the bytes at the same moment."""
    urls = [create(http, upload) for upload in uploads]
    start_together = threading.Barrier(len(uploads))

    def one(url: str, upload: Upload) -> Answer:
        start_together.wait(timeout=30)
        return send(url, upload)

    with ThreadPoolExecutor(len(uploads)) as pool:
        return list(pool.map(one, urls, uploads))


def assert_answered(answer: Answer, server: LiveServer) -> None:
    """Accepted (a ready image attachment), or refused with a 4xx JSON error; never a 500."""
    if answer.status == 200:
        assert answer.body["type"] == "image" and "upload_descriptor" not in answer.body
    else:
        assert 400 <= answer.status < 500, (answer, server.describe())
        assert answer.body["error"]["code"] and answer.body["error"]["message"], answer


@contextmanager
def serving(kind: str, attachments: dict[str, Any], media: Path) -> Iterator[LiveServer]:
    chatkit = {"SERVER": "tests.servers.ScriptedServer", "ATTACHMENTS": attachments}
    env = {
        "CHATKIT_TEST_SETTINGS": json.dumps(chatkit),
        "CHATKIT_TEST_MEDIA_ROOT": str(media),
        # glibc raises its mmap threshold (up to 32 MB) after a large block is freed: a decoded
        # image's pixels then come from a thread's heap arena, which keeps them after the free.
        # The decodes run in several executor threads, so the peak RSS would count one retained
        # arena per thread that ever decoded, not the decodes that were in memory together (one
        # run of the one-slot test under load grew 102 MB for 1 x 45 MB at a time). A fixed
        # threshold sends every large block to mmap, returned on free: RSS follows what is live.
        "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024),
    }
    with live_asgi_server(kind, extra_env=env) as server:
        yield server


def warm_up(http: httpx.Client, server: LiveServer, upload: Upload) -> None:
    """Imports, the URLconf, Pillow's plugin and the worker threads, before measuring."""
    for answer in upload_at_once(http, [upload] * CONCURRENT):
        assert answer.status == 200, (answer, server.describe())


@pytest.fixture
def dana(transactional_db: None) -> Any:
    return get_user_model().objects.create_user("dana", password="pw")


@pytest.mark.parametrize("fmt", list(MIME_TYPES))
@pytest.mark.parametrize("kind", SERVERS)
def test_four_decompression_bombs_at_once_stay_within_the_budget(
    kind: str, fmt: str, dana: Any, tmp_path: Path
) -> None:
    mime_type = MIME_TYPES[fmt]
    extension = fmt.lower()
    small = Upload(f"small.{extension}", mime_type, image_bytes(fmt, (64, 64)))
    bombs = [Upload(f"bomb-{n}.{extension}", mime_type, bomb(fmt)) for n in range(CONCURRENT)]
    with (
        serving(kind, {"ENABLED": True}, tmp_path / "media") as server,
        live_client(server.url, dana) as http,
    ):
        warm_up(http, server, small)
        peak = PeakMemory(server.process.pid)
        peak.start()
        answers = upload_at_once(http, bombs)
        growth = peak.growth()
    times = ", ".join(f"{answer.seconds:.2f}" for answer in answers)
    statuses = ", ".join(str(answer.status) for answer in answers)
    print(
        f"\n| {server.kind} | 4 x {fmt} of {len(bomb(fmt))} B | +{growth / MB:.0f} MB "
        f"| {times} s | {statuses} |"
    )
    assert growth < BOMB_GROWTH_LIMIT, f"+{growth / MB:.0f} MB\n{server.describe()}"
    for answer in answers:
        assert_answered(answer, server)


# Each image decodes within this budget (3000x3000 RGB: 9 MP x 4 bytes, estimated 45 MB).
SMALL_BUDGET = 48 * MB
WITHIN_BUDGET_SIDE = 3000


def test_images_within_the_budget_are_decoded_one_slot_at_a_time(dana: Any, tmp_path: Path) -> None:
    kind = "uvicorn"  # the slots are the app's, whichever server runs it
    attachments = {"ENABLED": True, "MAX_DECODE_BYTES": SMALL_BUDGET, "MAX_CONCURRENT_DECODES": 1}
    large = one_colour_image("PNG", WITHIN_BUDGET_SIDE)
    uploads = [Upload(f"large-{n}.png", "image/png", large) for n in range(CONCURRENT)]
    with (
        serving(kind, attachments, tmp_path / "media") as server,
        live_client(server.url, dana) as http,
    ):
        warm_up(http, server, Upload("small.png", "image/png", image_bytes("PNG", (64, 64))))
        peak = PeakMemory(server.process.pid)
        peak.start()
        answers = upload_at_once(http, uploads)
        growth = peak.growth()
    times = ", ".join(f"{answer.seconds:.2f}" for answer in answers)
    print(
        f"\n| {kind} | 4 x PNG {WITHIN_BUDGET_SIDE}px, 1 slot | +{growth / MB:.0f} MB | {times} s |"
    )
    for answer in answers:
        assert answer.status == 200, (answer, server.describe())
        assert answer.body["preview_url"] != PLACEHOLDER_PREVIEW  # decoded, not skipped
    # One decode at a time: well under two budgets (four at once would take about four).
    assert growth < 2 * SMALL_BUDGET, f"+{growth / MB:.0f} MB\n{server.describe()}"
