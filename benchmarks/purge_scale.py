"""chatkit_purge at 10,000 and 100,000 threads (about 1,000,000 items) on PostgreSQL.

    python -m benchmarks.purge_scale                       # 10,000 and 100,000 threads
    python -m benchmarks.purge_scale --threads 10000       # one size
    python -m benchmarks.purge_scale --drop                # remove the scenario's databases

Data: the admin scenario's (``benchmarks.admin_data``: users' and anonymous threads with
items, runs, feedback, attachments, 0.1% on legal hold, plus a few deep threads), in databases
of its own, ``chatkit_bench_purge_<threads>``, filled once and reused: 10,000 threads with one
deep thread of 50,000 items (about 100,000 items), 100,000 threads with five deep threads of
100,000 items (about 1,000,000 items). Purging destroys data, so each run purges a copy,
``chatkit_bench_purge_<threads>_run`` (``CREATE DATABASE ... TEMPLATE``), dropped afterwards.

The data's attachments name files that do not exist; before each run a 1 KiB stand-in is
written for each into a temporary directory, the default storage of the purging process
(``MEDIA_ROOT``), so the purge really removes files (and its journal really is written). The
bytes freed that the command reports are the ``size`` column's (0.1 to 5 MB each), not the
stand-ins'.

The purge runs as ``python -m django chatkit_purge --older-than 0`` in a child process:
wall time (Django's start included), threads and items deleted per second, and the child's
peak RSS (``wait4``'s ``ru_maxrss``). Afterwards: only the held threads remain, no row without
its thread, no stand-in file left but the held threads', no journal entry.

Target (issue #14): peak RSS at 100,000 threads within 1.2x of the peak at 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import admin_data
from benchmarks.admin_data import Params

RESULTS = Path(__file__).resolve().parent / "results" / "purge_scale.md"
DATABASE_PREFIX = "chatkit_bench_purge"
RSS_TARGET = 1.2
STAND_IN = b"x" * 1024
REPO = Path(__file__).resolve().parent.parent


def params_for(threads: int) -> Params:
    """About ten items per thread in all: five per ordinary thread, the rest in deep threads."""
    if threads >= 100_000:
        return Params(threads=threads, deep_threads=threads // 20_000, deep_items=100_000)
    return Params(threads=threads, deep_threads=1, deep_items=threads * 5)


@dataclass
class Result:
    threads: int
    database: str
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    held: int = 0
    seconds: float = 0.0
    peak_rss: int = 0  # bytes
    idle_rss: int = 0  # bytes: the same command with nothing due (Django and imports)
    summary: str = ""
    batches: int = 0
    files_written: int = 0
    files_left: int = 0
    held_files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def threads_deleted(self) -> int:
        return self.before["threads"] - self.after["threads"]

    @property
    def items_deleted(self) -> int:
        return self.before["items"] - self.after["items"]


def _connect(name: str) -> Any:
    import psycopg

    return psycopg.connect(dbname=name, autocommit=True, **admin_data.server_params())


def copy_database(source: str, target: str) -> None:
    from psycopg import sql

    with _connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(target), sql.Identifier(source)
            )
        )


def drop_database(name: str) -> None:
    from psycopg import sql

    with _connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def counts(name: str) -> dict[str, int]:
    from django_chatkit.models import Attachment, Feedback, Run, Thread, ThreadItem

    tables = {
        "threads": Thread,
        "items": ThreadItem,
        "runs": Run,
        "feedback": Feedback,
        "attachments": Attachment,
    }
    with _connect(name) as conn:
        return {
            key: int(conn.execute(f'SELECT count(*) FROM "{model._meta.db_table}"').fetchone()[0])
            for key, model in tables.items()
        }


def orphans(name: str) -> dict[str, int]:
    """Rows whose thread is gone (the foreign keys make them impossible: checked anyway)."""
    from django_chatkit.models import Attachment, Feedback, Run, Thread, ThreadItem

    thread = Thread._meta.db_table
    found = {}
    with _connect(name) as conn:
        for model in (ThreadItem, Feedback, Run, Attachment):
            table = model._meta.db_table
            found[model.__name__] = int(
                conn.execute(
                    f'SELECT count(*) FROM "{table}" r WHERE r.thread_id IS NOT NULL AND NOT '
                    f'EXISTS (SELECT 1 FROM "{thread}" t WHERE t.id = r.thread_id)'
                ).fetchone()[0]
            )
    return found


def write_stand_ins(name: str, root: Path) -> tuple[int, set[str]]:
    """A small file for every attachment's storage name; the names of the held threads'."""
    from django_chatkit.models import Attachment, Thread

    held = set()
    written = 0
    with _connect(name) as conn:
        rows = conn.execute(
            f'SELECT a.storage_name, t.legal_hold FROM "{Attachment._meta.db_table}" a '
            f'LEFT JOIN "{Thread._meta.db_table}" t ON t.id = a.thread_id '
            "WHERE a.storage_name <> ''"
        ).fetchall()
    for storage_name, legal_hold in rows:
        path = root / storage_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(STAND_IN)
        written += 1
        if legal_hold:
            held.add(storage_name)
    return written, held


def files_under(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/")
        for folder, _, names in os.walk(root)
        for f in names
    }


def run_purge(
    database: str, media: Path, batch_size: int, *extra: str
) -> tuple[float, int, str, int]:
    """The purge as a child process: seconds, peak RSS in bytes, stdout, exit status."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = (
        f"postgres://{db.get('USER') or ''}"
        + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        + f"@{db.get('HOST') or ''}"
        + (f":{db['PORT']}" if db.get("PORT") else "")
        + f"/{database}"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE_URL": url,
        "CHATKIT_TEST_MEDIA_ROOT": str(media),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable, "-m", "django", "chatkit_purge",
        "--batch-size", str(batch_size), *(extra or ("--older-than", "0")),
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        # wait4: this child's own resource usage (RUSAGE_CHILDREN would be the maximum over
        # every child so far).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    # Linux reports ru_maxrss in KiB.
    return seconds, int(usage.ru_maxrss) * 1024, output, process.returncode


