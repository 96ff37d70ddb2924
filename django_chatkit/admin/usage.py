"""The usage overview: the last 30 days of answers, tokens, failures and feedback, by day.

Every figure comes from a handful of aggregate queries (grouped by local day, by user, by
model), never from loading rows, so the page costs the same few queries at any volume.

The page hangs off the runs admin (``UsageUrlsMixin``), because usage is about runs: it needs
the permission to view runs, and it is listed right under "Runs" in the app's section of the
admin index, the app's own index and the navigation sidebar.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import formats, timezone, translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from django_chatkit import models
from django_chatkit.admin.charts import Series, bar_chart
from django_chatkit.admin.common import RunModelAdmin, anonymous_owner_label
from django_chatkit.conf import chatkit_settings

logger = logging.getLogger("django_chatkit")

DAYS = 30
TOP = 10
URL_NAME = "django_chatkit_run_usage"
TEMPLATE = "admin/django_chatkit/usage.html"

# The admin's own palette (its light theme's primary, success and error colours).
BLUE = "#417690"
LIGHT_BLUE = "#79aec8"
GREEN = "#5b9b36"
RED = "#ba2121"


@dataclass(frozen=True)
class DayUsage:
    day: date
    turns: int = 0  # answer runs
    failed: int = 0  # answer runs that failed
    input_tokens: int = 0  # every run: answers and titles
    output_tokens: int = 0
    positive: int = 0  # feedback last changed that day
    negative: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def failure_rate(self) -> float:
        return self.failed / self.turns if self.turns else 0.0

    @property
    def positive_share(self) -> float:
        votes = self.positive + self.negative
        return self.positive / votes if votes else 0.0


@dataclass(frozen=True)
class TopRow:
    label: str
    turns: int
    failed: int
    tokens: int


@dataclass(frozen=True)
class Usage:
    days: list[DayUsage]
    totals: DayUsage  # the whole window, its day being the first
    top_users: list[TopRow]
    top_models: list[TopRow]
    start: datetime  # local midnight of the first day
    end: datetime  # local midnight after the last day (today)
    computed_at: datetime


def window(now: datetime, tz: tzinfo, days: int = DAYS) -> tuple[date, datetime, datetime]:
    """The first day, and the bounds of ``days`` whole local days ending today."""
    today = timezone.localtime(now, tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
    return first, start, end


def usage_figures(now: datetime | None = None, tz: tzinfo | None = None, days: int = DAYS) -> Usage:
    """The figures of the page, from three aggregate queries (and one for the top users' login
    names) whatever the volume."""
    tz = tz or timezone.get_current_timezone()
    first, start, end = window(now or timezone.now(), tz, days)
    # status IN (every status) selects every run, and lets PostgreSQL read the window from the
    # (status, started_at) index instead of scanning the table; likewise (kind, updated_at) for
    # feedback. There is no index led by the date alone.
    runs = models.Run.objects.filter(
        status__in=models.RunStatus.values, started_at__gte=start, started_at__lt=end
    ).order_by()
    answer = Q(kind=models.RunKind.ANSWER)
    turns = Count("pk", filter=answer)
    failed = Count("pk", filter=answer & Q(status=models.RunStatus.FAILED))
    tokens = Sum(F("input_tokens") + F("output_tokens"))

    # One read of the window's runs for both the days and the models (a few models a day:
    # at most a few hundred rows back), summed here both ways; the owners need a read of their
    # own (thousands of groups).
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    per_model: dict[str, Counter[str]] = defaultdict(Counter)
    for row in (
        runs.annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day", "model")
        .annotate(
            turns=turns,
            failed=failed,
            input_sum=Sum("input_tokens"),
            output_sum=Sum("output_tokens"),
        )
        .order_by()
    ):
        figures = Counter(
            turns=row["turns"],
            failed=row["failed"],
            input_sum=row["input_sum"] or 0,
            output_sum=row["output_sum"] or 0,
        )
        per_day[row["day"]].update(figures)
        per_model[row["model"]].update(figures)
    votes: dict[date, Mapping[str, Any]] = {
        row["day"]: row
        for row in models.Feedback.objects.filter(
            kind__in=models.FeedbackKind.values, updated_at__gte=start, updated_at__lt=end
        )
        .annotate(day=TruncDate("updated_at", tzinfo=tz))
        .values("day")
        .annotate(
            positive=Count("pk", filter=Q(kind=models.FeedbackKind.POSITIVE)),
            negative=Count("pk", filter=Q(kind=models.FeedbackKind.NEGATIVE)),
        )
        .order_by("day")
    }
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        run_row, vote_row = per_day.get(day, Counter()), votes.get(day, {})
        series.append(
            DayUsage(
                day=day,
                turns=run_row.get("turns") or 0,
                failed=run_row.get("failed") or 0,
                input_tokens=run_row.get("input_sum") or 0,
                output_tokens=run_row.get("output_sum") or 0,
                positive=vote_row.get("positive") or 0,
                negative=vote_row.get("negative") or 0,
            )
        )
    totals = DayUsage(
        day=first,
        turns=sum(d.turns for d in series),
        failed=sum(d.failed for d in series),
        input_tokens=sum(d.input_tokens for d in series),
        output_tokens=sum(d.output_tokens for d in series),
        positive=sum(d.positive for d in series),
        negative=sum(d.negative for d in series),
    )

    by_owner = list(
        runs.values("user", "anonymous_key")
        .annotate(turns=turns, failed=failed, tokens=tokens)
        .order_by("-tokens", "-turns", "user", "anonymous_key")[:TOP]
    )
    # The login names of those ten at most, in one query: joining the users before grouping
    # doubles the cost of the grouping on PostgreSQL.
    user_model = get_user_model()
    logins = dict(
        user_model._default_manager.filter(
            pk__in=[row["user"] for row in by_owner if row["user"] is not None]
        ).values_list("pk", user_model.USERNAME_FIELD)
    )
    top_users = [
        TopRow(
            label=_owner_label(row["user"], row["anonymous_key"], logins),
            turns=row["turns"],
            failed=row["failed"],
            tokens=row["tokens"] or 0,
        )
        for row in by_owner
    ]
    by_model = sorted(
        per_model.items(),
        key=lambda pair: (
            -(pair[1]["input_sum"] + pair[1]["output_sum"]),
            -pair[1]["turns"],
            pair[0],
        ),
    )
    top_models = [
        TopRow(
            label=model or gettext("(no model)"),
            turns=figures["turns"],
            failed=figures["failed"],
            tokens=figures["input_sum"] + figures["output_sum"],
        )
        for model, figures in by_model[:TOP]
    ]
    return Usage(series, totals, top_users, top_models, start, end, timezone.now())


def usage_cache_key(tz: tzinfo) -> str:
    first, _, _ = window(timezone.now(), tz)
    return f"django_chatkit:usage:{tz}:{first.isoformat()}:{translation.get_language()}"


def cached_usage_figures() -> Usage:
    """:func:`usage_figures`, kept ``USAGE_CACHE_SECONDS`` in the default cache.

    They aggregate every run and vote of 30 days: on a busy site, seconds of database work that
    a page view every few seconds would repeat. The key holds what changes the figures or their
    labels: the time zone, the first day of the window, the language."""
    seconds = chatkit_settings.USAGE_CACHE_SECONDS
    if seconds <= 0:
        return usage_figures()
    tz = timezone.get_current_timezone()
    key = usage_cache_key(tz)
    try:
        usage = cache.get(key)
    except Exception:  # the cache is down: the page still works, computed live
        logger.warning("Usage overview: the cache could not be read", exc_info=True)
        usage = None
    if isinstance(usage, Usage):
        return usage
    usage = usage_figures(tz=tz)
    try:
        cache.set(key, usage, seconds)
    except Exception:
        logger.warning("Usage overview: the cache could not be written", exc_info=True)
    return usage


def _owner_label(user: Any, anonymous_key: str, logins: Mapping[Any, Any]) -> str:
    if user is None:
        return anonymous_owner_label(anonymous_key)
    # A user deleted between the two queries has no login left: their id says who it was.
    return str(logins.get(user, user))


def _integer(value: float) -> str:
    return formats.number_format(round(value), force_grouping=True)


def _minutes(seconds: int) -> str:
    """ "5" (not "5.0") for 300 seconds, "2.5" for 150; empty when the cache is off."""
    if seconds <= 0:
        return ""
    minutes = round(seconds / 60, 1)
    return formats.number_format(minutes, decimal_pos=0 if minutes == int(minutes) else 1)


def _percent(value: float) -> str:
    return gettext("%(percent)s%%") % {"percent": formats.number_format(value * 100, 1)}


def _day_label(day: date) -> str:
    return formats.date_format(day, "MONTH_DAY_FORMAT")


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its SVG, and the same figures as a table for those who cannot
    see it (and for copying)."""

    title: str
    svg: SafeString
    columns: list[str]
    rows: list[tuple[str, list[str]]]


