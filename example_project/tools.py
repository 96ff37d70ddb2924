"""A tool the demo agent may call."""

from django.utils import timezone


def current_time() -> str:
    """The current date and time on the server, in ISO 8601."""
    return timezone.now().isoformat(timespec="seconds")
