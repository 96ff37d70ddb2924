"""The usage overview: figures by local day, charts as inert SVG, permission, constant queries."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from django_chatkit.admin import charts
from django_chatkit.admin.usage import usage_cache_key, usage_figures

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
USAGE_URL = "/admin/django_chatkit/run/usage/"
# Europe/Paris (tests/settings.py). The window of 30 local days ending 10 November 2026 starts
# on 12 October, still summer time (UTC+2); the clocks went back on 25 October (UTC+1).
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def figures_computed_on_every_view(settings):
    """Each test sees its own rows: the cache is tested on its own, below."""
    settings.CHATKIT = {**settings.CHATKIT, "USAGE_CACHE_SECONDS": 0}


def thread_of(owner: Any = None, anonymous_key: str = "") -> models.Thread:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return models.Thread.objects.create(
        user=owner, anonymous_key=anonymous_key, created_at=at, updated_at=at
    )


def run(
    thread: models.Thread,
    started_at: datetime,
    *,
    kind: str = "answer",
    status: str = "completed",
    model: str = "gpt-a",
    tokens: tuple[int, int] = (0, 0),
) -> models.Run:
    return models.Run.objects.create(
        thread=thread,
        user=thread.user,
        anonymous_key=thread.anonymous_key,
        kind=kind,
        status=status,
        model=model,
        started_at=started_at,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


def vote(thread: models.Thread, item_id: str, kind: str, at: datetime) -> None:
    feedback = models.Feedback.objects.create(thread=thread, item_id=item_id, kind=kind)
    # updated_at is auto_now: set the day under test afterwards.
    models.Feedback.objects.filter(pk=feedback.pk).update(updated_at=at)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_figures_by_local_day_across_midnight_and_summer_time(alice):
    thread = thread_of(alice)
    run(thread, utc(11, 8, 22, 30), tokens=(10, 1))  # 23:30 in Paris: 8 November
    run(thread, utc(11, 8, 23, 30), tokens=(20, 2))  # 00:30 in Paris: 9 November
    run(thread, utc(11, 9, 9), status="failed", tokens=(40, 0))
    run(thread, utc(11, 9, 10), status="cancelled")
    run(thread, utc(11, 9, 11), kind="title", tokens=(5, 3))  # tokens, not a turn
    run(thread, utc(10, 11, 21, 30), tokens=(1000, 0))  # 23:30 on 11 Oct (UTC+2): before
    run(thread, utc(10, 11, 22, 30), tokens=(7, 0))  # 00:30 on 12 Oct: the first day
    run(thread, utc(11, 10, 23, 30), tokens=(1000, 0))  # 00:30 on 11 Nov: after today
    vote(thread, "a", "positive", utc(11, 8, 23, 30))  # 9 November in Paris
    vote(thread, "b", "positive", utc(11, 9, 12))
    vote(thread, "c", "negative", utc(11, 9, 13))
    vote(thread, "d", "negative", utc(10, 11, 21, 59))  # before the window

    usage = usage_figures(now=NOW)

    assert [d.day for d in usage.days] == [
        date(2026, 10, 12) + timedelta(days=n) for n in range(30)
    ]
    by_day = {d.day: d for d in usage.days}
    first, nov8, nov9 = (
        by_day[date(2026, 10, 12)],
        by_day[date(2026, 11, 8)],
        by_day[date(2026, 11, 9)],
    )
    assert (first.turns, first.tokens) == (1, 7)
    assert (nov8.turns, nov8.failed, nov8.tokens) == (1, 0, 11)
    assert (nov9.turns, nov9.failed, nov9.input_tokens, nov9.output_tokens) == (3, 1, 65, 5)
    assert nov9.failure_rate == pytest.approx(1 / 3)
    assert (nov9.positive, nov9.negative) == (2, 1)
    assert nov9.positive_share == pytest.approx(2 / 3)
    quiet = [d for d in usage.days if d.day not in {first.day, nov8.day, nov9.day}]
    assert len(quiet) == 27
    assert all(
        (d.turns, d.failed, d.tokens, d.positive, d.negative, d.failure_rate) == (0,) * 6
        for d in quiet
    )
    totals = usage.totals
    assert (totals.turns, totals.failed, totals.tokens) == (5, 1, 88)
    assert (totals.positive, totals.negative) == (2, 1)
    assert usage.start == datetime(2026, 10, 11, 22, tzinfo=UTC)  # local midnight, summer time
    assert usage.end == datetime(2026, 11, 10, 23, tzinfo=UTC)  # local midnight, winter time


def test_top_users_and_models_by_tokens(alice, bob):
    alices, bobs = thread_of(alice), thread_of(bob)
    visitor = thread_of(anonymous_key="visitor-key-123456")
    day = utc(11, 5, 12)
    run(alices, day, model="gpt-a", tokens=(200, 100))
    run(alices, day, model="gpt-b", status="failed")
    run(bobs, day, model="gpt-b", tokens=(400, 100))
    run(bobs, day, model="gpt-b", kind="title", tokens=(50, 0))
    run(visitor, day, model="", tokens=(60, 40))
    run(alices, utc(9, 1, 12), model="gpt-old", tokens=(10**6, 0))  # long before the window

    usage = usage_figures(now=NOW)

    assert [(r.label, r.turns, r.failed, r.tokens) for r in usage.top_users] == [
        ("bob", 1, 0, 550),
        ("alice", 2, 1, 300),
        ("anonymous visitor-…", 1, 0, 100),
    ]
    assert [(r.label, r.turns, r.failed, r.tokens) for r in usage.top_models] == [
        ("gpt-b", 2, 1, 550),
        ("gpt-a", 1, 0, 300),
        ("(no model)", 1, 0, 100),
    ]


def test_a_quiet_month_draws_empty_charts(staff_client):
    usage = usage_figures(now=NOW)
    assert len(usage.days) == 30 and usage.totals.turns == 0
    assert usage.top_users == [] and usage.top_models == []
    response = staff_client.get(USAGE_URL)
    assert response.status_code == 200
    svgs = svg_elements(response.content.decode())
    assert len(svgs) == 4
    for svg in svgs:
        legend = 2 if svg.find(f"{SVG}text[@text-anchor='start']") is not None else 0
        assert len(svg.findall(f"{SVG}rect")) == legend  # legend swatches only: no bars
    assert "No runs in these 30 days." in response.content.decode()


def test_chart_scales_to_the_highest_bar_and_escapes_labels():
    svg = charts.bar_chart(
        chart_id="c",
        title="<b>title</b>",
        description='desc "quoted" & <i>',
        labels=["<script>alert(1)</script>", "b", "c"],
        series=[
            charts.Series("in", "#000000", [1, 4, 0]),
            charts.Series("<out>", "#ffffff", [1, 4, 0]),
        ],
        format_value=lambda v: f"{v:g}",
    )
    root = ET.fromstring(str(svg))
    assert root.findtext(f"{SVG}title") == "<b>title</b>"  # text, not markup
    assert root.findtext(f"{SVG}desc") == 'desc "quoted" & <i>'
    assert not root.findall(f".//{SVG}script") and "<script" not in str(svg)
    bars = [r for r in root.findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    heights = [float(r.get("height", "0")) for r in bars]
    # Day b is the highest (8): its two stacked bars fill the plot; day a is a quarter of it.
    assert sum(heights[2:4]) == pytest.approx(charts.PLOT_HEIGHT)
    assert sum(heights[0:2]) == pytest.approx(charts.PLOT_HEIGHT / 4)
    top = min(float(r.get("y", "0")) for r in bars)
    assert top == pytest.approx(charts.TOP)
    assert bars[0].findtext(f"{SVG}title") == "<script>alert(1)</script>: in 1"
    zero = charts.bar_chart(
        chart_id="z",
        title="t",
        description="d",
        labels=["a", "b"],
        series=[charts.Series("s", "#000000", [0, 0])],
        format_value=str,
    )
    assert not ET.fromstring(str(zero)).findall(f"{SVG}rect")


# The page through the admin -------------------------------------------------------------


@pytest.fixture
def staff_client(db) -> Client:
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    return client


def staff(name: str, *codenames: str) -> Client:
    user = get_user_model().objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_chatkit", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def svg_elements(html: str) -> list[ET.Element]:
    return [
        ET.fromstring(m)
        for m in re.findall(r"<svg\b[^>]*chatkit-usage-chart.*?</svg>", html, flags=re.DOTALL)
    ]


def test_usage_url_is_inside_the_admin():
    assert reverse("admin:django_chatkit_run_usage") == USAGE_URL


def test_page_needs_the_permission_to_view_runs(alice):
    assert staff("viewer", "view_run").get(USAGE_URL).status_code == 200
    # Staff who may see threads but not runs: refused, even typing the address.
    assert staff("moderator", "view_thread", "moderate_thread").get(USAGE_URL).status_code == 403
    outsider = Client()
    outsider.force_login(alice)  # not staff
    response = outsider.get(USAGE_URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = Client().get(USAGE_URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_link_shown_under_runs_to_those_who_may_open_it(db):
    link = f'href="{USAGE_URL}"'
    viewer = staff("viewer", "view_run", "view_thread")
    for page in ("/admin/", "/admin/django_chatkit/", "/admin/django_chatkit/thread/"):
        html = viewer.get(page).content.decode()
        assert link in html, page  # the index, the app's index, the sidebar
    app_index = viewer.get("/admin/django_chatkit/").content.decode()
    # Listed right after "Runs", in the app's own section.
    assert re.search(r">Runs</a>.*?<a href=\"/admin/django_chatkit/run/usage/\"", app_index, re.S)
    others = staff("moderator", "view_thread")
    for page in ("/admin/", "/admin/django_chatkit/", "/admin/django_chatkit/thread/"):
        response = others.get(page)
        assert response.status_code == 200 and "Threads" in response.content.decode(), page
        assert link not in response.content.decode(), page


def test_page_shows_the_figures_escaped_and_draws_inert_svg(staff_client):
    hacker = get_user_model().objects.create_user("<img src=x onerror=alert(1)>")
    thread = thread_of(hacker)
    now = timezone.now()
    run(thread, now, model="<script>alert(2)</script>", tokens=(1200, 34))
    run(thread, now, status="failed")
    vote(thread, "a", "negative", now)
    response = staff_client.get(USAGE_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert ">1,234<" in html  # tokens in the totals and the top tables
    assert ">50.0%<" in html  # failure rate: one of two answers
    # Every script on the page is a file (the admin's own): nothing inline.
    assert all(re.search(r"\bsrc=", tag) for tag in re.findall(r"<script\b[^>]*>", html))
    svgs = svg_elements(html)
    assert len(svgs) == 4
    for svg in svgs:
        assert svg.get("role") == "img"
        labelled = (svg.get("aria-labelledby") or "").split()
        title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
        assert title is not None and desc is not None
        assert [title.get("id"), desc.get("id")] == labelled
        for element in svg.iter():
            assert element.tag.removeprefix(SVG) in {"svg", "title", "desc", "rect", "line", "text"}
            assert not any(name.lower().startswith("on") for name in element.attrib)
    turns = svgs[0]
    bars = [r for r in turns.findall(f"{SVG}rect")]
    assert len(bars) == 1 and float(bars[0].get("height", "0")) == pytest.approx(charts.PLOT_HEIGHT)
    assert html.count("<details>") == 4  # each chart's figures as a table


def populate(count: int, prefix: str) -> None:
    users = [get_user_model().objects.create_user(f"{prefix}{n}") for n in range(3)]
    threads = [thread_of(u) for u in users]
    now = timezone.now()
    models.Run.objects.bulk_create(
        models.Run(
            thread=threads[n % 3],
            user=users[n % 3],
            kind="answer" if n % 4 else "title",
            status="failed" if n % 7 == 0 else "completed",
            model=f"model-{n % 5}",
            started_at=now - timedelta(hours=n % (24 * 35)),
            input_tokens=n,
            output_tokens=1,
        )
        for n in range(count)
    )
    for n in range(min(count, 40)):
        vote(threads[n % 3], f"item-{n}", "positive" if n % 3 else "negative", now)


def test_query_count_does_not_grow_with_the_runs(db):
    viewer = staff("viewer", "view_run")
    populate(10, "few")
    with CaptureQueriesContext(connection) as few:
        assert viewer.get(USAGE_URL).status_code == 200
    models.Run.objects.all().delete()
    populate(2000, "many")
    with CaptureQueriesContext(connection) as many:
        assert viewer.get(USAGE_URL).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    # Grouped figures, not rows: no query reads the runs' individual columns.
    assert not any("error_message" in q["sql"] for q in many.captured_queries)


def test_figures_are_kept_for_usage_cache_seconds(settings, staff_client):
    settings.CHATKIT = {**settings.CHATKIT, "USAGE_CACHE_SECONDS": 300}
    key = usage_cache_key(timezone.get_current_timezone())
    cache.delete(key)
    try:
        thread = thread_of(get_user_model().objects.create_user("counted"))
        run(thread, timezone.now(), tokens=(1000, 0))
        first = staff_client.get(USAGE_URL).content.decode()
        assert ">1,000<" in first and "they are kept for 5 minutes" in first
        run(thread, timezone.now(), tokens=(500, 0))
        with CaptureQueriesContext(connection) as cached:
            again = staff_client.get(USAGE_URL).content.decode()
        assert ">1,000<" in again and ">1,500<" not in again  # the kept figures
        assert not any("django_chatkit_run" in q["sql"] for q in cached.captured_queries)
        settings.CHATKIT = {**settings.CHATKIT, "USAGE_CACHE_SECONDS": 0}
        live = staff_client.get(USAGE_URL).content.decode()
        assert ">1,500<" in live and "they are kept for" not in live
    finally:
        cache.delete(key)
