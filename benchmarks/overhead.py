"""What our Django layer costs on top of the bare ChatKit SDK, measured in one run.

    python -m benchmarks.overhead                 # both sides, every phase (about 8 minutes)
    python -m benchmarks.overhead --quick         # fewer turns and steps (about 3 minutes)

Two apps answer the same ChatKit requests with the same agent from the same fake OpenAI server,
each under the same ASGI server (uvicorn, one worker unless said otherwise), driven by the same
client (``benchmarks.load``):

- ``ours``: ``benchmarks.asgi`` (Django, the test project's middleware, ``ChatKitView``,
  ``AgentChatKitServer``, ``DjangoStore`` on PostgreSQL), signed in with a session cookie;
- ``baseline``: ``benchmarks.baseline_app`` (the SDK's ``ChatKitServer`` with an in-memory
  store as a bare ASGI app, the same ``Runner.run_streamed`` + ``stream_agent_response`` path).

Phases, per side (one side at a time, so they never share the CPUs):

1. ``first turns``: new threads (``threads.create`` + 200 tokens), one at a time;
2. ``sequential``: 50 turns (``threads.add_user_message`` + 200 tokens) in one thread, one at a
   time: server CPU seconds per turn (psutil, the whole server process), SQL statements per turn
   (ours), first-token overhead and token gaps at concurrency 1;
3. ``load``: N chats at once, each one later turn in its own thread, starts spread over
   ``--ramp`` seconds, the model streaming ``--token-delay`` apart: first-token overhead and token
   gaps (median, p99), server RSS, PostgreSQL connections (pg_stat_activity) and errors, for
   N = 50, 200 and the steps of the capacity search (the largest N with p99 gap < 100 ms);
4. ``throughput``: ``--users`` clients in a closed loop of new threads (200 tokens, no delay) for
   ``--seconds``, with 1 and 2 uvicorn workers: turns per second.

The results (JSON) go to ``benchmarks/results/overhead.json``; ``benchmarks.run`` turns them into
the table and the plot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import load
from benchmarks.processes import APPLICATION_NAME, AsgiServer, Fake, asgi_server, fake_openai

RESULTS_DIR = Path(__file__).resolve().parent / "results"
JSON_PATH = RESULTS_DIR / "overhead.json"
ENDPOINT = "/chatkit/"
CSRF_TOKEN = "b" * 32
USER_PREFIX = "bench-load-"


@dataclass
class Config:
    tokens: int = 200
    # Enough turns that a full garbage collection (100-200 ms on these heaps, every few
    # seconds of work) is spread over them as in a long-running worker, not hit or missed.
    first_turns: int = 200
    fixed_turns: int = 300
    sequential_turns: int = 50
    sequential_token_delay: float = 0.005
    token_delay: float = 0.02
    first_token_delay: float = 0.2
    ramp: float = 1.0
    levels: tuple[int, ...] = (50, 200)
    search: bool = True
    max_streams: int = 400
    max_probes: int = 4
    gap_limit: float = 0.1
    lag_limit: float = 0.25
    users: int = 16
    seconds: float = 10.0
    worker_counts: tuple[int, ...] = (1, 2)
    history_items: int = 40
    sides: tuple[str, ...] = ("ours", "baseline")
    ours_path: str | None = None
    # Our server's database pool (OPTIONS["pool"]): Django's psycopg pool with its defaults, as
    # docs/deployment.md advises under ASGI. A side named "ours+nopool" runs without one.
    db_pool: str = "true"
    conn_max_age: int = 0
    # gc.freeze() in both servers once loaded, as docs/deployment.md advises for ours: startup
    # objects are then left out of every full collection (without it, a full collection of
    # Django's larger heap pauses every stream of a worker: first-token p50 at 50 chats 13 ms
    # against the SDK's 2, with it 2.6 against 1.9). --no-gc-freeze measures without, for both.
    gc_freeze: bool = True
    profile_seconds: float = 0.0
    profile_chats: int = 40
    turn_timeout: float = 120.0
    rounds: int = 5
    phases: tuple[str, ...] = (
        "first",
        "fixed",
        "sequential",
        "load",
        "profile",
        "throughput",
    )

    @property
    def max_chats(self) -> int:
        return max((*self.levels, self.max_streams if self.search else 1))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# -- the database side of "ours" ------------------------------------------------------------------


def prepare_users(count: int) -> list[str]:
    """Signed-in sessions (cookie values) for ``count`` users; their old threads are deleted."""
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from django_chatkit.models import Thread

    User = get_user_model()
    names = [f"{USER_PREFIX}{i:04d}" for i in range(count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [User(username=name, password="!") for name in names if name not in existing]
    )
    users = {u.username: u for u in User.objects.filter(username__startswith=USER_PREFIX)}
    Thread.objects.filter(user__username__startswith=USER_PREFIX).delete()
    # The benchmark database is the benchmark's own: old sessions are only earlier runs'.
    Session.objects.all().delete()
    backend = settings.AUTHENTICATION_BACKENDS[0]
    cookies = []
    for name in names:
        user = users[name]
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = backend
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(str(session.session_key))
    return cookies


def database_connection_params() -> dict[str, Any]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": db["NAME"],
    }
    return {k: v for k, v in params.items() if v}


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


class Sampler:
    """Samples server RSS and the server's PostgreSQL connections every ``interval`` seconds."""

    def __init__(self, server: AsgiServer, application_name: str, interval: float = 0.1) -> None:
        self.server = server
        self.application_name = application_name
        self.interval = interval
        self.rss: list[int] = []
        self.connections: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._conn: Any = None
        if is_postgres():
            import psycopg

            self._conn = psycopg.connect(autocommit=True, **database_connection_params())

    def _count_connections(self) -> int | None:
        if self._conn is None:
            return None
        row = self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [self.application_name],
        ).fetchone()
        return int(row[0])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss.append(self.server.rss_bytes())
            count = self._count_connections()
            if count is not None:
                self.connections.append(count)
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self._conn is not None:
            self._conn.close()


