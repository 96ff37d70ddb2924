"""Does a page of history cost the same in a 100-item thread and a 1,000,000-item thread?

    python -m benchmarks.history_scale                        # sizes 100,100000; repeat 200
    python -m benchmarks.history_scale --sizes 100,100000,1000000 --repeat 500
    python -m benchmarks.history_scale --thread-counts ""     # skip threads.list

For each thread size it times ``items.list`` pages (limit 20) two ways:

- ``store``: ``DjangoStore.load_thread_items`` awaited on an event loop (the worker-thread hop
  included), as the SDK server calls it;
- ``protocol``: ``get_server().process(body, ChatKitContext.for_user(user))`` with a JSON
  ``items.list`` body: request parsing, the server's checks, the store, and the JSON response.

Cases: the first page (no cursor) in both orders, a page after a cursor in the middle, and a page
after a cursor near the end of the walk (the oldest items going ``desc``, the newest going
``asc``). The same for ``threads.list`` with users owning 1,000 and 100,000 threads. Calls are
interleaved across sizes and cases (shuffled each round), so drift hits every column alike.

It also counts the SQL queries of one call of each case (CaptureQueriesContext, in the thread
that runs them), checks every page's ids against the database, and keeps
``EXPLAIN (ANALYZE, BUFFERS)`` of those queries. The report goes to
``benchmarks/results/history_scale.md`` and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import QuerySet

RESULTS = Path(__file__).resolve().parent / "results" / "history_scale.md"
CASES = ("first_desc", "first_asc", "middle_desc", "middle_asc", "end_desc", "end_asc")
CASE_HELP = {
    "first_desc": "no cursor, newest first (what a client loads when it opens a thread)",
    "first_asc": "no cursor, oldest first",
    "middle_desc": "cursor at the middle, going back in time",
    "middle_asc": "cursor at the middle, going forward",
    "end_desc": "cursor 25 rows from the oldest end, going back (the deepest history page)",
    "end_asc": "cursor 25 rows from the newest end, going forward",
}


@dataclass
class Case:
    """One page request against one data set, with what the database says it must return."""

    op: str  # "items.list" | "threads.list"
    size: int  # items in the thread, or threads of the user
    name: str
    order: str
    after: str | None
    expected_ids: list[str]
    expected_has_more: bool
    thread_id: str | None = None  # items.list only
    context: Any = None
    timings: dict[str, list[float]] = field(default_factory=dict)
    queries: dict[str, list[str]] = field(default_factory=dict)
    checked: dict[str, bool] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.op, self.name, self.size)


def cursor_position(name: str, count: int, limit: int) -> int | None:
    """Index (in ascending order) of the ``after`` row of a case, None for no cursor."""
    if name.startswith("first"):
        return None
    if name.startswith("middle"):
        return count // 2
    # A full page, then 5 more rows before the end of the walk.
    return limit + 5 if name == "end_desc" else count - limit - 6


def expected_window(name: str, count: int, limit: int) -> tuple[int, int, bool, bool]:
    """(start, stop) of the page in ascending positions, whether it is reversed, has_more."""
    order = name.rsplit("_", 1)[1]
    pos = cursor_position(name, count, limit)
    if order == "asc":
        start = 0 if pos is None else pos + 1
        stop = min(count, start + limit)
        return start, stop, False, stop < count
    stop = count if pos is None else pos
    start = max(0, stop - limit)
    return start, stop, True, start > 0


def build_cases(
    op: str, size: int, rows: Callable[[int, int], list[str]], limit: int, **extra: Any
) -> list[Case]:
    """Cases for one data set; ``rows(start, stop)`` gives ids in ascending page order."""
    cases = []
    for name in CASES:
        order = name.rsplit("_", 1)[1]
        pos = cursor_position(name, size, limit)
        after = None if pos is None else rows(pos, pos + 1)[0]
        start, stop, reverse, has_more = expected_window(name, size, limit)
        ids = rows(start, stop)
        cases.append(
            Case(
                op=op,
                size=size,
                name=name,
                order=order,
                after=after,
                expected_ids=ids[::-1] if reverse else ids,
                expected_has_more=has_more,
                **extra,
            )
        )
    return cases


# -- data -----------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> tuple[list[Case], dict[str, Any]]:
    """Generate or reuse the data sets; the cases to time and notes for the report."""
    from benchmarks import generate
    from django_chatkit.context import ChatKitContext
    from django_chatkit.models import Thread, ThreadItem

    notes: dict[str, Any] = {"generation": []}
    cases: list[Case] = []
    generated = False

    if args.noise_users:
        written, seconds = generate.ensure_noise(
            args.noise_users, args.noise_threads, args.noise_items
        )
        if written:
            generated = True
            notes["generation"].append(
                f"noise: {written:,} items for {args.noise_users} users in {seconds:.1f}s"
            )

    user = generate.get_user(generate.HISTORY_USER)
    context = ChatKitContext.for_user(user)
    for size in args.sizes:
        thread_id, thread_seconds = generate.ensure_history_thread(size)
        if thread_seconds is None:
            stored = Thread.objects.get(id=thread_id).metadata["bench"].get("seconds")
            how = f"reused (generated earlier in {stored}s)" if stored else "reused"
        else:
            generated = True
            how = f"generated in {thread_seconds:.1f}s ({size / thread_seconds:,.0f} items/s)"
        notes["generation"].append(f"items.list thread of {size:,} items: {how}")
        print(notes["generation"][-1], flush=True)

        ordered = ThreadItem.objects.filter(thread_id=thread_id).order_by("created_at", "pk")

        def item_rows(start: int, stop: int, ordered: QuerySet[ThreadItem] = ordered) -> list[str]:
            return list(ordered.values_list("item_id", flat=True)[start:stop])

        cases += build_cases(
            "items.list", size, item_rows, args.limit, thread_id=thread_id, context=context
        )

    for count in args.thread_counts:
        owner, owner_seconds = generate.ensure_thread_owner(count)
        if owner_seconds is None:
            how = "reused"
        else:
            generated = True
            how = f"generated in {owner_seconds:.1f}s ({count / owner_seconds:,.0f} threads/s)"
        notes["generation"].append(f"threads.list user with {count:,} threads: {how}")
        print(notes["generation"][-1], flush=True)
        owned = Thread.objects.filter(user=owner).order_by("created_at", "pk")

        def thread_rows(start: int, stop: int, owned: QuerySet[Thread] = owned) -> list[str]:
            return list(owned.values_list("id", flat=True)[start:stop])

        cases += build_cases(
            "threads.list", count, thread_rows, args.limit, context=ChatKitContext.for_user(owner)
        )

    if generated:
        started = time.perf_counter()
        generate.analyze()
        notes["generation"].append(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f}s")
    notes["rows"] = {
        "threads": Thread.objects.count(),
        "items": ThreadItem.objects.count(),
    }
    return cases, notes


# -- timing ---------------------------------------------------------------------------------------


def call_for(case: Case, path: str, limit: int) -> Callable[[], Awaitable[Any]]:
    from django_chatkit.loading import get_server

    server = get_server()
    store = server.store
    if path == "store" and case.op == "items.list":
        thread_id = case.thread_id
        assert thread_id is not None  # build_cases sets it for every items.list case
        return lambda: store.load_thread_items(
            thread_id, case.after, limit, case.order, case.context
        )
    if path == "store":
        return lambda: store.load_threads(limit, case.after, case.order, case.context)
    params: dict[str, Any] = {"limit": limit, "order": case.order, "after": case.after}
    if case.op == "items.list":
        params["thread_id"] = case.thread_id
    body = json.dumps({"type": case.op, "params": params}).encode()
    return lambda: server.process(body, case.context)


def page_of(result: Any) -> tuple[list[str], bool]:
    """Ids and has_more of a store Page or of a protocol NonStreamingResult."""
    from chatkit.server import NonStreamingResult

    if isinstance(result, NonStreamingResult):
        data = json.loads(result.json)
        return [row["id"] for row in data["data"]], data["has_more"]
    return [row.id for row in result.data], result.has_more


async def capture(call: Callable[[], Awaitable[Any]]) -> tuple[Any, list[str]]:
    """Run ``call`` once, capturing the SQL it runs in the store's worker thread."""
    from asgiref.sync import sync_to_async
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # The store runs its queries in asgiref's thread-sensitive worker, on that thread's
    # connection: enter, exit and read the capture there too.
    capturer = CaptureQueriesContext(connection)
    await sync_to_async(capturer.__enter__)()
    try:
        result = await call()
    finally:
        await sync_to_async(capturer.__exit__)(None, None, None)
    sqls = await sync_to_async(lambda: [q["sql"] for q in capturer.captured_queries])()
    return result, sqls


