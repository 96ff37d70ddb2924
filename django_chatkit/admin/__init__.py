"""Review and moderation in the Django admin (one module per screen).

Staff read conversations here; nothing that was said can be edited. Importing this package
registers every ModelAdmin (Django's admin autodiscovery imports ``django_chatkit.admin``).
"""

from django_chatkit.admin import attachments, feedback, hosted, runs, threads

__all__ = ["attachments", "feedback", "hosted", "runs", "threads"]
