"""Bar charts as inline SVG, drawn on the server: no JavaScript, no CDN, nothing to load.

Every number in the markup is formatted here from Python numbers; every piece of text (titles,
labels, tooltips) goes through ``format_html``, so the SVG stays inert whatever it shows. Colours
are presentation attributes, not ``style``, so that a strict Content-Security-Policy
(no ``style-src 'unsafe-inline'``) still draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# The drawing's own coordinates; the SVG scales to its container's width.
WIDTH = 720
HEIGHT = 200
LEFT = 64  # room for the value axis labels
RIGHT = 8
TOP = 20  # room for the legend
BOTTOM = 26  # room for the day labels
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BAR_SHARE = 0.7  # of each day's slot; the rest is the gap between bars
# Day labels under the axis: one a week.
LABEL_EVERY = 7


@dataclass(frozen=True)
class Series:
    """One kind of bar; several series are stacked, the first at the bottom."""

    label: str
    color: str  # one of the callers' constants, never data
    values: Sequence[float]


def _num(value: float) -> str:
    """A coordinate, short and locale-independent (SVG wants a dot)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Callable[[float], str],
) -> SafeString:
    """A bar chart of one bar per label, the series stacked, scaled to the highest bar.

    ``labels`` name the bars (days); each series has one value per label. A chart whose
    values are all zero (a quiet month) draws its axes and no bars.
    """
    count = len(labels)
    if any(len(s.values) != count for s in series):
        raise ValueError("each series needs one value per label")
    totals = [sum(float(s.values[i]) for s in series) for i in range(count)]
    highest = max(totals, default=0.0)
    # A quiet month: nothing to scale to, and no division by zero.
    scale = PLOT_HEIGHT / highest if highest > 0 else 0.0
    slot = PLOT_WIDTH / count if count else 0.0
    bar_width = slot * BAR_SHARE
    baseline = TOP + PLOT_HEIGHT

    bars: list[SafeString] = []
    for index, label in enumerate(labels):
        x = LEFT + index * slot + (slot - bar_width) / 2
        stacked = 0.0
        for s in series:
            value = float(s.values[index])
            if value <= 0:
                continue
            height = value * scale
            tooltip = f"{label}: {format_value(value)}"
            if len(series) > 1:
                tooltip = f"{label}: {s.label} {format_value(value)}"
            bars.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
                    _num(x),
                    _num(baseline - stacked - height),
                    _num(bar_width),
                    _num(height),
                    s.color,
                    tooltip,
                )
            )
            stacked += height

    # The last day (today), then one a week before it; the last one ends at the right edge.
    ticks = range(count - 1, -1, -LABEL_EVERY)
    day_labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="{}">{}</text>',
        (
            (
                _num(LEFT + PLOT_WIDTH if index == count - 1 else LEFT + index * slot + slot / 2),
                _num(HEIGHT - 8),
                "end" if index == count - 1 else "middle",
                labels[index],
            )
            for index in ticks
        ),
    )
    legend = (
        format_html_join(
            "",
            '<rect x="{}" y="3" width="10" height="10" fill="{}"></rect>'
            '<text x="{}" y="12" text-anchor="start">{}</text>',
            (
                (_num(LEFT + 4 + n * 120), s.color, _num(LEFT + 18 + n * 120), s.label)
                for n, s in enumerate(series)
            ),
        )
        if len(series) > 1
        else ""
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%"'
        ' role="img" aria-labelledby="{id}-title {id}-desc" class="chatkit-usage-chart"'
        ' font-family="sans-serif" font-size="11" fill="currentColor">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{description}</desc>'
        "{bars}"
        '<line x1="{left}" y1="{baseline}" x2="{right}" y2="{baseline}" stroke="currentColor"'
        ' stroke-opacity="0.6"></line>'
        '<line x1="{left}" y1="{top}" x2="{right}" y2="{top}" stroke="currentColor"'
        ' stroke-opacity="0.2" stroke-dasharray="4 4"></line>'
        '<text x="{axis}" y="{top_text}" text-anchor="end">{highest}</text>'
        '<text x="{axis}" y="{baseline}" text-anchor="end">{zero}</text>'
        "{day_labels}{legend}</svg>",
        width=WIDTH,
        height=HEIGHT,
        id=chart_id,
        title=title,
        description=description,
        bars=mark_safe("".join(bars)),  # each one built by format_html above
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        baseline=baseline,
        axis=LEFT - 6,
        top_text=TOP + 4,
        highest=format_value(highest),
        zero=format_value(0),
        day_labels=day_labels,
        legend=legend,
    )