# -- phases ---------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    concurrency: int
    turns: int
    ok: int
    errors: list[str]
    wall_seconds: float
    cpu_seconds: float
    queries: int | None
    to_upstream: list[float] = field(repr=False)  # client sent -> fake received
    first_token: list[float] = field(repr=False)  # fake's first delta -> client's first delta
    gaps: list[float] = field(repr=False)  # between consecutive text deltas at the client
    turn_seconds: list[float] = field(repr=False)  # client sent -> last byte
    rss_before: int = 0
    rss_peak: int = 0
    db_connections_peak: int | None = None
    upstream_seconds: list[float] = field(default_factory=list, repr=False)
    # Token i at the client minus when the fake wrote it: how far behind the model it runs.
    lags: list[float] = field(default_factory=list, repr=False)
    harness_cpu: dict[str, float] = field(default_factory=dict)
    # SQL statements of each turn, in order (phases run one turn at a time only).
    queries_by_turn: list[int] | None = None

    def summary(self) -> dict[str, Any]:
        ms = 1000.0

        def stat(values: list[float], q: float | None = None) -> float | None:
            value = median(values) if q is None else percentile(values, q)
            return None if value is None else value * ms

        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "turns": self.turns,
            "ok": self.ok,
            "errors": len(self.errors),
            "error_examples": sorted(set(self.errors))[:3],
            "wall_s": self.wall_seconds,
            "cpu_s": self.cpu_seconds,
            "cpu_ms_per_turn": self.cpu_seconds / self.turns * ms if self.turns else None,
            "queries_per_turn": None if self.queries is None else self.queries / self.turns,
            "queries_by_turn": self.queries_by_turn,
            "to_upstream_ms_p50": stat(self.to_upstream),
            "to_upstream_ms_p99": stat(self.to_upstream, 99),
            "first_token_ms_p50": stat(self.first_token),
            "first_token_ms_p99": stat(self.first_token, 99),
            "gap_ms_p50": stat(self.gaps),
            "gap_ms_p99": stat(self.gaps, 99),
            "lag_ms_p50": stat(self.lags),
            "lag_ms_p99": stat(self.lags, 99),
            "turn_ms_p50": stat(self.turn_seconds),
            "turn_ms_p99": stat(self.turn_seconds, 99),
            "upstream_ms_p50": stat(self.upstream_seconds),
            "rss_before_mb": self.rss_before / 2**20,
            "rss_peak_mb": self.rss_peak / 2**20,
            "db_connections_peak": self.db_connections_peak,
            "client_cpu_s": self.harness_cpu.get("client"),
            "fake_cpu_s": self.harness_cpu.get("fake"),
            "postgres_cpu_s": self.harness_cpu.get("postgres"),
            # CPU time of every process on the machine but the four above: other work that
            # shared the CPUs during the phase (0 on a quiet machine).
            "others_cpu_s": (
                self.harness_cpu["busy"]
                - self.cpu_seconds
                - sum(self.harness_cpu.get(k, 0.0) for k in ("client", "fake", "postgres"))
            )
            if "busy" in self.harness_cpu
            else None,
        }


