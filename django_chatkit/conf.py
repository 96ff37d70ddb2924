"""The ``CHATKIT`` settings dict, read at access time so ``override_settings`` works.

Every key and its default lives in ``DEFAULTS``; docs/settings.md documents each one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.conf import settings as django_settings

from django_chatkit.types import AgentConfig, AttachmentsConfig, WidgetConfig

# ANONYMOUS_RETENTION's default: as long as a session lives (SESSION_COOKIE_AGE).
SESSION_RETENTION = "session"

# The development placeholder of DOMAIN_KEY: fine on localhost, not on a public host.
DEV_DOMAIN_KEY = "domain_pk_localhost_dev"

DEFAULTS: dict[str, Any] = {
    # Dotted path to the ChatKitServer subclass answering the endpoint (one instance per process).
    "SERVER": "django_chatkit.agent_server.AgentChatKitServer",
    # The agent: a dotted path to an agents.Agent (or to a callable taking the ChatKitContext and
    # returning one), or a dict with "model", "instructions", "name" and "tools" (dotted paths).
    # Without "model", the Agents SDK's default model is used.
    "AGENT": {"instructions": "You are a helpful assistant."},
    # How many of the newest thread items are sent to the model as history.
    "HISTORY_ITEMS": 40,
    # Name each new thread after its first message: with a model call (TITLE_MODEL, or the
    # agent's model when None), falling back to a clean truncation; False: truncation only.
    "GENERATE_TITLES": True,
    "TITLE_MODEL": None,
    # The Agents SDK's tracing exports every run (inputs and outputs) to OpenAI's trace ingest.
    # Off unless the site decides to turn it on.
    "TRACING": False,
    # The OpenAI client. None: the openai package's own defaults (OPENAI_API_KEY, OPENAI_BASE_URL).
    "OPENAI_API_KEY": None,
    "OPENAI_BASE_URL": None,
    # Seconds to wait for a connection / between two bytes of the answer, and retries of a
    # request that failed before its answer started (429, 5xx, connection errors).
    "OPENAI_CONNECT_TIMEOUT": 10.0,
    "OPENAI_READ_TIMEOUT": 60.0,
    "OPENAI_MAX_RETRIES": 2,
    # Attachments: stored through this Django STORAGES alias (local disk, S3 via django-storages).
    "STORAGE": "default",
    # Upload limits, checked on the real bytes and handed to the widget so both sides agree.
    # ALLOWED_TYPES maps each accepted MIME type to its file extensions (the widget's "accept").
    # Per owner (None: unlimited): MAX_PENDING_PER_OWNER attachments created but not yet sent in
    # a message, and MAX_BYTES_PER_OWNER bytes in all their attachments (uploaded sizes, and the
    # declared sizes of those still waiting for their bytes).
    "ATTACHMENTS": {
        "ENABLED": False,
        "MAX_BYTES": 10 * 1024 * 1024,
        "MAX_COUNT": 4,
        "MAX_PENDING_PER_OWNER": 10,
        "MAX_BYTES_PER_OWNER": 100 * 1024 * 1024,
        "ALLOWED_TYPES": {
            "image/png": [".png"],
            "image/jpeg": [".jpg", ".jpeg"],
            "image/gif": [".gif"],
            "image/webp": [".webp"],
            "application/pdf": [".pdf"],
            "text/plain": [".txt"],
            "text/markdown": [".md"],
            "text/csv": [".csv"],
        },
        # Images are decoded (checked pixel by pixel, previewed) only when that takes at most
        # MAX_DECODE_BYTES, estimated from the header; larger ones are accepted on their header
        # checks with a placeholder preview. A process decodes at most MAX_CONCURRENT_DECODES
        # images at once: its decoding memory stays below their product.
        "MAX_DECODE_BYTES": 96 * 1024 * 1024,
        "MAX_CONCURRENT_DECODES": 2,
    },
    # Seconds an upload URL (its signed token) stays valid after attachments.create.
    "UPLOAD_TOKEN_MAX_AGE": 300,
    # Origins that may upload cross-origin (CORS): the ChatKit iframe's. Same-origin always may.
    "UPLOAD_ALLOWED_ORIGINS": ["https://cdn.platform.openai.com"],
    # With django-storages' S3 backend: the browser PUTs straight to S3 through a presigned URL,
    # and the object is verified when a message first uses it. False: uploads go through the site.
    "S3_PRESIGNED_UPLOADS": False,
    # Seconds after which chatkit_cleanup_uploads removes an attachment that never finished
    # uploading or was never sent in a message (and its files).
    "ORPHAN_UPLOAD_MAX_AGE": 24 * 60 * 60,
    # Days a thread may stay idle (no new message, no rename: its last activity) before
    # chatkit_purge deletes it with its items, feedback, runs, attachments and files.
    # None: kept forever. Threads on legal hold are never purged.
    "RETENTION": None,
    # Days an anonymous visitor's thread may stay idle before chatkit_purge deletes it: its
    # owner reaches it only through their session. "session": SESSION_COOKIE_AGE (once the
    # session has expired, nobody can open the thread again); None: kept forever.
    "ANONYMOUS_RETENTION": SESSION_RETENTION,
    # Seconds the admin's usage overview keeps its figures (in the default cache): they
    # aggregate every run of 30 days, too much to recompute on every view of a busy site.
    # 0: computed on every view.
    "USAGE_CACHE_SECONDS": 300,
    # Per-owner quotas, shared by all workers through the Django cache. None: unlimited.
    "REQUESTS_PER_MINUTE": None,
    "TOKENS_PER_DAY": None,
    "QUOTA_CACHE": "default",
    # When the quota cache cannot be reached: False refuses turns (retryable 503 / error event),
    # True lets them through unlimited (and logs a warning).
    "QUOTA_FAIL_OPEN": False,
    # Anonymous visitors are also counted per client address (a visitor without a cookie is a
    # new visitor on every request). The address is REMOTE_ADDR, or with TRUSTED_PROXY_COUNT
    # reverse proxies in front (each appending to X-Forwarded-For), the address the outermost
    # trusted proxy saw. IPv6 addresses are counted per /64.
    "ANONYMOUS_LIMITS_PER_ADDRESS": True,
    "TRUSTED_PROXY_COUNT": 0,
    # Dotted path to a chatkit.store.AttachmentStore subclass, or None to refuse attachments.
    "ATTACHMENT_STORE": None,
    # Let visitors without an account chat; their threads are owned by their session.
    "ALLOW_ANONYMOUS": False,
    # Largest protocol request body accepted, in bytes (larger gets 413).
    "MAX_REQUEST_BYTES": 1024 * 1024,
    # Largest page a client may ask for in threads.list / items.list.
    "MAX_PAGE_SIZE": 100,
    # The {% chatkit %} widget. Defaults of its options; each tag argument replaces one key.
    # docs/settings.md and the README list what each one does.
    "WIDGET": {
        "theme": "light",  # "light", "dark", or a ChatKit theme dict (camelCase keys)
        "accent": None,  # a CSS color, or {"primary": color, "level": 0-3}
        "radius": None,  # "pill", "round", "soft", "sharp"; None: ChatKit's default
        "density": None,  # "compact", "normal", "spacious"; None: ChatKit's default
        "greeting": "",  # start screen text; "": ChatKit's default
        "prompts": [],  # starter prompts: strings, or {"label", "prompt", "icon"} dicts
        "placeholder": "",  # composer placeholder; "": ChatKit's default
        "locale": None,  # e.g. "fr-FR"; None: the browser's language
        "height": "600px",  # CSS height of the element (an int means pixels)
        "history": True,  # the thread history panel (with rename and delete)
        "feedback": True,  # thumbs up/down under answers (stored as Feedback rows)
        "retry": True,  # the retry button under answers
        "disclaimer": "",  # markdown shown under the composer
        "remember_thread": True,  # reopen the user's current thread on their next visit
        # Hosted mode (docs/hosted.md): the id of an Agent Builder workflow ("wf_..."), which
        # OpenAI runs and keeps; None: the self-hosted server (this app's endpoint) answers.
        "workflow": None,
        "options": {},  # any other ChatKit options, deep-merged last (camelCase keys)
    },
    # The key of the site's domain, registered on the OpenAI platform (Settings > Security >
    # Domain allowlist). Any non-empty value works on localhost; a public host needs a real one.
    "DOMAIN_KEY": DEV_DOMAIN_KEY,
    # The ChatKit web component's script. OpenAI serves it only from its CDN.
    "CDN_URL": "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js",
    # Live updates (docs/live.md): websockets a user (or anonymous visitor) may have open at once,
    # counted in QUOTA_CACHE (across workers when it is shared). None: unlimited.
    "LIVE_MAX_CONNECTIONS_PER_USER": 10,
    # Takeover (docs/live.md): the name staff replies are shown under to the user. None: the
    # translated "Support team". "{first_name}" / "{username}" in it name the staff member.
    "STAFF_DISPLAY_NAME": None,
    # Hosted mode (docs/hosted.md): the Agent Builder workflows a widget may mint client
    # secrets for, the allow-list of the session endpoint. A list of ids ("wf_..."), or a dict
    # of id to options: "version", "state_variables", "expires_after" (seconds a secret lives),
    # "max_requests_per_minute" (OpenAI's limit per session), "chatkit_configuration",
    # "tracing". WIDGET["workflow"] is allowed too, with no options.
    "HOSTED_WORKFLOWS": {},
    # Client secrets one owner (and, anonymous, one client address) may mint per minute,
    # counted in QUOTA_CACHE; None: unlimited (check chatkit.W010).
    "HOSTED_SESSIONS_PER_MINUTE": 10,
    # Milliseconds the bootstrap waits for that script before showing the "could not load" text.
    "LOAD_TIMEOUT_MS": 15000,
    # Importing hosted conversations for review (docs/hosted.md): threads and items per
    # upstream request; attempts of one request answered 429 / 5xx (or not at all) and the
    # base of their exponential backoff in seconds (Retry-After wins when OpenAI sends it);
    # the longest wait accepted before giving up (a longer Retry-After ends the run, to be
    # resumed later); how long an import started from the admin may run; and how long after
    # a user's last client secret their threads may still change (a user whose last secret
    # is older than that at their last import is not visited again until they open a session).
    "HOSTED_IMPORT_PAGE_SIZE": 100,
    "HOSTED_IMPORT_MAX_ATTEMPTS": 5,
    "HOSTED_IMPORT_BACKOFF": 1.0,
    "HOSTED_IMPORT_MAX_WAIT": 60.0,
    "HOSTED_IMPORT_ADMIN_SECONDS": 20.0,
    "HOSTED_IMPORT_ACTIVE_WINDOW": 3600,
}


class ChatKitSettings:
    """Typed view of ``settings.CHATKIT``; each property reads the setting anew."""

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, "CHATKIT", {})
        return value if isinstance(value, dict) else {}

    def _get(self, key: str) -> Any:
        return self.user_settings.get(key, DEFAULTS[key])

    @property
    def SERVER(self) -> str:
        return str(self._get("SERVER"))

    @property
    def ATTACHMENT_STORE(self) -> str | None:
        value = self._get("ATTACHMENT_STORE")
        return str(value) if value else None

    @property
    def ALLOW_ANONYMOUS(self) -> bool:
        return bool(self._get("ALLOW_ANONYMOUS"))

    @property
    def MAX_REQUEST_BYTES(self) -> int:
        return int(self._get("MAX_REQUEST_BYTES"))

    @property
    def MAX_PAGE_SIZE(self) -> int:
        return int(self._get("MAX_PAGE_SIZE"))

    @property
    def AGENT(self) -> str | AgentConfig:
        value = self._get("AGENT")
        # A dict's keys and values are checked by chatkit.E007 and when the agent is built.
        return cast(AgentConfig, value) if isinstance(value, dict) else str(value)

    @property
    def STAFF_DISPLAY_NAME(self) -> str | None:
        value = self._get("STAFF_DISPLAY_NAME")
        return str(value) if value else None

    @property
    def HISTORY_ITEMS(self) -> int:
        return int(self._get("HISTORY_ITEMS"))

    @property
    def GENERATE_TITLES(self) -> bool:
        return bool(self._get("GENERATE_TITLES"))

    @property
    def TITLE_MODEL(self) -> str | None:
        value = self._get("TITLE_MODEL")
        return str(value) if value else None

    @property
    def OPENAI_API_KEY(self) -> str | None:
        value = self._get("OPENAI_API_KEY")
        return str(value) if value else None

    @property
    def OPENAI_BASE_URL(self) -> str | None:
        value = self._get("OPENAI_BASE_URL")
        return str(value) if value else None

    @property
    def OPENAI_CONNECT_TIMEOUT(self) -> float:
        return float(self._get("OPENAI_CONNECT_TIMEOUT"))

    @property
    def OPENAI_READ_TIMEOUT(self) -> float:
        return float(self._get("OPENAI_READ_TIMEOUT"))

    @property
    def OPENAI_MAX_RETRIES(self) -> int:
        return int(self._get("OPENAI_MAX_RETRIES"))

    @property
    def HOSTED_IMPORT_PAGE_SIZE(self) -> int:
        return int(self._get("HOSTED_IMPORT_PAGE_SIZE"))

    @property
    def HOSTED_IMPORT_MAX_ATTEMPTS(self) -> int:
        return int(self._get("HOSTED_IMPORT_MAX_ATTEMPTS"))

    @property
    def HOSTED_IMPORT_BACKOFF(self) -> float:
        return float(self._get("HOSTED_IMPORT_BACKOFF"))

    @property
    def HOSTED_IMPORT_MAX_WAIT(self) -> float:
        return float(self._get("HOSTED_IMPORT_MAX_WAIT"))

    @property
    def HOSTED_IMPORT_ADMIN_SECONDS(self) -> float:
        return float(self._get("HOSTED_IMPORT_ADMIN_SECONDS"))

    @property
    def HOSTED_IMPORT_ACTIVE_WINDOW(self) -> timedelta:
        return timedelta(seconds=float(self._get("HOSTED_IMPORT_ACTIVE_WINDOW")))

    @property
    def REQUESTS_PER_MINUTE(self) -> int | None:
        value = self._get("REQUESTS_PER_MINUTE")
        return int(value) if value else None

    @property
    def TOKENS_PER_DAY(self) -> int | None:
        value = self._get("TOKENS_PER_DAY")
        return int(value) if value else None

    @property
    def STORAGE(self) -> str:
        return str(self._get("STORAGE"))

    @property
    def ATTACHMENTS(self) -> AttachmentsConfig:
        """The attachment limits, user values merged over the defaults key by key.

        Every key is present; the values are the user's as given (chatkit.E010 checks them).
        """
        value = self._get("ATTACHMENTS")
        merged = dict(DEFAULTS["ATTACHMENTS"])
        if isinstance(value, dict):
            merged.update(value)
        return cast(AttachmentsConfig, merged)

    @property
    def UPLOAD_TOKEN_MAX_AGE(self) -> int:
        return int(self._get("UPLOAD_TOKEN_MAX_AGE"))

    @property
    def UPLOAD_ALLOWED_ORIGINS(self) -> list[str]:
        return [str(origin) for origin in self._get("UPLOAD_ALLOWED_ORIGINS") or ()]

    @property
    def S3_PRESIGNED_UPLOADS(self) -> bool:
        return bool(self._get("S3_PRESIGNED_UPLOADS"))

    @property
    def ORPHAN_UPLOAD_MAX_AGE(self) -> int:
        return int(self._get("ORPHAN_UPLOAD_MAX_AGE"))

    @property
    def RETENTION(self) -> timedelta | None:
        """How long a signed-in user's thread may stay idle; None: forever."""
        value = self._get("RETENTION")
        return None if value is None else timedelta(days=value)

    @property
    def ANONYMOUS_RETENTION(self) -> timedelta | None:
        """How long an anonymous visitor's thread may stay idle; None: forever."""
        value = self._get("ANONYMOUS_RETENTION")
        if value is None:
            return None
        if value == SESSION_RETENTION:
            return timedelta(seconds=int(django_settings.SESSION_COOKIE_AGE))
        return timedelta(days=value)

    @property
    def USAGE_CACHE_SECONDS(self) -> int:
        return int(self._get("USAGE_CACHE_SECONDS"))

    @property
    def QUOTA_CACHE(self) -> str:
        return str(self._get("QUOTA_CACHE"))

    @property
    def QUOTA_FAIL_OPEN(self) -> bool:
        return bool(self._get("QUOTA_FAIL_OPEN"))

    @property
    def ANONYMOUS_LIMITS_PER_ADDRESS(self) -> bool:
        return bool(self._get("ANONYMOUS_LIMITS_PER_ADDRESS"))

    @property
    def TRUSTED_PROXY_COUNT(self) -> int:
        return int(self._get("TRUSTED_PROXY_COUNT"))

    @property
    def TRACING(self) -> bool:
        return bool(self._get("TRACING"))

    @property
    def WIDGET(self) -> WidgetConfig:
        """The widget option defaults, user values merged over ours key by key.

        Every key is present; the values are the user's as given (chatkit.E009 checks them).
        """
        value = self._get("WIDGET")
        merged = dict(DEFAULTS["WIDGET"])
        if isinstance(value, dict):
            merged.update(value)
        return cast(WidgetConfig, merged)

    @property
    def DOMAIN_KEY(self) -> str:
        return str(self._get("DOMAIN_KEY") or "")

    @property
    def CDN_URL(self) -> str:
        return str(self._get("CDN_URL"))

    @property
    def LIVE_MAX_CONNECTIONS_PER_USER(self) -> int | None:
        value = self._get("LIVE_MAX_CONNECTIONS_PER_USER")
        return int(value) if value is not None else None

    @property
    def HOSTED_WORKFLOWS(self) -> Any:
        """As given: ``django_chatkit.hosted.workflows`` reads it (chatkit.E015 checks it)."""
        return self._get("HOSTED_WORKFLOWS")

    @property
    def HOSTED_SESSIONS_PER_MINUTE(self) -> int | None:
        value = self._get("HOSTED_SESSIONS_PER_MINUTE")
        return int(value) if value is not None else None

    @property
    def LOAD_TIMEOUT_MS(self) -> int:
        return int(self._get("LOAD_TIMEOUT_MS"))


chatkit_settings = ChatKitSettings()

# Settings whose value is a dotted import path; checked by checks.py and loaded by loading.py.
DOTTED_PATH_SETTINGS = ("SERVER", "ATTACHMENT_STORE")
