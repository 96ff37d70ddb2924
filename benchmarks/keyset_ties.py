"""Keyset pages when many items share one ``created_at``: the store's row comparison against an
``OR`` filter.

    python -m benchmarks.keyset_ties                      # 100,000 items; tie groups 1 and 100000
    python -m benchmarks.keyset_ties --size 1000000 --tie-groups 1,1000,1000000

``DjangoStore`` pages with the row-value comparison ``(created_at, id) < (X, pk)`` (desc; ``>``
asc) plus the redundant ``created_at <= X``: PostgreSQL uses the row comparison as an index
condition on ``(thread, created_at, id)``, so the scan starts at the cursor whatever the ties.
The reference is the same page written ``created_at <= X AND (created_at < X OR id < pk)``, the
form the store used before: PostgreSQL seeks the index only on ``created_at <= X`` and filters
on ``id``. With distinct times (the SDK stamps items with ``datetime.now()``) the two read the
same rows; when a whole group of items shares one ``created_at`` (a bulk import, a copy from a
store with coarse timestamps), the ``OR`` form reads every row of the group between the start
of the group and the cursor before it finds its first row.

For each tie group size this prints and writes (``benchmarks/results/keyset_ties.md``): the
latency of ``DjangoStore._load_thread_items`` as it is, EXPLAIN (ANALYZE, BUFFERS) of its page
query next to the ``OR`` form's, and a verdict computed from the store's plans: every page after
a cursor reads at most ``limit + 1`` rows and discards at most one, at every tie group.
``benchmarks.run`` runs it too (with its defaults, on the threads it generated once).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.history_scale import build_cases, explain, int_list, p95

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from django_chatkit.models import ThreadItem

RESULTS = Path(__file__).resolve().parent / "results" / "keyset_ties.md"
CURSOR_CASES = ("middle_desc", "middle_asc", "end_desc", "end_asc")
DEFAULT_SIZE = 100_000


def or_filter_page(
    thread_id: str, cursor: Mapping[str, Any], order: str, limit: int
) -> QuerySet[ThreadItem, Any]:
    """The page query with ``created_at <= X AND (created_at < X OR id < pk)`` (the reference)."""
    from django.db.models import Q

    from django_chatkit.models import ThreadItem

    created, pk = cursor["created_at"], cursor["pk"]
    items = ThreadItem.objects.filter(thread_id=thread_id)
    if order == "asc":
        items = items.filter(Q(created_at__gt=created) | Q(pk__gt=pk), created_at__gte=created)
        items = items.order_by("created_at", "pk")
    else:
        items = items.filter(Q(created_at__lt=created) | Q(pk__lt=pk), created_at__lte=created)
        items = items.order_by("-created_at", "-pk")
    return items.values_list("payload", flat=True)[: limit + 1]


def starts_at_cursor(plan: Mapping[str, Any], limit: int) -> bool:
    """The page's scan read at most the page and its look-ahead row, and discarded at most one
    (the cursor row itself): it started at the cursor."""
    return int(plan["rows"]) <= limit + 1 and int(plan["removed"]) <= 1


def measure(size: int, groups: list[int], repeat: int, limit: int) -> dict[str, Any]:
    """Every cursor case of a thread of ``size`` items per tie group: latency, both plans."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks import generate
    from django_chatkit.context import ChatKitContext
    from django_chatkit.models import ThreadItem
    from django_chatkit.store import DjangoStore

    if connection.vendor != "postgresql":
        raise SystemExit("keyset_ties compares PostgreSQL plans: use a PostgreSQL database")
    user = generate.get_user(generate.HISTORY_USER)
    context = ChatKitContext.for_user(user)
    store = DjangoStore()
    cells: list[dict[str, Any]] = []
    plans: list[str] = []
    for group in groups:
        thread_id, seconds = generate.ensure_history_thread(size, tie_group=group)
        how = "reused" if seconds is None else f"generated in {seconds:.1f}s"
        print(f"thread of {size:,} items, tie group {group:,}: {how}", flush=True)
        if seconds is not None:
            generate.analyze()
        ordered = ThreadItem.objects.filter(thread_id=thread_id).order_by("created_at", "pk")

        def item_rows(start: int, stop: int, ordered: QuerySet[ThreadItem] = ordered) -> list[str]:
            return list(ordered.values_list("item_id", flat=True)[start:stop])

        cases = build_cases(
            "items.list", size, item_rows, limit, thread_id=thread_id, context=context
        )
        for case in cases:
            if case.name not in CURSOR_CASES:
                continue
            with CaptureQueriesContext(connection) as captured:
                page = store._load_thread_items(thread_id, case.after, limit, case.order, context)
            ids = [item.id for item in page.data]
            assert ids == case.expected_ids and page.has_more == case.expected_has_more, case.key
            store_sql = captured.captured_queries[-1]["sql"]
            cursor = (
                ThreadItem.objects.filter(thread_id=thread_id, item_id=case.after)
                .values("created_at", "pk")
                .get()
            )
            reference = or_filter_page(thread_id, cursor, case.order, limit)
            reference_ids = [payload["id"] for payload in reference][:limit]
            assert reference_ids == case.expected_ids, ("OR filter", case.key)
            with connection.cursor() as cur:
                # Rendered with real parameters, as the captured store query is.
                sql, params = reference.query.sql_with_params()
                reference_sql = cur.cursor.mogrify(sql, params)
            timings = []
            for _ in range(repeat):
                begin = time.perf_counter()
                store._load_thread_items(thread_id, case.after, limit, case.order, context)
                timings.append(time.perf_counter() - begin)
            store_text, store_plan = explain(store_sql)
            reference_text, reference_plan = explain(reference_sql)
            cell = {
                "group": group,
                "case": case.name,
                "p50_ms": statistics.median(timings) * 1000,
                "p95_ms": p95(timings) * 1000,
                "store": {k: store_plan[k] for k in ("rows", "removed", "buffers", "ms")},
                "or_filter": {k: reference_plan[k] for k in ("rows", "removed", "buffers", "ms")},
                "starts_at_cursor": starts_at_cursor(store_plan, limit),
            }
            cells.append(cell)
            print(table_row(cell), flush=True)
            if case.name == "middle_desc" and group == max(groups):
                plans += [
                    f"### Tie group {group:,}, `middle_desc`: the store's query",
                    "",
                    "```sql",
                    store_sql,
                    "```",
                    "",
                    "```",
                    store_text,
                    "```",
                    "",
                    f"### Tie group {group:,}, `middle_desc`: the same page with an `OR` filter",
                    "",
                    "```sql",
                    reference_sql,
                    "```",
                    "",
                    "```",
                    reference_text,
                    "```",
                    "",
                ]
    return {
        "size": size,
        "groups": groups,
        "repeat": repeat,
        "limit": limit,
        "cells": cells,
        "plans": plans,
        "met": bool(cells) and all(c["starts_at_cursor"] for c in cells),
    }