class Side:
    """One app under test, and the chats (connection, thread) the client keeps for it."""

    def __init__(self, name: str, cookies: list[str], cfg: Config) -> None:
        # "ours", "baseline", or "ours@DIR": ours with the copy of django_chatkit in DIR (to
        # compare a change with the code as it is, in one run).
        # A "+nopool" suffix runs that side without a database pool (one connection per request
        # in flight, as Django does without one).
        spec, nopool, _ = name.partition("+nopool")
        self.pool = None if nopool else cfg.db_pool
        app, _, path = spec.partition("@")
        if app not in ("ours", "baseline") or (path and app != "ours"):
            raise ValueError(f"unknown side {name!r}: ours, baseline, ours@DIR, ours+nopool")
        self.app = app
        if path:
            self.path: Path | None = Path(path)
        else:
            self.path = Path(cfg.ours_path) if cfg.ours_path and app == "ours" else None
        self.name = (f"ours@{self.path.name}" if path and self.path else app) + (
            "+nopool" if nopool else ""
        )
        self.cfg = cfg
        # Each side's connections are counted apart in pg_stat_activity.
        self.application_name = f"{APPLICATION_NAME}-{self.name}"[:63]
        self.cookies = cookies
        self.server: AsgiServer | None = None
        self.connections: list[load.Connection] = []
        self.threads: list[str | None] = []

    def env(self, fake: Fake, cfg: Config) -> dict[str, str]:
        env = dict(fake.env)
        if cfg.gc_freeze:
            env["BENCH_GC_FREEZE"] = "1"
        if self.app == "ours":
            env["DJANGO_SETTINGS_MODULE"] = "benchmarks.server_settings"
            env["BENCH_CHATKIT"] = json.dumps(
                {
                    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
                    "AGENT": {"model": "answer-model", "instructions": "Be brief."},
                    "GENERATE_TITLES": False,
                    "OPENAI_MAX_RETRIES": 0,
                    "HISTORY_ITEMS": cfg.history_items,
                }
            )
            env["BENCH_CONN_MAX_AGE"] = str(cfg.conn_max_age)
            if self.pool:
                env["BENCH_DB_POOL"] = self.pool
            env["BENCH_DB_APPLICATION_NAME"] = self.application_name
        else:
            env["BENCH_AGENT_MODEL"] = "answer-model"
            env["BENCH_AGENT_INSTRUCTIONS"] = "Be brief."
            env["BENCH_HISTORY_ITEMS"] = str(cfg.history_items)
        return env

    def attach(self, server: AsgiServer, chats: int, *, keep_alive: bool = True) -> None:
        self.server = server
        self.connections = []
        for i in range(chats):
            headers = {}
            if self.app == "ours":
                headers = {
                    "Cookie": f"sessionid={self.cookies[i]}; csrftoken={CSRF_TOKEN}",
                    "X-CSRFToken": CSRF_TOKEN,
                }
            self.connections.append(
                load.Connection(*server.address, headers, keep_alive=keep_alive)
            )
        self.threads = [None] * chats

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections))

    async def queries(self, since: int | None = None) -> dict[str, Any] | None:
        """The server's query counter (``benchmarks.asgi``): ``queries`` executed so far,
        ``requests`` finished so far, and with ``since``, the statements of each request
        finished after the ``since``-th (``per_request``)."""
        if self.app != "ours" or self.server is None:
            return None
        connection = load.Connection(*self.server.address, {})
        turn = load.Turn(marker="stats")
        path = "/__bench__/queries" + ("" if since is None else f"?since={since}")
        await connection.post(path, b"{}", turn)
        await connection.close()
        stats: dict[str, Any] = json.loads(turn.body)
        return stats