def measure(threads: int, batch_size: int, keep: bool) -> Result:
    from benchmarks.admin_scale import make_scale, prepare_database

    params = params_for(threads)
    scale = make_scale(params, DATABASE_PREFIX)
    prepare_database(scale, reload=False)
    scale.wrapper.close()
    target = f"{scale.database}_run"
    print(f"{target}: copy of {scale.database}", flush=True)
    copy_database(scale.database, target)
    result = Result(threads=threads, database=target)
    media = Path(tempfile.mkdtemp(prefix="chatkit_bench_purge_media_"))
    try:
        result.before = counts(target)
        result.files_written, held_files = write_stand_ins(target, media)
        result.held_files = len(held_files)
        print(
            f"{target}: {result.before['threads']:,} threads, {result.before['items']:,} items, "
            f"{result.files_written:,} stand-in files; purging...",
            flush=True,
        )
        # What the process weighs when it deletes nothing: one user's threads, none of them
        # 100,000 days old (without --user, anonymous threads would still follow
        # ANONYMOUS_RETENTION).
        _, result.idle_rss, idle_output, _ = run_purge(
            target, media, batch_size, "--user", admin_data.DEEP_USER, "--older-than", "100000"
        )
        if "Purged 0 thread(s)" not in idle_output:
            result.problems.append(f"the run meant to delete nothing said: {idle_output[-500:]}")
        seconds, rss, output, status = run_purge(target, media, batch_size)
        result.seconds, result.peak_rss = seconds, rss
        result.batches = len(re.findall(r"^Batch \d+:", output, re.MULTILINE))
        result.summary = next(
            (line for line in output.splitlines() if line.startswith("Purged")), ""
        )
        if status != 0:
            result.problems.append(f"exit status {status}: {output[-2000:]}")
        result.after = counts(target)
        with _connect(target) as conn:
            result.held = int(
                conn.execute(
                    'SELECT count(*) FROM "django_chatkit_thread" WHERE legal_hold'
                ).fetchone()[0]
            )
        if result.after["threads"] != result.held:
            result.problems.append(
                f"{result.after['threads']} threads left, {result.held} on legal hold"
            )
        left = orphans(target)
        if any(left.values()):
            result.problems.append(f"rows without thread: {left}")
        remaining = files_under(media)
        result.files_left = len(remaining)
        if remaining != held_files:
            extra = sorted(remaining - held_files)[:5]
            missing = sorted(held_files - remaining)[:5]
            result.problems.append(f"files left {extra}..., held files missing {missing}...")
        print(
            f"{target}: {result.threads_deleted:,} threads, {result.items_deleted:,} items in "
            f"{seconds:.1f}s, peak RSS {rss / 2**20:.1f} MiB",
            flush=True,
        )
    finally:
        shutil.rmtree(media, ignore_errors=True)
        if not keep:
            drop_database(target)
    return result


