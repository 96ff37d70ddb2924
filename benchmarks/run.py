"""Every benchmark in one command: our overhead against the bare SDK, and history scale.

    python -m benchmarks.run              # or: make bench   (about 10 minutes)
    python -m benchmarks.run --quick      # a smoke run (about 4 minutes)

Writes ``benchmarks/results/overhead.md`` (the table, also printed), ``overhead.png`` (the plot),
``overhead.json`` (every number measured), ``history_scale-run.md`` (the full history-scale report
with query plans) and the raw py-spy profiles ``profile-ours.txt.gz`` / ``profile-baseline.txt.gz``.
See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import overhead, processes

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
HISTORY_SIZES = [1_000, 100_000, 1_000_000]

TARGETS = {
    "cpu_ratio": 1.3,  # CPU per turn, ours / baseline
    "first_token_overhead_ms": 5.0,  # median at 50 concurrent chats
    "history_ratio": 1.5,  # list latency at 1M / at 1k
}


STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:2d}:{elapsed % 60:02d}] {message}", flush=True)


def wait_until_quiet(limit: float, threshold: float = 25.0) -> dict[str, Any]:
    """Wait (up to ``limit`` seconds) for the machine's CPUs to be mostly idle."""
    import psutil

    started = time.monotonic()
    busy = psutil.cpu_percent(interval=2.0)
    while busy > threshold and time.monotonic() - started < limit:
        log(f"the machine is busy ({busy:.0f}% CPU used by other processes): waiting")
        busy = psutil.cpu_percent(interval=5.0)
    return {"busy_percent_at_start": busy, "waited_s": round(time.monotonic() - started, 1)}


def git_state() -> str:
    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = run("rev-parse", "--short", "HEAD") or "unknown"
    dirty = run("status", "--porcelain", "--untracked-files=no", "--", "django_chatkit")
    return commit + (" + uncommitted changes in django_chatkit/" if dirty else "")


# -- history scale -------------------------------------------------------------------------------


def run_history(repeat: int, warmup: int) -> dict[str, Any]:
    """``benchmarks.history_scale`` at 1k, 100k and 1M (items per thread, threads per user)."""
    from benchmarks import history_scale

    argv = [
        "--sizes", ",".join(map(str, HISTORY_SIZES)),
        "--thread-counts", ",".join(map(str, HISTORY_SIZES)),
        "--repeat", str(repeat), "--warmup", str(warmup),
        "--output", str(RESULTS / "history_scale-run.md"),
    ]  # fmt: skip
    parser_args = _history_args(history_scale, argv)
    paths = ["store", "protocol"]
    cases, notes = history_scale.prepare(parser_args)
    load_before = history_scale._load()
    asyncio.run(
        history_scale.measure(
            cases, paths, parser_args.repeat, parser_args.warmup, parser_args.limit, 0
        )
    )
    notes["load"] = (load_before, history_scale._load())
    plans = history_scale.explain_cases(cases)
    text = history_scale.report(cases, plans, notes, parser_args, paths)
    parser_args.output.write_text(text)
    out: dict[str, Any] = {"notes": notes["generation"], "cells": []}
    for case in cases:
        for path in paths:
            values = case.timings[path]
            out["cells"].append(
                {
                    "op": case.op,
                    "size": case.size,
                    "case": case.name,
                    "path": path,
                    "p50_ms": statistics.median(values) * 1000,
                    "p95_ms": history_scale.p95(values) * 1000,
                    "queries": len(case.queries[path]),
                }
            )
    return out


def _history_args(history_scale: Any, argv: list[str]) -> argparse.Namespace:
    """history_scale's own defaults, with ``argv`` applied (its parser lives in main())."""
    namespace = argparse.Namespace(
        sizes=history_scale.int_list(argv[argv.index("--sizes") + 1]),
        thread_counts=history_scale.int_list(argv[argv.index("--thread-counts") + 1]),
        repeat=int(argv[argv.index("--repeat") + 1]),
        warmup=int(argv[argv.index("--warmup") + 1]),
        limit=20,
        paths="store,protocol",
        noise_users=20,
        noise_threads=10,
        noise_items=200,
        seed=0,
        output=Path(argv[argv.index("--output") + 1]),
    )
    return namespace


