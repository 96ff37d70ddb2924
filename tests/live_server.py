"""Run the test project under a real ASGI server process (daphne or uvicorn).

The server process uses ``tests.settings`` with ``DATABASE_URL`` pointing at the database the
running pytest-django test uses, so rows a ``transaction=True`` test commits are visible to the
server, and what the server writes is visible to the test through the ORM.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection

from tests.processes import free_port, stop_process, wait_until_listening
from tests.request_log import REQUEST_FINISHED_LINE
from tests.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parent.parent
ASGI_APP = "tests.asgi:application"
SERVERS = ("daphne", "uvicorn")
# "chatkit-daphne": daphne through django_chatkit's launcher, which refuses oversized bodies
# while they arrive (docs/deployment.md); plain daphne reads every body in full first.
DAPHNE_MODULES = {"daphne": "daphne", "chatkit-daphne": "django_chatkit.daphne"}

_SCHEMES = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgres",
    "django.db.backends.mysql": "mysql",
}


def database_url(settings_dict: dict[str, Any] | None = None) -> str:
    """A ``DATABASE_URL`` for the database ``settings_dict`` (default: the test's connection).

    Call it once the test database exists: its NAME is then the test database's
    (``TEST['NAME']`` for SQLite, ``test_<name>`` for PostgreSQL).
    """
    sd = settings_dict if settings_dict is not None else connection.settings_dict
    engine = sd["ENGINE"]
    scheme = _SCHEMES.get(engine)
    if scheme is None:
        raise RuntimeError(f"No DATABASE_URL scheme known for {engine}")
    name = str(sd["NAME"])
    if scheme == "sqlite":
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            raise RuntimeError(
                "The test database is an in-memory SQLite database, which another process "
                "cannot open: set DATABASES['default']['TEST']['NAME'] to a file."
            )
        return "sqlite:///" + os.path.abspath(name)
    user = quote(str(sd.get("USER") or ""), safe="")
    password = quote(str(sd.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(sd.get("HOST") or "")
    if ":" in host and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    port = f":{sd['PORT']}" if sd.get("PORT") else ""
    return f"{scheme}://{auth}{host}{port}/{quote(name, safe='')}"


def server_command(kind: str, host: str, port: int, app: str = ASGI_APP) -> list[str]:
    if kind in DAPHNE_MODULES:
        return [sys.executable, "-m", DAPHNE_MODULES[kind], "-b", host, "-p", str(port), app]
    if kind == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", app,
            "--host", host, "--port", str(port),
            "--lifespan", "off",  # Django's ASGI handler serves HTTP only
            "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip
    raise ValueError(f"Unknown ASGI server {kind!r}: use one of {(*SERVERS, *DAPHNE_MODULES)}")


@dataclass
class LiveServer:
    kind: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def describe(self) -> str:
        """For failure messages: which server, whether it still runs, and its output."""
        state = "running" if self.process.poll() is None else f"exited {self.process.returncode}"
        return f"--- {self.kind} at {self.url} ({state}) output ---\n{self.logs()}"

    def finished_requests(self) -> int:
        """How many requests Django has finished handling (``tests/request_log.py``)."""
        return self.logs().count(REQUEST_FINISHED_LINE)

    def wait_for_finished_requests(self, n: int, timeout: float = 30.0) -> None:
        """Return once Django has finished handling ``n`` requests (since the server started):
        then nothing more runs for them, a cancelled stream included."""
        wait_for(
            lambda: self.finished_requests() >= n,
            timeout,
            describe=lambda: f"{n} finished request(s) expected.\n{self.describe()}",
        )


@contextmanager
def live_asgi_server(
    kind: str,
    *,
    db_url: str | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 20.0,
    stop_timeout: float = 5.0,
    extra_env: dict[str, str] | None = None,
    app: str = ASGI_APP,
) -> Iterator[LiveServer]:
    """Start ``kind`` ("daphne", "uvicorn" or "chatkit-daphne") serving ``app`` (``tests.asgi``)
    and yield it once it listens.

    ``db_url`` defaults to :func:`database_url` of the current test database. The process is
    terminated on exit (killed if it does not stop within ``stop_timeout``).
    """
    port = free_port(host)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": db_url or database_url(),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
        **(extra_env or {}),
    }
    fd, log_name = tempfile.mkstemp(prefix=f"chatkit-{kind}-", suffix=".log")
    log_path = Path(log_name)
    try:
        with os.fdopen(fd, "wb") as log:
            process = subprocess.Popen(
                server_command(kind, host, port, app),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(kind, f"http://{host}:{port}", process, log_path)
        try:
            wait_until_listening(
                process,
                (host, port),
                startup_timeout,
                name=f"The ASGI server ({kind})",
                describe=server.describe,
            )
            yield server
        finally:
            stop_process(process, stop_timeout)
    finally:
        log_path.unlink(missing_ok=True)
