"""The moderation admin at 10,000 and 1,000,000 threads: page latency, flatness, query plans.

    python -m benchmarks.admin_scale                          # 10,000 and 1,000,000 threads
    python -m benchmarks.admin_scale --quick                  # 10,000 and 100,000, fewer rounds
    python -m benchmarks.admin_scale --threads 1000000 --load-only   # fill a database, measure nothing
    python -m benchmarks.admin_scale --page "usage=admin:chatkit_usage"   # edit the page list
    python -m benchmarks.admin_scale --drop                   # remove the scenario's databases

Each size has a PostgreSQL database of its own, ``chatkit_bench_admin_<threads>`` on the
server of ``BENCH_DATABASE_URL`` (``benchmarks.admin_data``: created, migrated and filled by SQL
the first time, reused while its parameters match). Every page of ``PAGES`` is requested through
Django's test ``Client`` (in process: URL resolution, middleware, the admin's queries and
template rendering; no network, no server) signed in as a superuser, at every size:
``--warmup`` rounds untimed, then ``--repeat`` timed rounds, each round visiting every
(size, page) once in a new random order, each size on a connection of its own kept open, so
that a busy moment of the machine hits every cell alike.

Targets (issue #13): the median of every page under 300 ms at every size, and the median at the
largest size at most 1.5x the median at the smallest. The report
(``benchmarks/results/admin_scale.md``, also printed; ``admin_scale.json`` beside it) gives the
table, the statements each page ran, and EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of
the slowest page at the largest size.

``PAGES`` (below) is the list to edit when the admin changes: a URL name (resolved by
``reverse``) or a path, a querystring, and placeholders filled from the data (``{deep_thread}``,
``{title_word}``, ``{text_word}``). The transcript's deepest page is reached from its first page:
the "earlier messages" link (``--earlier-link``, a regular expression on the HTML) carries a
cursor; ``--deepest compute`` replaces the cursor (an item id or row id of the thread) by the one
whose page holds the thread's oldest items, ``follow`` clicks the link until there is none,
``auto`` (default) computes and falls back to following.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from benchmarks import admin_data
from benchmarks.admin_data import Params

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.test import Client

RESULTS = Path(__file__).resolve().parent / "results" / "admin_scale.md"
DATABASE_PREFIX = "chatkit_bench_admin"
TARGET_P50_MS = 300.0
TARGET_RATIO = 1.5

CHANGELIST = "admin:django_chatkit_thread_changelist"
THREAD_PAGE = "admin:django_chatkit_thread_change"
# The usage overview's URL name (issue #13, deliverable 5); --usage changes it.
USAGE = "admin:django_chatkit_run_usage"
# Whatever the changelist's "has negative feedback" filter is called at merge time.
NEGATIVE_FEEDBACK_QUERY = "negative_feedback=yes"
# An <a> whose href carries a ?before= cursor: the transcript's "earlier messages" link.
EARLIER_LINK = r"""<a\b[^>]*\bhref="([^"]*[?&](?:amp;)?before=[^"]*)\""""


@dataclass(frozen=True)
class Page:
    """One admin page to time: ``target`` is a URL name (``reverse``) or a path (``/...``);
    ``args`` and ``query`` may hold ``{deep_thread}``, ``{title_word}``, ``{text_word}``."""

    name: str
    target: str
    args: tuple[str, ...] = ()
    query: str = ""
    # "deepest": the page the earlier-messages cursor leads to at the thread's oldest items.
    kind: str = "plain"
    # What to verify in the HTML: "planted" (the message search found the planted threads),
    # "newest" / "oldest" (the deep thread's newest / oldest item text is on the page).
    check: str = ""
    # CHATKIT keys set while this page is requested (the usage page with its cache off).
    chatkit: tuple[tuple[str, Any], ...] = ()


PAGES: list[Page] = [
    Page("changelist", CHANGELIST),
    Page("changelist, status locked", CHANGELIST, query="status__exact=locked"),
    Page("changelist, negative feedback", CHANGELIST, query=NEGATIVE_FEEDBACK_QUERY),
    Page("title search", CHANGELIST, query="q={title_word}"),
    Page("message-text search", CHANGELIST, query="q={text_word}", check="planted"),
    Page("transcript, first page", THREAD_PAGE, args=("{deep_thread}",), check="newest"),
    Page(
        "transcript, deepest page",
        THREAD_PAGE,
        args=("{deep_thread}",),
        kind="deepest",
        check="oldest",
    ),
    # The review queues (deliverable 4): their default order, failures / unreviewed negative
    # votes first, and the newest attachments.
    Page("runs, failures first", "admin:django_chatkit_run_changelist"),
    Page("runs, one model", "admin:django_chatkit_run_changelist", query="model=gpt-4.1"),
    Page("feedback queue", "admin:django_chatkit_feedback_changelist"),
    Page(
        "feedback queue, negative",
        "admin:django_chatkit_feedback_changelist",
        query="kind__exact=negative",
    ),
    Page("attachments", "admin:django_chatkit_attachment_changelist"),
    Page("usage", USAGE),
    # Its figures computed on every view: what the first view after USAGE_CACHE_SECONDS costs.
    Page("usage, cache off", USAGE, chatkit=(("USAGE_CACHE_SECONDS", 0),)),
]


def parse_page(spec: str) -> tuple[str, Page | None]:
    """``NAME=TARGET[?QUERY]``: a page replacing (or added after) the one of that name;
    ``NAME=`` removes it."""
    name, _, rest = spec.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"--page {spec!r}: expected NAME=TARGET[?QUERY]")
    if not rest:
        return name, None
    target, _, query = rest.partition("?")
    return name, Page(name, target, query=query)


