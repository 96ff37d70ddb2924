"""The ``CHATKIT`` settings dict, read at access time so ``override_settings`` works.

Every key and its default lives in ``DEFAULTS``; docs/settings.md documents each one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Dotted path to the ChatKitServer subclass answering the endpoint (one instance per process).
    "SERVER": "django_chatkit.server.DjangoChatKitServer",
    # Dotted path to a chatkit.store.AttachmentStore subclass, or None to refuse attachments.
    "ATTACHMENT_STORE": None,
    # Let visitors without an account chat; their threads are owned by their session.
    "ALLOW_ANONYMOUS": False,
    # Largest protocol request body accepted, in bytes (larger gets 413).
    "MAX_REQUEST_BYTES": 1024 * 1024,
    # Largest page a client may ask for in threads.list / items.list.
    "MAX_PAGE_SIZE": 100,
    # Most attachments one user message may carry.
    "MAX_ATTACHMENTS_PER_MESSAGE": 10,
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
    def MAX_ATTACHMENTS_PER_MESSAGE(self) -> int:
        return int(self._get("MAX_ATTACHMENTS_PER_MESSAGE"))


chatkit_settings = ChatKitSettings()

# Settings whose value is a dotted import path; checked by checks.py and loaded by loading.py.
DOTTED_PATH_SETTINGS = ("SERVER", "ATTACHMENT_STORE")
