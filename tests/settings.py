"""Settings for the test suite. DATABASE_URL picks the database (SQLite when unset)."""

from __future__ import annotations

import json
import os
import tempfile

import dj_database_url

SECRET_KEY = "django_chatkit-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Europe/Paris"  # not UTC, so naive/aware mistakes show up

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_chatkit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# Live-server tests may serve another URLconf (tests/urls_without_static.py: no static files).
ROOT_URLCONF = os.environ.get("CHATKIT_TEST_URLCONF", "tests.urls")
ASGI_APPLICATION = "tests.asgi.application"

DATABASES = {
    "default": dj_database_url.config(default="sqlite:///:memory:", conn_max_age=0),
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # One test database per run, so that parallel runs on one server do not collide.
    # CHATKIT_TEST_RUN_ID lets a caller (.ci/run) know the name, to check nothing is left behind.
    run_id = os.environ.get("CHATKIT_TEST_RUN_ID") or str(os.getpid())
    DATABASES["default"]["TEST"] = {"NAME": f"test_chatkit_{run_id}"}
    if os.environ.get("CHATKIT_TEST_DB_POOL"):  # live servers started with Django's psycopg pool
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
else:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
    # A file, not :memory:, so that live ASGI server processes started by tests share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"django_chatkit_test_{os.getpid()}.sqlite3")
    }


if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The browser tests' page and login form (tests/test_browser.py).
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A real-looking DOMAIN_KEY: with DEBUG off, the development placeholder warns (chatkit.W002).
CHATKIT = {"SERVER": "tests.servers.ScriptedServer", "DOMAIN_KEY": "domain_pk_tests"}
# Live-server tests that store files give the server process a temporary MEDIA_ROOT.
if os.environ.get("CHATKIT_TEST_MEDIA_ROOT"):
    MEDIA_ROOT = os.environ["CHATKIT_TEST_MEDIA_ROOT"]
# Live-server tests hand their CHATKIT settings to the server process as JSON.
if os.environ.get("CHATKIT_TEST_SETTINGS"):
    CHATKIT = json.loads(os.environ["CHATKIT_TEST_SETTINGS"])
# Live-server tests of live updates give the server process a channel layer (tests/live_asgi.py).
if os.environ.get("CHATKIT_TEST_CHANNEL_LAYERS"):
    CHANNEL_LAYERS = json.loads(os.environ["CHATKIT_TEST_CHANNEL_LAYERS"])
# Live-server tests that store attachments point the server's default storage at a temporary
# directory (the test process's override_settings does not reach another process).
if os.environ.get("CHATKIT_TEST_MEDIA_ROOT"):
    MEDIA_ROOT = os.environ["CHATKIT_TEST_MEDIA_ROOT"]
