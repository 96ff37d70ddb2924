"""The processes of the overhead benchmark: the fake OpenAI server and the ASGI servers under test.

Every process started here is stopped by the ``with`` that started it, also on errors and
Ctrl-C, and the harness checks at the end that none is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.processes import HOST, free_port, stop_process, wait_until_listening

REPO = Path(__file__).resolve().parent.parent
APPLICATION_NAME = "chatkit-bench-server"

APPS = {
    "ours": "benchmarks.asgi:application",
    "baseline": "benchmarks.baseline_app:app",
}

STARTED: list[subprocess.Popen[Any]] = []


def python_path(ours_path: Path | None) -> str:
    """``PYTHONPATH`` for child processes: an optional copy of ``django_chatkit`` first."""
    parts = [str(ours_path)] if ours_path else []
    parts += [str(REPO), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def _stop(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    stop_process(process, timeout)
    if process in STARTED:
        STARTED.remove(process)


class Fake:
    """``benchmarks.fake_process`` in a child process, driven over its stdin/stdout."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.lock = threading.Lock()

    def _call(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self.lock:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"fake: {answer}")
        return answer

    def reply(self, tokens: int, token_delay: float = 0.0, first_token_delay: float = 0.0) -> None:
        self._call(
            cmd="reply", tokens=tokens, token_delay=token_delay, first_token_delay=first_token_delay
        )

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self._call(cmd="records", since=since)["records"])

    def count(self) -> int:
        rows = self.records()
        return rows[-1]["index"] + 1 if rows else 0

    @property
    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "test"}


@contextmanager
def fake_openai() -> Iterator[Fake]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fake_process"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": python_path(None)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    STARTED.append(process)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the fake OpenAI process did not start")
        yield Fake(process, json.loads(line)["base_url"])
    finally:
        if process.poll() is None and process.stdin is not None:
            try:
                process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                process.stdin.flush()
                process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _stop(process)


@dataclass
class AsgiServer:
    side: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: int
    procs: list[psutil.Process] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    def logs(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def processes(self) -> list[psutil.Process]:
        """The server process and its workers (uvicorn --workers N forks N children)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        procs = self.processes()
        return [p.pid for p in (procs[1:] if self.workers > 1 else procs)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total


def server_command(side: str, port: int, workers: int) -> list[str]:
    command = [
        sys.executable, "-m", "uvicorn", APPS[side],
        "--host", HOST, "--port", str(port),
        "--lifespan", "off",
        "--no-access-log", "--log-level", "warning",
        "--timeout-keep-alive", "300",
        "--timeout-graceful-shutdown", "3",
        "--backlog", "4096",
        "--loop", "asyncio", "--http", "h11",
    ]  # fmt: skip
    if workers > 1:
        command += ["--workers", str(workers)]
    return command


def _wait_listening(server: AsgiServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    wait_until_listening(
        server.process, server.address, timeout, name=f"{server.side} server", describe=server.logs
    )
    if server.workers > 1:  # the workers come up after the socket is bound
        while len(server.processes()) < server.workers + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.side}: workers did not start:\n{server.logs()}")
            time.sleep(0.05)


@contextmanager
def asgi_server(
    side: str,
    *,
    env: dict[str, str],
    workers: int = 1,
    ours_path: Path | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[AsgiServer]:
    port = free_port()
    full_env = {
        **os.environ,
        "PYTHONPATH": python_path(ours_path),
        "PYTHONUNBUFFERED": "1",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        **env,
    }
    fd, log_name = tempfile.mkstemp(prefix=f"chatkit-bench-{side}-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            server_command(side, port, workers),
            # python -m puts the working directory first on sys.path: a copy of django_chatkit
            # given as ours_path must be found before the repository's own.
            cwd=ours_path or REPO,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    STARTED.append(process)
    server = AsgiServer(side, port, process, log_path, workers)
    try:
        _wait_listening(server, startup_timeout)
        yield server
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def stop_all() -> None:
    """Stop whatever is still running (an interrupted run)."""
    for process in list(STARTED):
        _stop(process)