def _chart(
    usage: Usage,
    chart_id: str,
    title: str,
    description: str,
    series: list[Series],
    format_value: Callable[[float], str],
    columns: list[tuple[str, Callable[[DayUsage], str]]],
) -> Chart:
    labels = [_day_label(d.day) for d in usage.days]
    svg = bar_chart(
        chart_id=chart_id,
        title=title,
        description=description,
        labels=labels,
        series=series,
        format_value=format_value,
    )
    rows = [
        (label, [cell(d) for _, cell in columns])
        for label, d in zip(labels, usage.days, strict=True)
    ]
    return Chart(title, svg, [name for name, _ in columns], rows)


def usage_charts(usage: Usage) -> list[Chart]:
    days = usage.days
    period = {
        "first": formats.date_format(days[0].day),
        "last": formats.date_format(days[-1].day),
    }
    t = usage.totals
    return [
        _chart(
            usage,
            "chatkit-usage-turns",
            gettext("Turns per day"),
            gettext("Answers per day from %(first)s to %(last)s: %(total)s in all.")
            % {**period, "total": _integer(t.turns)},
            [Series(gettext("turns"), BLUE, [d.turns for d in days])],
            _integer,
            [(gettext("Turns"), lambda d: _integer(d.turns))],
        ),
        _chart(
            usage,
            "chatkit-usage-tokens",
            gettext("Tokens per day"),
            gettext(
                "Input and output tokens of every model call (answers and titles) per day "
                "from %(first)s to %(last)s: %(total)s in all."
            )
            % {**period, "total": _integer(t.tokens)},
            [
                Series(gettext("input"), BLUE, [d.input_tokens for d in days]),
                Series(gettext("output"), LIGHT_BLUE, [d.output_tokens for d in days]),
            ],
            _integer,
            [
                (gettext("Input tokens"), lambda d: _integer(d.input_tokens)),
                (gettext("Output tokens"), lambda d: _integer(d.output_tokens)),
                (gettext("Tokens"), lambda d: _integer(d.tokens)),
            ],
        ),
        _chart(
            usage,
            "chatkit-usage-failures",
            gettext("Failure rate per day"),
            gettext(
                "Share of answers that failed, per day from %(first)s to %(last)s: "
                "%(rate)s over the period."
            )
            % {**period, "rate": _percent(t.failure_rate)},
            [Series(gettext("failure rate"), RED, [d.failure_rate for d in days])],
            _percent,
            [
                (gettext("Turns"), lambda d: _integer(d.turns)),
                (gettext("Failed"), lambda d: _integer(d.failed)),
                (gettext("Failure rate"), lambda d: _percent(d.failure_rate)),
            ],
        ),
        _chart(
            usage,
            "chatkit-usage-feedback",
            gettext("Feedback per day"),
            gettext(
                "Positive and negative votes per day (by the day each was last changed) from "
                "%(first)s to %(last)s: %(positive)s positive, %(negative)s negative."
            )
            % {**period, "positive": _integer(t.positive), "negative": _integer(t.negative)},
            [
                Series(gettext("positive"), GREEN, [d.positive for d in days]),
                Series(gettext("negative"), RED, [d.negative for d in days]),
            ],
            _integer,
            [
                (gettext("Positive"), lambda d: _integer(d.positive)),
                (gettext("Negative"), lambda d: _integer(d.negative)),
                (gettext("Positive share"), lambda d: _percent(d.positive_share)),
            ],
        ),
    ]


