"""Live notices across two ASGI server processes: notice latency, memory per open websocket.

    python -m benchmarks.live_scale               # 100 turns per path, sockets 0/250/500/1000
    python -m benchmarks.live_scale --quick       # 10 turns per path, sockets 0/20/50 (smoke)
    python -m benchmarks.live_scale --messages 200 --levels 0,500,1000,2000

Two servers serve ``benchmarks.live_asgi`` (the test project with the websocket routes, as
docs/live.md's ``asgi.py``) on loopback ports: **A** under daphne, **B** under uvicorn (``--ws
auto``: websockets' sans-I/O protocol). They share a PostgreSQL database of their own,
``chatkit_bench_live`` on the server of ``BENCH_DATABASE_URL`` (created and migrated here; only a
few users and threads are added per run), Django's psycopg pool, and Redis (``--redis-url``,
default database 9, so that no test's counters or groups mix with the benchmark's): the
channels_redis layer, with a prefix per run, and the cache that counts each user's sockets.
Both call the project's fake OpenAI server (``benchmarks.fake_process``, a process of its own),
which answers every turn with ``--tokens`` short tokens at once. Titles are off.

**Notice latency.** Four paths, writer -> socket: B -> A (the cross-process figure), A -> A (the
baseline: socket and turn on one process, the same receiving server), and A -> B, B -> B (the
same pair with uvicorn receiving). Each path has a thread of its own and one socket on the
receiving server; ``--messages`` rounds (after ``--warmup`` rounds not counted) post one turn on
each path, one at a time, in a rotated order, so that drift of a busy machine hits every path
alike; each turn waits for its notices before the next starts. A turn stores two items: the
user's message (before the model is called) and the answer (at the end of the stream); each
publishes ``item.added``. Latency is measured per item, from the moment its write committed on
the writing server (a receiver of ``item_saved`` there, ``benchmarks/live_asgi.py``) to the
moment the notice was read from the socket by the harness, one ``time.monotonic()`` clock for
all processes. The same notices measured from when the harness read the item's
``thread.item.done`` event on the writer's stream (sent after the commit) are in the JSON.

**Memory per open websocket.** Idle subscribed sockets are opened on each server in steps
(``--levels``), all on one thread per server, as one user (``LIVE_MAX_CONNECTIONS_PER_USER`` is
set to the top level plus 10 for the benchmark: the per-user counting, a cache increment and a
renewal task per socket, runs as in production). After each step, once the server's CPU is quiet,
its RSS (psutil) is read; the slope of RSS against sockets by least squares is the memory per
socket. At the top level, a turn through the other server, then a vote on its answer (a single
notice), check that their notices reach every socket, and how long the last one took from the
commit (the harness reads every socket on one event loop: its own time to read N frames is part
of it, and its CPU time is shown).

The report goes to ``benchmarks/results/live_scale.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "live_scale.md"
DATABASE_NAME = "chatkit_bench_live"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatkit_bench"
APP = "benchmarks.live_asgi:application"
# Server names: A (daphne) and B (uvicorn).
KINDS = {"A": "daphne", "B": "uvicorn"}
# writer -> receiver; the first is the figure, the second its same-process baseline.
PATHS = (("B", "A"), ("A", "A"), ("A", "B"), ("B", "B"))
ITEM_KINDS = {"user_message": "user message", "assistant_message": "answer"}
NOTICE_TIMEOUT = 10.0
FANOUT_TIMEOUT = 60.0


@dataclass
class Config:
    messages: int = 100
    warmup: int = 10
    levels: list[int] = field(default_factory=lambda: [0, 250, 500, 1000])
    tokens: int = 3
    open_concurrency: int = 20
    redis_url: str = DEFAULT_REDIS_URL
    quiet_wait: float = 30.0
    deflate: bool = True
    output: Path = RESULTS
    command: str = "python -m benchmarks.live_scale"

    @property
    def top(self) -> int:
        return max(self.levels)


# -- setup ----------------------------------------------------------------------------------------


def database_url(name: str = DATABASE_NAME) -> str:
    """The benchmark server's URL (BENCH_DATABASE_URL, DATABASE_URL) with ``name`` as database."""
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    parts = urlsplit(base or DEFAULT_DATABASE_URL)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"benchmarks.live_scale needs PostgreSQL, not {parts.scheme}")
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class Sessions:
    """Session cookies of this run's users: ``latency`` owns the paths' threads, ``A`` and ``B``
    the threads the memory steps open sockets on."""

    latency: str
    A: str
    B: str