def table_row(cell: Mapping[str, Any]) -> str:
    s, r = cell["store"], cell["or_filter"]
    return (
        f"| {cell['group']:,} | {cell['case']} | {cell['p50_ms']:.2f} | {cell['p95_ms']:.2f} | "
        f"{s['rows']} | {s['removed']:,} | {s['buffers']:,} | {s['ms']:.3f} | {r['rows']} | "
        f"{r['removed']:,} | {r['buffers']:,} | {r['ms']:.3f} |"
    )


def report(measured: Mapping[str, Any], command: str, generated: str, git: str) -> str:
    limit = measured["limit"]
    verdict = "met" if measured["met"] else "**not met**"
    return "\n".join(
        [
            "# Keyset pages through tied `created_at` values",
            "",
            f"Generated {generated} by `{command}`, code at {git}.",
            "",
            f"Threads of {measured['size']:,} items; `tie group` = consecutive items sharing one "
            "`created_at` (1 = all distinct, as the SDK makes them). Latency: "
            "`DjangoStore._load_thread_items` as it is (both queries, no event loop), median "
            f"and p95 of {measured['repeat']} calls. Plans: the page query only, EXPLAIN "
            "(ANALYZE, BUFFERS): the store's (a row comparison `(created_at, id) < (X, pk)`) and "
            "the same page with `created_at < X OR id < pk` (what the store ran before).",
            "",
            f"Target: every page after a cursor starts at it (the store's scan reads at most "
            f"{limit + 1} rows and discards at most 1) at every tie group: {verdict}.",
            "",
            "| tie group | case | store p50 ms | p95 ms | store: rows | removed | buffers | "
            "exec ms | OR filter: rows | removed | buffers | exec ms |",
            "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
            *(table_row(cell) for cell in measured["cells"]),
            "",
            *measured["plans"],
        ]
    )


def run(
    size: int = DEFAULT_SIZE,
    groups: list[int] | None = None,
    repeat: int = 50,
    limit: int = 20,
    output: Path = RESULTS,
    command: str = "python -m benchmarks.keyset_ties",
) -> dict[str, Any]:
    """Measure, write the report to ``output``; the measures without the plans' text."""
    from datetime import UTC, datetime

    from benchmarks._setup import git_state, write_report

    generated = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    git = git_state()
    measured = measure(size, groups or [1, size], repeat, limit)
    write_report(output, report(measured, command, generated, git))
    out = {k: v for k, v in measured.items() if k != "plans"}
    out.update(generated=generated, git=git)
    # What benchmarks.run's report reads when its own run did not measure the ties.
    output.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.keyset_ties",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="items in each thread")
    parser.add_argument(
        "--tie-groups",
        type=int_list,
        default=None,
        help="items sharing one created_at, comma-separated (default 1,SIZE)",
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from benchmarks._setup import setup

    setup()
    command = " ".join(
        ["python -m benchmarks.keyset_ties", *(sys.argv[1:] if argv is None else argv)]
    )
    measured = run(args.size, args.tie_groups, args.repeat, args.limit, args.output, command)
    return 0 if measured["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
