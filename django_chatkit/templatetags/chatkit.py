"""``{% load chatkit %}{% chatkit greeting="Hi!" %}``: a thin wrapper over ``chatkit_widget``.

``{% chatkit_bootstrap_url %}`` is the URL the tag loads the bootstrap module from, for a page
that imports ``startChatKit`` from the same module instance.
"""

from __future__ import annotations

from typing import Any

from django import template

from django_chatkit.bootstrap_asset import bootstrap_url
from django_chatkit.widget import chatkit_widget

register = template.Library()


@register.inclusion_tag("django_chatkit/widget.html", takes_context=True)
def chatkit(context: template.Context, **options: Any) -> dict[str, Any]:
    """Render the ChatKit widget; keyword arguments override ``CHATKIT["WIDGET"]`` keys."""
    widget = chatkit_widget(
        context.get("request"), csp_nonce_value=context.get("csp_nonce"), **options
    )
    return {"widget": widget}


@register.simple_tag
def chatkit_bootstrap_url() -> str:
    """The bootstrap module's URL (``chatkit:bootstrap`` with the module's current hash)."""
    return bootstrap_url()
