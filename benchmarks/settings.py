"""Django settings for the benchmarks: the test settings, on a dedicated PostgreSQL database.

The database comes from ``BENCH_DATABASE_URL``, else ``DATABASE_URL``, else
``postgres://postgres@127.0.0.1:5432/chatkit_bench``. The harness creates a missing PostgreSQL
database itself (``benchmarks._setup.setup``). Benchmarks write millions of rows: point them at a
database of their own, never at one whose data matters.
"""

from __future__ import annotations

import os

import dj_database_url

from tests.settings import *  # noqa: F403

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatkit_bench"

DEBUG = False

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL,
        # One long-lived connection per thread, as a production worker would keep.
        conn_max_age=None,
    ),
}

# The SDK-facing server every deployment starts from; items.list/threads.list never reach respond().
CHATKIT = {"SERVER": "django_chatkit.server.DjangoChatKitServer"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # chatkit logs every request op at INFO: keep the timing loops quiet.
    "loggers": {"chatkit": {"level": "WARNING"}},
}
