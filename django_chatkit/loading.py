"""Swappable parts named by dotted path: imported lazily, cached per process."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_chatkit.conf import chatkit_settings

if TYPE_CHECKING:
    from chatkit.store import AttachmentStore

    from django_chatkit.context import ChatKitContext
    from django_chatkit.server import DjangoChatKitServer
    from django_chatkit.types import AttachmentStoreFactory


@cache
def get_server() -> DjangoChatKitServer:
    """The process-wide ChatKit server named by ``CHATKIT["SERVER"]``."""
    server_class = import_string(chatkit_settings.SERVER)
    server: DjangoChatKitServer = server_class()
    return server


def warm_up() -> None:
    """Import and build now what the first chat request of a process would otherwise wait for.

    The ChatKit server pulls in the ChatKit and Agents SDKs (about two seconds of imports) and
    the agent server builds the configured agent (its tools are imported); both are cached for
    the life of the process. The views, which ``django_chatkit.urls`` imports on their first
    request only (so that system checks need no SDK), are imported too. Call this in
    ``asgi.py`` after ``get_asgi_application()``: each worker then answers its first chat as
    fast as the others, and what startup allocated can be moved out of the garbage collector's
    way with ``gc.freeze()`` (docs/deployment.md).
    """
    import django_chatkit.attachments.views
    import django_chatkit.views  # noqa: F401

    server = get_server()
    from django_chatkit.agent_server import AgentChatKitServer

    if isinstance(server, AgentChatKitServer):
        from django_chatkit.agent_config import configured_agent

        configured_agent()


@cache
def get_attachment_store() -> AttachmentStore[ChatKitContext] | None:
    """``ATTACHMENT_STORE`` when set; else the built-in store if attachments are enabled.

    One per process, shared by the server and the attachment views (which look their rows up
    through it on every request).
    """
    path = chatkit_settings.ATTACHMENT_STORE
    if path:
        factory: AttachmentStoreFactory = import_string(path)
        return factory()
    if chatkit_settings.ATTACHMENTS["ENABLED"]:
        from django_chatkit.attachments.store import DjangoAttachmentStore

        return DjangoAttachmentStore()
    return None


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHATKIT":
        get_server.cache_clear()
        get_attachment_store.cache_clear()
