"""Fill the benchmark database quickly: long threads for one user, plus other users' noise.

    python -m benchmarks.generate --threads-for-user 1 --items-per-thread 1000000
    python -m benchmarks.generate --threads-for-user 3 --items-per-thread 500 --user alice
    python -m benchmarks.generate --thread-owner 100000      # a user with 100,000 threads
    python -m benchmarks.generate --noise-users 20 --noise-threads 10 --noise-items 200

Every item is a real SDK object (alternating ``UserMessageItem`` / ``AssistantMessageItem`` with
varied text) turned into row values by ``django_chatkit.serialization.item_row_values``, exactly
as ``DjangoStore`` writes it. Rows go in with one ``COPY ... FROM STDIN`` per thread on
PostgreSQL (psycopg ``cursor.copy``) and with ``bulk_create`` in large batches elsewhere. Each
thread is written in one transaction, so a thread that exists is complete.

Generated rows are labelled in ``Thread.metadata["bench"]`` (kind and size), which is how
``benchmarks.history_scale`` finds and reuses them instead of generating again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    UserMessageItem,
    UserMessageTextContent,
)

if TYPE_CHECKING:
    from django.db.models.options import Options

# Bump when the shape of generated data changes: older rows are then no longer reused.
GENERATOR_VERSION = 1

HISTORY_USER = "bench-history"
NOISE_USER_PREFIX = "bench-noise-"
THREAD_OWNER_PREFIX = "bench-threads-"

# Naive local times, as the SDK makes them (datetime.now()); far from any DST change.
BASE_TIME = datetime(2024, 11, 4, 9, 0, 0)
# Whole histories stay within this span, however long (no DST change inside it).
MAX_SPAN = timedelta(days=100)

_VOCABULARY = (
    "the a an of to in for on with and or but not this that it is are was were be been can "
    "could should would will may might must do does did have has had make made get got take "
    "order invoice refund account password shipping delivery address billing plan upgrade "
    "downgrade cancel subscription report chart table summary draft email meeting schedule "
    "calendar project deadline budget forecast quarter revenue customer ticket issue bug "
    "deploy server database query index latency cache error timeout retry request response "
    "python django postgres migration model view template form field test fixture coverage "
    "please thanks hello could you help me understand explain why how what when where which "
    "first second next then finally also however therefore because although while during"
)
WORDS = _VOCABULARY.split()

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# Every pair of base32 characters, indexed by the 10 bits they encode.
_PAIRS = [first + second for first in _CROCKFORD for second in _CROCKFORD]


def fast_id(prefix: str, millis: int) -> str:
    """Same format as ``django_chatkit.ids.new_id`` (10 time chars + 20 random), ~5x faster."""
    p, r = _PAIRS, secrets.randbits(100)
    return (
        f"{prefix}_{p[millis >> 40 & 1023]}{p[millis >> 30 & 1023]}{p[millis >> 20 & 1023]}"
        f"{p[millis >> 10 & 1023]}{p[millis & 1023]}"
        f"{p[r >> 90 & 1023]}{p[r >> 80 & 1023]}{p[r >> 70 & 1023]}{p[r >> 60 & 1023]}"
        f"{p[r >> 50 & 1023]}{p[r >> 40 & 1023]}{p[r >> 30 & 1023]}{p[r >> 20 & 1023]}"
        f"{p[r >> 10 & 1023]}{p[r & 1023]}"
    )


@dataclass
class Texts:
    """Pools of message texts (drawn once per run, reused at random)."""

    user: list[str]
    assistant: list[str]

    @classmethod
    def make(cls, rng: random.Random, size: int = 512) -> Texts:
        def sentence() -> str:
            words = rng.choices(WORDS, k=rng.randint(6, 18))
            return " ".join(words).capitalize() + rng.choice(".?!")

        def paragraph(lo: int, hi: int) -> str:
            return " ".join(sentence() for _ in range(rng.randint(lo, hi)))

        user = [paragraph(1, 3) for _ in range(size)]
        assistant = [
            "\n\n".join(paragraph(2, 4) for _ in range(rng.randint(1, 3))) for _ in range(size)
        ]
        return cls(user=user, assistant=assistant)


def build_item(
    thread_id: str, index: int, created_at: datetime, texts: Texts, rng: random.Random
) -> UserMessageItem | AssistantMessageItem:
    """The SDK item at ``index`` of a thread: user messages at even, assistant at odd indexes."""
    millis = int(created_at.timestamp() * 1000)
    if index % 2 == 0:
        return UserMessageItem(
            id=fast_id("msg", millis),
            thread_id=thread_id,
            created_at=created_at,
            content=[UserMessageTextContent(text=rng.choice(texts.user))],
            attachments=[],
            inference_options=InferenceOptions(model="gpt-4.1" if index % 10 == 0 else None),
        )
    return AssistantMessageItem(
        id=fast_id("msg", millis),
        thread_id=thread_id,
        created_at=created_at,
        content=[AssistantMessageContent(text=rng.choice(texts.assistant))],
    )


def item_times(start: datetime, count: int, tie_group: int = 1) -> Iterator[datetime]:
    """Increasing naive local times from ``start``, a few seconds apart.

    ``tie_group`` consecutive items share one time (1: all distinct, as the SDK's
    ``datetime.now()`` makes them; ``count``: one time for the whole thread, as a bulk import
    stamping every row alike would).
    """
    groups = -(-count // tie_group)
    step_us = min(6_000_000, int(MAX_SPAN.total_seconds() * 1_000_000) // max(groups, 1))
    jitter = max(step_us // 3, 1)
    for index in range(count):
        group = index // tie_group
        yield start + timedelta(microseconds=group * step_us + (group * 7919) % jitter)


# -- writing rows ---------------------------------------------------------------------------------


def use_copy(method: str) -> bool:
    from django.db import connection

    if method == "auto":
        return connection.vendor == "postgresql"
    if method == "copy" and connection.vendor != "postgresql":
        raise SystemExit("--method copy needs PostgreSQL")
    return method == "copy"


def _copy_rows(table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    """``COPY table (columns) FROM STDIN`` on Django's connection (inside its transaction)."""
    from django.db import connection
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _item_rows(
    thread_id: str,
    count: int,
    start: datetime,
    texts: Texts,
    rng: random.Random,
    progress: Progress | None,
    tie_group: int = 1,
) -> Iterator[dict[str, Any]]:
    from django_chatkit.serialization import item_row_values

    for index, created_at in enumerate(item_times(start, count, tie_group)):
        values = item_row_values(build_item(thread_id, index, created_at, texts, rng))
        if progress is not None:
            progress.tick()
        yield values