def report(results: list[Result], command: str, generated: str, git: str, batch: int) -> str:
    small, large = results[0], results[-1]
    ratio = large.peak_rss / small.peak_rss if small.peak_rss else 0.0
    met = ratio <= RSS_TARGET and not any(r.problems for r in results)
    lines = [
        "# chatkit_purge at scale",
        "",
        f"Generated {generated} at {git}, by `{command}` (PostgreSQL; batches of {batch} "
        "threads). `benchmarks/purge_scale.py` says how.",
        "",
        "| Threads | Items | Deleted threads / items | Batches | Wall time | Threads/s | "
        "Items/s | Peak RSS | Same, nothing due |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.before['threads']:,} | {r.before['items']:,} | "
            f"{r.threads_deleted:,} / {r.items_deleted:,} | {r.batches:,} | {r.seconds:.1f} s | "
            f"{r.threads_deleted / r.seconds:,.0f} | {r.items_deleted / r.seconds:,.0f} | "
            f"{r.peak_rss / 2**20:.1f} MiB | {r.idle_rss / 2**20:.1f} MiB |"
        )
    lines += [
        "",
        f"Peak RSS at {large.threads:,} threads / at {small.threads:,}: **{ratio:.2f}x** "
        f"(target <= {RSS_TARGET}x): **{'met' if met else 'not met'}**.",
        "",
        'Peak RSS: the child\'s `ru_maxrss` (from `wait4`). "Same, nothing due": the command '
        "run first on the same copy with `--older-than 100000` (it deletes nothing): what "
        "Django, the app and the imports weigh; the purge's own working memory is the "
        "difference.",
        "",
        "Wall time includes the child's start (Django setup, about a second). Each run purged "
        "a fresh copy of the data (`CREATE DATABASE ... TEMPLATE`) with `--older-than 0`: "
        "everything but the threads on legal hold.",
        "",
        "What each run deleted and what it left:",
        "",
    ]
    for r in results:
        lines += [
            f"- {r.threads:,} threads: before {json.dumps(r.before)}, after "
            f"{json.dumps(r.after)} ({r.held} threads on legal hold, kept with their rows). "
            f"{r.files_written:,} stand-in files written, {r.files_left:,} left (the held "
            f"threads' {r.held_files:,}). The command's summary: `{r.summary}`",
        ]
        for problem in r.problems:
            lines.append(f"  - PROBLEM: {problem}")
    lines += [
        "",
        "Bytes: the data's attachments have no files of their own; a 1 KiB stand-in was "
        "written for each into a temporary MEDIA_ROOT and removed by the purge, but the bytes "
        "the summary reports are the rows' `size` column (what a real site's files would free).",
        "",
    ]
    return "\n".join(lines)


def int_list(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.purge_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", type=int_list, default=[10_000, 100_000])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the purged copies")
    parser.add_argument("--drop", action="store_true", help="drop the scenario's databases")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    if args.drop:
        for n in args.threads:
            for name in (f"{DATABASE_PREFIX}_{n}", f"{DATABASE_PREFIX}_{n}_run"):
                drop_database(name)
                print(f"{name}: dropped")
        return 0
    results = [measure(n, args.batch_size, args.keep) for n in args.threads]

    from benchmarks._setup import git_state, write_report

    command = " ".join(
        ["python -m benchmarks.purge_scale", *(sys.argv[1:] if argv is None else argv)]
    )
    generated = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    write_report(args.output, report(results, command, generated, git_state(), args.batch_size))
    data = {
        "generated": generated,
        "command": command,
        "results": [
            {
                "threads": r.threads,
                "before": r.before,
                "after": r.after,
                "seconds": r.seconds,
                "peak_rss": r.peak_rss,
                "idle_rss": r.idle_rss,
                "batches": r.batches,
                "summary": r.summary,
                "problems": r.problems,
            }
            for r in results
        ],
    }
    args.output.with_suffix(".json").write_text(json.dumps(data, indent=1))
    small, large = results[0], results[-1]
    ok = not any(r.problems for r in results) and large.peak_rss <= RSS_TARGET * small.peak_rss
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
