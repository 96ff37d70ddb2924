"""Whether this process publishes notices: ``CHANNEL_LAYERS`` has a default layer and Channels
is installed. Looked at once and remembered (the store asks on every write), and looked at again
when a test overrides the setting."""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Channels' own name of the layer it returns by default.
DEFAULT_ALIAS = "default"


def configured_layers() -> dict[str, Any]:
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    return layers if isinstance(layers, dict) else {}


def channels_installed() -> bool:
    return importlib.util.find_spec("channels") is not None


@cache
def live_enabled() -> bool:
    """A default channel layer is configured and Channels can reach it."""
    return DEFAULT_ALIAS in configured_layers() and channels_installed()


@receiver(setting_changed)
def _forget(setting: str, **kwargs: Any) -> None:
    if setting == "CHANNEL_LAYERS":
        live_enabled.cache_clear()  # Channels forgets its layer instances itself
