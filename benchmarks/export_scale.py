"""``chatkit_export`` at 10,000 and 100,000 threads: rows per second and peak memory (issue #14).

    python -m benchmarks.export_scale                       # 10,000 and 100,000 threads
    python -m benchmarks.export_scale --threads 10000       # one size
    python -m benchmarks.export_scale --drop                # remove the scenario's databases

Each size has a PostgreSQL database of its own, ``chatkit_bench_export_<threads>`` on the server
of ``BENCH_DATABASE_URL`` (``benchmarks.settings``), filled by ``benchmarks.admin_data`` (the
admin benchmark's data: 5 items per thread on average, one run per answer, feedback on one answer
in thirty, an attachment row on 1% of threads) plus ``--deep-threads`` threads of
``--deep-items`` items each, at every size: the largest line is the same at both sizes, so any
growth of memory between them comes from the number of threads. A database is reused while its
marker records the same parameters.

The export runs as ``manage.py chatkit_export --output FILE`` in a child process (the real
command, its own interpreter); its peak RSS is the child's ``ru_maxrss`` (``os.wait4`` in a small
launcher process: see ``LAUNCHER``), its rate the rows of the database over the wall time. The output is checked (one line per thread,
the items counted) and removed. Target: peak RSS at the largest size within 1.2x of the smallest.
The report goes to ``benchmarks/results/export_scale.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.admin_data import Params

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "export_scale.md"
DATABASE_PREFIX = "chatkit_bench_export"
TARGET_RSS_RATIO = 1.2


@dataclass
class Measure:
    threads: int
    items: int
    runs: int
    feedback: int
    attachments: int
    seconds: float
    peak_rss_mib: float
    output_bytes: int
    lines: int
    items_seen: int

    @property
    def threads_per_second(self) -> float:
        return self.threads / self.seconds

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds


def database_url(name: str) -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}"


def prepare(params: Params, prefix: str, reload: bool) -> tuple[str, dict[str, Any]]:
    from benchmarks.admin_scale import make_scale, prepare_database

    scale = make_scale(params, prefix)
    prepare_database(scale, reload)
    scale.wrapper.close()
    return scale.database, scale.marker


# Runs the command and reports its peak RSS. A child's ru_maxrss counts the memory of the process
# it was forked from (Linux records the old address space's high-water mark at exec): measured
# straight from this process, it would include this process's size (the data loaded, the previous
# output read back). This small launcher forks the command instead.
LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}))
"""