def write_items(
    thread_id: str,
    count: int,
    start: datetime,
    texts: Texts,
    rng: random.Random,
    *,
    method: str,
    batch_size: int,
    progress: Progress | None = None,
    tie_group: int = 1,
) -> int:
    from django_chatkit.models import ThreadItem

    rows = _item_rows(thread_id, count, start, texts, rng, progress, tie_group)
    if use_copy(method):
        meta = ThreadItem._meta
        fields = ["thread", "item_id", "type", "created_at", "text", "payload"]
        return _copy_rows(
            meta.db_table,
            _columns(meta, fields),
            (
                (
                    thread_id,
                    r["item_id"],
                    r["type"],
                    r["created_at"],
                    r["text"],
                    json.dumps(r["payload"]),
                )
                for r in rows
            ),
        )
    written = 0
    batch: list[ThreadItem] = []
    for values in rows:
        batch.append(ThreadItem(thread_id=thread_id, **values))
        if len(batch) >= batch_size:
            ThreadItem.objects.bulk_create(batch)
            written += len(batch)
            batch = []
    if batch:
        ThreadItem.objects.bulk_create(batch)
        written += len(batch)
    return written


def _columns(meta: Options[Any], names: list[str]) -> list[str]:
    """The table columns of these fields (COPY names columns, not fields)."""
    from django.db.models import Field

    columns = []
    for name in names:
        field = meta.get_field(name)
        if not isinstance(field, Field) or not field.column:
            raise ValueError(f"{meta.label}.{name} is not a field with a column")
        columns.append(field.column)
    return columns


