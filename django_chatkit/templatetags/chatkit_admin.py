"""Template tags of the package's admin templates (``{% load chatkit_admin %}``)."""

from __future__ import annotations

from typing import Any

import django
from django import template
from django.utils.text import capfirst
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def chatkit_result_count(cl: Any) -> str:
    """A changelist's count, said as what it is (django_chatkit/admin/counting.py): the
    planner's estimate ("Threads: about 1,000,000"), a lower bound when a filtered count stopped
    at its cap ("Threads: more than 1,000"), else Django's own "7 threads".

    "<what>: about N" is a shape every language can say without agreeing with the noun.
    """
    paginator = cl.paginator
    values = {
        "name": capfirst(cl.opts.verbose_name_plural),
        "number": getattr(paginator, "count_display", cl.result_count),
    }
    if getattr(paginator, "estimated", False):
        return gettext("%(name)s: about %(number)s") % values
    if getattr(paginator, "capped", False):
        return gettext("%(name)s: more than %(number)s") % values
    name = cl.opts.verbose_name if cl.result_count == 1 else cl.opts.verbose_name_plural
    return f"{cl.result_count} {name}"


@register.simple_tag
def chatkit_admin_nav_markup() -> bool:
    """Whether this Django's admin lists draw their paginator as ``<nav>`` with a list (6.0+),
    rather than as a paragraph (5.2): the pagination template follows the installed admin."""
    return django.VERSION >= (6, 0)