# -- report -------------------------------------------------------------------------------------


def f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def ratio(ours: float | None, base: float | None, digits: int = 2) -> str:
    if ours is None or base is None or base == 0:
        return "-"
    return f"{ours / base:.{digits}f}x"


def step_at(side: dict[str, Any], concurrency: int) -> dict[str, Any] | None:
    steps: list[dict[str, Any]] = side.get("load", {}).get("steps", [])
    for step in steps:
        if step["concurrency"] == concurrency:
            return step
    return None


def memory_per_stream(side: dict[str, Any]) -> float | None:
    """KB of server RSS per open stream, from the first load step (the smallest level).

    Peak RSS during the step minus RSS before it, over the streams: the first time the server
    holds that many streams. Later steps start from memory that Python keeps once allocated, so
    their increments say less.
    """
    steps = side.get("load", {}).get("steps", [])
    first = min(steps, key=lambda s: s["concurrency"], default=None)
    if not first or first["errors"] or not first["rss_peak_mb"]:
        return None
    return float((first["rss_peak_mb"] - first["rss_before_mb"]) * 1024 / first["concurrency"])


def throughput_at(side: dict[str, Any], workers: int) -> float | None:
    for row in side.get("throughput", []):
        if row["workers"] == workers:
            return float(row["turns_per_s"])
    return None


def history_row(history: dict[str, Any], op: str, case: str, path: str) -> list[float | None]:
    by_size = {
        c["size"]: c["p50_ms"]
        for c in history["cells"]
        if c["op"] == op and c["case"] == case and c["path"] == path
    }
    return [by_size.get(size) for size in HISTORY_SIZES]


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**not met**")


