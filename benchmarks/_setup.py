"""Shared start-up for benchmark commands: settings, database creation, migrations."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import django


def ensure_database() -> bool:
    """Create the benchmark database when it is PostgreSQL and missing; True if created."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return False
    import psycopg
    from psycopg import sql

    params: dict[str, Any] = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    params = {key: value for key, value in params.items() if value}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        return True


def setup(*, migrate: bool = True, verbose: bool = True) -> None:
    """Configure Django with ``benchmarks.settings``, create the database, migrate it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()
    created = ensure_database()
    if verbose and created:
        from django.conf import settings

        print(f"created database {settings.DATABASES['default']['NAME']}")
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


REPO = Path(__file__).resolve().parent.parent


def git_state() -> str:
    """The commit the measured code is at, and whether django_chatkit/ differs from it."""

    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = run("rev-parse", "--short", "HEAD") or "unknown"
    dirty = run("status", "--porcelain", "--untracked-files=no", "--", "django_chatkit")
    return commit + (" + uncommitted changes in django_chatkit/" if dirty else "")


def write_report(path: Path, text: str) -> None:
    """Write a benchmark's markdown report to ``path`` and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print()
    print(text)
    print(f"written to {path}")


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
