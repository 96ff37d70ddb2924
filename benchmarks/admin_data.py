"""The admin scenario's data: one PostgreSQL database per size, filled by SQL, reused.

``benchmarks.admin_scale`` measures the admin at several sizes (10,000 and 1,000,000 threads by
default); each size has a database of its own, ``<prefix>_<threads>`` (``chatkit_bench_admin_
10000``, ``chatkit_bench_admin_1000000``), on the server of ``BENCH_DATABASE_URL``. Loading a
million threads takes minutes, so a database is reused as long as its marker row
(``bench_admin_marker``) records the same parameters; otherwise it is dropped, created,
migrated and filled again.

What a database holds (every number derives from the thread's ordinal ``g`` through
``hashint8extended``, so two loads with the same parameters hold the same rows):

- ``users`` users (``bench-user-000001``...), each thread owned by one of them, one in ten
  by an anonymous session instead;
- ``threads`` threads created over the last 365 days (last activity a few minutes after),
  titled with two or three words of ``TITLE_WORDS`` (one in twenty untitled), 1% locked, 1%
  closed, 0.1% on legal hold; 2, 4, 6 or 8 items each (5 on average): user and assistant
  messages alternating, texts drawn from ``benchmarks.generate.Texts`` (the history
  benchmark's), payloads built from a real ``UserMessageItem`` / ``AssistantMessageItem``
  dumped by ``item_row_values`` exactly as ``DjangoStore`` writes it (id, thread id, time and
  text substituted in SQL), ``text`` the column ``item_text`` fills;
- ``TEXT_WORD`` appended to the first answer of twenty threads (spread over the ordinals): the
  message-text search has a few rows to find at every size;
- one answer ``Run`` per assistant message (3 models, 2% failed, 0.5% cancelled, tokens),
  ``Feedback`` on one answer in thirty (a third negative), an ``Attachment`` on 1% of threads;
- ``deep_threads`` threads of ``deep_items`` items (100,000) for one user, the newest activity
  of the site, for the transcript's first and deepest pages.

Loading: the tables' secondary indexes and their unique and foreign key constraints are
dropped, rows are made by ``INSERT ... SELECT`` over ``generate_series`` inside PostgreSQL (no
row goes through Python), then the indexes and constraints are built again (one sort each,
``maintenance_work_mem`` raised) and every table is ``VACUUM (ANALYZE)``-ed. The time of each
step is kept in the marker and shown in the report.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

# Bump when the shape of the data changes: older databases are then loaded again.
DATA_VERSION = 1
MARKER_TABLE = "bench_admin_marker"
STAGE_TABLE = "bench_admin_stage"
TEXTS_TABLE = "bench_admin_texts"
DEEP_USER = "bench-admin-deep"
SUPERUSER = "bench-admin"
# In titles only (no message text has them): a title search finds titles, not messages.
TITLE_WORDS = [
    "wedding",
    "trip",
    "planning",
    "recipe",
    "ideas",
    "resume",
    "review",
    "tax",
    "question",
    "garden",
    "layout",
    "poem",
    "cats",
    "workout",
    "plan",
    "birthday",
    "party",
    "budget",
    "spreadsheet",
    "cover",
    "letter",
    "lesson",
    "notes",
    "travel",
    "itinerary",
    "kitchen",
    "renovation",
    "podcast",
    "script",
    "job",
    "interview",
    "apartment",
    "lease",
    "grant",
    "proposal",
]
TITLE_WORD = "wedding"
# In the text of twenty items at every size: the message-text search's word (in no title).
TEXT_WORD = "zanzibar"
PLANTED = 20
TEXT_POOL = 512
MODELS = ("gpt-4.1", "gpt-4.1-mini", "o4-mini")


@dataclass(frozen=True)
class Params:
    """What a database holds; the marker row records it, a difference means loading again."""

    threads: int
    users: int = 10_000
    deep_threads: int = 3
    deep_items: int = 100_000
    version: int = DATA_VERSION

    def plant_step(self) -> int:
        return max(self.threads // PLANTED, 1)

    def planted_ordinals(self) -> list[int]:
        step = self.plant_step()
        return list(range(step, self.threads + 1, step))[:PLANTED]


def thread_id(ordinal: int) -> str:
    """The id of the thread of this ordinal (30 characters, as ``django_chatkit.ids`` makes)."""
    return f"thr_{ordinal:026d}"


def deep_thread_ids(params: Params) -> list[str]:
    return [thread_id(params.threads + n) for n in range(1, params.deep_threads + 1)]


# -- databases ------------------------------------------------------------------------------------


def server_params() -> dict[str, Any]:
    """psycopg connection arguments of the benchmark server (``benchmarks.settings``)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("the admin scenario needs PostgreSQL (BENCH_DATABASE_URL)")
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    return {key: value for key, value in params.items() if value}