def prepare(run: str) -> Sessions:
    """Django on the benchmark database (created, migrated); three users of this run, signed in.

    Users of their own each run: the socket counters of an earlier run (kept up to two minutes
    in the cache when a run is killed) never count against this one."""
    os.environ["BENCH_DATABASE_URL"] = database_url()
    from django.contrib.auth import get_user_model

    from benchmarks._setup import setup
    from django_chatkit.testing import live_client

    setup()

    def signed_in(role: str) -> str:
        user = get_user_model().objects.create_user(f"bench-live-{run}-{role}")
        with live_client("http://127.0.0.1", user) as http:
            return str(http.cookies["sessionid"])

    return Sessions(latency=signed_in("latency"), A=signed_in("a"), B=signed_in("b"))


def server_env(cfg: Config, fake_env: dict[str, str], run: str) -> dict[str, str]:
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # socket_timeout above channels_redis' 5 s blocking reads (docs/live.md).
                "hosts": [{"address": cfg.redis_url, "socket_timeout": 15}],
                "prefix": f"chatkit-bench-live-{run}",
            },
        }
    }
    chatkit = {
        "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
        "AGENT": {"model": "answer-model", "instructions": "Be brief."},
        "GENERATE_TITLES": False,
        "OPENAI_MAX_RETRIES": 0,
        "LIVE_MAX_CONNECTIONS_PER_USER": cfg.top + 10,
    }
    return {
        **fake_env,
        "CHATKIT_TEST_SETTINGS": json.dumps(chatkit),
        "CHATKIT_TEST_CHANNEL_LAYERS": json.dumps(layers),
        "CHATKIT_TEST_DB_POOL": "1",  # Django's psycopg pool, as docs/deployment.md advises
        "REDIS_URL": cfg.redis_url,  # tests.settings: the cache (socket counters, quotas)
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }


@dataclass
class Sites:
    servers: dict[str, Any]  # "A" / "B" -> tests.live_server.LiveServer


@contextmanager
def sites(cfg: Config, run: str) -> Iterator[Sites]:
    """The fake OpenAI process, then A (daphne) and B (uvicorn) on the benchmark database."""
    from benchmarks.processes import fake_openai
    from tests.live_server import live_asgi_server

    with ExitStack() as stack:
        fake = stack.enter_context(fake_openai())
        fake.reply(tokens=cfg.tokens)
        env = server_env(cfg, fake.env, run)
        servers = {
            name: stack.enter_context(
                live_asgi_server(
                    kind, db_url=database_url(), extra_env=env, app=APP, startup_timeout=60
                )
            )
            for name, kind in KINDS.items()
        }
        yield Sites(servers)


# -- CPU and memory of processes ------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def tree_cpu(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def named_cpu(prefix: str) -> float:
    """CPU seconds of every process whose name starts with ``prefix`` (postgres, redis-server)."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        name, times = proc.info["name"], proc.info["cpu_times"]
        if name and name.startswith(prefix) and times:
            total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass
class CpuSnapshot:
    at: float
    machine: float  # every CPU, every process
    ours: float  # the harness, the fake, A and B
    postgres: float  # every database's backends: other helpers' tests' too
    redis: float


def cpu_snapshot() -> CpuSnapshot:
    times = psutil.cpu_times()
    return CpuSnapshot(
        at=time.monotonic(),
        machine=times.user + times.nice + times.system + times.irq + times.softirq,
        ours=tree_cpu(os.getpid()),  # the harness and its children: the fake, A and B
        postgres=named_cpu("postgres"),
        redis=named_cpu("redis-server"),
    )


def cpu_use(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds each part used between two snapshots; ``others``: every other process."""
    used = {
        key: round(getattr(after, key) - getattr(before, key), 2)
        for key in ("machine", "ours", "postgres", "redis")
    }
    used["others"] = round(used["machine"] - used["ours"] - used["postgres"] - used["redis"], 2)
    used["wall"] = round(after.at - before.at, 2)
    return used