def edit_pages(pages: list[Page], edits: list[tuple[str, Page | None]]) -> list[Page]:
    out = list(pages)
    for name, page in edits:
        index = next((i for i, p in enumerate(out) if p.name == name), None)
        if index is None:
            if page is not None:
                out.append(page)
        elif page is None:
            del out[index]
        else:
            # Keep what the built-in page knew (args, deepest, checks) unless the target changes
            # its meaning entirely: a new path or URL name keeps them, as the page is the same.
            out[index] = replace(out[index], target=page.target, query=page.query)
    return out


# -- one database per size ------------------------------------------------------------------------


@dataclass
class Scale:
    params: Params
    database: str
    wrapper: BaseDatabaseWrapper
    content_types: dict[Any, Any] = field(default_factory=dict)
    client: Client | None = None
    marker: dict[str, Any] = field(default_factory=dict)
    loaded_now: bool = False
    urls: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    queries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timings: dict[str, list[float]] = field(default_factory=dict)
    chatkit: dict[str, dict[str, Any]] = field(default_factory=dict)  # per page name

    @property
    def threads(self) -> int:
        return self.params.threads


def make_scale(params: Params, prefix: str) -> Scale:
    """A size and a database connection of its own (not opened yet)."""
    from django.db import connections
    from django.db.utils import load_backend

    base = connections.settings["default"]
    name = f"{prefix}_{params.threads}"
    backend = load_backend(base["ENGINE"])
    wrapper = backend.DatabaseWrapper({**base, "NAME": name}, "default")
    return Scale(params=params, database=name, wrapper=wrapper)