def write_threads(rows: list[dict[str, Any]], *, method: str, batch_size: int) -> None:
    from django_chatkit.models import Thread

    if not use_copy(method):
        Thread.objects.bulk_create([Thread(**row) for row in rows], batch_size=batch_size)
        return
    meta = Thread._meta
    # Fields the rows leave out take their model default: COPY would write NULL (Django's
    # defaults are not the database's), and new NOT NULL columns (legal_hold) refuse it.
    defaults = {
        field.name: field.get_default()
        for field in meta.concrete_fields
        if field.name not in rows[0] and field.has_default() and not field.primary_key
    }
    rows = [{**defaults, **row} for row in rows] if defaults else rows
    names = list(rows[0])
    columns = _columns(meta, names)
    json_fields = {"metadata", "allowed_image_domains"}

    def cell(name: str, value: Any) -> Any:
        return json.dumps(value) if name in json_fields and value is not None else value

    _copy_rows(meta.db_table, columns, (tuple(cell(n, row[n]) for n in names) for row in rows))


class Progress:
    def __init__(self, total: int, label: str, every: int = 100_000) -> None:
        self.total, self.label, self.every = total, label, every
        self.done = 0
        self.started = time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        if self.done % self.every == 0:
            elapsed = time.perf_counter() - self.started
            print(
                f"  {self.label}: {self.done:,}/{self.total:,} items, "
                f"{elapsed:.1f}s, {self.done / elapsed:,.0f} items/s",
                flush=True,
            )


# -- what to generate ---------------------------------------------------------------------------


def get_user(username: str) -> Any:  # the project's user model
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username=username)
    return user


def label(kind: str, **extra: Any) -> dict[str, Any]:
    return {"bench": {"kind": kind, "version": GENERATOR_VERSION, **extra}}


