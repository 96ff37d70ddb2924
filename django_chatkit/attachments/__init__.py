"""Attachments on Django storage: two-phase uploads, verification, previews, downloads.

The store is ``django_chatkit.attachments.store.DjangoAttachmentStore``; this package's top
level only holds what the widget needs, so importing it loads no models.
"""

from django_chatkit.attachments.options import attachments_enabled, limits, widget_options

__all__ = ["attachments_enabled", "limits", "widget_options"]