def activate(scale: Scale) -> None:
    """Make ``scale``'s connection Django's default one, in this thread, with its own content
    type cache (ids may differ between databases)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    # The handler keeps its connections in a thread-local (private): ours replaces the default.
    local = connections.__dict__["_connections"]
    local.default = scale.wrapper
    cache: dict[str, Any] = ContentType.objects._cache  # type: ignore[attr-defined]
    cache["default"] = scale.content_types


def prepare_database(scale: Scale, reload: bool) -> None:
    """Create, migrate and fill the database unless it holds this size's data already."""
    from django.core.management import call_command

    activate(scale)
    created = admin_data.maintenance("create", scale.database)
    marker = None if created else admin_data.read_marker()
    if not reload and marker is not None and marker.get("params") == asdict(scale.params):
        scale.marker = marker
        print(f"{scale.database}: reused (loaded {marker['loaded_at']})", flush=True)
        if datetime.now(UTC) - datetime.fromisoformat(marker["loaded_at"]) > timedelta(days=7):
            print("  loaded over a week ago: --reload for a full last 30 days", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        return
    if created:
        print(f"{scale.database}: created; loading {scale.threads:,} threads", flush=True)
    else:
        if reload:
            reason = "--reload"
        elif marker is None:
            reason = "no marker (a load was interrupted)"
        else:
            reason = f"other parameters ({marker.get('params')})"
        print(f"{scale.database}: dropped and loaded again: {reason}", flush=True)
        scale.wrapper.close()
        admin_data.maintenance("drop", scale.database)
        admin_data.maintenance("create", scale.database)
    scale.wrapper.close()
    scale.content_types.clear()
    call_command("migrate", verbosity=0, interactive=False)
    scale.marker = admin_data.load(scale.params, f"{scale.threads:,}")
    scale.loaded_now = True
    print(
        f"{scale.database}: loaded in {scale.marker['load_seconds']:.0f}s "
        f"({scale.marker['database_bytes'] / 1e9:.1f} GB)",
        flush=True,
    )


def sign_in(scale: Scale) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    activate(scale)
    model = get_user_model()
    user = model.objects.filter(username=admin_data.SUPERUSER).first()
    if user is None:
        user = model.objects.create_superuser(admin_data.SUPERUSER, "admin@example.com", None)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    scale.client = client


# -- pages ----------------------------------------------------------------------------------------


def placeholders(params: Params) -> dict[str, str]:
    return {
        "deep_thread": admin_data.deep_thread_ids(params)[0],
        "title_word": admin_data.TITLE_WORD,
        "text_word": admin_data.TEXT_WORD,
    }


def page_url(page: Page, params: Params) -> str:
    from django.urls import reverse

    values = placeholders(params)
    path = page.target.format(**values)
    if not path.startswith("/"):
        path = reverse(path, args=[arg.format(**values) for arg in page.args])
    query = page.query.format(**values)
    if query:
        query = urlencode(parse_qsl(query, keep_blank_values=True))
    return f"{path}?{query}" if query else path


def page_settings(scale: Scale, name: str) -> Any:
    """The settings a page is requested under (``Page.chatkit``)."""
    from django.conf import settings
    from django.test import override_settings

    overrides = scale.chatkit.get(name)
    if not overrides:
        return nullcontext()
    return override_settings(CHATKIT={**settings.CHATKIT, **overrides})


def get(scale: Scale, url: str, name: str = "") -> tuple[int, str, str]:
    """Status, body, redirect target of one GET on ``scale``."""
    assert scale.client is not None
    activate(scale)
    with page_settings(scale, name):
        response = scale.client.get(url)
    body = response.content.decode("utf-8", "replace") if response.status_code == 200 else ""
    return response.status_code, body, str(response.get("Location", ""))


def earlier_link(body: str, pattern: str) -> str | None:
    match = re.search(pattern, body)
    return html.unescape(match.group(1)) if match else None


def _item_position(thread: str, value: str) -> tuple[int, str] | None:
    """Where the item a cursor value names sits in its thread, oldest first, and what the value
    is (``item_id`` or ``pk``); None if it names none."""
    from django.db.models import Q

    from django_chatkit.models import ThreadItem

    items = ThreadItem.objects.filter(thread_id=thread)
    row = items.filter(item_id=value).values("pk", "created_at").first()
    kind = "item_id"
    if row is None and value.isdigit():
        row = items.filter(pk=int(value)).values("pk", "created_at").first()
        kind = "pk"
    if row is None:
        return None
    before = items.filter(
        Q(created_at__lt=row["created_at"]) | Q(created_at=row["created_at"], pk__lt=row["pk"])
    ).count()
    return before, kind


def _item_at(thread: str, position: int, kind: str) -> str:
    from django_chatkit.models import ThreadItem

    row = (
        ThreadItem.objects.filter(thread_id=thread)
        .order_by("created_at", "pk")
        .values_list("item_id" if kind == "item_id" else "pk", flat=True)[position]
    )
    return str(row)


def deepest_url(
    scale: Scale, first: str, thread: str, mode: str, pattern: str, max_follow: int
) -> tuple[str | None, str]:
    """The URL of the transcript page holding the thread's oldest items, and how it was found."""
    status, body, _ = get(scale, first)
    if status != 200:
        return None, f"the first page answered {status}"
    link = earlier_link(body, pattern)
    if link is None:
        return None, "no earlier-messages link on the first page (--earlier-link)"
    if mode in ("auto", "compute"):
        parts = urlsplit(urljoin(first, link))
        query = parse_qsl(parts.query, keep_blank_values=True)
        for index, (key, value) in enumerate(query):
            found = _item_position(thread, value)
            if found is None:
                continue
            position, kind = found
            total = scale.params.deep_items
            page_size = total - position
            # The cursor shows what lies before the item at `page_size`: the oldest page_size.
            query[index] = (key, _item_at(thread, page_size, kind))
            url = urlunsplit(parts._replace(query=urlencode(query)))
            return (
                url,
                f"computed: `{key}` = the {kind} of item {page_size:,} (page of {page_size})",
            )
        if mode == "compute":
            return None, f"no cursor value in {link!r} names an item of the thread"
    url, steps = urljoin(first, link), 1
    while steps < max_follow:
        status, body, _ = get(scale, url)
        if status != 200:
            return None, f"following: page {steps} answered {status}"
        following = earlier_link(body, pattern)
        if following is None:
            return url, f"followed the earlier-messages link {steps} times"
        url, steps = urljoin(url, following), steps + 1
    return None, f"still an earlier-messages link after {max_follow} pages (--max-follow)"


def item_text(thread: str, newest: bool) -> str:
    from django_chatkit.models import ThreadItem

    order = ("-created_at", "-pk") if newest else ("created_at", "pk")
    text = (
        ThreadItem.objects.filter(thread_id=thread)
        .order_by(*order)
        .values_list("text", flat=True)[0]
    )
    return str(text)


def check(scale: Scale, page: Page, body: str, pattern: str) -> str:
    if page.check == "planted":
        from django.contrib.admin.utils import quote

        ids = [admin_data.thread_id(g) for g in scale.params.planted_ordinals()]
        # The admin's URLs quote primary keys ("_" is "_5F"): the rows link to the quoted id.
        found = sum(1 for thread in ids if f"/{quote(thread)}/" in body)
        return f"{found}/{len(ids)} threads with the word listed"
    if page.check in ("newest", "oldest"):
        thread = placeholders(scale.params)["deep_thread"]
        # The first words only: markdown rendering may change what follows a line break.
        snippet = html.escape(item_text(thread, page.check == "newest")[:40])
        shown = "shown" if snippet in body else "**not shown**"
        more = earlier_link(body, pattern) is not None
        return f"{page.check} item {shown}; earlier link: {'yes' if more else 'no'}"
    return ""


def resolve_pages(
    scale: Scale, pages: list[Page], mode: str, pattern: str, max_follow: int
) -> None:
    """Each page's URL at this size, checked once (status, what it shows, its statements)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch

    for page in pages:
        try:
            url = page_url(page, scale.params)
        except NoReverseMatch:
            scale.unavailable[page.name] = f"no URL named `{page.target}` (edit PAGES or --page)"
            continue
        if page.kind == "deepest":
            thread = placeholders(scale.params)["deep_thread"]
            # From the page's own URL: the transcript's first page, where the walk back starts.
            deep, how = deepest_url(scale, url, thread, mode, pattern, max_follow)
            scale.checks[page.name] = how
            if deep is None:
                scale.unavailable[page.name] = how
                continue
            url = deep
        activate(scale)
        scale.chatkit[page.name] = dict(page.chatkit)
        with CaptureQueriesContext(connection) as captured:
            status, body, location = get(scale, url, page.name)
        if status != 200:
            where = f" to {location}" if location else ""
            scale.unavailable[page.name] = f"`{url}` answered {status}{where}"
            continue
        scale.urls[page.name] = url
        scale.queries[page.name] = [
            {"sql": q["sql"], "ms": float(q["time"]) * 1000} for q in captured.captured_queries
        ]
        note = check(scale, page, body, pattern)
        scale.checks[page.name] = "; ".join(x for x in (scale.checks.get(page.name), note) if x)
        scale.timings[page.name] = []


# -- measuring ------------------------------------------------------------------------------------


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No garbage collection pauses in the middle of a timed request (collected between)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def measure(scales: list[Scale], warmup: int, repeat: int, seed: int) -> None:
    rng = random.Random(seed)
    cells = [(scale, name) for scale in scales for name in scale.urls]
    for number in range(warmup + repeat):
        rng.shuffle(cells)
        for scale, name in cells:
            assert scale.client is not None
            activate(scale)
            scale.wrapper.ensure_connection()
            with quiet_gc(), page_settings(scale, name):
                begin = time.perf_counter()
                response = scale.client.get(scale.urls[name])
                elapsed = time.perf_counter() - begin
            if response.status_code != 200:
                raise SystemExit(f"{scale.database} {name}: answered {response.status_code}")
            if number >= warmup:
                scale.timings[name].append(elapsed * 1000)
        state = "warm-up" if number < warmup else "timed"
        print(f"round {number + 1}/{warmup + repeat} ({state}) done", flush=True)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def explain(scale: Scale, sql: str) -> str:
    from django.db import connection

    activate(scale)
    with connection.cursor() as cursor:
        # Twice: the first run may still set hint bits and warm the cache; show the second.
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def is_query(sql: str) -> bool:
    return sql.lstrip().upper().startswith(("SELECT", "WITH"))


# -- report ---------------------------------------------------------------------------------------


def summarize(scales: list[Scale], pages: list[Page]) -> dict[str, Any]:
    small, large = scales[0], scales[-1]
    rows = []
    for page in pages:
        row: dict[str, Any] = {"page": page.name, "url": large.urls.get(page.name), "sizes": {}}
        for scale in scales:
            values = scale.timings.get(page.name) or []
            statements = scale.queries.get(page.name) or []
            row["sizes"][scale.threads] = {
                "p50_ms": statistics.median(values) if values else None,
                "p95_ms": p95(values) if values else None,
                "queries": len(statements) if page.name in scale.urls else None,
                "slowest_ms": max((q["ms"] for q in statements), default=None),
                "check": scale.checks.get(page.name, ""),
                "unavailable": scale.unavailable.get(page.name),
            }
        lo = row["sizes"][small.threads]["p50_ms"]
        hi = row["sizes"][large.threads]["p50_ms"]
        row["ratio"] = hi / lo if lo and hi is not None and len(scales) > 1 else None
        p50s = [row["sizes"][s.threads]["p50_ms"] for s in scales]
        if any(v is None for v in p50s):
            row["verdict"] = "not measured"
        else:
            fast = all(v < TARGET_P50_MS for v in p50s)
            flat = row["ratio"] is None or row["ratio"] <= TARGET_RATIO
            row["verdict"] = "met" if fast and flat else "**not met**"
            row["fast"], row["flat"] = fast, flat
        rows.append(row)
    return {"rows": rows, "met": all(r["verdict"] == "met" for r in rows)}


def slowest_statement(scale: Scale, summary: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    measured = [r for r in summary["rows"] if r["sizes"][scale.threads]["p50_ms"] is not None]
    if not measured:
        return None
    page = max(measured, key=lambda r: r["sizes"][scale.threads]["p50_ms"])["page"]
    statements = [q for q in scale.queries[page] if is_query(q["sql"])]
    if not statements:
        return None
    return page, max(statements, key=lambda q: q["ms"])


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def describe_steps(steps: list[tuple[str, float]]) -> str:
    """The load's steps in order, its index and constraint builds summed (and the slowest)."""
    out: list[str] = []
    builds = [(n, t) for n, t in steps if n.startswith(("index ", "constraint "))]
    for name, seconds in steps:
        if (name, seconds) in builds:
            if (name, seconds) == builds[0]:
                slowest = max(builds, key=lambda b: b[1])
                total = sum(t for _, t in builds)
                out.append(
                    f"{len(builds)} indexes and constraints {total:,.1f}s "
                    f"(slowest: {slowest[0]} {slowest[1]:,.1f}s)"
                )
            continue
        out.append(f"{name} {seconds:,.1f}s")
    return ", ".join(out)


def data_lines(scale: Scale) -> list[str]:
    marker = scale.marker
    rows = marker.get("rows", {})
    recorded = marker.get("steps", [])
    if isinstance(recorded, dict):  # markers written before the steps were a list
        recorded = list(recorded.items())
    steps = describe_steps([(str(n), float(t)) for n, t in recorded])
    when = "loaded by this run" if scale.loaded_now else f"reused, loaded {marker['loaded_at']}"
    age = datetime.now(UTC) - datetime.fromisoformat(marker["loaded_at"])
    if age.days >= 7:
        # Times were laid out back from the load: the usage page's last 30 days thin out.
        when += f" (**{age.days} days ago**: the last 30 days hold less activity; --reload)"
    return [
        f"- **{scale.threads:,} threads** (`{scale.database}`, "
        f"{marker.get('database_bytes', 0) / 1e9:.1f} GB): {rows.get('items', 0):,} items, "
        f"{rows.get('runs', 0):,} runs, {rows.get('feedback', 0):,} feedback, "
        f"{rows.get('attachments', 0):,} attachments, {rows.get('users', 0):,} users; "
        f"{when}; load time {marker.get('load_seconds', 0):,.0f}s ({steps}).",
    ]


def report(
    scales: list[Scale],
    pages: list[Page],
    summary: dict[str, Any],
    plan: tuple[str, dict[str, Any], str] | None,
    args: argparse.Namespace,
    command: str,
    generated: str,
    git: str,
) -> str:
    small, large = scales[0], scales[-1]
    sizes = [f"{s.threads:,}" for s in scales]
    head = ["page"]
    align = ["---"]
    for size in sizes:
        head += [f"p50 ms {size}", f"p95 ms {size}"]
        align += ["--:", "--:"]
    head += ["ratio p50", "queries", "verdict"]
    align += ["--:", "--:", "---"]
    lines = [
        "# The moderation admin at scale",
        "",
        f"Generated {generated} by `{command}`, code at {git}.",
        "",
        "Every page requested through Django's test `Client` (in process: middleware, the "
        "admin's queries, template rendering; no network), signed in as a superuser, on "
        "PostgreSQL; one database per size. "
        f"{args.warmup} warm-up rounds, then {args.repeat} timed rounds, each visiting every "
        "(size, page) once in a new random order. `ratio`: median at "
        f"{large.threads:,} threads / median at {small.threads:,}. `queries`: SQL statements "
        "of one request at each size.",
        "",
        f"Targets: median under {TARGET_P50_MS:.0f} ms at every size, and ratio at most "
        f"{TARGET_RATIO}x. **{'Met' if summary['met'] else 'Not met'}**.",
        "",
        "## Data",
        "",
    ]
    for scale in scales:
        lines += data_lines(scale)
    lines += [
        "",
        f"Deep threads: {large.params.deep_threads} of {large.params.deep_items:,} items at "
        f"every size. Searches: `{admin_data.TITLE_WORD}` (in some titles, in no message), "
        f"`{admin_data.TEXT_WORD}` (in the text of {admin_data.PLANTED} items, in no title).",
        "",
        "## Latency",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(align) + "|",
    ]
    for row in summary["rows"]:
        cells = [row["page"]]
        for scale in scales:
            cell = row["sizes"][scale.threads]
            cells += [ms(cell["p50_ms"]), ms(cell["p95_ms"])]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        counts = "/".join(
            "-"
            if row["sizes"][s.threads]["queries"] is None
            else str(row["sizes"][s.threads]["queries"])
            for s in scales
        )
        cells += [ratio, counts, row["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Pages", "", "| page | URL (largest size) | slowest statement ms | notes |"]
    lines.append("|---|---|--:|---|")
    for row in summary["rows"]:
        slow = " / ".join(ms(row["sizes"][s.threads]["slowest_ms"]) for s in scales)
        notes = []
        for scale in scales:
            cell = row["sizes"][scale.threads]
            text = cell["unavailable"] or cell["check"]
            if text:
                notes.append(f"{scale.threads:,}: {text}")
        url = f"`{row['url']}`" if row["url"] else "-"
        lines.append(f"| {row['page']} | {url} | {slow} | {'; '.join(notes)} |")
    if plan is not None:
        page, statement, text = plan
        lines += [
            "",
            f"## Slowest statement of the slowest page at {large.threads:,} threads: {page}",
            "",
            f"{statement['ms']:.1f} ms when the page was checked. EXPLAIN (ANALYZE, BUFFERS), "
            "second run:",
            "",
            "```sql",
            statement["sql"],
            "```",
            "",
            "```",
            text,
            "```",
        ]
    return "\n".join(lines) + "\n"


# -- command line ---------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.admin_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--threads",
        type=int_list,
        default=None,
        help="sizes, comma-separated (default 10000,1000000; --quick: 10000,100000)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--deep-threads", type=int, default=3)
    parser.add_argument("--deep-items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=None, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="order of the requests")
    parser.add_argument(
        "--database-prefix",
        default=DATABASE_PREFIX,
        help=f"databases are PREFIX_<threads> (default {DATABASE_PREFIX})",
    )
    parser.add_argument("--reload", action="store_true", help="load the data again")
    parser.add_argument("--load-only", action="store_true", help="fill the databases, stop")
    parser.add_argument("--drop", action="store_true", help="drop the databases of --threads")
    parser.add_argument(
        "--page",
        action="append",
        type=parse_page,
        default=[],
        metavar="NAME=TARGET[?QUERY]",
        help="replace (or add) a page of PAGES; TARGET a URL name or a /path; NAME= removes it",
    )
    parser.add_argument("--usage", default=None, help=f"the usage page (default {USAGE})")
    parser.add_argument(
        "--negative-filter",
        default=None,
        help=f"querystring of the has-negative-feedback filter (default {NEGATIVE_FEEDBACK_QUERY})",
    )
    parser.add_argument("--deepest", choices=("auto", "compute", "follow"), default="auto")
    parser.add_argument("--earlier-link", default=EARLIER_LINK, help="regex; group 1 = the href")
    parser.add_argument("--max-follow", type=int, default=5000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = args.threads or ([10_000, 100_000] if args.quick else [10_000, 1_000_000])
    args.repeat = args.repeat or (7 if args.quick else 15)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    edits = list(args.page)
    if args.usage:
        edits.append(("usage", Page("usage", args.usage)))
    if args.negative_filter:
        edits.append(
            ("changelist, negative feedback", Page("", CHANGELIST, query=args.negative_filter))
        )
    pages = edit_pages(PAGES, edits)

    params = [
        Params(
            threads=n, users=args.users, deep_threads=args.deep_threads, deep_items=args.deep_items
        )
        for n in sizes
    ]
    if args.drop:
        for p in params:
            name = f"{args.database_prefix}_{p.threads}"
            print(f"{name}: {'dropped' if admin_data.maintenance('drop', name) else 'absent'}")
        return 0
    scales = [make_scale(p, args.database_prefix) for p in params]
    for scale in scales:
        prepare_database(scale, args.reload)
    if args.load_only:
        return 0
    for scale in scales:
        sign_in(scale)
        resolve_pages(scale, pages, args.deepest, args.earlier_link, args.max_follow)
        for name, why in scale.unavailable.items():
            print(f"{scale.threads:,} threads, {name}: not measured: {why}", flush=True)
    measure(scales, args.warmup, args.repeat, args.seed)
    summary = summarize(scales, pages)
    plan = None
    found = slowest_statement(scales[-1], summary)
    if found is not None:
        page, statement = found
        plan = (page, statement, explain(scales[-1], statement["sql"]))

    from benchmarks._setup import git_state, write_report

    command = " ".join(
        ["python -m benchmarks.admin_scale", *(sys.argv[1:] if argv is None else argv)]
    )
    generated = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    git = git_state()
    write_report(args.output, report(scales, pages, summary, plan, args, command, generated, git))
    out = {
        "generated": generated,
        "git": git,
        "command": command,
        "data": {s.threads: s.marker for s in scales},
        "rows": summary["rows"],
        "met": summary["met"],
        "timings": {s.threads: s.timings for s in scales},
    }
    args.output.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
