"""``{% load chatkit %}{% chatkit greeting="Hi!" %}``: a thin wrapper over ``chatkit_widget``."""

from __future__ import annotations

from typing import Any

from django import template

from django_chatkit.widget import chatkit_widget

register = template.Library()


@register.inclusion_tag("django_chatkit/widget.html", takes_context=True)
def chatkit(context: template.Context, **options: Any) -> dict[str, Any]:
    """Render the ChatKit widget; keyword arguments override ``CHATKIT["WIDGET"]`` keys."""
    widget = chatkit_widget(
        context.get("request"), csp_nonce_value=context.get("csp_nonce"), **options
    )
    return {"widget": widget}