def _usage_entry(site: AdminSite) -> dict[str, Any] | None:
    try:
        url = reverse(f"admin:{URL_NAME}", current_app=site.name)
    except NoReverseMatch:  # the site's URLs do not include the runs admin's
        return None
    return {
        "model": models.Run,
        "name": gettext("Usage overview"),
        "object_name": "UsageOverview",
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


def link_usage_in_app_list(site: AdminSite) -> None:
    """List the usage page under "Runs" in the app's section, wherever the site lists apps.

    The admin index, the app's index and the navigation sidebar all draw the site's
    ``get_app_list``: this wraps that one method of this one site object (the site owner's own
    subclass, if any, still runs first) and adds an entry to this app's section only, and only
    when the section shows "Runs" to the user (the page's permission), so nothing else changes.
    """
    if getattr(site, "_chatkit_usage_linked", False):
        return
    original = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        app_list = original(request, app_label)
        for app in app_list:
            if app.get("app_label") != models.Run._meta.app_label:
                continue
            entries = app.get("models", [])
            for index, entry in enumerate(entries):
                if entry.get("model") is models.Run and entry.get("perms", {}).get("view"):
                    usage = _usage_entry(site)
                    if usage is not None:
                        entries.insert(index + 1, usage)
                    break
        return app_list

    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._chatkit_usage_linked = True  # type: ignore[attr-defined]


class UsageUrlsMixin(RunModelAdmin):
    """Adds the usage overview to the runs admin: its URL, its view, its link."""

    def get_urls(self) -> list[URLPattern]:
        link_usage_in_app_list(self.admin_site)
        usage = path("usage/", self.admin_site.admin_view(self.usage_view), name=URL_NAME)
        # Before the default URLs: "<path:object_id>/" would otherwise take "usage/".
        return [usage, *super().get_urls()]

    def has_usage_permission(self, request: HttpRequest) -> bool:
        # The same as viewing runs (the permission to change runs implies it, as in the admin).
        return self.has_view_permission(request)

    def usage_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_usage_permission(request):
            raise PermissionDenied
        usage = cached_usage_figures()
        tz = timezone.get_current_timezone()
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Usage overview"),
            "opts": self.opts,
            "usage": usage,
            "charts": usage_charts(usage),
            "first_day": usage.days[0].day,
            "last_day": usage.days[-1].day,
            "time_zone": str(tz),
            "computed_at": usage.computed_at,
            "cache_minutes": _minutes(chatkit_settings.USAGE_CACHE_SECONDS),
            "totals": [
                (gettext("Turns"), _integer(usage.totals.turns)),
                (gettext("Tokens"), _integer(usage.totals.tokens)),
                (gettext("Failure rate"), _percent(usage.totals.failure_rate)),
                (gettext("Positive feedback"), _integer(usage.totals.positive)),
                (gettext("Negative feedback"), _integer(usage.totals.negative)),
            ],
            "top_tables": [
                (
                    gettext("Top users by tokens"),
                    gettext("User"),
                    [_top_cells(row) for row in usage.top_users],
                ),
                (
                    gettext("Top models by tokens"),
                    gettext("Model"),
                    [_top_cells(row) for row in usage.top_models],
                ),
            ],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, TEMPLATE, context)


def _top_cells(row: TopRow) -> tuple[str, str, str, str]:
    return row.label, _integer(row.turns), _integer(row.failed), _integer(row.tokens)
