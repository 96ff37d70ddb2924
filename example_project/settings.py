"""Settings for the demo site, driven by the environment.

SQLite by default; set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) for another
database and REDIS_URL to cache in Redis. Not for production as is: DEBUG defaults to on.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_flag("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-example-project-dev-only")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

# With OPENAI_API_KEY the demo talks to OpenAI (or to OPENAI_BASE_URL); without it, asgi.py
# starts the bundled fake OpenAI as an offline demo model.
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
OPENAI_MODEL = os.environ.get("OPENAI_MODEL", "gpt-4.1-mini")
# Hosted mode (docs/hosted.md): an Agent Builder workflow ("wf_...") whose widget the home page
# shows next to the self-hosted one. Without OPENAI_API_KEY the offline demo model mints its
# client secrets (stand-ins: OpenAI's widget cannot chat with them).
CHATKIT_WORKFLOW_ID = os.environ.get("CHATKIT_WORKFLOW_ID", "").strip()

INSTALLED_APPS = [
    "daphne",  # first, so that runserver serves ASGI and streams answers
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_chatkit",
    "example_project",  # the demo_user management command
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A readable 503 page instead of an HTML 500 while the database is down.
    "example_project.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "example_project.urls"
ASGI_APPLICATION = "example_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions and a generous timeout: concurrent streams write to one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }

# Live updates (docs/live.md): with Channels installed (the example extra has it), the widget and
# staff follow a thread as it changes. Across several workers through Redis when REDIS_URL is
# set; in one process's memory otherwise (enough for `make demo`'s single daphne).
LIVE = importlib.util.find_spec("channels") is not None
if LIVE:
    INSTALLED_APPS.append("channels")
    if os.environ.get("REDIS_URL"):
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # A read timeout above the layer's 5 s blocking reads: redis-py 8's default (5 s)
                # drops every socket every 5 s (chatkit.W008).
                "CONFIG": {"hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": 15}]},
            }
        }
    else:
        CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"

CHATKIT = {
    # The default server, AgentChatKitServer, answers with this agent.
    "AGENT": {
        "model": OPENAI_MODEL,
        "instructions": (
            "You are the assistant of a Django demo site. Answer briefly. "
            "Use the tools when they help."
        ),
        "tools": ["example_project.tools.current_time"],
    },
    "REQUESTS_PER_MINUTE": 20,
    "TOKENS_PER_DAY": 200_000,
    # Images and documents, stored under MEDIA_ROOT (STORAGES["default"]) and sent to the model.
    "ATTACHMENTS": {"ENABLED": True},
    # The {% chatkit %} widget on the home page. On a public host, register the domain on the
    # OpenAI platform and put its key in CHATKIT_DOMAIN_KEY (check chatkit.W002 reminds you).
    "DOMAIN_KEY": os.environ.get("CHATKIT_DOMAIN_KEY", "domain_pk_localhost_dev"),
    "WIDGET": {
        "greeting": "Ask the demo assistant anything.",
        "prompts": [
            {"label": "What time is it?", "prompt": "What time is it?", "icon": "calendar"},
            {"label": "What can you do?", "prompt": "What can you do?", "icon": "sparkle"},
        ],
        "placeholder": "Message the demo assistant",
        "disclaimer": "A demo: conversations are stored in this site's database.",
    },
    # The workflows the session endpoint mints client secrets for (the allow-list).
    "HOSTED_WORKFLOWS": [CHATKIT_WORKFLOW_ID] if CHATKIT_WORKFLOW_ID else [],
}
if not OPENAI_API_KEY:
    # asgi.py starts the offline demo model, or gives a server named by OPENAI_BASE_URL alone a
    # placeholder key: the key that check chatkit.W005 looks for is set when the server starts.
    SILENCED_SYSTEM_CHECKS = ["chatkit.W005", "chatkit.W009"]
