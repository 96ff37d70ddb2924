"""Sending oversized bodies to a live server process and watching what they cost it.

- :func:`send_headers_only` sends a request head declaring a body and no body, then reads the
  answer: a server that answers has decided before reading anything.
- :func:`send_body` streams a body generated on the fly (never stored), chunked or with a
  declared length, and stops sending as soon as the server answers or closes.
- :class:`ServerWatch` follows the server process during a request: its peak resident memory
  (the kernel's high-water mark, reset first) and the bytes of the files it holds open in its
  temporary directory (sampled; Python's temporary files are unlinked, so listing the directory
  would show nothing).

Raw sockets and h11 rather than httpx: an HTTP client library sends the whole body before it
reads, and these tests are about what happens before the body ends. No Django here, so that the
benchmark can import it before settings exist.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import h11

MB = 1024 * 1024
CHUNK = 64 * 1024
BOUNDARY = "chatkitbodyprobe"
PDF_START = b"%PDF-1.7\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send before the answer (or the close)
    seconds: float


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


def _head(method: str, target: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_answer(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Read one response; what the client still had to send is no longer its concern."""
    conn = h11.Connection(h11.CLIENT)
    # The request went out by hand: bring h11's view of our side to "request sent".
    conn.send(
        h11.Request(method="POST", target="/", headers=[("Host", "x"), ("Content-Length", "0")])
    )
    conn.send(h11.EndOfMessage())
    deadline = time.monotonic() + timeout
    status, headers, body = 0, {}, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(CHUNK)
            except ConnectionResetError:
                data = b""
            conn.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse):
            continue  # 100 Continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return status, headers, body


def send_headers_only(
    url: str,
    target: str,
    headers: dict[str, str],
    *,
    method: str = "POST",
    timeout: float = 20.0,
) -> Answer:
    """Send a request head (which should declare a Content-Length) and no body; read the answer.

    Raises ``TimeoutError`` when the server waits for the body instead of answering.
    """
    started = time.monotonic()
    host, port = _address(url)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_head(method, target, f"{host}:{port}", headers))
        status, answer_headers, body = _read_answer(sock, timeout)
    return Answer(status, answer_headers, body, 0, time.monotonic() - started)


def send_body(
    url: str,
    target: str,
    headers: dict[str, str],
    chunks: Iterable[bytes],
    *,
    length: int | None = None,
    method: str = "POST",
    timeout: float = 120.0,
) -> Answer:
    """Stream ``chunks`` as the body; stop as soon as the server answers or hangs up.

    ``length`` None sends ``Transfer-Encoding: chunked``; a number is declared as
    ``Content-Length`` (and should be what ``chunks`` add up to).
    """
    started = time.monotonic()
    host, port = _address(url)
    sent = 0
    if length is None:
        head = {**headers, "Transfer-Encoding": "chunked"}
    else:
        head = {**headers, "Content-Length": str(length)}
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_head(method, target, f"{host}:{port}", head))
        try:
            for chunk in chunks:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break  # an answer (or a close) before the body ended
                sock.sendall(chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            else:
                if length is None:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed while we sent: its answer may still be readable
        status, answer_headers, body = _read_answer(sock, timeout)
    return Answer(status, answer_headers, body, sent, time.monotonic() - started)


def filler(size: int) -> Iterator[bytes]:
    """``size`` bytes in CHUNK-sized pieces, made as they are asked for."""
    block = bytes(range(256)) * (CHUNK // 256)
    left = size
    while left > 0:
        piece = block[: min(left, CHUNK)]
        left -= len(piece)
        yield piece


def multipart(
    size: int, *, name: str = "big.pdf", mime_type: str = "application/pdf"
) -> Iterator[bytes]:
    """A multipart/form-data body (boundary :data:`BOUNDARY`) whose ``file``, a PDF to content
    sniffing, has ``size`` bytes."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {mime_type}\r\n\r\n"
    ).encode()
    yield PDF_START
    yield from filler(size - len(PDF_START))
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise LookupError(key)


def temp_bytes(pid: int, directory: str) -> int:
    """Bytes of the files under ``directory`` that process ``pid`` holds open right now."""
    total = 0
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}").startswith(directory + os.sep):
                total += os.stat(f"{fd_dir}/{fd}").st_size
        except OSError:
            continue  # closed meanwhile
    return total


@dataclass
class ServerWatch:
    """Peak RSS growth and peak temporary-file bytes of process ``pid`` while the block runs.

    ``with ServerWatch(pid, tmp) as watch: ...`` then ``watch.rss_growth``, ``watch.temp_peak``.
    """

    pid: int
    temp_dir: str
    interval: float = 0.005
    rss_before: int = 0
    rss_growth: int = 0
    temp_peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ServerWatch:
        # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.rss_before = _status_kib(self.pid, "VmRSS") * 1024
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.temp_peak = max(self.temp_peak, temp_bytes(self.pid, self.temp_dir))
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.rss_growth = _status_kib(self.pid, "VmHWM") * 1024 - self.rss_before

    def temp_now(self) -> int:
        return temp_bytes(self.pid, self.temp_dir)
