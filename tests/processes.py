"""Child processes on loopback for tests and benchmarks: a free port, waiting until a server
listens, stopping it. No Django here, so that the benchmark harness can import it before setup."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_listening(
    process: subprocess.Popen[Any],
    address: tuple[str, int],
    timeout: float,
    *,
    name: str,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Return once ``address`` accepts connections; raise if ``process`` exits or time runs out.

    ``describe`` adds what the failure message should show (the server's output, say)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited during startup (code {process.returncode}).\n{describe()}"
            )
        try:
            with socket.create_connection(address, timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not listen within {timeout} s.\n{describe()}"
                ) from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """Terminate ``process``; kill it if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