async def run_phase(
    side: Side,
    fake: Fake,
    name: str,
    plan: list[tuple[int, bool]],
    *,
    concurrency: int,
    ramp: float = 0.0,
    sample: bool = False,
    tokens: int | None = None,
) -> PhaseResult:
    """Run ``plan``, a list of (chat index, new thread?) turns, ``concurrency`` at a time.

    With ``concurrency`` equal to the plan's length every turn starts at once (spread over
    ``ramp`` seconds); else the plan is worked through by that many sequential runners.
    """
    assert side.server is not None
    server = side.server
    cfg = side.cfg
    since = fake.count()
    turns: list[load.Turn] = []
    queue = list(enumerate(plan))

    async def one(number: int, chat: int, new: bool) -> load.Turn:
        marker = f"{side.name} {name} {number} chat {chat}"
        thread_id = None if new else side.threads[chat]
        turn = await load.send_turn(
            side.connections[chat], ENDPOINT, marker, thread_id, cfg.turn_timeout
        )
        if turn.ok and turn.thread_id:
            side.threads[chat] = turn.thread_id
        return turn

    async def runner() -> None:
        while queue:
            number, (chat, new) = queue.pop(0)
            turns.append(await one(number, chat, new))

    async def delayed(number: int, chat: int, new: bool, delay: float) -> None:
        await asyncio.sleep(delay)
        turns.append(await one(number, chat, new))

    queries_before = await side.queries()
    rss_before = server.rss_bytes()
    harness_before = harness_cpu(fake)
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    sampler = Sampler(server, side.application_name) if sample else None
    if sampler:
        sampler.__enter__()
    try:
        if concurrency >= len(plan):
            spread = ramp / max(1, len(plan) - 1) if len(plan) > 1 else 0.0
            await asyncio.gather(*(delayed(n, chat, new, n * spread) for n, (chat, new) in queue))
        else:
            await asyncio.gather(*(runner() for _ in range(concurrency)))
    finally:
        if sampler:
            sampler.__exit__(None, None, None)
    wall = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    harness = {k: v - harness_before[k] for k, v in harness_cpu(fake).items()}
    queries_after = await side.queries(
        None if queries_before is None else queries_before["requests"]
    )
    queries = per_turn = None
    if queries_before is not None and queries_after is not None:
        queries = int(queries_after["queries"]) - int(queries_before["queries"])
        # One request at a time: each request's count is its own (with several in flight, the
        # counter is shared and the per-request differences mix them).
        if concurrency == 1:
            per_turn = [int(n) for n in queries_after.get("per_request", [])]
    # The fake writes a request's record as it answers; wait briefly for the last ones.
    records: dict[str, dict[str, Any]] = {}
    for _ in range(50):
        records = {r["marker"]: r for r in fake.records(since)}
        if all(r["finished_at"] is not None for r in records.values()):
            break
        await asyncio.sleep(0.05)
    result = summarise(
        name,
        concurrency,
        turns,
        records,
        cfg.tokens if tokens is None else tokens,
        wall,
        cpu,
        queries,
        rss_before,
        sampler,
    )
    result.harness_cpu = harness
    result.queries_by_turn = per_turn
    return result


def harness_cpu(fake: Fake) -> dict[str, float]:
    """CPU seconds used so far by the load client (this process), the fake, PostgreSQL's
    processes and the whole machine (``busy``: every CPU, every process)."""
    import psutil

    times = psutil.cpu_times()
    out = {"busy": times.user + times.nice + times.system + times.irq + times.softirq}
    postgres = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if (
            proc.info["name"]
            and proc.info["name"].startswith("postgres")
            and proc.info["cpu_times"]
        ):
            t = proc.info["cpu_times"]
            # Backends that exited (a connection closed) are in the postmaster's children times.
            postgres += t.user + t.system + t.children_user + t.children_system
    out["postgres"] = postgres
    for name, pid in (("client", os.getpid()), ("fake", fake.process.pid)):
        try:
            times = psutil.Process(pid).cpu_times()
            out[name] = times.user + times.system
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out


def summarise(
    name: str,
    concurrency: int,
    turns: list[load.Turn],
    records: dict[str, dict[str, Any]],
    tokens: int,
    wall: float,
    cpu: float,
    queries: int | None,
    rss_before: int,
    sampler: Sampler | None,
) -> PhaseResult:
    expected = "".join(f"w{i} " for i in range(tokens))
    errors: list[str] = []
    to_upstream: list[float] = []
    first_token: list[float] = []
    gaps: list[float] = []
    lags: list[float] = []
    turn_seconds: list[float] = []
    upstream_seconds: list[float] = []
    ok = 0
    for turn in turns:
        record = records.get(turn.marker)
        if not turn.ok:
            errors.append(turn.error or f"incomplete (HTTP {turn.status})")
            continue
        if len(turn.deltas) != tokens or turn.text != expected:
            errors.append(f"wrong answer: {len(turn.deltas)} deltas")
            continue
        if record is None or record["first_delta_at"] is None:
            errors.append("no upstream record")
            continue
        ok += 1
        to_upstream.append(record["started_at"] - turn.sent_at)
        first_token.append(turn.deltas[0] - record["first_delta_at"])
        gaps.extend(turn.gaps())
        # When the fake wrote token i: its first delta plus i of its (measured) spacings.
        if record["finished_at"] is not None and len(turn.deltas) > 1:
            spacing = (record["finished_at"] - record["first_delta_at"]) / (len(turn.deltas) - 1)
        else:
            spacing = 0.0
        lags.extend(
            arrived - (record["first_delta_at"] + i * spacing)
            for i, arrived in enumerate(turn.deltas)
        )
        assert turn.done_at is not None
        turn_seconds.append(turn.done_at - turn.sent_at)
        if record["finished_at"] is not None:
            upstream_seconds.append(record["finished_at"] - record["started_at"])
    # Queries of the phase include the two requests that read the counter (none: they bypass
    # Django), so the count is the turns' alone.
    result = PhaseResult(
        name=name,
        concurrency=concurrency,
        turns=len(turns),
        ok=ok,
        errors=errors,
        wall_seconds=wall,
        cpu_seconds=cpu,
        queries=queries,
        to_upstream=to_upstream,
        first_token=first_token,
        gaps=gaps,
        lags=lags,
        turn_seconds=turn_seconds,
        upstream_seconds=upstream_seconds,
        rss_before=rss_before,
    )
    if sampler is not None:
        result.rss_peak = max(sampler.rss, default=0)
        result.db_connections_peak = max(sampler.connections, default=None)
    return result


