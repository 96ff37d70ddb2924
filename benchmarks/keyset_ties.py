"""Keyset pages when many items share one ``created_at``: the store's filter against a row comparison.

    python -m benchmarks.keyset_ties                      # 100,000 items; tie groups 1 and 100000
    python -m benchmarks.keyset_ties --size 1000000 --tie-groups 1,1000,1000000

``DjangoStore`` pages with ``created_at <= X AND (created_at < X OR id < pk)`` (desc). PostgreSQL
can seek the ``(thread, created_at, id)`` index only on ``created_at <= X``; the ``id`` part is a
filter. When ``created_at`` values are distinct (the SDK stamps items with ``datetime.now()``)
that filter drops one row, the cursor itself. When a whole group of items shares one
``created_at`` (a bulk import, a copy from a store with coarse timestamps), a page after a cursor
inside the group reads every row of the group between the start of the group and the cursor
before it finds its first row. The row comparison ``(created_at, id) < (X, pk)`` is an index
condition on PostgreSQL: the scan starts at the cursor whatever the ties.

For each tie group size this prints and writes (``benchmarks/results/keyset_ties.md``): the
latency of ``DjangoStore.load_thread_items`` as it is, and EXPLAIN (ANALYZE, BUFFERS) of its page
query next to the same page written with Django's tuple lookups (which render as a row comparison
on PostgreSQL and as the equivalent ``OR`` on SQLite/Oracle).
"""

from __future__ import annotations

import argparse
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


def row_comparison_page(
    thread_id: str, cursor: Mapping[str, Any], order: str, limit: int
) -> QuerySet[ThreadItem, Any]:
    """The page query with ``(created_at, id) </> (X, pk)`` (what the store could run)."""
    from django.db.models import F
    from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

    from django_chatkit.models import ThreadItem

    key = Tuple(F("created_at"), F("pk"))
    value = (cursor["created_at"], cursor["pk"])
    items = ThreadItem.objects.filter(thread_id=thread_id)
    if order == "asc":
        items = items.filter(created_at__gte=cursor["created_at"]).filter(
            TupleGreaterThan(key, value)
        )
        items = items.order_by("created_at", "pk")
    else:
        items = items.filter(created_at__lte=cursor["created_at"]).filter(TupleLessThan(key, value))
        items = items.order_by("-created_at", "-pk")
    return items.values_list("payload", flat=True)[: limit + 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.keyset_ties",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=100_000, help="items in each thread")
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
    groups = args.tie_groups or [1, args.size]

    from benchmarks._setup import setup, write_report

    setup()
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
    generated = False
    rows_out = []
    plans_out = []
    for group in groups:
        thread_id, seconds = generate.ensure_history_thread(args.size, tie_group=group)
        generated = generated or seconds is not None
        how = "reused" if seconds is None else f"generated in {seconds:.1f}s"
        print(f"thread of {args.size:,} items, tie group {group:,}: {how}", flush=True)
        if generated:
            generate.analyze()
            generated = False
        ordered = ThreadItem.objects.filter(thread_id=thread_id).order_by("created_at", "pk")

        def item_rows(start: int, stop: int, ordered: QuerySet[ThreadItem] = ordered) -> list[str]:
            return list(ordered.values_list("item_id", flat=True)[start:stop])

        cases = build_cases(
            "items.list", args.size, item_rows, args.limit, thread_id=thread_id, context=context
        )
        for case in cases:
            if case.name not in CURSOR_CASES:
                continue
            with CaptureQueriesContext(connection) as captured:
                page = store._load_thread_items(
                    thread_id, case.after, args.limit, case.order, context
                )
            ids = [item.id for item in page.data]
            assert ids == case.expected_ids and page.has_more == case.expected_has_more, case.key
            current_sql = captured.captured_queries[-1]["sql"]
            cursor = (
                ThreadItem.objects.filter(thread_id=thread_id, item_id=case.after)
                .values("created_at", "pk")
                .get()
            )
            variant = row_comparison_page(thread_id, cursor, case.order, args.limit)
            variant_ids = [payload["id"] for payload in variant][: args.limit]
            assert variant_ids == case.expected_ids, ("row comparison", case.key)
            with connection.cursor() as cur:
                # Rendered with real parameters, as the captured store query is.
                sql, params = variant.query.sql_with_params()
                variant_sql = cur.cursor.mogrify(sql, params)
            timings = []
            for _ in range(args.repeat):
                begin = time.perf_counter()
                store._load_thread_items(thread_id, case.after, args.limit, case.order, context)
                timings.append(time.perf_counter() - begin)
            _, current = explain(current_sql)
            variant_text, variant_plan = explain(variant_sql)
            current_text, _ = explain(current_sql)
            rows_out.append(
                f"| {group:,} | {case.name} | {statistics.median(timings) * 1000:.2f} | "
                f"{p95(timings) * 1000:.2f} | {current['rows']} | {current['removed']:,} | "
                f"{current['buffers']:,} | {current['ms']:.3f} | {variant_plan['rows']} | "
                f"{variant_plan['removed']:,} | {variant_plan['buffers']:,} | "
                f"{variant_plan['ms']:.3f} |"
            )
            print(rows_out[-1], flush=True)
            if case.name == "middle_desc" and group == max(groups):
                plans_out += [
                    f"### Tie group {group:,}, `middle_desc`: the store's query",
                    "",
                    "```",
                    current_text,
                    "```",
                    "",
                    f"### Tie group {group:,}, `middle_desc`: with a row comparison",
                    "",
                    "```sql",
                    variant_sql,
                    "```",
                    "",
                    "```",
                    variant_text,
                    "```",
                    "",
                ]
    lines = [
        "# Keyset pages through tied `created_at` values",
        "",
        "`" + " ".join(["python -m benchmarks.keyset_ties", *sys.argv[1:]]) + "`",
        "",
        f"Threads of {args.size:,} items; `tie group` = consecutive items sharing one "
        f"`created_at` (1 = all distinct, as the SDK makes them). Latency: "
        f"`DjangoStore._load_thread_items` (both queries, no event loop), median and p95 of "
        f"{args.repeat} calls. Plans: the page query only, EXPLAIN (ANALYZE, BUFFERS).",
        "",
        "| tie group | case | store p50 ms | p95 ms | store: rows | removed | buffers | "
        "exec ms | row cmp: rows | removed | buffers | exec ms |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *rows_out,
        "",
        *plans_out,
    ]
    text = "\n".join(lines)
    write_report(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