def maintenance(statement: str, name: str) -> bool:
    """CREATE or DROP a database from the server's ``postgres`` database; False if it was a
    no-op (created: it existed; dropped: it did not)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **server_params()) as conn:
        exists = bool(
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        )
        if statement == "create" and not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
        if statement == "drop" and exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            return True
    return False


def read_marker() -> dict[str, Any] | None:
    """The marker row of the active database, or None (missing table: not loaded)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [MARKER_TABLE])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(f"SELECT info FROM {MARKER_TABLE} ORDER BY loaded_at DESC LIMIT 1")
        row = cursor.fetchone()
    if row is None:
        return None
    info = row[0]
    return dict(json.loads(info) if isinstance(info, str) else info)


# -- loading --------------------------------------------------------------------------------------


class Steps:
    """Times each loading step, printing as it goes."""

    def __init__(self, label: str) -> None:
        self.label = label
        # A list, in order (the marker is jsonb, whose objects do not keep their keys' order).
        self.seconds: list[tuple[str, float]] = []
        self.started = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        print(f"  [{self.label}] {name}...", flush=True)
        yield
        elapsed = time.perf_counter() - begin
        self.seconds.append((name, round(elapsed, 1)))
        print(f"  [{self.label}] {name}: {elapsed:.1f}s", flush=True)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 1)


def _execute(sql: str, params: dict[str, Any] | list[Any] | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _tables() -> dict[str, str]:
    from django_chatkit.models import Attachment, Feedback, Run, Thread, ThreadItem

    return {
        model.__name__.lower(): model._meta.db_table
        for model in (Thread, ThreadItem, Run, Feedback, Attachment)
    }


def _drop_secondary(tables: list[str]) -> list[tuple[str, str]]:
    """Drop the tables' unique and foreign key constraints and other non-primary indexes; the
    statements that make them again (indexes first, then constraints), each with a name."""
    from django.db import connection

    indexes: list[tuple[str, str]] = []
    constraints: list[tuple[str, str]] = []
    drops: list[str] = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
                [table],
            )
            for name, definition in cursor.fetchall():
                statement = f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
                constraints.append((f"constraint {name}", statement))
                drops.append(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
                [table],
            )
            for name, definition in cursor.fetchall():
                indexes.append((f"index {name}", definition))
                drops.append(f'DROP INDEX "{name}"')
    # Foreign keys first: a unique constraint may be what another table's key points at.
    for statement in sorted(drops, key=lambda s: "DROP CONSTRAINT" not in s):
        _execute(statement)
    return indexes + constraints


def _templates() -> dict[str, str]:
    """JSON payloads of real SDK objects, as the store writes them: SQL swaps in the ids, the
    time and the text."""
    from chatkit.types import FileAttachment

    from benchmarks.generate import BASE_TIME, Texts, build_item
    from django_chatkit.serialization import item_row_values

    rng = random.Random(0)
    texts = Texts.make(rng, size=2)
    user = item_row_values(build_item("thr_x", 0, BASE_TIME, texts, rng))["payload"]
    assistant = item_row_values(build_item("thr_x", 1, BASE_TIME, texts, rng))["payload"]
    attachment = FileAttachment(
        id="atc_x", name="report.pdf", mime_type="application/pdf", thread_id="thr_x"
    ).model_dump(mode="json")
    return {
        "user_tpl": json.dumps(user),
        "assistant_tpl": json.dumps(assistant),
        "attachment_tpl": json.dumps(attachment),
    }