def report(results: dict[str, Any]) -> str:
    ours, base = results.get("ours", {}), results.get("baseline", {})
    cfg = results["config"]
    m = results["machine"]
    lines = [
        "# Overhead of django_chatkit against the bare ChatKit SDK",
        "",
        f"Generated {results['generated']} by `python -m benchmarks.run"
        + (" " + " ".join(results["argv"]) if results["argv"] else "")
        + f"` in {results['total_seconds'] / 60:.1f} min, code at {results['git']}.",
        "",
        f"- Machine: {m['machine']}, {m['cpus']} CPUs, {m['memory_gb']:.0f} GiB; Python "
        f"{m['python']}, Django {m['django']}, openai-chatkit {m['chatkit']}, openai-agents "
        f"{m['agents']}, openai {m['openai']}, uvicorn {m['uvicorn']} (asyncio loop, h11), "
        f"{m['database']}.",
        "- Both apps under uvicorn, one worker (unless said), same fake OpenAI (its own process), "
        "same load client (its own process), all on this machine's 2 CPUs, loopback only. "
        "Ours: `benchmarks.asgi` (Django + `AgentChatKitServer` + `DjangoStore` on "
        f"PostgreSQL, CONN_MAX_AGE={cfg['conn_max_age']}"
        + (
            f", Django's psycopg pool (`OPTIONS['pool'] = {cfg['db_pool']}`)"
            if cfg.get("db_pool")
            else ", no pool"
        )
        + ", `GENERATE_TITLES` off, no quotas). Baseline: `benchmarks.baseline_app` (the SDK's "
        "`ChatKitServer`, in-memory store, same agent, `Runner.run_streamed` + "
        "`stream_agent_response`).",
        f"- A turn: one user message, the model streams {cfg['tokens']} tokens. Sequential "
        f"turns: {cfg['sequential_token_delay'] * 1000:.0f} ms between tokens; load: "
        f"{cfg['token_delay'] * 1000:.0f} ms between tokens ({1 / cfg['token_delay']:.0f} "
        f"tokens/s per stream), first token after {cfg['first_token_delay'] * 1000:.0f} ms, "
        f"starts spread over {cfg['ramp']:.1f} s.",
    ]
    quiet = results.get("quiet", {})
    if quiet:
        lines.append(
            f"- Other processes' CPU use when the run started: {quiet['busy_percent_at_start']:.0f}%"
            + (
                f" (waited {quiet['waited_s']:.0f} s for a quiet machine)"
                if quiet["waited_s"] > 3
                else ""
            )
            + ". The `others` column of overhead.json has it per phase."
        )
    lines += ["", "## Ours against the baseline", ""]
    lines += ["| measure | ours | baseline | ours/baseline | target |", "|---|--:|--:|--:|---|"]

    def row(name: str, a: Any, b: Any, r: str = "", target: str = "", digits: int = 1) -> None:
        lines.append(f"| {name} | {f(a, digits)} | {f(b, digits)} | {r} | {target} |")

    os_, bs = ours.get("sequential", {}), base.get("sequential", {})
    of, bf = ours.get("first_turns", {}), base.get("first_turns", {})
    cpu_ratio = first_cpu_ratio = None
    if os_.get("cpu_ms_per_turn") and bs.get("cpu_ms_per_turn"):
        cpu_ratio = os_["cpu_ms_per_turn"] / bs["cpu_ms_per_turn"]
    if of.get("cpu_ms_per_turn") and bf.get("cpu_ms_per_turn"):
        first_cpu_ratio = of["cpu_ms_per_turn"] / bf["cpu_ms_per_turn"]
    row(
        "CPU per later turn, ms (sequential)",
        os_.get("cpu_ms_per_turn"),
        bs.get("cpu_ms_per_turn"),
        ratio(os_.get("cpu_ms_per_turn"), bs.get("cpu_ms_per_turn")),
        f"<= {TARGETS['cpu_ratio']}x: {verdict(None if cpu_ratio is None else cpu_ratio <= TARGETS['cpu_ratio'])}",
    )
    row(
        "CPU per first turn (new thread, tokens back to back), ms",
        of.get("cpu_ms_per_turn"),
        bf.get("cpu_ms_per_turn"),
        ratio(of.get("cpu_ms_per_turn"), bf.get("cpu_ms_per_turn")),
        f"<= {TARGETS['cpu_ratio']}x: "
        + verdict(None if first_cpu_ratio is None else first_cpu_ratio <= TARGETS["cpu_ratio"]),
    )
    ox, bx = ours.get("fixed", {}), base.get("fixed", {})
    row(
        "CPU per one-token turn (the fixed part), ms",
        ox.get("cpu_ms_per_turn"),
        bx.get("cpu_ms_per_turn"),
        ratio(ox.get("cpu_ms_per_turn"), bx.get("cpu_ms_per_turn")),
    )

    def per_token(seq: dict[str, Any], fixed: dict[str, Any]) -> float | None:
        if not seq.get("cpu_ms_per_turn") or not fixed.get("cpu_ms_per_turn"):
            return None
        per_turn = seq["cpu_ms_per_turn"] - fixed["cpu_ms_per_turn"]
        return float(per_turn / (cfg["tokens"] - 1) * 1000)

    row(
        "CPU per streamed token, us ((later turn - one-token turn) / 199)",
        per_token(os_, ox),
        per_token(bs, bx),
        ratio(per_token(os_, ox), per_token(bs, bx)),
        digits=0,
    )
    if os_.get("postgres_cpu_s") is not None and os_.get("turns"):
        row(
            "PostgreSQL CPU per later turn, ms (not in the rows above)",
            os_["postgres_cpu_s"] / os_["turns"] * 1000,
            None,
        )
    o50, b50 = step_at(ours, 50), step_at(base, 50)
    if o50 and b50:
        row(
            "CPU per turn at 50 concurrent chats, ms",
            o50["cpu_ms_per_turn"],
            b50["cpu_ms_per_turn"],
            ratio(o50["cpu_ms_per_turn"], b50["cpu_ms_per_turn"]),
        )
    row(
        "SQL queries per later turn / first turn",
        f"{f(os_.get('queries_per_turn'))} / {f(of.get('queries_per_turn'))}",
        "0 / 0",
        "",
        "constant: see below",
    )
    row(
        "request sent -> upstream request, p50 ms (sequential)",
        os_.get("to_upstream_ms_p50"),
        bs.get("to_upstream_ms_p50"),
        ratio(os_.get("to_upstream_ms_p50"), bs.get("to_upstream_ms_p50")),
        digits=2,
    )
    row(
        "turn time p50 ms (sequential, 200 tokens 5 ms apart)",
        os_.get("turn_ms_p50"),
        bs.get("turn_ms_p50"),
        ratio(os_.get("turn_ms_p50"), bs.get("turn_ms_p50"), 3),
    )
    levels: list[tuple[int, dict[str, Any] | None, dict[str, Any] | None]] = [(1, os_, bs)]
    levels += [(n, step_at(ours, n), step_at(base, n)) for n in cfg["levels"]]
    first_token_met = None
    for n, o, b in levels:
        if not o and not b:
            continue
        o, b = o or {}, b or {}
        target = ""
        if (
            n == 50
            and o.get("first_token_ms_p50") is not None
            and b.get("first_token_ms_p50") is not None
        ):
            extra = o["first_token_ms_p50"] - b["first_token_ms_p50"]
            first_token_met = extra < TARGETS["first_token_overhead_ms"]
            target = (
                f"ours - baseline = {extra:.1f} ms < {TARGETS['first_token_overhead_ms']:.0f}: "
                + verdict(first_token_met)
            )
        row(
            f"first-token overhead at {n} chats, p50 / p99 ms",
            f"{f(o.get('first_token_ms_p50'), 2)} / {f(o.get('first_token_ms_p99'), 2)}",
            f"{f(b.get('first_token_ms_p50'), 2)} / {f(b.get('first_token_ms_p99'), 2)}",
            ratio(o.get("first_token_ms_p50"), b.get("first_token_ms_p50")),
            target,
        )
        row(
            f"token gap at {n} chats, p50 / p99 ms",
            f"{f(o.get('gap_ms_p50'), 2)} / {f(o.get('gap_ms_p99'), 2)}",
            f"{f(b.get('gap_ms_p50'), 2)} / {f(b.get('gap_ms_p99'), 2)}",
            ratio(o.get("gap_ms_p99"), b.get("gap_ms_p99")),
        )
        row(
            f"token lag behind the model at {n} chats, p50 / p99 ms",
            f"{f(o.get('lag_ms_p50'), 2)} / {f(o.get('lag_ms_p99'), 2)}",
            f"{f(b.get('lag_ms_p50'), 2)} / {f(b.get('lag_ms_p99'), 2)}",
            ratio(o.get("lag_ms_p99"), b.get("lag_ms_p99")),
        )
        if n > 1:
            row(
                f"failed turns at {n} chats",
                f"{o.get('errors', '-')}/{o.get('turns', '-')}",
                f"{b.get('errors', '-')}/{b.get('turns', '-')}",
                "",
                "; ".join(o.get("error_examples", [])[:1])[:80],
            )
    oc = ours.get("load", {}).get("capacity", {})
    bc = base.get("load", {}).get("capacity", {})
    row(
        f"open streams one worker holds: p99 gap < {cfg['gap_limit'] * 1000:.0f} ms and p99 lag "
        f"< {cfg['lag_limit'] * 1000:.0f} ms, no error",
        oc.get("streams"),
        bc.get("streams"),
        ratio(oc.get("streams"), bc.get("streams")),
        f"first failure: {f(oc.get('first_failure'))} / {f(bc.get('first_failure'))}",
    )

    def gap_only(side: dict[str, Any]) -> int | None:
        steps = side.get("load", {}).get("steps", [])
        return max((s["concurrency"] for s in steps if s.get("passes_gap")), default=None)

    row(
        "largest level measured with p99 gap < 100 ms alone (the issue's criterion)",
        gap_only(ours),
        gap_only(base),
        "",
        "a saturated worker passes it: see lag",
    )
    om, bm = memory_per_stream(ours), memory_per_stream(base)
    row(
        "memory per open stream, KB (RSS growth at the first load level)",
        om,
        bm,
        ratio(om, bm),
        digits=0,
    )
    row(
        "server RSS idle, MB",
        ours.get("rss_idle_mb"),
        base.get("rss_idle_mb"),
        ratio(ours.get("rss_idle_mb"), base.get("rss_idle_mb")),
    )
    for side, label in ((ours, ""), (results.get("ours+nopool") or {}, ", without a pool")):
        peaks = {
            s["concurrency"]: s["db_connections_peak"]
            for s in side.get("load", {}).get("steps", [])
            if s.get("db_connections_peak") is not None
        }
        for n in sorted(set(peaks) & set(cfg["levels"])):
            step = step_at(side, n) or {}
            grows = peaks[n] >= 0.8 * n or (n > min(peaks) and peaks[n] > 1.5 * peaks[min(peaks)])
            if not grows:
                note = "bounded: yes"
            elif label:
                note = "bounded: **no**, one per request still starting (a pool bounds it)"
            else:
                note = "bounded: **no, one per open stream**"
            if step.get("errors"):
                note += f"; {step['errors']}/{n} turns failed ({step.get('error_examples', [''])[0][:60]})"
            elif label:
                note += f"; first-token p50 {f(step.get('first_token_ms_p50'), 2)} ms"
            row(
                f"PostgreSQL connections at {n} open streams (peak){label}",
                peaks[n],
                0,
                "",
                note,
                digits=0,
            )
    t1o, t1b = throughput_at(ours, 1), throughput_at(base, 1)
    t2o, t2b = throughput_at(ours, 2), throughput_at(base, 2)
    row("throughput, turns/s, 1 worker", t1o, t1b, ratio(t1o, t1b))
    row("throughput, turns/s, 2 workers", t2o, t2b, ratio(t2o, t2b))
    row("scaling 2 workers / 1 worker", ratio(t2o, t1o), ratio(t2b, t1b))

    def cpu_split(side: dict[str, Any], workers: int) -> str:
        for tp in side.get("throughput", []):
            if tp["workers"] == workers and tp.get("busy_cpu_s") and tp["wall_s"]:
                wall = tp["wall_s"]
                return (
                    f"{tp['busy_cpu_s'] / wall:.2f} CPUs busy: server {tp['cpu_s'] / wall:.2f}, "
                    f"client {tp['client_cpu_s'] / wall:.2f}, fake {tp['fake_cpu_s'] / wall:.2f}, "
                    f"PostgreSQL {tp['postgres_cpu_s'] / wall:.2f}"
                )
        return "-"

    for workers in (1, 2):
        if throughput_at(ours, workers) is not None:
            row(
                f"where the 2 CPUs went, {workers} worker{'s' if workers > 1 else ''}",
                cpu_split(ours, workers),
                cpu_split(base, workers),
            )

    variants = [k for k in results if k.startswith("ours") and k != "ours"]

    def compare(side: dict[str, Any], reference: dict[str, Any]) -> tuple[Any, Any]:
        for key in ("sequential", "first_turns", "fixed"):
            if side.get(key, {}).get("cpu_ms_per_turn") and reference.get(key):
                return side[key]["cpu_ms_per_turn"], reference[key]["cpu_ms_per_turn"]
        a, b = step_at(side, 50), step_at(reference, 50)
        if a and b:
            return a["cpu_ms_per_turn"], b["cpu_ms_per_turn"]
        return None, None

    if variants:
        top = max(cfg["levels"], default=None)
        lines += [
            "",
            "## Variants of ours (same run: rounds alternate, load levels side by side)",
            "",
            "| side | CPU/later turn ms | CPU/one-token turn ms | CPU/first turn ms | "
            "queries/later turn | request -> upstream p50 ms | CPU/turn at 50 chats ms | "
            "first-token p50 at 50 ms | lag p99 at 50 ms | "
            f"PostgreSQL connections at {top} | failed at {top} | CPU vs ours |",
            "|---|" + "--:|" * 11,
        ]
        for key in ["ours", *variants, "baseline"]:
            side = results.get(key, {})
            seq, fx = side.get("sequential", {}), side.get("fixed", {})
            ft = side.get("first_turns", {})
            s50 = step_at(side, 50) or {}
            stop = step_at(side, top) if top else None
            lines.append(
                f"| {key} | {f(seq.get('cpu_ms_per_turn'))} | {f(fx.get('cpu_ms_per_turn'))} | "
                f"{f(ft.get('cpu_ms_per_turn'))} | "
                f"{f(seq.get('queries_per_turn', fx.get('queries_per_turn')))} | "
                f"{f(fx.get('to_upstream_ms_p50', seq.get('to_upstream_ms_p50')), 2)} | "
                f"{f(s50.get('cpu_ms_per_turn'))} | {f(s50.get('first_token_ms_p50'))} | "
                f"{f(s50.get('lag_ms_p99'))} | "
                f"{f((stop or {}).get('db_connections_peak'))} | "
                f"{f((stop or {}).get('errors'))} | "
                f"{ratio(*compare(side, ours), 3)} |"
            )

    history = results.get("history")
    history_met = None
    if history:
        lines += [
            "",
            "## History scale (PostgreSQL): page latency p50 ms, 20 rows per page",
            "",
            "| op | path | case | 1k | 100k | 1M | 1M/1k | target |",
            "|---|---|---|--:|--:|--:|--:|---|",
        ]
        worst = 0.0
        for op in ("items.list", "threads.list"):
            for path in ("store", "protocol"):
                for case in ("first_desc", "middle_desc", "end_desc"):
                    row_values = history_row(history, op, case, path)
                    values = [v for v in row_values if v is not None]
                    if len(values) < len(row_values):
                        continue
                    r = values[-1] / values[0]
                    worst = max(worst, r)
                    lines.append(
                        f"| {op} | {path} | {case} | "
                        + " | ".join(f"{v:.2f}" for v in values)
                        + f" | {r:.2f} | {verdict(r <= TARGETS['history_ratio'])} |"
                    )
        history_met = worst <= TARGETS["history_ratio"]
        lines += [
            "",
            "Sizes are items in the thread (items.list) or threads of the user (threads.list). "
            "Every case and the query plans: `history_scale-run.md`.",
        ]

    lines += [
        "",
        f"## Where our layer's CPU goes (py-spy, {cfg.get('profile_chats', 40)} chats taking "
        "turns as in the load phase)",
        "",
    ]
    op, bp = ours.get("profile", {}), base.get("profile", {})
    if op.get("samples"):
        lines.append(
            f"Samples holding the GIL: ours {op['samples']}, baseline {bp.get('samples', '-')}. "
            f"Share of ours' samples in our layer (django_chatkit, Django, psycopg, asgiref): "
            f"**{op['our_layer']:.1f}%** (baseline: {bp.get('our_layer', 0):.1f}% in its app code)."
        )
        lines += ["", "| component | ours % | baseline % |", "|---|--:|--:|"]
        names = list(dict.fromkeys([*op["components"], *bp.get("components", {})]))
        for name in names:
            lines.append(
                f"| {name} | {f(op['components'].get(name))} | {f(bp.get('components', {}).get(name))} |"
            )
        buckets = op.get("our_layer_buckets", {})
        if buckets:
            lines += ["", "Our layer's share, by what it does:", ""]
            lines += ["| our layer | % of ours' samples |", "|---|--:|"]
            lines += [f"| {name} | {share:.1f} |" for name, share in buckets.items()]
        lines += ["", "Our layer's functions, self time (innermost frame of our layer):", ""]
        for label, share in op.get("functions_self", [])[:10]:
            lines.append(f"- {share:.1f}% `{label}`")
        lines += ["", "Our layer's functions, inclusive share of ours' samples:", ""]
        for label, share in op["functions_inclusive"][:12]:
            lines.append(f"- {share:.1f}% `{label}`")
    elif op.get("error"):
        lines.append(f"No profile: {op['error']}")

    lines += [
        "",
        "## Targets",
        "",
        f"- CPU per turn within {TARGETS['cpu_ratio']}x of the baseline: "
        + verdict(
            None
            if cpu_ratio is None or first_cpu_ratio is None
            else max(cpu_ratio, first_cpu_ratio) <= TARGETS["cpu_ratio"]
        )
        + (
            f" (later turns {cpu_ratio:.2f}x, first turns {first_cpu_ratio:.2f}x)"
            if cpu_ratio and first_cpu_ratio
            else ""
        ),
        f"- First-token overhead under {TARGETS['first_token_overhead_ms']:.0f} ms median at 50 "
        "concurrent chats (ours minus baseline): " + verdict(first_token_met),
        "- Query count per turn constant: "
        + (
            f"{f(os_.get('queries_per_turn'))} per later turn over {os_.get('turns')} turns "
            "whose history grew from 2 to 40+ items (tests/test_agent_queries.py pins 14 per "
            "later turn and 18 per first turn, with titles, inside a test transaction, "
            "savepoints included)"
            if os_.get("queries_per_turn") is not None
            else "-"
        ),
        f"- List latency at 1M within {TARGETS['history_ratio']}x of 1k: " + verdict(history_met),
    ]
    return "\n".join(lines) + "\n"


