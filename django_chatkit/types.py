"""Types of the extension points, for annotating your settings and factories.

``CHATKIT`` and its nested dicts (``ChatKitConfig``, ``AttachmentsConfig``, ``WidgetConfig``,
``AgentConfig``), the callable ``CHATKIT["AGENT"]`` may name (``AgentFactory``), and what
``CHATKIT["ATTACHMENT_STORE"]`` names (``AttachmentStoreFactory``)::

    from django_chatkit.types import ChatKitConfig

    CHATKIT: ChatKitConfig = {"AGENT": "myapp.chat.agent_for", "WIDGET": {"theme": "dark"}}

Every dict is ``total=False``: each key is optional, as in ``CHATKIT``. The system checks
(docs/checks.md) still validate the values at startup; these types let a type checker catch the
same mistakes earlier. docs/settings.md documents every key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

# The SDKs take about two seconds to import and the settings module imports this one: their
# types are needed by the type checker only.
if TYPE_CHECKING:
    from agents import Agent
    from chatkit.store import AttachmentStore
    from django.utils.functional import _StrPromise

    from django_chatkit.context import ChatKitContext

    # Texts may be lazy translations (gettext_lazy); they are rendered as strings.
    Text = str | _StrPromise
else:
    Text = str


__all__ = [
    "AccentConfig",
    "AgentConfig",
    "AgentFactory",
    "AttachmentStoreFactory",
    "AttachmentsConfig",
    "ChatKitConfig",
    "HistoryConfig",
    "PromptConfig",
    "WidgetConfig",
]


class AgentFactory(Protocol):
    """What ``CHATKIT["AGENT"]`` may name instead of an ``agents.Agent``: a per-request agent.

    Called with the request's context for every turn; may be ``async``. The agent runs with an
    ``AgentContext[ChatKitContext]`` (chatkit.agents) as its run context.
    """

    def __call__(self, context: ChatKitContext, /) -> Agent[Any] | Awaitable[Agent[Any]]: ...


class AttachmentStoreFactory(Protocol):
    """What ``CHATKIT["ATTACHMENT_STORE"]`` names: called with no arguments, once per server.

    Usually an ``AttachmentStore[ChatKitContext]`` subclass (chatkit.store) whose ``__init__``
    takes no arguments.
    """

    def __call__(self) -> AttachmentStore[ChatKitContext]: ...


class AgentConfig(TypedDict, total=False):
    """``CHATKIT["AGENT"]`` as a dict (the alternative to a dotted path)."""

    model: str | None  # None or missing: the Agents SDK's default model
    instructions: str
    name: str
    # A list or tuple of dotted paths to @function_tool objects or plain functions (wrapped).
    tools: Sequence[str]


class AttachmentsConfig(TypedDict, total=False):
    """``CHATKIT["ATTACHMENTS"]``, merged key by key over the defaults."""

    ENABLED: bool
    MAX_BYTES: int
    MAX_COUNT: int
    MAX_PENDING_PER_OWNER: int | None
    MAX_BYTES_PER_OWNER: int | None
    # MIME type -> accepted extensions, e.g. {"image/png": [".png"]}
    ALLOWED_TYPES: Mapping[str, Sequence[str]]
    MAX_DECODE_BYTES: int
    MAX_CONCURRENT_DECODES: int


class AccentConfig(TypedDict, total=False):
    """``WIDGET["accent"]`` as a dict; ``primary`` is required by the checks."""

    primary: Text  # a CSS color
    level: Literal[0, 1, 2, 3]


class PromptConfig(TypedDict, total=False):
    """One of ``WIDGET["prompts"]`` as a dict; ``label`` and ``prompt`` are required."""

    label: Text
    prompt: Text
    icon: str


class HistoryConfig(TypedDict, total=False):
    """``WIDGET["history"]`` as a dict (ChatKit's camelCase keys)."""

    enabled: bool
    showDelete: bool
    showRename: bool


class HostedWorkflowConfig(TypedDict, total=False):
    """The options of one workflow in ``HOSTED_WORKFLOWS`` (a dict), all optional."""

    version: str
    state_variables: Mapping[str, str | int | float | bool]
    expires_after: int  # seconds a client secret lives (OpenAI's default: 600)
    max_requests_per_minute: int  # OpenAI's per-session limit (its default: 10)
    chatkit_configuration: Mapping[str, Any]  # sent as is (file_upload, history, titling)
    tracing: bool


class WidgetConfig(TypedDict, total=False):
    """``CHATKIT["WIDGET"]``: defaults of the ``{% chatkit %}`` tag's options."""

    theme: Literal["light", "dark"] | Mapping[str, Any]  # or a ChatKit theme dict
    accent: Text | AccentConfig | None
    radius: Literal["pill", "round", "soft", "sharp"] | None
    density: Literal["compact", "normal", "spacious"] | None
    greeting: Text
    prompts: Sequence[Text | PromptConfig]  # a list or tuple
    placeholder: Text
    locale: Text | None
    height: str | int  # a CSS height; an int means pixels
    history: bool | HistoryConfig
    feedback: bool
    retry: bool
    disclaimer: Text
    remember_thread: bool
    workflow: str | None  # hosted mode: an Agent Builder workflow id ("wf_...")
    options: Mapping[str, Any]  # any other ChatKit options (camelCase), deep-merged last


class ChatKitConfig(TypedDict, total=False):
    """``settings.CHATKIT``."""

    SERVER: str
    AGENT: str | AgentConfig
    HISTORY_ITEMS: int
    GENERATE_TITLES: bool
    TITLE_MODEL: str | None
    TRACING: bool
    OPENAI_API_KEY: str | None
    OPENAI_BASE_URL: str | None
    OPENAI_CONNECT_TIMEOUT: float
    OPENAI_READ_TIMEOUT: float
    OPENAI_MAX_RETRIES: int
    STORAGE: str
    ATTACHMENTS: AttachmentsConfig
    UPLOAD_TOKEN_MAX_AGE: int
    UPLOAD_ALLOWED_ORIGINS: Sequence[str]  # a list or tuple
    S3_PRESIGNED_UPLOADS: bool
    ORPHAN_UPLOAD_MAX_AGE: int
    RETENTION: float | None  # days idle
    ANONYMOUS_RETENTION: float | Literal["session"] | None  # days idle
    USAGE_CACHE_SECONDS: int
    REQUESTS_PER_MINUTE: int | None
    TOKENS_PER_DAY: int | None
    QUOTA_CACHE: str
    QUOTA_FAIL_OPEN: bool
    ANONYMOUS_LIMITS_PER_ADDRESS: bool
    TRUSTED_PROXY_COUNT: int
    ATTACHMENT_STORE: str | None
    ALLOW_ANONYMOUS: bool
    MAX_REQUEST_BYTES: int
    MAX_PAGE_SIZE: int
    WIDGET: WidgetConfig
    DOMAIN_KEY: str
    CDN_URL: str
    LIVE_MAX_CONNECTIONS_PER_USER: int | None
    STAFF_DISPLAY_NAME: str | None
    LOAD_TIMEOUT_MS: int
    HOSTED_WORKFLOWS: Sequence[str] | Mapping[str, HostedWorkflowConfig]
    HOSTED_SESSIONS_PER_MINUTE: int | None
    # Importing hosted conversations for review (docs/hosted.md).
    HOSTED_IMPORT_PAGE_SIZE: int
    HOSTED_IMPORT_MAX_ATTEMPTS: int
    HOSTED_IMPORT_BACKOFF: float
    HOSTED_IMPORT_MAX_WAIT: float
    HOSTED_IMPORT_ADMIN_SECONDS: float
    HOSTED_IMPORT_ACTIVE_WINDOW: float
