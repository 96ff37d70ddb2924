"""Sampling profiles of a server process with py-spy, attributed to the layers of a chat turn.

    python -m benchmarks.profiling benchmarks/results/profile-ours.txt.gz   # summarise one

``record(pid, seconds, path)`` runs ``py-spy record --gil --format raw`` on the process (only
samples that hold the GIL: Python CPU time, one thread at a time) and summarises it:

- ``components``: each sample goes to the innermost frame that belongs to a component (a package
  that does work of its own: ``django_chatkit``, ``django``, ``psycopg``, ``asgiref``, ``chatkit``,
  ``agents``, ``openai``, ``httpx``/``httpcore``, ``uvicorn``/``h11``, ...). Helper libraries
  (pydantic, json, asyncio, the standard library) are charged to whoever called them: pydantic
  validating a row for the store counts as ``django_chatkit``, the SDK serialising an event as
  ``chatkit``. ``asyncio`` alone (the event loop scheduling callbacks) keeps its own line.
- ``our_layer``: the share of samples charged to our layer: ``django_chatkit``, ``django``,
  ``psycopg`` and ``asgiref`` (the hops from async code to the ORM's worker threads), which the
  baseline does not run at all.
- ``our_layer_buckets``: our layer's samples by what they do (SQL queries through the ORM and
  the driver, connection setup, thread hops, sessions and auth, Django's request handling and
  streaming response, django_chatkit's own code).
- ``functions``: the functions of our layer (``django_chatkit`` and ``django``) with the largest
  inclusive share (the sample's stack contains them).
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# Matched against a frame's file name, innermost first; the first match names the component.
COMPONENTS: list[tuple[str, str]] = [
    ("/django_chatkit/", "django_chatkit"),
    ("/benchmarks/", "benchmark app"),
    ("/django/", "django"),
    ("/psycopg_pool/", "psycopg"),
    ("/psycopg/", "psycopg"),
    ("/asgiref/", "asgiref"),
    ("/chatkit/", "chatkit"),
    ("/agents/", "agents"),
    ("/openai/", "openai"),
    ("/httpx/", "httpx/httpcore"),
    ("/httpcore/", "httpx/httpcore"),
    ("/anyio/", "httpx/httpcore"),
    ("/uvicorn/", "uvicorn"),
    ("/h11/", "h11"),
]
# Helpers charged to their caller.
HELPERS = ("/pydantic/", "/pydantic_core/", "/typing_extensions", "/json/", "/copy.py", "/re/")
OUR_LAYER = ("django_chatkit", "django", "psycopg", "asgiref", "benchmark app")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")


def parse_frame(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    return match["func"], match["file"]


def component(file: str) -> str | None:
    for needle, name in COMPONENTS:
        if needle in file:
            return name
    return None


def short(file: str, func: str) -> str:
    """``django_chatkit/store.py:DjangoStore._upsert_item``-like label."""
    for root in ("/site-packages/", "/work/main/", "/lib/python3"):
        if root in file:
            file = file.split(root, 1)[1]
            break
    return f"{file}:{func}"


# What our layer's samples are doing, by the first rule that matches the stack (outermost
# frame first, file paths joined): the finer split of "our layer" in the report.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("database connection setup", ("psycopg/connection.py:Connection.connect", "_connect_gen")),
    ("ORM and driver (SQL queries)", ("/django/db/", "/psycopg/", "/psycopg_pool/")),
    ("sessions and authentication", ("/django/contrib/sessions/", "/django/contrib/auth/")),
    ("thread hops (sync_to_async)", ("/asgiref/",)),
    ("Django streaming response", ("ASGIHandler.send_response", "StreamingHttpResponse")),
    ("Django request handling and middleware", ("/django/",)),
    ("django_chatkit code", ("/django_chatkit/",)),
]


def bucket(frames: list[tuple[str, str]], owner: str) -> str:
    """The bucket of a sample charged to ``owner`` (a component of our layer)."""
    labels = [f"{file}:{func}" for func, file in frames]
    joined = ";".join(labels)
    for name, needles in BUCKETS[:2]:
        if any(needle in joined for needle in needles):
            return name
    # Otherwise by the innermost frame of our layer.
    for label in reversed(labels):
        for name, needles in BUCKETS[2:]:
            if any(needle in label for needle in needles):
                return name
    return owner


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    samples = 0
    by_component: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    self_ours: collections.Counter[str] = collections.Counter()
    buckets: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [parse_frame(f) for f in stack.split(";")]
        owner = None
        owner_frame = None
        for func, file in reversed(frames):
            name = component(file)
            if name is not None:
                owner, owner_frame = name, (func, file)
                break
        if owner is None:
            leaf_file = frames[-1][1] if frames else ""
            owner = "asyncio" if "/asyncio/" in leaf_file or "selectors" in leaf_file else "other"
            if any(h in leaf_file for h in HELPERS):
                owner = "other"
        by_component[owner] += count
        if owner in OUR_LAYER and owner_frame is not None:
            self_ours[short(owner_frame[1], owner_frame[0])] += count
            buckets[bucket(frames, owner)] += count
        seen = set()
        for func, file in frames:
            if component(file) in ("django_chatkit", "django", "asgiref", "psycopg"):
                label = short(file, func)
                if label not in seen:
                    seen.add(label)
                    inclusive[label] += count
    ours = sum(by_component[c] for c in OUR_LAYER)
    share = (lambda n: round(100.0 * n / samples, 1)) if samples else (lambda n: 0.0)
    return {
        "samples": samples,
        "components": {name: share(n) for name, n in by_component.most_common()},
        "our_layer": share(ours),
        "our_layer_buckets": {name: share(n) for name, n in buckets.most_common()},
        "functions_inclusive": [(label, share(n)) for label, n in inclusive.most_common(top)],
        "functions_self": [(label, share(n)) for label, n in self_ours.most_common(top)],
    }


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else None


def record(pid: int, seconds: float, path: Path, rate: int = 250) -> dict[str, Any]:
    """Profile ``pid`` for ``seconds``; the raw profile goes to ``path``, the summary is returned."""
    binary = py_spy()
    if binary is None:
        return {"error": "py-spy is not installed (pip install -e '.[bench]')"}
    command = [
        binary, "record", "--pid", str(pid), "--duration", str(round(seconds)),
        "--rate", str(rate), "--format", "raw", "--gil", "--full-filenames", "--nolineno",
        "--output", str(path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not path.exists():
        return {"error": f"py-spy failed ({done.returncode}): {done.stderr.strip()[-500:]}"}
    raw = path.read_text()
    summary = summarise(raw)
    # Kept compressed (a raw profile with full file names is a megabyte or more).
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(raw.encode()))
    path.unlink()
    summary["file"] = packed.name
    return summary


def read(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for name in args:
        print(name)
        print(json.dumps(summarise(read(Path(name))), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