# -- plot ---------------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    colors = {"ours": "tab:blue", "baseline": "tab:gray"}
    cfg = results["config"]

    ax = axes[0][0]
    for name in ("ours", "baseline"):
        steps = results.get(name, {}).get("load", {}).get("steps", [])
        if steps:
            xs = [s["concurrency"] for s in steps]
            ax.plot(
                xs,
                [s["gap_ms_p99"] for s in steps],
                "o-",
                color=colors[name],
                label=f"{name} p99 gap",
            )
            ax.plot(
                xs,
                [s["lag_ms_p99"] for s in steps],
                "s--",
                color=colors[name],
                alpha=0.6,
                label=f"{name} p99 lag behind the model",
            )
    ax.axhline(cfg["gap_limit"] * 1000, color="tab:red", lw=1, ls=":", label="gap limit 100 ms")
    ax.axhline(cfg["lag_limit"] * 1000, color="tab:orange", lw=1, ls=":", label="lag limit 250 ms")
    ax.axhline(cfg["token_delay"] * 1000, color="black", lw=0.8, ls=":", label="model's own gap")
    failed = [
        (s["concurrency"], s["gap_ms_p99"])
        for name in ("ours", "baseline")
        for s in results.get(name, {}).get("load", {}).get("steps", [])
        if s["errors"] and s["gap_ms_p99"] is not None
    ]
    if failed:
        ax.scatter(
            *zip(*failed, strict=True),
            marker="x",
            s=80,
            color="tab:red",
            zorder=5,
            label="turns failed at this level",
        )
    ax.set_yscale("log")
    ax.set_xlabel("concurrent streams (one worker)")
    ax.set_ylabel("ms")
    ax.set_title("Token gap and lag at the client against concurrency")
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[0][1]
    for name in ("ours", "baseline"):
        steps = results.get(name, {}).get("load", {}).get("steps", [])
        seq = results.get(name, {}).get("sequential")
        points = ([(1, seq)] if seq else []) + [(s["concurrency"], s) for s in steps]
        if points:
            xs = [p[0] for p in points]
            ax.plot(
                xs,
                [p[1]["first_token_ms_p50"] for p in points],
                "o-",
                color=colors[name],
                label=f"{name} p50",
            )
            ax.plot(
                xs,
                [p[1]["first_token_ms_p99"] for p in points],
                "s--",
                color=colors[name],
                alpha=0.6,
                label=f"{name} p99",
            )
    ax.set_yscale("log")
    ax.set_xlabel("concurrent streams (1 = sequential turns)")
    ax.set_ylabel("model's first token -> client's first delta, ms")
    ax.set_title("First-token overhead against concurrency")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    labels, ours_vals, base_vals = [], [], []
    for label, key in (("later turn", "sequential"), ("first turn", "first_turns")):
        o = results.get("ours", {}).get(key, {}).get("cpu_ms_per_turn")
        b = results.get("baseline", {}).get(key, {}).get("cpu_ms_per_turn")
        if o and b:
            labels.append(label)
            ours_vals.append(o)
            base_vals.append(b)
    o50 = step_at(results.get("ours", {}), 50)
    b50 = step_at(results.get("baseline", {}), 50)
    if o50 and b50:
        labels.append("turn at 50 chats")
        ours_vals.append(o50["cpu_ms_per_turn"])
        base_vals.append(b50["cpu_ms_per_turn"])
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], ours_vals, 0.4, color=colors["ours"], label="ours")
    ax.bar([x + 0.2 for x in xs], base_vals, 0.4, color=colors["baseline"], label="baseline")
    for x, (o, b) in enumerate(zip(ours_vals, base_vals, strict=True)):
        ax.text(x - 0.2, o, f"{o:.0f}\n{o / b:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.text(x + 0.2, b, f"{b:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("server CPU per turn, ms")
    ax.set_title(f"CPU per turn ({cfg['tokens']} tokens)")
    ax.legend(fontsize=8)
    ax.margins(y=0.2)

    ax = axes[1][1]
    history = results.get("history")
    if history:
        for op, marker in (("items.list", "o"), ("threads.list", "s")):
            for case, style in (("first_desc", "-"), ("middle_desc", "--"), ("end_desc", ":")):
                values = history_row(history, op, case, "protocol")
                if None not in values:
                    ax.plot(HISTORY_SIZES, values, marker + style, label=f"{op} {case}")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("items in the thread / threads of the user")
        ax.set_ylabel("page latency p50, ms (protocol path)")
        ax.set_title("History scale on PostgreSQL (flat = good)")
        ax.legend(fontsize=7)
    else:
        ax.axis("off")
    fig.suptitle("django_chatkit (ours) against the bare ChatKit SDK (baseline)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- command line ---------------------------------------------------------------------------------


def run_overhead(
    cfg: overhead.Config, cookies: list[str], machine_info: dict[str, Any]
) -> dict[str, Any]:
    """``benchmarks.overhead`` with ``cfg``; no process outlives it, even on Ctrl-C."""
    try:
        return asyncio.run(
            overhead.main_async(cfg, cookies, machine_info, log=lambda m: log(m.strip()))
        )
    finally:
        if processes.STARTED:
            log(f"stopping {len(processes.STARTED)} leftover process(es)")
        processes.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer turns, steps")
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument(
        "--skip-nopool",
        action="store_true",
        help="skip the load levels without a database pool (connection counts)",
    )
    parser.add_argument(
        "--name",
        default="",
        help="write overhead-NAME.md/.png/.json instead (to keep the main results)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite overhead.md and overhead.png from overhead.json, measure nothing",
    )
    parser.add_argument("--history-repeat", type=int, default=60)
    parser.add_argument(
        "--wait-quiet", type=float, default=120.0, help="seconds to wait for an idle machine"
    )
    parser.add_argument(
        "overhead_args", nargs=argparse.REMAINDER, help="after --: options of benchmarks.overhead"
    )
    args = parser.parse_args(argv)
    extra = [a for a in args.overhead_args if a != "--"]
    stem = "overhead" + (f"-{args.name}" if args.name else "")
    if args.report_only:
        saved = json.loads((RESULTS / f"{stem}.json").read_text())
        (RESULTS / f"{stem}.md").write_text(report(saved))
        plot(saved, RESULTS / f"{stem}.png")
        print(report(saved))
        return 0
    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "argv": sys.argv[1:] if argv is None else argv,
        "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "git": git_state(),
    }
    cfg = overhead.parse_args((["--quick"] if args.quick else []) + extra)
    log("setting up the benchmark database (migrations, users, sessions)")
    cookies, machine_info = overhead.prepare(cfg)
    results["machine"] = machine_info
    results["config"] = asdict(cfg)
    if not args.skip_overhead:
        results["quiet"] = wait_until_quiet(args.wait_quiet)
        log("overhead: ours against the baseline")
        measured = run_overhead(cfg, cookies, machine_info)
        results.update({k: v for k, v in measured.items() if k not in ("config", "machine")})
        if "load" in cfg.phases and not args.skip_nopool:
            # The same load levels without a database pool: what a site that did not set one up
            # gets (docs/deployment.md), for the connection counts.
            log("overhead: ours without a database pool, load levels only")
            nopool = replace(cfg, sides=("ours+nopool",), phases=("load",), search=False)
            results["ours+nopool"] = run_overhead(nopool, cookies, machine_info)["ours+nopool"]
    if not args.skip_history:
        log("history scale: items.list and threads.list at 1k, 100k and 1M")
        results["history"] = run_history(
            repeat=20 if args.quick else args.history_repeat, warmup=5 if args.quick else 10
        )
    results["total_seconds"] = time.monotonic() - started
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str))
    text = report(results)
    (RESULTS / f"{stem}.md").write_text(text)
    plot(results, RESULTS / f"{stem}.png")
    print()
    print(text)
    log(
        f"done in {results['total_seconds'] / 60:.1f} min: benchmarks/results/{stem}.md, "
        f"{stem}.png, {stem}.json"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    sys.exit(main())
