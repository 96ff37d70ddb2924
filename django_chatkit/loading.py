"""Swappable parts named by dotted path: imported lazily, cached per process."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_chatkit.conf import chatkit_settings

if TYPE_CHECKING:
    from django_chatkit.server import DjangoChatKitServer


@cache
def get_server() -> DjangoChatKitServer:
    """The process-wide ChatKit server named by ``CHATKIT["SERVER"]``."""
    server_class = import_string(chatkit_settings.SERVER)
    server: DjangoChatKitServer = server_class()
    return server


def get_attachment_store() -> Any:
    """``ATTACHMENT_STORE`` when set; else the built-in store if attachments are enabled."""
    path = chatkit_settings.ATTACHMENT_STORE
    if path:
        return import_string(path)()
    if chatkit_settings.ATTACHMENTS["ENABLED"]:
        from django_chatkit.attachments.store import DjangoAttachmentStore

        return DjangoAttachmentStore()
    return None


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHATKIT":
        get_server.cache_clear()
