"""Settings of the ASGI server process that serves our app in the overhead benchmark.

``benchmarks.settings`` (the benchmark database) plus what the harness passes in the environment:

- ``BENCH_CHATKIT``: the ``CHATKIT`` dict, as JSON.
- ``BENCH_CONN_MAX_AGE``: ``CONN_MAX_AGE`` (default 0, what Django's docs advise under ASGI).
- ``BENCH_DB_POOL``: JSON options of psycopg's connection pool (``OPTIONS["pool"]``, Django 5.1+),
  unset for no pool.
"""

from __future__ import annotations

import json
import os

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import DATABASES

DEBUG = False

DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))
if os.environ.get("BENCH_DB_POOL"):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = json.loads(os.environ["BENCH_DB_POOL"])

CHATKIT = json.loads(os.environ.get("BENCH_CHATKIT") or "{}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # chatkit logs every request op at INFO.
    "loggers": {"chatkit": {"level": "WARNING"}},
}

# So that the harness can count this server's connections in pg_stat_activity.
if os.environ.get("BENCH_DB_APPLICATION_NAME") and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = os.environ[
        "BENCH_DB_APPLICATION_NAME"
    ]
