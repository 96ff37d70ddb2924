"""What an oversized request body costs the server before it is refused.

    python -m benchmarks.body_limit                       # every server, default sizes
    python -m benchmarks.body_limit --servers uvicorn --endpoint-mb 300 --upload-mb 100

For each ASGI server it starts the test project (``tests.asgi`` on a throwaway SQLite database,
attachments on with their default 10 MB limit) with a temporary directory of its own, and sends,
from a client that generates the bytes as it sends them and stops when the server answers:

- ``endpoint chunked``: a chunked body of ``--endpoint-mb`` to the protocol endpoint, signed out;
- ``upload chunked`` / ``upload length``: a multipart body with a ``--upload-mb`` file to an upload
  URL without a token, chunked / with its Content-Length declared;
- ``endpoint headers``: the request head alone, declaring ``--endpoint-mb`` of body.

After one small request to each view (the first requests import the views and the SDK), it
reports the status, how much of the body the client had sent when the answer came, the growth
of the server's peak RSS (VmHWM, reset before each request), the peak bytes of temporary files
the server held open in its temporary directory, and the time to the answer. Writes
``benchmarks/results/body_limit.md`` (``--out``).

Servers: ``uvicorn`` and ``daphne`` (their own command lines) and ``chatkit-daphne``
(``python -m django_chatkit.daphne``), each serving ``tests.asgi`` (``--app``). First, unless
``--no-before``, uvicorn and daphne serve ``benchmarks.body_limit:unlimited``: the test project
without ``BodyLimitMiddleware``, as every site was before it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.body_probe import (
    MB,
    MULTIPART_TYPE,
    Answer,
    ServerWatch,
    filler,
    multipart,
    send_body,
    send_headers_only,
)

REPO = Path(__file__).resolve().parent.parent
ENDPOINT = "/chatkit/"
UPLOAD = "/chatkit/attachments/atc_benchmark/upload/"
CHATKIT = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_tests",
    "ATTACHMENTS": {"ENABLED": True},
}

Case = Callable[[str], Answer]


async def unlimited(scope: Any, receive: Any, send: Any) -> None:
    """``tests.asgi`` without its ``BodyLimitMiddleware``."""
    from tests.asgi import application

    await application.app(scope, receive, send)


def cases(endpoint_mb: int, upload_mb: int) -> dict[str, Case]:
    json_headers = {"Content-Type": "application/json"}
    upload_headers = {"Content-Type": MULTIPART_TYPE}

    def upload_length() -> int:
        return sum(len(chunk) for chunk in multipart(upload_mb * MB))

    def body(chunks: Callable[[], Iterable[bytes]], headers: dict[str, str], target: str,
             length: int | None = None) -> Case:  # fmt: skip
        return lambda url: send_body(url, target, headers, chunks(), length=length, timeout=600)

    return {
        f"endpoint chunked {endpoint_mb} MB": body(
            lambda: filler(endpoint_mb * MB), json_headers, ENDPOINT
        ),
        f"endpoint headers only, declaring {endpoint_mb} MB": lambda url: send_headers_only(
            url, ENDPOINT, {**json_headers, "Content-Length": str(endpoint_mb * MB)}, timeout=10
        ),
        f"upload chunked {upload_mb} MB multipart, no token": body(
            lambda: multipart(upload_mb * MB), upload_headers, UPLOAD
        ),
        f"upload {upload_mb} MB multipart with Content-Length, no token": body(
            lambda: multipart(upload_mb * MB), upload_headers, UPLOAD, upload_length()
        ),
    }


def measure(
    label: str, kind: str, app: str, selected: dict[str, Case], workdir: Path
) -> list[list[str]]:
    from tests.live_server import live_asgi_server

    temp_dir = Path(tempfile.mkdtemp(prefix="tmp-", dir=workdir))
    env = {
        "TMPDIR": str(temp_dir),
        "CHATKIT_TEST_SETTINGS": json.dumps(CHATKIT),
    }
    rows = []
    with live_asgi_server(
        kind, db_url=f"sqlite:///{workdir / 'db.sqlite3'}", extra_env=env, app=app
    ) as server:
        pid = server.process.pid
        # The first requests import the views and the SDK: not what is measured.
        for target in (ENDPOINT, UPLOAD):
            send_body(server.url, target, {"Content-Type": "application/json"}, [b"{}"], length=2)
        for name, case in selected.items():
            with ServerWatch(pid, str(temp_dir)) as watch:
                try:
                    answer: Answer | None = case(server.url)
                    problem = ""
                except (TimeoutError, OSError) as exc:
                    answer, problem = None, f"{type(exc).__name__}: {exc}"
            status = f"{answer.status} {_code(answer.body)}" if answer else problem
            rows.append(
                [
                    label,
                    name,
                    status,
                    f"{answer.sent / MB:.1f} MB" if answer else "-",
                    f"{max(0, watch.rss_growth) / MB:.0f} MB",
                    f"{watch.temp_peak / MB:.0f} MB",
                    f"{answer.seconds:.1f} s" if answer else "-",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
            left = list(temp_dir.iterdir())
            if left:
                print(f"  files left in the temporary directory: {left}", flush=True)
    return rows


def _code(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return repr(body[:40])


UNLIMITED = "benchmarks.body_limit:unlimited"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="uvicorn,daphne,chatkit-daphne")
    parser.add_argument("--app", default="tests.asgi:application")
    parser.add_argument(
        "--no-before", action="store_true", help=f"skip {UNLIMITED} under uvicorn and daphne"
    )
    parser.add_argument("--endpoint-mb", type=int, default=300)
    parser.add_argument("--upload-mb", type=int, default=100)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/body_limit.md"))
    args = parser.parse_args()

    kinds = args.servers.split(",")
    setups = [] if args.no_before else [
        (f"{kind}, before", kind, UNLIMITED) for kind in kinds if kind in ("uvicorn", "daphne")
    ]  # fmt: skip
    setups += [(kind, kind, args.app) for kind in kinds]
    selected = {
        name: case
        for name, case in cases(args.endpoint_mb, args.upload_mb).items()
        if args.only in name
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="chatkit-body-limit-") as work:
        workdir = Path(work)
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
            cwd=REPO,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            },
            check=True,
        )
        for label, kind, app in setups:
            rows += measure(label, kind, app, selected, workdir)

    header = ["server", "request", "answer", "sent before the answer", "peak RSS growth",
              "peak temp files", "time"]  # fmt: skip
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    command = "python -m benchmarks.body_limit " + " ".join(sys.argv[1:])
    intro = (
        f"`{command.strip()}`: server `uvicorn` / `daphne` serving `{args.app}`; "
        f"`chatkit-daphne`: `python -m django_chatkit.daphne` serving it; "
        f"`..., before`: the same server serving `{UNLIMITED}` (no BodyLimitMiddleware)."
    )
    report = f"# Oversized bodies\n\n{intro}\n\n" + "\n".join(table)
    Path(args.out).write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    main()