def wait_until_settled(pid: int, timeout: float = 20.0, window: float = 0.5) -> bool:
    """Return once the process tree used under 2% of a CPU over ``window`` seconds (True), or
    when ``timeout`` has passed (False): RSS is read once the server is done with the step."""
    deadline = time.monotonic() + timeout
    last = tree_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(window)  # the measuring window, not a synchronisation
        now = tree_cpu(pid)
        if now - last < 0.02 * window:
            return True
        last = now
    return False


# -- statistics -----------------------------------------------------------------------------------


def summary_ms(values: list[float]) -> dict[str, Any]:
    from benchmarks.overhead import percentile

    ms = [v * 1000 for v in values]

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "values": [round(v, 3) for v in ms],
        "n": len(ms),
        "min": rounded(min(ms)) if ms else None,
        "median": rounded(statistics.median(ms)) if ms else None,
        "p95": rounded(percentile(ms, 95)),
        "p99": rounded(percentile(ms, 99)),
        "max": rounded(max(ms)) if ms else None,
    }


def least_squares(points: list[tuple[int, int]]) -> dict[str, float]:
    """Slope (bytes per socket), intercept and r² of RSS against open sockets."""
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    fit = statistics.linear_regression(xs, ys)
    r = statistics.correlation(xs, ys) if len(set(ys)) > 1 else 0.0
    return {"slope": fit.slope, "intercept": fit.intercept, "r2": r * r}


# -- latency --------------------------------------------------------------------------------------


@dataclass
class NoticePath:
    writer: str
    receiver: str
    thread_id: str = ""
    subscriber: Any = None  # live_clients.Subscriber
    turns: list[Any] = field(default_factory=list)  # live_clients.Turn, counted rounds only
    missing: int = 0  # notices that never arrived within NOTICE_TIMEOUT

    @property
    def name(self) -> str:
        return f"{self.writer} -> {self.receiver}"


async def wait_for_notices(subscriber: Any, keys: list[str], limit: float) -> int:
    """Wait until every notice (by notice_key) reached ``subscriber``; the number that did not."""
    from tests.waiting import await_condition

    try:
        await await_condition(lambda: all(k in subscriber.arrivals for k in keys), limit)
    except AssertionError:
        return sum(1 for k in keys if k not in subscriber.arrivals)
    return 0


async def one_turn(path: NoticePath, http: Any, text: str, counted: bool) -> None:
    from benchmarks.live_clients import ITEM_ADDED, notice_key, post_turn

    turn = await post_turn(http, path.thread_id, text)
    if turn.errors:
        raise RuntimeError(f"{path.name}: {turn.errors}")
    keys = [notice_key(ITEM_ADDED, item_id) for kind, item_id, _ in turn.done if kind in ITEM_KINDS]
    missing = await wait_for_notices(path.subscriber, keys, NOTICE_TIMEOUT)
    if counted:
        path.turns.append(turn)
        path.missing += missing


def latency_samples(
    path: NoticePath, commits: dict[str, float]
) -> dict[str, dict[str, list[float]]]:
    """Per item kind: seconds from the commit, and from the client's done event, to the notice."""
    out: dict[str, dict[str, list[float]]] = {
        kind: {"from_commit": [], "from_done_event": []} for kind in ITEM_KINDS
    }
    from benchmarks.live_clients import ITEM_ADDED, notice_key

    for turn in path.turns:
        for kind, item_id, done_at in turn.done:
            key = notice_key(ITEM_ADDED, item_id)
            arrived = path.subscriber.arrivals.get(key)
            if kind not in ITEM_KINDS or arrived is None:
                continue
            if key in commits:
                out[kind]["from_commit"].append(arrived - commits[key])
            out[kind]["from_done_event"].append(arrived - done_at)
    return out