def export_once(database: str, output: Path) -> tuple[float, float]:
    """Run the command in a child process; (wall seconds, peak RSS in MiB)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE_URL": database_url(database),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "manage.py", "chatkit_export", "--output", str(output)]
    started = time.perf_counter()
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        check=True,
    )
    seconds = time.perf_counter() - started
    result = json.loads(launched.stdout.decode().strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"chatkit_export failed ({result['code']}) on {database}")
    return seconds, result["maxrss_kib"] / 1024  # KiB on Linux


def check_output(path: Path) -> tuple[int, int]:
    lines = items = 0
    with path.open("rb") as handle:
        for line in handle:
            lines += 1
            record = json.loads(line)
            items += len(record["items"])
    return lines, items


def measure(params: Params, prefix: str, reload: bool, keep: bool) -> Measure:
    database, marker = prepare(params, prefix, reload)
    rows = marker["rows"]
    with tempfile.TemporaryDirectory(prefix="chatkit-export-bench-") as tmp:
        output = Path(tmp) / "export.jsonl"
        print(f"{database}: exporting...", flush=True)
        seconds, rss = export_once(database, output)
        size = output.stat().st_size
        lines, items_seen = check_output(output)
        if keep:
            kept = ROOT / f"{database}.jsonl"
            output.rename(kept)
            print(f"  kept {kept}")
    result = Measure(
        threads=rows["threads"],
        items=rows["items"],
        runs=rows["runs"],
        feedback=rows["feedback"],
        attachments=rows["attachments"],
        seconds=round(seconds, 2),
        peak_rss_mib=round(rss, 1),
        output_bytes=size,
        lines=lines,
        items_seen=items_seen,
    )
    print(
        f"  {result.threads:,} threads, {result.items:,} items in {result.seconds:.1f}s: "
        f"{result.threads_per_second:,.0f} threads/s, {result.items_per_second:,.0f} items/s, "
        f"peak RSS {result.peak_rss_mib:.0f} MiB",
        flush=True,
    )
    if (lines, items_seen) != (result.threads, result.items):
        raise SystemExit(
            f"the export holds {lines} lines / {items_seen} items, expected "
            f"{result.threads} / {result.items}"
        )
    return result


def report(measures: list[Measure], params: list[Params], argv: list[str]) -> str:
    smallest, largest = measures[0], measures[-1]
    ratio = largest.peak_rss_mib / smallest.peak_rss_mib
    met = ratio <= TARGET_RSS_RATIO
    rows = "\n".join(
        f"| {m.threads:,} | {m.items:,} | {m.runs:,} | {m.seconds:.1f} | "
        f"{m.threads_per_second:,.0f} | {m.items_per_second:,.0f} | "
        f"{m.output_bytes / 1e6:,.0f} | {m.peak_rss_mib:.0f} |"
        for m in measures
    )
    command = "python -m benchmarks.export_scale" + (" " + " ".join(argv) if argv else "")
    deep = params[0]
    return f"""# chatkit_export at scale

Measured {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")} on {platform.node()} \
({os.cpu_count()} CPUs, Python {platform.python_version()}), PostgreSQL via \
`benchmarks.settings`. Command: `{command}`.

Each size is a database of `benchmarks.admin_data` (5 items per thread on average, one run per
answer, feedback on one answer in thirty) plus {deep.deep_threads} threads of \
{deep.deep_items:,} items at every size (the longest line is the same at both sizes). The
export is `manage.py chatkit_export --output FILE` (JSONL, every thread) in a child process;
peak RSS is the command's `ru_maxrss` (read by a small launcher process, not by the benchmark's:
a child's `ru_maxrss` would include the size of the process it was forked from); rates are the database's rows over the wall time (process
start included). The output was read back: one line per thread, every item present.

| threads | items | runs | seconds | threads/s | items/s | output MB | peak RSS MiB |
|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Peak RSS at {largest.threads:,} threads is {ratio:.2f}x the peak at {smallest.threads:,} \
(target: within {TARGET_RSS_RATIO}x): **{"met" if met else "not met"}**.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.export_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--deep-threads", type=int, default=5)
    parser.add_argument("--deep-items", type=int, default=100_000)
    parser.add_argument("--database-prefix", default=DATABASE_PREFIX)
    parser.add_argument("--reload", action="store_true", help="load the data again")
    parser.add_argument("--drop", action="store_true", help="drop the databases of --threads")
    parser.add_argument("--keep", action="store_true", help="keep the exports (repository root)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    raw = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(raw)
    if "chatkit_bench_admin" in args.database_prefix:
        raise SystemExit("the admin benchmark's databases are not this scenario's")
    sizes = sorted({int(part.replace("_", "")) for part in args.threads.split(",") if part})

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from benchmarks import admin_data

    if args.drop:
        for size in sizes:
            name = f"{args.database_prefix}_{size}"
            print(f"{name}: {'dropped' if admin_data.maintenance('drop', name) else 'absent'}")
        return 0
    params = [
        Params(
            threads=size,
            users=args.users,
            deep_threads=args.deep_threads,
            deep_items=args.deep_items,
        )
        for size in sizes
    ]
    measures = [measure(p, args.database_prefix, args.reload, args.keep) for p in params]
    text = report(measures, params, raw)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(
        json.dumps(
            [{**asdict(m), "params": asdict(p)} for m, p in zip(measures, params, strict=True)],
            indent=2,
        )
        + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