def _thread_row(
    user_id: Any,
    created_at: datetime,
    title: str,
    meta: dict[str, Any],
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    from django_chatkit.serialization import to_aware

    aware = to_aware(created_at)
    return {
        "id": fast_id("thr", int(aware.timestamp() * 1000)),
        "user_id": user_id,
        "anonymous_key": "",
        "title": title,
        "status": "active",
        "status_reason": "",
        "created_at": aware,
        "updated_at": to_aware(updated_at) if updated_at else aware,
        "allowed_image_domains": None,
        "metadata": meta,
    }


def create_history_thread(
    user: Any,
    size: int,
    *,
    method: str = "auto",
    batch_size: int = 20_000,
    seed: int | None = None,
    kind: str = "history",
    tie_group: int = 1,
    verbose: bool = True,
) -> tuple[str, float]:
    """One thread of ``size`` items for ``user``, in one transaction; (thread id, seconds)."""
    from django.db import transaction

    rng = random.Random(seed if seed is not None else size)
    texts = Texts.make(rng)
    started = time.perf_counter()
    start = BASE_TIME + timedelta(minutes=rng.randint(0, 600))
    extra = {"tie_group": tie_group} if tie_group != 1 else {}
    row = _thread_row(
        user.pk,
        start,
        f"Benchmark history of {size:,} items",
        label(kind, size=size, **extra),
        updated_at=start + MAX_SPAN,
    )
    progress = Progress(size, row["id"]) if verbose and size >= 100_000 else None
    from django_chatkit.models import Thread

    with transaction.atomic():
        write_threads([row], method=method, batch_size=batch_size)
        write_items(
            row["id"],
            size,
            start + timedelta(seconds=1),
            texts,
            rng,
            method=method,
            batch_size=batch_size,
            progress=progress,
            tie_group=tie_group,
        )
    seconds = time.perf_counter() - started  # commit (and its foreign key checks) included
    # Remember how long it took, for reports made by later runs that reuse the thread.
    Thread.objects.filter(id=row["id"]).update(
        metadata=label(kind, size=size, seconds=round(seconds, 1), **extra)
    )
    return row["id"], seconds


def find_history_thread(
    user: Any, size: int, kind: str = "history", tie_group: int = 1
) -> str | None:
    from django_chatkit.models import Thread

    threads = Thread.objects.filter(
        user=user,
        metadata__bench__kind=kind,
        metadata__bench__size=size,
        metadata__bench__version=GENERATOR_VERSION,
    )
    if tie_group != 1:
        threads = threads.filter(metadata__bench__tie_group=tie_group)
    else:
        threads = threads.exclude(metadata__bench__has_key="tie_group")
    return threads.values_list("id", flat=True).first()


def ensure_history_thread(
    size: int, *, username: str = HISTORY_USER, method: str = "auto", tie_group: int = 1
) -> tuple[str, float | None]:
    """The reusable thread of ``size`` items (generated when missing); (id, seconds or None)."""
    user = get_user(username)
    existing = find_history_thread(user, size, tie_group=tie_group)
    if existing:
        return existing, None
    return create_history_thread(user, size, method=method, tie_group=tie_group)


def ensure_thread_owner(
    count: int, *, method: str = "auto", batch_size: int = 20_000
) -> tuple[Any, float | None]:
    """A user owning exactly ``count`` threads (no items): for threads.list; (user, seconds)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    username = f"{THREAD_OWNER_PREFIX}{count}-v{GENERATOR_VERSION}"
    user = get_user_model().objects.filter(username=username).first()
    if user is not None:
        return user, None
    started = time.perf_counter()
    rng = random.Random(count)
    step = MAX_SPAN / max(count, 1)
    with transaction.atomic():
        user = get_user_model().objects.create(username=username)
        rows = [
            _thread_row(
                user.pk,
                BASE_TIME + step * index + timedelta(microseconds=rng.randrange(1_000_000)),
                " ".join(rng.choices(WORDS, k=rng.randint(2, 6))).capitalize(),
                label("threads", owner_count=count),
            )
            for index in range(count)
        ]
        write_threads(rows, method=method, batch_size=batch_size)
    return user, time.perf_counter() - started


def ensure_noise(
    users: int,
    threads_per_user: int,
    items_per_thread: int,
    *,
    method: str = "auto",
    batch_size: int = 20_000,
    verbose: bool = True,
) -> tuple[int, float]:
    """Other users' threads and items; (items written, seconds). Existing noise users are kept."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    model = get_user_model()
    written, started = 0, time.perf_counter()
    for number in range(users):
        username = f"{NOISE_USER_PREFIX}{number:03d}-v{GENERATOR_VERSION}"
        if model.objects.filter(username=username).exists():
            continue
        rng = random.Random(f"noise-{number}")
        texts = Texts.make(rng, size=64)
        with transaction.atomic():
            user = model.objects.create(username=username)
            for index in range(threads_per_user):
                start = BASE_TIME + timedelta(hours=index * 7 + number, minutes=rng.randint(0, 59))
                row = _thread_row(
                    user.pk, start, f"Noise {number}/{index}", label("noise", size=items_per_thread)
                )
                write_threads([row], method=method, batch_size=batch_size)
                written += write_items(
                    row["id"],
                    items_per_thread,
                    start,
                    texts,
                    rng,
                    method=method,
                    batch_size=batch_size,
                )
    elapsed = time.perf_counter() - started
    if verbose and written:
        print(f"noise: {written:,} items for {users} users in {elapsed:.1f}s")
    return written, elapsed


def analyze() -> None:
    """Fresh planner statistics (and visibility map) after bulk loads."""
    from django.db import connection

    from django_chatkit.models import Thread, ThreadItem

    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return
    with connection.cursor() as cursor:
        for model in (Thread, ThreadItem):
            cursor.execute(f'VACUUM (ANALYZE) "{model._meta.db_table}"')


# -- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--threads-for-user",
        type=int,
        default=0,
        metavar="N",
        help="threads to create for --user (default 0)",
    )
    parser.add_argument(
        "--items-per-thread",
        type=int,
        default=100,
        metavar="M",
        help="items in each of those threads (default 100)",
    )
    parser.add_argument(
        "--user",
        default=HISTORY_USER,
        help=f"owner of those threads (default {HISTORY_USER}, the user "
        "benchmarks.history_scale reuses)",
    )
    parser.add_argument(
        "--tie-group",
        type=int,
        default=1,
        metavar="G",
        help="give every G consecutive items the same created_at (default 1: "
        "all distinct, as the SDK does)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="count existing threads of that size for the user and only top up",
    )
    parser.add_argument(
        "--thread-owner",
        type=int,
        action="append",
        default=[],
        metavar="K",
        help="make a user owning K item-less threads (threads.list), repeatable",
    )
    parser.add_argument(
        "--noise-users",
        type=int,
        default=0,
        help="other users to create as background noise (default 0)",
    )
    parser.add_argument(
        "--noise-threads", type=int, default=10, help="threads per noise user (default 10)"
    )
    parser.add_argument(
        "--noise-items", type=int, default=100, help="items per noise thread (default 100)"
    )
    parser.add_argument(
        "--method",
        choices=("auto", "copy", "bulk_create"),
        default="auto",
        help="auto: COPY on PostgreSQL, bulk_create elsewhere",
    )
    parser.add_argument(
        "--batch-size", type=int, default=20_000, help="bulk_create batch size (default 20000)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-analyze", action="store_true", help="skip VACUUM ANALYZE at the end")
    args = parser.parse_args(argv)

    from benchmarks._setup import setup

    setup()
    from django.conf import settings
    from django.db import connection

    from django_chatkit.models import Thread

    db = settings.DATABASES["default"]
    print(
        f"database: {connection.vendor} {db['NAME']} "
        f"({'COPY' if use_copy(args.method) else 'bulk_create'})"
    )
    changed = False

    if args.threads_for_user:
        user = get_user(args.user)
        todo = args.threads_for_user
        if args.reuse:
            have = Thread.objects.filter(
                user=user,
                metadata__bench__kind="history",
                metadata__bench__size=args.items_per_thread,
                metadata__bench__version=GENERATOR_VERSION,
            )
            if args.tie_group != 1:
                have = have.filter(metadata__bench__tie_group=args.tie_group)
            else:
                have = have.exclude(metadata__bench__has_key="tie_group")
            existing = have.count()
            todo = max(0, todo - existing)
            print(f"{args.user}: {existing} thread(s) of {args.items_per_thread:,} items exist")
        for number in range(todo):
            seed = None if args.seed is None else args.seed + number
            thread_id, seconds = create_history_thread(
                user,
                args.items_per_thread,
                method=args.method,
                batch_size=args.batch_size,
                seed=seed if seed is not None else secrets.randbits(32),
                tie_group=args.tie_group,
            )
            rate = args.items_per_thread / seconds if seconds else 0
            print(
                f"{args.user}: thread {thread_id} with {args.items_per_thread:,} items in "
                f"{seconds:.1f}s ({rate:,.0f} items/s)",
                flush=True,
            )
            changed = True

    for count in args.thread_owner:
        user, owner_seconds = ensure_thread_owner(
            count, method=args.method, batch_size=args.batch_size
        )
        if owner_seconds is None:
            print(f"{user.username}: exists ({count:,} threads)")
        else:
            print(f"{user.username}: {count:,} threads in {owner_seconds:.1f}s")
            changed = True

    if args.noise_users:
        written, _ = ensure_noise(
            args.noise_users,
            args.noise_threads,
            args.noise_items,
            method=args.method,
            batch_size=args.batch_size,
        )
        changed = changed or bool(written)

    if changed and not args.no_analyze:
        started = time.perf_counter()
        analyze()
        print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    sys.exit(main())