def load(params: Params, label: str) -> dict[str, Any]:
    """Fill the active (freshly migrated, empty) database; what the marker records."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from benchmarks.generate import Texts

    steps = Steps(label)
    tables = _tables()
    user_table = get_user_model()._meta.db_table
    now = datetime.now(UTC).replace(microsecond=0)
    sql_params: dict[str, Any] = {
        "n": params.threads,
        "users": params.users,
        "deep": params.deep_threads,
        "deep_items": params.deep_items,
        "now": now,
        "tz": settings.TIME_ZONE,
        "plant_step": params.plant_step(),
        "planted": PLANTED,
        "word": TEXT_WORD,
        "title_words": TITLE_WORDS,
        "models": list(MODELS),
        "pool": TEXT_POOL,
        **_templates(),
    }
    _execute("SET maintenance_work_mem = '1GB'")
    _execute("SET work_mem = '256MB'")
    with steps.step("drop secondary indexes and constraints"):
        rebuild = _drop_secondary(list(tables.values()))
    with steps.step(f"{params.users:,} users"):
        _execute(
            f'INSERT INTO "{user_table}" (password, is_superuser, username, first_name, '
            "last_name, email, is_staff, is_active, date_joined) "
            "SELECT '!', false, 'bench-user-' || lpad(u::text, 6, '0'), '', '', "
            "'user' || u || '@example.com', false, true, %(now)s - interval '400 days' "
            "FROM generate_series(1, %(users)s) AS u",
            sql_params,
        )
        _execute(
            f'INSERT INTO "{user_table}" (password, is_superuser, username, first_name, '
            "last_name, email, is_staff, is_active, date_joined) "
            "VALUES ('!', false, %(deep_user)s, '', '', '', false, true, %(now)s)",
            {**sql_params, "deep_user": DEEP_USER},
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT min(id), max(id) FROM "{user_table}" WHERE username LIKE %s',
                ["bench-user-%"],
            )
            first, last = cursor.fetchone()
            cursor.execute(f'SELECT id FROM "{user_table}" WHERE username = %s', [DEEP_USER])
            deep_user = cursor.fetchone()[0]
        # Owners are picked as first + k: the ids must be one unbroken range.
        assert last - first + 1 == params.users, (first, last)
        sql_params.update(first_user=first, deep_user=deep_user)
    with steps.step("message texts"):
        _execute(
            f"CREATE UNLOGGED TABLE {TEXTS_TABLE} (kind int, n int, text text, PRIMARY KEY (kind, n))"
        )
        texts = Texts.make(random.Random(1), size=TEXT_POOL)
        for kind, pool in enumerate((texts.user, texts.assistant)):
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {TEXTS_TABLE} (kind, n, text) FROM STDIN") as copy,
            ):
                for n, text in enumerate(pool):
                    copy.write_row((kind, n, text))
        _execute(f"ANALYZE {TEXTS_TABLE}")
    with steps.step("thread plan"):
        # One row per thread: what the inserts below derive the thread and its rows from.
        # h(salt) = a pseudo-random non-negative bigint of the ordinal.
        _execute(
            f"CREATE UNLOGGED TABLE {STAGE_TABLE} AS "
            "SELECT g, 'thr_' || lpad(g::text, 26, '0') AS id, "
            "CASE WHEN g > %(n)s THEN %(deep_user)s "
            "     WHEN abs(hashint8extended(g, 7)) %% 10 = 0 THEN NULL "
            "     ELSE %(first_user)s + abs(hashint8extended(g, 1)) %% %(users)s END AS user_id, "
            "CASE WHEN g <= %(n)s AND abs(hashint8extended(g, 7)) %% 10 = 0 "
            "     THEN md5(g::text) ELSE '' END AS anonymous_key, "
            "CASE WHEN g > %(n)s THEN %(deep_items)s "
            "     ELSE 2 * (1 + abs(hashint8extended(g, 2)) %% 4) END AS n_items, "
            "CASE WHEN g > %(n)s "
            "     THEN %(now)s - interval '100 days' - (g - %(n)s) * interval '1 hour' "
            "     ELSE %(now)s - interval '365 days' * (1 - g::float8 / %(n)s) "
            "          - interval '1 hour' "
            "          - abs(hashint8extended(g, 3)) %% 3000 * interval '1 second' END "
            "  AS created_at, "
            # Deep threads' items span up to 99 days; the others', 20 seconds apart.
            "CASE WHEN g > %(n)s THEN interval '99 days' / %(deep_items)s "
            "     ELSE interval '20 seconds' END AS step "
            "FROM generate_series(1, %(n)s + %(deep)s) AS g",
            sql_params,
        )
        _execute(f"ANALYZE {STAGE_TABLE}")
    with steps.step(f"{params.threads + params.deep_threads:,} threads"):
        _execute(
            f'INSERT INTO "{tables["thread"]}" (id, user_id, anonymous_key, title, status, '
            "status_reason, moderator_note, legal_hold, deleted_by_owner_at, created_at, "
            "updated_at, allowed_image_domains, metadata) "
            "SELECT s.id, s.user_id, s.anonymous_key, "
            "CASE WHEN s.g > %(n)s THEN 'Long conversation ' || (s.g - %(n)s) "
            "     WHEN abs(hashint8extended(s.g, 4)) %% 20 = 0 THEN '' "
            "     ELSE initcap(tw[1 + abs(hashint8extended(s.g, 5)) %% cardinality(tw)]) || ' ' "
            "       || tw[1 + abs(hashint8extended(s.g, 6)) %% cardinality(tw)] "
            "       || CASE WHEN abs(hashint8extended(s.g, 8)) %% 2 = 0 THEN '' ELSE ' ' "
            "         || tw[1 + abs(hashint8extended(s.g, 9)) %% cardinality(tw)] END END, "
            "st.status, "
            "CASE st.status WHEN 'locked' THEN 'Locked by a moderator.' "
            "     WHEN 'closed' THEN 'Closed by a moderator.' ELSE '' END, "
            "CASE WHEN st.status = 'active' THEN '' ELSE 'Reported by a user.' END, "
            "abs(hashint8extended(s.g, 11)) %% 1000 = 0, NULL, "
            "s.created_at, s.created_at + (s.n_items - 1) * s.step + interval '3 seconds', "
            "NULL, '{}'::jsonb "
            "FROM " + STAGE_TABLE + " s "
            "CROSS JOIN (SELECT %(title_words)s::text[] AS tw) w "
            "CROSS JOIN LATERAL (SELECT CASE abs(hashint8extended(s.g, 10)) %% 100 "
            "  WHEN 0 THEN 'locked' WHEN 1 THEN 'closed' ELSE 'active' END AS status) st "
            "ORDER BY s.g",
            sql_params,
        )
    items = params.threads * 5 + params.deep_threads * params.deep_items
    with steps.step(f"about {items:,} items"):
        count = _execute(
            f'INSERT INTO "{tables["threaditem"]}" (thread_id, item_id, type, created_at, text, '
            "payload) "
            "SELECT i.thread_id, i.item_id, i.type, i.created_at, i.text, "
            "jsonb_set(jsonb_set(jsonb_set(jsonb_set("
            "  CASE WHEN i.kind = 0 THEN %(user_tpl)s::jsonb ELSE %(assistant_tpl)s::jsonb END, "
            "  '{id}', to_jsonb(i.item_id)), '{thread_id}', to_jsonb(i.thread_id)), "
            # The SDK's naive local time, as model_dump(mode="json") writes it.
            "  '{created_at}', to_jsonb(to_char(i.created_at AT TIME ZONE %(tz)s, "
            "    'YYYY-MM-DD\"T\"HH24:MI:SS.US'))), "
            "  '{content,0,text}', to_jsonb(i.text)) "
            "FROM (SELECT o.thread_id, o.item_id, o.kind, o.type, o.created_at, "
            # A subquery per row (not a join, which could reorder the rows)...
            "  (SELECT t.text FROM " + TEXTS_TABLE + " t "
            "   WHERE t.kind = o.k %% 2 AND t.n = abs(hashint8extended(o.k, o.g)) %% %(pool)s) "
            "  || CASE WHEN o.k = 1 AND o.g <= %(n)s AND o.g %% %(plant_step)s = 0 "
            "       AND o.g / %(plant_step)s <= %(planted)s "
            "       THEN ' ' || initcap(%(word)s) || '.' ELSE '' END AS text "
            "  FROM (SELECT s.g, k, s.id AS thread_id, "
            "    'msg_' || lpad(to_hex(s.g), 8, '0') || lpad(k::text, 18, '0') AS item_id, "
            "    k %% 2 AS kind, "
            "    CASE WHEN k %% 2 = 0 THEN 'user_message' ELSE 'assistant_message' END AS type, "
            "    s.created_at + k * s.step AS created_at "
            "    FROM " + STAGE_TABLE + " s "
            "    CROSS JOIN LATERAL generate_series(0, s.n_items - 1) AS k "
            # In time order, as a live site appends them: threads' items interleave in the
            # table, so a page of one thread reads as many heap pages as it would in production.
            "    ORDER BY 7, 1, 2) AS o "
            # ...computed once (OFFSET 0 keeps the subquery from being inlined twice).
            "  OFFSET 0) AS i",
            sql_params,
        )
    with steps.step("runs (one per answer)"):
        runs = _execute(
            f'INSERT INTO "{tables["run"]}" (user_id, anonymous_key, thread_id, kind, model, '
            "status, error_code, error_message, started_at, first_token_at, finished_at, "
            "input_tokens, output_tokens, response_id) "
            "SELECT s.user_id, s.anonymous_key, s.id, 'answer', "
            "  (%(models)s::text[])[1 + abs(hashint8extended(k, s.g + 1)) %% 3], r.status, "
            "  CASE WHEN r.status = 'failed' THEN 'rate_limit_exceeded' ELSE '' END, "
            "  CASE WHEN r.status = 'failed' THEN 'Rate limit reached for requests' ELSE '' END, "
            "  s.created_at + k * s.step - interval '4 seconds', "
            "  s.created_at + k * s.step - interval '3.2 seconds', "
            "  s.created_at + k * s.step + interval '3 seconds', "
            "  200 + abs(hashint8extended(k, s.g + 2)) %% 4000, "
            "  50 + abs(hashint8extended(k, s.g + 3)) %% 800, "
            "  'resp_' || md5(s.g::text || '/' || k::text) "
            "FROM " + STAGE_TABLE + " s "
            "CROSS JOIN LATERAL generate_series(1, s.n_items - 1, 2) AS k "
            "CROSS JOIN LATERAL (SELECT CASE abs(hashint8extended(k, s.g + 4)) %% 200 "
            "  WHEN 0 THEN 'cancelled' WHEN 1 THEN 'failed' WHEN 2 THEN 'failed' "
            "  WHEN 3 THEN 'failed' WHEN 4 THEN 'failed' ELSE 'completed' END AS status) r",
            sql_params,
        )
    with steps.step("feedback"):
        feedback = _execute(
            f'INSERT INTO "{tables["feedback"]}" (thread_id, item_id, kind, created_at, '
            "updated_at, reviewed_at, reviewed_by_id, review_note) "
            "SELECT s.id, 'msg_' || lpad(to_hex(s.g), 8, '0') || lpad(k::text, 18, '0'), "
            "  CASE WHEN abs(hashint8extended(k, s.g + 6)) %% 3 = 0 "
            "       THEN 'negative' ELSE 'positive' END, "
            "  s.created_at + k * s.step + interval '1 minute', "
            "  s.created_at + k * s.step + interval '1 minute', NULL, NULL, '' "
            "FROM " + STAGE_TABLE + " s "
            "CROSS JOIN LATERAL generate_series(1, s.n_items - 1, 2) AS k "
            "WHERE abs(hashint8extended(k, s.g + 5)) %% 30 = 0",
            sql_params,
        )
    with steps.step("attachments"):
        attachments = _execute(
            f'INSERT INTO "{tables["attachment"]}" (id, user_id, anonymous_key, thread_id, type, '
            "name, mime_type, created_at, payload, status, storage_alias, storage_name, "
            "incoming_name, size, sha256) "
            "SELECT a.id, s.user_id, s.anonymous_key, s.id, 'file', 'report.pdf', "
            "  'application/pdf', s.created_at, "
            "  jsonb_set(jsonb_set(%(attachment_tpl)s::jsonb, '{id}', to_jsonb(a.id)), "
            "    '{thread_id}', to_jsonb(s.id)), "
            "  'ready', 'default', 'chatkit/' || a.id, '', "
            "  1000 + abs(hashint8extended(s.g, 13)) %% 5000000, md5(a.id) || md5(s.id) "
            "FROM " + STAGE_TABLE + " s "
            "CROSS JOIN LATERAL (SELECT 'atc_' || lpad(s.g::text, 26, '0') AS id) a "
            "WHERE abs(hashint8extended(s.g, 12)) %% 100 = 0",
            sql_params,
        )
    for name, statement in rebuild:
        with steps.step(name):
            _execute(statement)
    with steps.step("drop the plan tables"):
        _execute(f"DROP TABLE {STAGE_TABLE}")
        _execute(f"DROP TABLE {TEXTS_TABLE}")
    with steps.step("VACUUM (ANALYZE)"):
        for table in [*tables.values(), user_table]:
            _execute(f'VACUUM (ANALYZE) "{table}"')
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = int(cursor.fetchone()[0])
    info = {
        "params": asdict(params),
        "loaded_at": now.isoformat(),
        "load_seconds": steps.total(),
        "steps": steps.seconds,
        "rows": {
            "threads": params.threads + params.deep_threads,
            "items": count,
            "runs": runs,
            "feedback": feedback,
            "attachments": attachments,
            "users": params.users + 1,
        },
        "database_bytes": size,
    }
    _execute(f"CREATE TABLE {MARKER_TABLE} (info jsonb NOT NULL, loaded_at timestamptz NOT NULL)")
    _execute(
        f"INSERT INTO {MARKER_TABLE} (info, loaded_at) VALUES (%s::jsonb, %s)",
        [json.dumps(info), now],
    )
    return info