async def throughput(side: Side, fake: Fake, users: int, seconds: float) -> dict[str, Any]:
    """Closed loop: ``users`` clients each starting a new thread as soon as the last ends, each
    turn on a new connection (so that every worker gets its share)."""
    assert side.server is not None
    server = side.server
    await side.close()
    side.attach(server, max(users, len(side.connections)), keep_alive=False)
    fake.reply(side.cfg.tokens)
    done: list[load.Turn] = []
    deadline = time.monotonic() + seconds
    harness_before = harness_cpu(fake)
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    counter = [0]

    async def user(index: int) -> None:
        while time.monotonic() < deadline:
            counter[0] += 1
            marker = f"{side.name} throughput {counter[0]} user {index}"
            turn = await load.send_turn(
                side.connections[index], ENDPOINT, marker, None, side.cfg.turn_timeout
            )
            done.append(turn)

    await asyncio.gather(*(user(i) for i in range(users)))
    wall = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    harness = {k: v - harness_before[k] for k, v in harness_cpu(fake).items()}
    ok = [t for t in done if t.ok and len(t.deltas) == side.cfg.tokens]
    return {
        "workers": server.workers,
        "users": users,
        "turns": len(done),
        "ok": len(ok),
        "errors": len(done) - len(ok),
        "wall_s": wall,
        "turns_per_s": len(ok) / wall,
        "cpu_s": cpu,
        "turn_ms_p50": (median([(t.done_at or t.sent_at) - t.sent_at for t in ok]) or 0) * 1000,
        # Where the machine's 2 CPUs went: the server, the load client, the fake, PostgreSQL.
        "client_cpu_s": harness["client"],
        "fake_cpu_s": harness["fake"],
        "postgres_cpu_s": harness["postgres"],
        "busy_cpu_s": harness["busy"],
    }


async def ensure_threads(side: Side, fake: Fake, chats: int) -> None:
    """Give chats ``0..chats-1`` a thread (a short answer) if they have none yet, so that the
    phases after it send later turns. Leaves the fake answering short answers: set it again."""
    missing = [chat for chat in range(chats) if side.threads[chat] is None]
    if not missing:
        return
    fake.reply(5)
    plan = [(chat, True) for chat in missing]
    result = await run_phase(
        side, fake, f"warm-up {chats}", plan, concurrency=min(20, len(plan)), tokens=5
    )
    if result.errors:
        raise RuntimeError(
            f"{side.name}: warm-up failed: {result.errors[:3]}\n"
            + (side.server.logs() if side.server else "")
        )