async def measure_latency(
    cfg: Config, servers: dict[str, Any], sessions: Sessions, log: Any
) -> dict[str, Any]:
    from benchmarks.live_clients import close_all, commit_times, http_client, post_turn, subscribe

    clients = {name: http_client(s.url, sessions.latency) for name, s in servers.items()}
    paths = [NoticePath(w, r) for w, r in PATHS]
    try:
        for path in paths:
            created = await post_turn(clients[path.writer], None, f"{path.name}: hello")
            if created.errors:
                raise RuntimeError(f"{path.name}: {created.errors}")
            path.thread_id = created.thread_id
            path.subscriber = await subscribe(
                servers[path.receiver].url, sessions.latency, path.thread_id, deflate=cfg.deflate
            )
        rounds = cfg.warmup + cfg.messages
        for number in range(rounds):
            shift = number % len(paths)
            for path in paths[shift:] + paths[:shift]:
                text = f"{path.name} round {number}"
                await one_turn(path, clients[path.writer], text, counted=number >= cfg.warmup)
            if (number + 1) % 25 == 0:
                log(f"  latency: {number + 1}/{rounds} rounds")
        commits = {name: await commit_times(c) for name, c in clients.items()}
    finally:
        await close_all(p.subscriber for p in paths if p.subscriber is not None)
        for client in clients.values():
            await client.aclose()
    results: dict[str, Any] = {}
    for path in paths:
        samples = latency_samples(path, commits[path.writer])
        results[path.name] = {
            "writer": KINDS[path.writer],
            "receiver": KINDS[path.receiver],
            "turns": len(path.turns),
            "missing_notices": path.missing,
            "socket_lost": path.subscriber.lost,
            "extensions": path.subscriber.extensions,
            **{
                kind: {how: summary_ms(values) for how, values in by_how.items()}
                for kind, by_how in samples.items()
            },
        }
    return results


# -- memory per socket ----------------------------------------------------------------------------