async def measure(
    cases: list[Case], paths: list[str], repeat: int, warmup: int, limit: int, seed: int
) -> None:
    rng = random.Random(seed)
    calls = {(path, case.key): call_for(case, path, limit) for path in paths for case in cases}
    # Correctness and query counts first (this also opens the worker's connection).
    for path in paths:
        for case in cases:
            result, sqls = await capture(calls[path, case.key])
            ids, has_more = page_of(result)
            case.queries[path] = sqls
            case.checked[path] = ids == case.expected_ids and has_more == case.expected_has_more
            if not case.checked[path]:
                raise SystemExit(
                    f"wrong page for {path} {case.key}: got {ids[:3]}... has_more={has_more}, "
                    f"expected {case.expected_ids[:3]}... has_more={case.expected_has_more}"
                )
    for path in paths:
        for case in cases:
            case.timings[path] = []
    # Every (path, case) cell once per round, in a new random order each round: drift (other
    # processes, autovacuum, CPU frequency) spreads over all cells instead of biasing some.
    cells = [(path, case) for path in paths for case in cases]
    gc.collect()
    started = time.perf_counter()
    for round_number in range(warmup + repeat):
        rng.shuffle(cells)
        for path, case in cells:
            call = calls[path, case.key]
            begin = time.perf_counter()
            await call()
            elapsed = time.perf_counter() - begin
            if round_number >= warmup:
                case.timings[path].append(elapsed)
    print(
        f"{len(cells) * (warmup + repeat):,} calls in {time.perf_counter() - started:.1f}s",
        flush=True,
    )