class LoadSteps:
    """Load steps for one side: the latency levels, then the capacity search."""

    def __init__(self, side: Side, fake: Fake, log: Any) -> None:
        self.side = side
        self.fake = fake
        self.log = log
        self.results: dict[int, dict[str, Any]] = {}

    async def step(self, n: int) -> bool:
        side, fake, cfg = self.side, self.fake, self.side.cfg
        await ensure_threads(side, fake, n)
        fake.reply(cfg.tokens, cfg.token_delay, cfg.first_token_delay)
        await asyncio.sleep(0.5)
        plan = [(chat, False) for chat in range(n)]
        result = await run_phase(
            side, fake, f"load {n}", plan, concurrency=n, ramp=cfg.ramp, sample=True
        )
        summary = result.summary()
        # The criterion is the gap alone; a saturated worker can keep gaps short while
        # every answer starts late (events pile up in the socket, then go out back to back), so
        # the lag behind the model has a bound too.
        summary["passes_gap"] = (
            summary["errors"] == 0
            and summary["gap_ms_p99"] is not None
            and summary["gap_ms_p99"] < cfg.gap_limit * 1000
        )
        summary["passes"] = (
            summary["passes_gap"]
            and summary["lag_ms_p99"] is not None
            and summary["lag_ms_p99"] < cfg.lag_limit * 1000
        )
        self.results[n] = summary
        self.log(
            f"  {side.name} load {n:>4}: ok {summary['ok']}/{n}, first token p50 "
            f"{fmt(summary['first_token_ms_p50'])} ms p99 {fmt(summary['first_token_ms_p99'])} ms,"
            f" gap p50 {fmt(summary['gap_ms_p50'])} p99 {fmt(summary['gap_ms_p99'])} ms, "
            f"lag p99 {fmt(summary['lag_ms_p99'])} ms, rss {summary['rss_peak_mb']:.0f} MB, db conns {summary['db_connections_peak']}, "
            f"cpu {summary['cpu_s']:.1f}s/{summary['wall_s']:.1f}s, others "
            f"{fmt(summary['others_cpu_s'])}s"
            + (f" ERRORS {summary['error_examples']}" if summary["errors"] else "")
        )
        await asyncio.sleep(1.0)  # let the server settle (closing upstream connections, GC)
        return bool(summary["passes"])

    async def search(self) -> dict[str, Any]:
        """The most open streams with p99 gap under the limit (and no error), to ~10%."""
        cfg, results = self.side.cfg, self.results
        passing = [n for n, r in results.items() if r["passes"]]
        low = max(passing, default=0)
        failing = [n for n, r in results.items() if not r["passes"] and n > low]
        high = min(failing, default=None)
        if high is None:  # all passed: go up by half each time
            n = max(low, 1)
            while n < cfg.max_streams:
                n = min(cfg.max_streams, int(n * 1.5))
                if await self.step(n):
                    low = n
                else:
                    high = n
                    break
        if low == 0:  # even the smallest level failed: halve until one passes
            n = min(results) if results else 20
            while n > 5:
                n //= 2
                if await self.step(n):
                    low = n
                    break
                high = n
        probes = 0
        while high is not None and high - low > max(5, low // 10) and probes < cfg.max_probes:
            probes += 1
            middle = (low + high) // 2
            if await self.step(middle):
                low = middle
            else:
                high = middle
        return {"streams": low, "first_failure": high}

    def output(self, capacity: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "steps": [self.results[n] for n in sorted(self.results)],
            "capacity": capacity or {"streams": None, "first_failure": None},
        }


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def merge(parts: list[PhaseResult]) -> PhaseResult:
    """One result for the rounds of an interleaved phase."""
    first = parts[0]
    merged = PhaseResult(
        name=first.name,
        concurrency=first.concurrency,
        turns=sum(p.turns for p in parts),
        ok=sum(p.ok for p in parts),
        errors=[e for p in parts for e in p.errors],
        wall_seconds=sum(p.wall_seconds for p in parts),
        cpu_seconds=sum(p.cpu_seconds for p in parts),
        queries=None if first.queries is None else sum(p.queries or 0 for p in parts),
        to_upstream=[v for p in parts for v in p.to_upstream],
        first_token=[v for p in parts for v in p.first_token],
        gaps=[v for p in parts for v in p.gaps],
        turn_seconds=[v for p in parts for v in p.turn_seconds],
        upstream_seconds=[v for p in parts for v in p.upstream_seconds],
        lags=[v for p in parts for v in p.lags],
        rss_before=first.rss_before,
        queries_by_turn=None
        if any(p.queries_by_turn is None for p in parts)
        else [n for p in parts for n in p.queries_by_turn or []],
    )
    keys = {k for p in parts for k in p.harness_cpu}
    merged.harness_cpu = {k: sum(p.harness_cpu.get(k, 0.0) for p in parts) for k in keys}
    return merged


async def run_sides(
    cfg: Config, fake: Fake, cookies: list[str], log: Any
) -> dict[str, dict[str, Any]]:
    """Every phase on every side. Both servers run at once (an idle one costs nothing) and the
    sequential phases alternate between them in rounds, load levels side by side, so that a
    machine getting busier or quieter during the run shifts both sides alike."""
    sides = {side.name: side for side in (Side(spec, cookies, cfg) for spec in cfg.sides)}
    names = list(sides)
    out: dict[str, dict[str, Any]] = {name: {"side": name} for name in names}
    phases = set(cfg.phases)
    chats = cfg.max_chats if "load" in phases else max(20, cfg.users)
    rounds = max(1, cfg.rounds)

    async def interleaved(key: str, label: str, new: bool, turns: int, tokens: int) -> None:
        per_round = max(1, turns // rounds)
        parts: dict[str, list[PhaseResult]] = {name: [] for name in names}
        for number in range(rounds):
            for name in names if number % 2 == 0 else names[::-1]:
                plan = [(0, new)] * per_round
                parts[name].append(
                    await run_phase(sides[name], fake, label, plan, concurrency=1, tokens=tokens)
                )
        for name in names:
            summary = merge(parts[name]).summary()
            out[name][key] = summary
            log(
                f"  {name} {label}: {summary['cpu_ms_per_turn']:.1f} ms CPU/turn, queries/turn "
                f"{fmt(summary['queries_per_turn'])}, request -> upstream p50 "
                f"{fmt(summary['to_upstream_ms_p50'], 2)} ms, first token p50 "
                f"{fmt(summary['first_token_ms_p50'], 2)} ms, gap p50 {fmt(summary['gap_ms_p50'], 2)}"
                f" p99 {fmt(summary['gap_ms_p99'], 2)} ms, turn p50 {fmt(summary['turn_ms_p50'])} "
                f"ms, others {fmt(summary['others_cpu_s'])}s"
                + (f" ERRORS {summary['error_examples']}" if summary["errors"] else "")
            )

    with contextlib.ExitStack() as stack:
        for name in names:
            side = sides[name]
            server = stack.enter_context(
                asgi_server(side.app, env=side.env(fake, cfg), ours_path=side.path)
            )
            sides[name].attach(server, chats)
            log(f"{name}: uvicorn pid {server.process.pid} on port {server.port}")
            await ensure_threads(sides[name], fake, 1)

        if "first" in phases:
            fake.reply(cfg.tokens)
            await interleaved("first_turns", "first turns", True, cfg.first_turns, cfg.tokens)
        if "fixed" in phases:
            # One token: what a turn costs apart from streaming (its fixed part).
            fake.reply(1)
            await interleaved("fixed", "one-token turns", False, cfg.fixed_turns, 1)
        if "sequential" in phases:
            fake.reply(cfg.tokens, cfg.sequential_token_delay)
            await interleaved(
                "sequential", "sequential turns", False, cfg.sequential_turns, cfg.tokens
            )
        for name in names:
            attached = sides[name].server
            assert attached is not None  # every side was attached to its server above
            out[name]["rss_idle_mb"] = attached.rss_bytes() / 2**20

        if "load" in phases:
            steps = {name: LoadSteps(sides[name], fake, log) for name in names}
            for number, level in enumerate(sorted(cfg.levels)):
                for name in names if number % 2 == 0 else names[::-1]:
                    await steps[name].step(level)
            for name in names:
                # RSS at the fixed levels as they ran, from idle and in increasing order (the
                # capacity search that follows may run a level again, from a fuller heap):
                # memory per open stream is the slope of the peaks.
                out[name]["level_rss"] = [
                    {
                        "concurrency": level,
                        "rss_before_mb": steps[name].results[level]["rss_before_mb"],
                        "rss_peak_mb": steps[name].results[level]["rss_peak_mb"],
                        "errors": steps[name].results[level]["errors"],
                    }
                    for level in sorted(cfg.levels)
                ]
            for name in names:
                capacity = await steps[name].search() if cfg.search else None
                out[name]["load"] = steps[name].output(capacity)

        if "profile" in phases and cfg.profile_seconds > 0:
            for name in names:
                out[name]["profile"] = await profile_phase(
                    sides[name], fake, cfg.profile_seconds, log
                )
        for name in names:
            out[name]["throughput"] = []
            if "throughput" in phases and 1 in cfg.worker_counts:
                tp = await throughput(sides[name], fake, cfg.users, cfg.seconds)
                out[name]["throughput"].append(tp)
                log(
                    f"  {name} throughput, 1 worker: {tp['turns_per_s']:.1f} turns/s "
                    f"({tp['errors']} errors)"
                )
        for name in names:
            await sides[name].close()

    if "throughput" in phases:
        for workers in (w for w in cfg.worker_counts if w > 1):
            for name in names:
                side = sides[name]
                with asgi_server(
                    side.app, env=side.env(fake, cfg), workers=workers, ours_path=side.path
                ) as server:
                    side.attach(server, cfg.users)
                    # A short warm-up: every worker imports and connects on its first requests.
                    await throughput(side, fake, cfg.users, 2.0)
                    tp = await throughput(side, fake, cfg.users, cfg.seconds)
                    out[name]["throughput"].append(tp)
                    log(
                        f"  {name} throughput, {workers} workers: {tp['turns_per_s']:.1f} "
                        f"turns/s ({tp['errors']} errors)"
                    )
                    await side.close()
    return out


async def profile_phase(side: Side, fake: Fake, seconds: float, log: Any) -> dict[str, Any]:
    """py-spy on the server while ``profile_chats`` chats take turns back to back, tokens as
    in the load phase: where the CPU goes when it is the limit."""
    from benchmarks import profiling

    assert side.server is not None
    cfg = side.cfg
    chats = min(cfg.profile_chats, len(side.connections))
    await ensure_threads(side, fake, chats)
    fake.reply(cfg.tokens, cfg.token_delay, cfg.first_token_delay)
    stop_at = time.monotonic() + seconds + 1.0
    turns = [0]

    async def chat(index: int) -> None:
        number = 0
        while time.monotonic() < stop_at:
            number += 1
            marker = f"{side.name} profile {number} chat {index}"
            turn = await load.send_turn(
                side.connections[index], ENDPOINT, marker, side.threads[index], cfg.turn_timeout
            )
            turns[0] += 1
            if turn.ok and turn.thread_id:
                side.threads[index] = turn.thread_id

    out_path = RESULTS_DIR / f"profile-{side.name}.txt"
    loop_task = asyncio.gather(*(chat(i) for i in range(chats)))
    await asyncio.sleep(0.5)
    summary = await asyncio.to_thread(profiling.record, side.server.process.pid, seconds, out_path)
    await loop_task
    summary["turns"] = turns[0]
    log(f"  {side.name} profile: {summary.get('samples', 0)} samples -> {summary.get('file')}")
    return summary


def machine() -> dict[str, Any]:
    import chatkit.version
    import django
    import psutil
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT version()")
            db = cursor.fetchone()[0].split(" on ")[0]
        else:
            cursor.execute("SELECT sqlite_version()")
            db = f"SQLite {cursor.fetchone()[0]}"
    import agents
    import openai
    import uvicorn

    return {
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gb": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "django": django.get_version(),
        "chatkit": chatkit.version.__version__,
        "agents": agents.__version__,
        "openai": openai.__version__,
        "uvicorn": uvicorn.__version__,
        "database": db,
    }


def prepare(cfg: Config) -> tuple[list[str], dict[str, Any]]:
    """Django set up on the benchmark database (migrated), sessions, the machine's description."""
    from benchmarks._setup import setup

    setup()
    return prepare_users(cfg.max_chats), machine()


async def main_async(
    cfg: Config, cookies: list[str], machine_info: dict[str, Any], log: Any = print
) -> dict[str, Any]:
    results: dict[str, Any] = {"config": asdict(cfg), "machine": machine_info}
    started = time.monotonic()
    with fake_openai() as fake:
        results.update(await run_sides(cfg, fake, cookies, log))
    results["seconds"] = time.monotonic() - started
    return results


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer turns and steps")
    parser.add_argument(
        "--sides",
        default="ours,baseline",
        help="comma-separated: ours, baseline, ours@DIR (DIR holds a changed django_chatkit)",
    )
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--first-token-delay", type=float, default=0.2)
    parser.add_argument("--sequential-turns", type=int, default=50)
    parser.add_argument("--first-turns", type=int, default=200)
    parser.add_argument("--fixed-turns", type=int, default=300)
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternations of the sequential phases"
    )
    parser.add_argument("--levels", default="50,200")
    parser.add_argument(
        "--max-streams", type=int, default=400, help="the capacity search stops here"
    )
    parser.add_argument("--no-search", action="store_true", help="skip the capacity search")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument(
        "--phases",
        default="first,fixed,sequential,load,profile,throughput",
        help="which phases to run (default: all)",
    )
    parser.add_argument(
        "--ours-path",
        help="a directory holding a (patched) copy of django_chatkit to serve instead",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="no gc.freeze() in the servers (by default both freeze once loaded, as "
        "docs/deployment.md advises)",
    )
    parser.add_argument(
        "--db-pool",
        default="true",
        help="JSON for OPTIONS['pool'] of our server's database (default: Django's defaults)",
    )
    parser.add_argument("--conn-max-age", type=int, default=0)
    parser.add_argument("--output", type=Path, default=JSON_PATH)
    args = parser.parse_args(argv)

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(",") if x.strip())

    cfg = Config(
        tokens=args.tokens,
        token_delay=args.token_delay,
        first_token_delay=args.first_token_delay,
        sequential_turns=args.sequential_turns,
        first_turns=args.first_turns,
        fixed_turns=args.fixed_turns,
        rounds=args.rounds,
        levels=ints(args.levels),
        search=not args.no_search,
        max_streams=args.max_streams,
        users=args.users,
        seconds=args.seconds,
        worker_counts=ints(args.workers),
        sides=tuple(s for s in args.sides.split(",") if s),
        ours_path=args.ours_path,
        db_pool=args.db_pool,
        conn_max_age=args.conn_max_age,
        gc_freeze=args.gc_freeze,
        profile_seconds=args.profile_seconds,
        phases=tuple(p for p in args.phases.split(",") if p),
    )
    if args.quick:
        cfg.first_turns = 6
        cfg.fixed_turns = 20
        cfg.sequential_turns = 12
        cfg.rounds = 2
        cfg.max_probes = 2
        cfg.seconds = 4.0
    # Not a field: asdict(cfg) is the results' "config", and where they are written is not.
    cfg.output = args.output  # type: ignore[attr-defined]
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    cookies, machine_info = prepare(cfg)
    results = asyncio.run(main_async(cfg, cookies, machine_info))
    output: Path = cfg.output  # type: ignore[attr-defined]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