def own_cpu() -> float:
    """CPU seconds of the harness process itself (not its children, the servers)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


async def reach_all(
    writer_http: Any, subscribers: list[Any], key: str, counts_before: Counter[str]
) -> dict[str, Any]:
    """Wait for notice ``key`` at every socket; times from its commit on the writer, and the
    notices the first socket read meanwhile (since ``counts_before``)."""
    from benchmarks.live_clients import commit_times
    from tests.waiting import await_condition

    def everyone() -> bool:
        return all(key in s.arrivals for s in subscribers)

    with contextlib.suppress(AssertionError):  # reported: how many sockets got it
        await await_condition(everyone, FANOUT_TIMEOUT)
    committed = (await commit_times(writer_http))[key]
    arrivals = [s.arrivals[key] - committed for s in subscribers if key in s.arrivals]
    return {
        "sockets": len(subscribers),
        "received": len(arrivals),
        "to_first_ms": round(min(arrivals) * 1000, 1) if arrivals else None,
        "to_median_ms": round(statistics.median(arrivals) * 1000, 1) if arrivals else None,
        "to_last_ms": round(max(arrivals) * 1000, 1) if arrivals else None,
        "notices_per_socket": dict(subscribers[0].counts - counts_before) if subscribers else {},
    }


async def fan_out(writer_http: Any, subscribers: list[Any], thread_id: str) -> dict[str, Any]:
    """Through the other server, on the sockets' thread: a turn (several notices; its answer's
    is timed), then a vote on that answer (one notice). Each timed from its commit on the
    writer to every socket, with the CPU the harness spent meanwhile (reading the frames)."""
    from benchmarks.live_clients import FEEDBACK, ITEM_ADDED, notice_key, post_turn, vote

    before, cpu = Counter(subscribers[0].counts), own_cpu()
    turn = await post_turn(writer_http, thread_id, "fan-out")
    answer = turn.item("assistant_message")
    if turn.errors or answer is None:
        raise RuntimeError(f"fan-out turn through the other server failed: {turn.errors}")
    answer_id = answer[0]
    result = await reach_all(writer_http, subscribers, notice_key(ITEM_ADDED, answer_id), before)
    result["harness_cpu_ms"] = round((own_cpu() - cpu) * 1000)
    before, cpu = Counter(subscribers[0].counts), own_cpu()
    await vote(writer_http, thread_id, answer_id)
    one = await reach_all(writer_http, subscribers, notice_key(FEEDBACK, answer_id), before)
    one["harness_cpu_ms"] = round((own_cpu() - cpu) * 1000)
    return {"turn": result, "one_notice": one}


async def measure_memory(
    cfg: Config, servers: dict[str, Any], sessions: Sessions, log: Any
) -> dict[str, Any]:
    from benchmarks.live_clients import close_all, http_client, post_turn, subscribe_many

    cookies = {"A": sessions.A, "B": sessions.B}
    clients = {name: http_client(s.url, cookies[name]) for name, s in servers.items()}
    open_: dict[str, list[Any]] = {name: [] for name in servers}
    results: dict[str, Any] = {name: {"server": KINDS[name], "steps": []} for name in servers}
    try:
        threads = {}
        for name in servers:
            created = await post_turn(clients[name], None, f"sockets on {name}")
            threads[name] = created.thread_id
        for level in cfg.levels:
            for name, server in servers.items():
                more = level - len(open_[name])
                open_[name] += await subscribe_many(
                    server.url,
                    cookies[name],
                    threads[name],
                    more,
                    cfg.open_concurrency,
                    deflate=cfg.deflate,
                )
            for name, server in servers.items():
                settled = await asyncio.to_thread(wait_until_settled, server.process.pid)
                rss = tree_rss(server.process.pid)
                results[name]["steps"].append({"sockets": level, "rss": rss, "settled": settled})
                log(f"  {name} ({KINDS[name]}): {level} sockets, RSS {rss / 2**20:.1f} MiB")
        for name in servers:
            other = "B" if name == "A" else "A"
            # The sockets' owner posts through the other server (its session is valid on both).
            async with http_client(servers[other].url, cookies[name]) as writer:
                results[name]["fan_out"] = await fan_out(writer, open_[name], threads[name])
            results[name]["extensions"] = open_[name][0].extensions if open_[name] else ""
            lost = [s.lost for s in open_[name] if s.lost is not None]
            results[name]["sockets_lost"] = {"count": len(lost), "first": lost[:1]}
    finally:
        for name in servers:
            await close_all(open_[name])
        for client in clients.values():
            await client.aclose()
    for name, server in servers.items():
        settled = await asyncio.to_thread(wait_until_settled, server.process.pid)
        results[name]["rss_after_close"] = tree_rss(server.process.pid)
        results[name]["settled_after_close"] = settled
        points = [(step["sockets"], step["rss"]) for step in results[name]["steps"]]
        results[name]["fit"] = least_squares(points) if len(points) > 1 else None
    return results


# -- the run --------------------------------------------------------------------------------------


async def run_phases(cfg: Config, site: Sites, sessions: Sessions, log: Any) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    before = cpu_snapshot()
    log(f"latency: {cfg.warmup} + {cfg.messages} rounds of {len(PATHS)} turns")
    phases["latency"] = await measure_latency(cfg, site.servers, sessions, log)
    middle = cpu_snapshot()
    log(f"memory: sockets {cfg.levels} on each server")
    phases["memory"] = await measure_memory(cfg, site.servers, sessions, log)
    after = cpu_snapshot()
    phases["cpu"] = {"latency": cpu_use(before, middle), "memory": cpu_use(middle, after)}
    return phases


def versions(redis_url: str) -> dict[str, Any]:
    from importlib.metadata import version

    import redis

    from benchmarks.overhead import machine

    facts = machine()
    for package in ("daphne", "twisted", "channels", "channels_redis", "websockets", "psycopg"):
        facts[package] = version(package)
    facts["redis_py"] = version("redis")
    facts["uvicorn_ws"] = "websockets-sansio (--ws auto)"
    client = redis.Redis.from_url(redis_url)
    try:
        facts["redis_server"] = str(client.info("server")["redis_version"])
    finally:
        client.close()
    return facts


STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:2d}:{elapsed % 60:02d}] {message}", flush=True)


def run(cfg: Config) -> dict[str, Any]:
    from benchmarks._setup import git_state
    from benchmarks.run import wait_until_quiet

    run_id = uuid.uuid4().hex[:8]
    sessions = prepare(run_id)
    machine = versions(cfg.redis_url)
    quiet = wait_until_quiet(cfg.quiet_wait)
    log(f"other processes used {quiet['busy_percent_at_start']:.0f}% of the CPUs at start")
    started = time.monotonic()
    with sites(cfg, run_id) as site:
        phases = asyncio.run(run_phases(cfg, site, sessions, log))
        if problems(phases):
            # What the servers said, for the report (their logs go with them).
            phases["server_logs"] = {
                name: server.logs()[-4000:] for name, server in site.servers.items()
            }
    return {
        "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "git": git_state(),
        "config": {**asdict(cfg), "output": str(cfg.output)},
        "machine": machine,
        "load_at_start": quiet,
        "seconds": round(time.monotonic() - started, 1),
        **phases,
    }


# -- the report -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def latency_table(latency: dict[str, Any], how: str) -> list[str]:
    baseline_of = {"B -> A": "A -> A", "A -> B": "B -> B"}
    lines = [
        "| path (writer -> socket) | item | n | min | median | p95 | p99 | max | "
        "median / same-process |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, path in latency.items():
        for kind, label in ITEM_KINDS.items():
            s = path[kind][how]
            base = baseline_of.get(name)
            ratio = (
                _ratio(s["median"], latency[base][kind][how]["median"]) if base else "(baseline)"
            )
            lines.append(
                f"| {name} ({path['writer']} -> {path['receiver']}) | {label} | {s['n']} | "
                f"{_cell(s['min'])} | {_cell(s['median'])} | {_cell(s['p95'])} | "
                f"{_cell(s['p99'])} | {_cell(s['max'])} | {ratio} |"
            )
    return lines


def memory_table(memory: dict[str, Any]) -> list[str]:
    levels = [step["sockets"] for step in next(iter(memory.values()))["steps"]]
    lines = [
        "| server | "
        + " | ".join(f"RSS at {n:,}" for n in levels)
        + " | KB per socket (least squares) | r² | after closing all |",
        "|---|" + "--:|" * (len(levels) + 3),
    ]
    for name, side in memory.items():
        cells = [
            f"{step['rss'] / 2**20:.1f} MiB" + ("" if step["settled"] else " (not settled)")
            for step in side["steps"]
        ]
        fit = side["fit"]
        slope = f"**{fit['slope'] / 1024:.1f}**" if fit else "-"
        r2 = f"{fit['r2']:.3f}" if fit else "-"
        after = f"{side['rss_after_close'] / 2**20:.1f} MiB"
        lines.append(
            f"| {name} ({side['server']}) | {' | '.join(cells)} | {slope} | {r2} | {after} |"
        )
    return lines


def step_lines(memory: dict[str, Any]) -> list[str]:
    lines = []
    for name, side in memory.items():
        steps = side["steps"]
        parts = [
            f"{b['sockets'] - a['sockets']:,} more: "
            f"{(b['rss'] - a['rss']) / 1024 / (b['sockets'] - a['sockets']):.1f} KB each"
            for a, b in itertools.pairwise(steps)
            if b["sockets"] > a["sockets"]
        ]
        lines.append(f"- {name} ({side['server']}), step by step: " + "; ".join(parts) + ".")
    return lines


def fan_out_lines(memory: dict[str, Any]) -> list[str]:
    lines = [
        "| sockets on | written through | what | notices per socket | received | first | "
        "median | last | harness CPU |",
        "|---|---|---|---|--:|--:|--:|--:|--:|",
    ]
    whats = {"turn": "a turn: its answer's item.added", "one_notice": "a vote: item.feedback"}
    for name, side in memory.items():
        other = "B" if name == "A" else "A"
        for what, label in whats.items():
            f = side["fan_out"][what]
            notices = ", ".join(f"{k} {v}" for k, v in sorted(f["notices_per_socket"].items()))
            lines.append(
                f"| {name} ({side['server']}) | {other} ({KINDS[other]}) | {label} | {notices} | "
                f"{f['received']:,} of {f['sockets']:,} | {_cell(f['to_first_ms'])} ms | "
                f"{_cell(f['to_median_ms'])} ms | **{_cell(f['to_last_ms'])} ms** | "
                f"{f['harness_cpu_ms']} ms |"
            )
    return lines


def cpu_lines(results: dict[str, Any]) -> list[str]:
    cpus = results["machine"]["cpus"]
    lines = []
    for phase, used in results["cpu"].items():
        share = used["others"] / (used["wall"] * cpus) * 100 if used["wall"] else 0.0
        lines.append(
            f"- {phase}: {used['wall']:.0f} s; CPU seconds: ours (harness, fake, A, B) "
            f"{used['ours']:.1f}, PostgreSQL {used['postgres']:.1f} (all its databases), Redis "
            f"{used['redis']:.1f}, **other processes {used['others']:.1f}** ({share:.0f}% of "
            f"the {cpus} CPUs)."
        )
    return lines


def headline(results: dict[str, Any]) -> list[str]:
    cross = results["latency"]["B -> A"]["assistant_message"]["from_commit"]
    same = results["latency"]["A -> A"]["assistant_message"]["from_commit"]
    user = results["latency"]["B -> A"]["user_message"]["from_commit"]
    memory = results["memory"]
    per_socket = ", ".join(
        f"{side['server']} {side['fit']['slope'] / 1024:.1f} KB" if side["fit"] else "-"
        for side in memory.values()
    )
    return [
        f"- **Notice latency B (uvicorn) -> A (daphne)**, answer's commit on B to the notice read "
        f"from A's socket, {cross['n']} turns: median **{_cell(cross['median'])} ms**, p95 "
        f"**{_cell(cross['p95'])} ms** (max {_cell(cross['max'])} ms); within one process "
        f"(A -> A): median {_cell(same['median'])} ms, p95 {_cell(same['p95'])} ms: "
        f"cross-process / same-process median **{_ratio(cross['median'], same['median'])}**. "
        f"The user's message, stored while B goes on to call the model: median "
        f"{_cell(user['median'])} ms, p95 {_cell(user['p95'])} ms.",
        f"- **Memory per open websocket** (RSS slope): {per_socket}.",
    ]


def machine_line(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (
        f"Machine: {m['cpus']} CPUs, {m['memory_gb']:.1f} GB; Python {m['python']}, Django "
        f"{m['django']}, daphne {m['daphne']} (Twisted {m['twisted']}), uvicorn {m['uvicorn']} "
        f"(ws: {m['uvicorn_ws']}, websockets {m['websockets']}), Channels {m['channels']}, "
        f"channels_redis {m['channels_redis']} (redis-py {m['redis_py']}, Redis server "
        f"{m['redis_server']}), {m['database']}, psycopg {m['psycopg']}."
    )


def report(results: dict[str, Any]) -> str:
    cfg = results["config"]
    load = results["load_at_start"]
    latency = results["latency"]
    extensions = {
        f"{side['server']}": side.get("extensions") or "none" for side in results["memory"].values()
    }
    missing = sum(p["missing_notices"] for p in latency.values())
    offer = (
        "offers permessage-deflate, as browsers do (websockets' default offer)"
        if cfg["deflate"]
        else "offers no extension (--no-deflate)"
    )
    lines = [
        "# Live notices across processes: latency and memory per websocket",
        "",
        f"Generated {results['generated']} at {results['git']}, by `{cfg['command']}`, in "
        f"{results['seconds']:.0f} s. `benchmarks/live_scale.py` says how.",
        "",
        machine_line(results),
        "",
        f"**Load**: other processes used {load['busy_percent_at_start']:.0f}% of the CPUs at the "
        f"start (waited {load['waited_s']:.0f} s of at most {cfg['quiet_wait']:.0f} s for a "
        "quieter machine); during the phases:",
        "",
        *cpu_lines(results),
        "",
        "Absolute latencies on a shared 2-CPU machine mean little; the ratio to the "
        "same-process path, measured in the same rounds, is the robust figure.",
        "",
        "## Summary",
        "",
        *headline(results),
        *(f"- **PROBLEM**: {problem}" for problem in problems(results)),
        "",
        "## Notice latency",
        "",
        f"Milliseconds from an item's commit on the writing server to its `item.added` notice "
        f"read from a socket on the receiving server; {cfg['messages']} counted rounds (after "
        f"{cfg['warmup']} not counted), one turn per path each, answers of {cfg['tokens']} "
        f"tokens. Notices that never arrived (within {NOTICE_TIMEOUT:.0f} s): {missing}.",
        "",
        *latency_table(latency, "from_commit"),
        "",
        "The same, from the moment the harness read the item's `thread.item.done` event on the "
        "writer's SSE stream (which the server sends after the commit) to the notice:",
        "",
        *latency_table(latency, "from_done_event"),
        "",
        "## Memory per open websocket",
        "",
        "Idle subscribed sockets, all on one thread per server, opened "
        f"{cfg['open_concurrency']} at a time; RSS of the server process once its CPU was "
        f"quiet. The client {offer}; the servers accepted: {json.dumps(extensions)}.",
        "",
        *memory_table(results["memory"]),
        "",
        *step_lines(results["memory"]),
        "",
        "### Fan-out at the top level",
        "",
        "Through the other server, on the sockets' thread: a turn (which publishes several "
        "notices, each sent to every socket; its answer's is timed), then a vote on that answer "
        "(one notice). Milliseconds from the write's commit to the notice read from the first, "
        "the median and the last socket. The harness reads every socket on one event loop: "
        "reading N frames is part of the time (its CPU meanwhile in the last column).",
        "",
        *fan_out_lines(results["memory"]),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="10 rounds, sockets 0,20,50")
    parser.add_argument("--messages", type=int, help="counted rounds (default 100)")
    parser.add_argument("--warmup", type=int, help="rounds not counted (default 10)")
    parser.add_argument("--levels", help="open sockets per step (default 0,250,500,1000)")
    parser.add_argument("--tokens", type=int, default=3, help="tokens per answer")
    parser.add_argument("--open-concurrency", type=int, default=20)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for idle")
    parser.add_argument(
        "--no-deflate", action="store_true", help="sockets that do not offer permessage-deflate"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = Config(messages=10, warmup=2, levels=[0, 20, 50], quiet_wait=0.0)
    base = quick if args.quick else Config()
    levels = (
        sorted({int(x) for x in args.levels.split(",") if x.strip()})
        if args.levels
        else base.levels
    )
    shown = sys.argv[1:] if argv is None else argv
    return Config(
        messages=args.messages or base.messages,
        warmup=base.warmup if args.warmup is None else args.warmup,
        levels=levels,
        tokens=args.tokens,
        open_concurrency=args.open_concurrency,
        redis_url=args.redis_url,
        quiet_wait=base.quiet_wait if args.quick else args.quiet_wait,
        deflate=not args.no_deflate,
        output=args.output,
        command=" ".join(["python -m benchmarks.live_scale", *shown]),
    )


def problems(results: dict[str, Any]) -> list[str]:
    """Notices that did not arrive: during the latency rounds, and at the fan-out."""
    found = [
        f"{name}: {path['missing_notices']} notice(s) never arrived"
        + (f" (the socket ended: {path['socket_lost']})" if path["socket_lost"] else "")
        for name, path in results["latency"].items()
        if path["missing_notices"] or path["socket_lost"]
    ]
    for name, side in results["memory"].items():
        if side["sockets_lost"]["count"]:
            found.append(f"{name}: sockets ended by the server: {side['sockets_lost']}")
        for what, f in side["fan_out"].items():
            if f["received"] < f["sockets"]:
                found.append(
                    f"fan-out ({what}) on {name}: {f['received']} of {f['sockets']} sockets reached"
                )
    return found


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    results = run(cfg)
    from benchmarks._setup import write_report

    write_report(cfg.output, report(results))
    cfg.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    return 1 if problems(results) else 0


if __name__ == "__main__":
    sys.exit(main())