# -- EXPLAIN --------------------------------------------------------------------------------------


def explain(sql: str) -> tuple[str, dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql``: the text plan and a summary from the JSON plan."""
    from django.db import connection

    with connection.cursor() as cursor:
        # Twice: the first run may still set hint bits; report the steady state.
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        text = "\n".join(row[0] for row in cursor.fetchall())
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    scans: list[str] = []
    rows_read = 0
    removed = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal rows_read, removed
        kind = node["Node Type"]
        if "Scan" in kind:
            name = node.get("Index Name") or node.get("Relation Name", "")
            backward = " Backward" if node.get("Scan Direction") == "Backward" else ""
            scans.append(f"{kind}{backward} on {name}")
            rows_read += int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
            removed += int(node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    top = plan["Plan"]
    summary = {
        "scans": scans,
        "rows": rows_read,
        "removed": removed,
        "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
        "ms": plan.get("Execution Time", 0.0),
    }
    return text, summary


def explain_cases(cases: list[Case]) -> list[dict[str, Any]]:
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    out = []
    for case in cases:
        for number, sql in enumerate(case.queries.get("store", []), start=1):
            text, summary = explain(sql)
            out.append({"case": case, "number": number, "sql": sql, "text": text, **summary})
    return out


# -- report ---------------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def report(
    cases: list[Case],
    plans: list[dict[str, Any]],
    notes: dict[str, Any],
    args: argparse.Namespace,
    paths: list[str],
) -> str:
    import chatkit.version
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()"
        )
        db_version = cursor.fetchone()[0].split(" on ")[0]
    if connection.vendor != "postgresql":
        db_version = f"{connection.display_name} {db_version}"
    lines = [
        "# History scale: page latency against thread length",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `"
        + " ".join(["python -m benchmarks.history_scale", *sys.argv[1:]])
        + "`.",
        "",
        f"- Machine: {platform.machine()}, {_cpus()} CPU(s), Python {platform.python_version()}, "
        f"Django {django.get_version()}, openai-chatkit {chatkit.version.__version__}, "
        f"{db_version}.",
        f"- Page size (limit): {args.limit}; {args.repeat} timed calls per cell after "
        f"{args.warmup} warm-up rounds; every round runs all cells (both paths, all sizes and "
        "cases) in a new random order; warm cache; one client, no concurrency.",
        f"- Database: {notes['rows']['threads']:,} threads, {notes['rows']['items']:,} items in "
        "total (other users' threads included as noise).",
    ]
    before, after = notes.get("load", (None, None))
    if before is not None:
        busy = max(before, after) > _cpus()
        lines.append(
            f"- 1-minute load average before/after timing: {before:.1f} / {after:.1f}"
            + (
                " (more than the CPUs: other processes shared the machine, absolute latencies "
                "are inflated; ratios much less so, since all cells are interleaved)."
                if busy
                else "."
            )
        )
    lines += [f"- {line}" for line in notes["generation"]]
    lines += ["", "## Latency per call (ms)", ""]

    for op in ("items.list", "threads.list"):
        op_cases = [c for c in cases if c.op == op]
        if not op_cases:
            continue
        sizes = sorted({c.size for c in op_cases})
        unit = "items" if op == "items.list" else "threads"
        head = ["op", "path", "case", "queries"]
        for size in sizes:
            head += [f"{size:,} {unit} p50", "p95"]
        head += [f"ratio p50 {sizes[-1]:,}/{sizes[0]:,}", "ratio p95"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * 3 + "--:|" * (len(head) - 3))
        by_key = {(c.name, c.size): c for c in op_cases}
        for path in paths:
            for name in CASES:
                row = [op, path, name]
                counts = {len(by_key[name, s].queries[path]) for s in sizes}
                row.append("/".join(str(n) for n in sorted(counts)))
                medians, p95s = [], []
                for size in sizes:
                    values = by_key[name, size].timings[path]
                    medians.append(statistics.median(values))
                    p95s.append(p95(values))
                    row += [ms(medians[-1]), ms(p95s[-1])]
                row += [f"{medians[-1] / medians[0]:.2f}", f"{p95s[-1] / p95s[0]:.2f}"]
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")

    lines += ["Cases:", ""]
    lines += [f"- `{name}`: {text}" for name, text in CASE_HELP.items()]
    lines += [
        "",
        "`queries` is the number of SQL statements one call runs (the same for every size: a "
        "different count per size would show as `a/b`). Every page returned was checked "
        "against the ids the database gives for that window (and `has_more`).",
    ]

    if plans:
        lines += ["", "## Query plans (EXPLAIN (ANALYZE, BUFFERS), steady state)", ""]
        lines += [
            "`rows` = rows produced by all scan nodes, `removed` = rows a scan read and then "
            "discarded by a filter, `buffers` = shared buffers hit or read by the whole query. "
            "A keyset page that does not read what lies before its cursor shows the same "
            "`rows` and `buffers` at every size.",
            "",
            "| op | size | case | query | scans | rows | removed | buffers | exec ms |",
            "|---|--:|---|--:|---|--:|--:|--:|--:|",
        ]
        for plan in plans:
            case = plan["case"]
            lines.append(
                f"| {case.op} | {case.size:,} | {case.name} | {plan['number']} | "
                f"{'; '.join(plan['scans'])} | {plan['rows']} | {plan['removed']} | "
                f"{plan['buffers']} | {plan['ms']:.3f} |"
            )
        for op in ("items.list", "threads.list"):
            op_plans = [p for p in plans if p["case"].op == op]
            if not op_plans:
                continue
            largest = max(p["case"].size for p in op_plans)
            for plan in op_plans:
                case = plan["case"]
                if case.size != largest or case.name not in ("middle_desc", "first_desc"):
                    continue
                lines += [
                    "",
                    f"### {op}, {largest:,}, `{case.name}`, query {plan['number']}",
                    "",
                    "```sql",
                    plan["sql"],
                    "```",
                    "",
                    "```",
                    plan["text"],
                    "```",
                ]
    return "\n".join(lines) + "\n"


def _load() -> float | None:
    import os

    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- command line ---------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.history_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=int_list,
        default=[100, 100_000],
        help="items per thread, comma-separated (default 100,100000)",
    )
    parser.add_argument(
        "--thread-counts",
        type=int_list,
        default=[1_000, 100_000],
        help="threads per user for threads.list (default 1000,100000; empty to skip)",
    )
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per cell")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--limit", type=int, default=20, help="page size (default 20)")
    parser.add_argument(
        "--paths", default="store,protocol", help="store, protocol or both (default)"
    )
    parser.add_argument(
        "--noise-users",
        type=int,
        default=20,
        help="other users with threads and items (default 20)",
    )
    parser.add_argument("--noise-threads", type=int, default=10)
    parser.add_argument("--noise-items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes))
    args.thread_counts = sorted(set(args.thread_counts))
    paths = [p for p in args.paths.split(",") if p]

    from benchmarks._setup import setup, write_report

    setup()
    cases, notes = prepare(args)
    load_before = _load()
    asyncio.run(measure(cases, paths, args.repeat, args.warmup, args.limit, args.seed))
    notes["load"] = (load_before, _load())
    plans = explain_cases(cases)
    text = report(cases, plans, notes, args, paths)
    write_report(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
