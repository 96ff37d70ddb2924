"""The threads changelist (issue #13, item 1): per-row figures, filters, search, counting.

Run on SQLite and on PostgreSQL (DATABASE_URL): the message-text search and the estimated count
differ between them (full-text index and pg_class estimate on PostgreSQL only).
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from django_chatkit.admin import filters, search
from django_chatkit.admin.counting import EstimatedCountPaginator
from django_chatkit.admin.search import TEXT_SEARCH_CONFIG

pytestmark = pytest.mark.django_db

URL = "/admin/django_chatkit/thread/"
# How the per-row figures' alias reads in this database's SQL (MariaDB quotes with backticks).
FIGURE = f"AS {connection.ops.quote_name('figure')}"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only (full-text index, pg_class)"
)
_serial = itertools.count()


@pytest.fixture
def staff_client(db) -> Client:
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    return client


def make_thread(
    owner: Any = None,
    *,
    title: str = "",
    ago: timedelta = timedelta(hours=1),
    texts: tuple[str, ...] = (),
    **fields: Any,
) -> models.Thread:
    """A thread of ``owner`` (None: an anonymous visitor), last active ``ago``, with one
    message per text."""
    when = timezone.now() - ago
    n = next(_serial)
    owned: dict[str, Any] = {"user": owner} if owner else {"anonymous_key": f"visitor{n:04d}abcd"}
    thread = models.Thread.objects.create(
        title=title, created_at=when, updated_at=when, **owned, **fields
    )
    models.ThreadItem.objects.bulk_create(
        models.ThreadItem(
            thread=thread,
            item_id=f"msg_{n}_{i}",
            type="user_message",
            created_at=when + timedelta(seconds=i),
            text=text,
            payload={},
        )
        for i, text in enumerate(texts)
    )
    return thread


def vote(thread: models.Thread, kind: str, item: str) -> None:
    models.Feedback.objects.create(thread=thread, item_id=item, kind=kind)


def run(thread: models.Thread, status: str = "completed", model: str = "gpt-test", **kw: Any):
    return models.Run.objects.create(
        thread=thread,
        user=thread.user,
        anonymous_key=thread.anonymous_key,
        kind="answer",
        model=model,
        status=status,
        started_at=thread.updated_at,
        **kw,
    )


def attach(thread: models.Thread) -> None:
    models.Attachment.objects.create(
        id=f"atc_{next(_serial)}",
        thread=thread,
        user=thread.user,
        anonymous_key=thread.anonymous_key,
        type="file",
        name="report.pdf",
        mime_type="application/pdf",
        payload={},
    )


def listed(client: Client, query: str = "") -> list[str]:
    """The ids of the threads the changelist shows, in its order."""
    response = client.get(URL + query)
    assert response.status_code == 200, response.content[:2000]
    return [thread.pk for thread in response.context["cl"].result_list]


def row_cells(html: str, thread: models.Thread) -> dict[str, str]:
    """The cells of ``thread``'s row, by column (the admin's field-<name> classes), as text
    with the markup of the status badges kept."""
    change = reverse("admin:django_chatkit_thread_change", args=[quote(thread.pk)])
    (row,) = [r for r in re.findall(r"<tr>.*?</tr>", html, re.S) if f'href="{change}' in r]
    cells = re.findall(r'<t[dh] class="field-([a-z_]+)[^"]*">(.*?)</t[dh]>', row, re.S)
    return {name: re.sub(r"<a [^>]*>|</a>", "", value).strip() for name, value in cells}


def test_columns_show_each_threads_figures(staff_client, alice):
    busy = make_thread(alice, title="Trip to Lisbon", texts=("a", "b", "c"), status="locked")
    vote(busy, "positive", "msg_a")
    vote(busy, "positive", "msg_b")
    vote(busy, "negative", "msg_c")
    run(busy, input_tokens=100, output_tokens=50)
    run(busy, input_tokens=10, output_tokens=5)
    run(busy, status="failed", input_tokens=7)
    quiet = make_thread(None, ago=timedelta(days=2))  # anonymous, untitled, nothing in it
    # Another thread's rows must not be counted in these (the subqueries are correlated).
    other = make_thread(alice, texts=("x",), ago=timedelta(hours=5))
    vote(other, "negative", "msg_x")
    run(other, status="failed", input_tokens=1000)

    response = staff_client.get(URL)
    html = response.content.decode()
    assert "django_chatkit/admin/threads.css" in html
    cells = row_cells(html, busy)
    assert cells["title"] == "Trip to Lisbon"
    assert cells["owner"] == "alice"
    assert cells["status_badge"] == (
        '<span class="chatkit-badge chatkit-status-locked">Locked</span>'
    )
    assert (cells["item_count"], cells["positive_count"], cells["negative_count"]) == (
        "3",
        "2",
        "1",
    )
    assert (cells["failed_run_count"], cells["tokens_used"]) == ("1", "172")
    quiet_cells = row_cells(html, quiet)
    assert quiet_cells["title"].startswith("Untitled conversation, ")
    assert quiet_cells["owner"] == f"anonymous {quiet.anonymous_key[:8]}…"
    assert [quiet_cells[c] for c in ("item_count", "positive_count", "failed_run_count")] == [
        "0",
        "0",
        "0",
    ]
    assert quiet_cells["tokens_used"] == "0"
    # Newest activity first; the link of the first column opens the thread's page.
    assert listed(staff_client) == [busy.pk, other.pk, quiet.pk]
    change = reverse("admin:django_chatkit_thread_change", args=[quote(busy.pk)])
    assert f'<a href="{change}">Trip to Lisbon</a>' in html


def test_held_and_owner_deleted_threads_are_marked(staff_client, alice):
    held = make_thread(alice, legal_hold=True, deleted_by_owner_at=timezone.now())
    cells = row_cells(staff_client.get(URL).content.decode(), held)
    assert 'chatkit-hold">legal hold</span>' in cells["status_badge"]
    assert 'chatkit-deleted">deleted by owner</span>' in cells["status_badge"]


def test_titles_are_escaped_in_the_list(staff_client, alice):
    make_thread(alice, title='<img src=x onerror="alert(1)">')
    html = staff_client.get(URL).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


@pytest.fixture
def world(alice, bob) -> dict[str, models.Thread]:
    negative = make_thread(alice, title="negative", ago=timedelta(minutes=1))
    vote(negative, "negative", "m1")
    run(negative, model="gpt-a")
    failed = make_thread(None, title="failed", ago=timedelta(minutes=2))
    run(failed, status="failed", model="gpt-b")
    vote(failed, "positive", "m1")
    attached = make_thread(bob, title="attached", ago=timedelta(minutes=3), status="locked")
    attach(attached)
    attached.legal_hold = True
    attached.save()
    both = make_thread(None, title="both", ago=timedelta(minutes=4))
    vote(both, "negative", "m1")
    run(both, status="failed", model="gpt-a")
    run(both, model="gpt-b")
    attach(both)
    old = make_thread(alice, title="old", ago=timedelta(days=400), status="closed")
    return {t.title: t for t in (negative, failed, attached, both, old)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["negative", "failed", "attached", "both", "old"]),
        ("?status__exact=locked", ["attached"]),
        ("?status__exact=closed", ["old"]),
        ("?negative_feedback=yes", ["negative", "both"]),
        ("?negative_feedback=no", ["failed", "attached", "old"]),
        ("?failed_runs=yes", ["failed", "both"]),
        ("?failed_runs=no", ["negative", "attached", "old"]),
        ("?attachments=yes", ["attached", "both"]),
        ("?attachments=no", ["negative", "failed", "old"]),
        ("?legal_hold__exact=1", ["attached"]),
        ("?legal_hold__exact=0", ["negative", "failed", "both", "old"]),
        ("?owner_kind=user", ["negative", "attached", "old"]),
        ("?owner_kind=anonymous", ["failed", "both"]),
        ("?model=gpt-a", ["negative", "both"]),
        ("?model=gpt-b", ["failed", "both"]),
        ("?model=gpt-none", []),
        # Combinations: every filter narrows the others.
        ("?negative_feedback=yes&failed_runs=yes", ["both"]),
        ("?failed_runs=yes&owner_kind=anonymous&attachments=no", ["failed"]),
        ("?model=gpt-b&negative_feedback=no", ["failed"]),
        ("?attachments=yes&legal_hold__exact=1&status__exact=locked", ["attached"]),
        ("?owner_kind=user&status__exact=active", ["negative"]),
        ("?negative_feedback=yes&q=both", ["both"]),
    ],
)
def test_filters(staff_client, world, query, expected):
    with CaptureQueriesContext(connection) as queries:
        shown = listed(staff_client, query)
    assert shown == [world[title].pk for title in expected]
    # The has-X filters are subqueries: no join, so no DISTINCT.
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]


def test_activity_date_filter_links(staff_client, world):
    response = staff_client.get(URL)
    (spec,) = [s for s in response.context["cl"].filter_specs if s.title == "updated at"]
    links = {c["display"]: c["query_string"] for c in spec.choices(response.context["cl"])}
    assert set(links) >= {"Any date", "Today", "Past 7 days", "This month", "This year"}
    recent = [world[t].pk for t in ("negative", "failed", "attached", "both")]
    assert listed(staff_client, links["Past 7 days"]) == recent
    assert listed(staff_client, links["This year"]) == recent
    assert listed(staff_client, links["Any date"]) == [*recent, world["old"].pk]


def test_model_choices_come_from_recent_runs(staff_client, world, monkeypatch):
    response = staff_client.get(URL)
    (spec,) = [s for s in response.context["cl"].filter_specs if s.title == "model"]
    assert [choice[0] for choice in spec.lookup_choices] == ["gpt-a", "gpt-b"]
    # Only the newest runs are read; a model selected through the URL stays listed.
    monkeypatch.setattr(filters.ModelFilter, "recent_runs", 1)
    response = staff_client.get(URL + "?model=gpt-a")
    (spec,) = [s for s in response.context["cl"].filter_specs if s.title == "model"]
    assert [choice[0] for choice in spec.lookup_choices] == ["gpt-a", "gpt-b"]
    response = staff_client.get(URL)
    (spec,) = [s for s in response.context["cl"].filter_specs if s.title == "model"]
    assert [choice[0] for choice in spec.lookup_choices] == ["gpt-b"]  # the newest run's


@pytest.fixture
def searchable(alice, bob) -> dict[str, models.Thread]:
    bob.email = "bob.builder@example.org"
    bob.save()
    return {
        "lisbon": make_thread(alice, title="Trip to Lisbon", texts=("Which trams go uphill?",)),
        "porto": make_thread(
            bob,
            title="Port wine",
            texts=("Tell me about the Douro valley", "and the azulejos of Porto"),
        ),
        "anonymous": make_thread(None, texts=("Quarterly invoice overdue, refund please",)),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("lisbon", ["lisbon"]),  # title, any case
        ("Trip Lisbon", ["lisbon"]),  # every word of the title, in any order
        ("alice", ["lisbon"]),  # owner's username
        ("builder@example", ["porto"]),  # owner's email
        ("azulejos", ["porto"]),  # a word of a message
        ("douro valley", ["porto"]),  # words of one message
        ("invoice", ["anonymous"]),  # anonymous owners' messages too
        ("REFUND", ["anonymous"]),
        ("douro azulejos", []),  # words of two messages: no single message has both
        ("zanzibar", []),
        ("%", []),  # LIKE's wildcards are searched for, not used
        ("_", []),
        ('"unbalanced', []),  # websearch syntax never fails
    ],
)
def test_search(staff_client, searchable, term, expected):
    with CaptureQueriesContext(connection) as queries:
        shown = listed(staff_client, "?" + urlencode({"q": term}))
    assert shown == [searchable[name].pk for name in expected]
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]


@pytest.mark.parametrize("probe", [0, 1, 1000])
def test_search_finds_the_same_with_few_or_many_owners_and_messages(
    staff_client, searchable, alice, bob, monkeypatch, probe
):
    # Owners and threads with a matching message are looked up first when few (lists of keys
    # in the list's query), else as subqueries: the same threads either way.
    monkeypatch.setattr(search, "PROBE", probe)
    assert listed(staff_client, "?q=example.org") == [searchable["porto"].pk]  # bob's email
    alice.email = "alice@example.org"
    alice.save()
    assert listed(staff_client, "?q=example.org") == [
        searchable["porto"].pk,
        searchable["lisbon"].pk,
    ]
    extra = make_thread(None, texts=("The Douro again", "douro"), ago=timedelta(days=1))
    assert listed(staff_client, "?q=douro") == [searchable["porto"].pk, extra.pk]


def test_a_nul_in_the_search_is_refused_politely(staff_client, searchable):
    # PostgreSQL refuses NUL in a string literal; Django's search form refuses it first.
    response = staff_client.get(URL + "?" + urlencode({"q": "a\x00zores"}))
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()


def test_search_by_id_is_exact(staff_client, searchable):
    thread = searchable["porto"]
    assert listed(staff_client, f"?q={thread.pk}") == [thread.pk]
    # A fragment of an id matches nothing (an id is looked up by its primary key only).
    assert listed(staff_client, f"?q={thread.pk[:-3]}") == []
    # An id is unambiguous: that thread alone, even if another's title mentions it.
    make_thread(None, title=f"Duplicate of {thread.pk}")
    with CaptureQueriesContext(connection) as queries:
        assert listed(staff_client, f"?q={thread.pk}") == [thread.pk]
    assert not [q for q in queries.captured_queries if "LIKE" in q["sql"]]
    assert len(listed(staff_client, f"?q=duplicate+{thread.pk}")) == 1  # not an id: by title


@on_postgresql
def test_message_search_uses_the_full_text_index(staff_client, searchable, monkeypatch):
    with CaptureQueriesContext(connection) as queries:
        assert listed(staff_client, "?q=azulejos") == [searchable["porto"].pk]
    # The very expression of the GIN index of migration 0005 (else the index is never used).
    expression = f"to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, COALESCE("
    (probe,) = [q["sql"] for q in queries.captured_queries if "websearch_to_tsquery" in q["sql"]]
    assert expression in probe and "LIMIT" in probe  # the threads found first, then listed
    # Many matches: the EXISTS subquery in the list's query itself, same expression.
    monkeypatch.setattr(search, "PROBE", 0)
    with CaptureQueriesContext(connection) as queries:
        assert listed(staff_client, "?q=azulejos") == [searchable["porto"].pk]
    assert [q for q in queries.captured_queries if "EXISTS" in q["sql"] and expression in q["sql"]]
    with connection.cursor() as cursor:
        # Few rows: the planner would rather scan; forbid that to see the index is usable.
        cursor.execute("SET LOCAL enable_seqscan = off")
        items = (
            "SELECT thread_id FROM django_chatkit_threaditem WHERE to_tsvector("
            "'simple'::regconfig, COALESCE(text, '')) @@ websearch_to_tsquery('simple', %s)"
        )
        cursor.execute("EXPLAIN " + items, ["azulejos"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "chatkit_item_text_search" in plan, plan


def make_busy_threads(owner: Any, count: int) -> None:
    for n in range(count):
        thread = make_thread(owner, ago=timedelta(minutes=n), texts=("question", "answer"))
        vote(thread, "negative" if n % 2 else "positive", "msg")
        run(thread, status="failed" if n % 3 == 0 else "completed", input_tokens=n)
        if n % 5 == 0:
            attach(thread)


@pytest.mark.parametrize("query", ["", "?all=", "?q=question", "?negative_feedback=yes"])
def test_query_count_is_constant_in_the_rows_shown(staff_client, alice, query):
    make_busy_threads(alice, 10)
    with CaptureQueriesContext(connection) as few:
        response = staff_client.get(URL + query)
    assert response.status_code == 200 and len(response.context["cl"].result_list) >= 5
    make_busy_threads(alice, 190)
    with CaptureQueriesContext(connection) as many:
        response = staff_client.get(URL + query)
    assert response.status_code == 200
    shown = len(response.context["cl"].result_list)
    assert shown == (200 if query == "?all=" else 100)
    assert len(many) == len(few), [q["sql"][:200] for q in many.captured_queries]
    # Per-row figures are correlated subqueries, not a join grouped over every item.
    assert not [q for q in many.captured_queries if "GROUP BY" in q["sql"]]


def test_filtered_count_stops_at_its_cap(staff_client, alice, monkeypatch):
    from django_chatkit.admin.threads import ThreadAdmin

    monkeypatch.setattr(EstimatedCountPaginator, "keys_cap", 2)  # a search's cap
    monkeypatch.setattr(ThreadAdmin, "list_per_page", 1)
    for n in range(3):
        make_thread(alice, title=f"match {n}")
    make_thread(alice, title="other")
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(URL + "?q=match")
    html = response.content.decode()
    assert "Threads: more than 2" in html
    assert len(response.context["cl"].result_list) == 1
    threads = re.compile(rf"FROM {re.escape(connection.ops.quote_name('django_chatkit_thread'))}\s")
    sql = [q["sql"] for q in queries.captured_queries if threads.search(q["sql"])]
    # Counted no further than cap + 1 rows, without computing the per-row figures: the keys of
    # the matching rows, which then fetch the page, so the search runs once.
    (keys,) = [s for s in sql if "LIMIT 3" in s]
    assert FIGURE not in keys and "COUNT(" not in keys
    (page,) = [s for s in sql if FIGURE in s]  # page 1 of 2, by key
    assert listed(staff_client, "?q=match&p=2") == [models.Thread.objects.get(title="match 1").pk]
    assert not re.search(r"(LIMIT|OFFSET) \d+$", page) and page.count(" IN ('thr_") == 1
    assert len(sql) == 3  # and the probe for a thread of that id
    monkeypatch.setattr(EstimatedCountPaginator, "keys_cap", 3)
    assert "3 threads" in staff_client.get(URL + "?q=match").content.decode()
    # Filters without a search: a capped COUNT in any order, then the page with a LIMIT.
    monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 2)
    with CaptureQueriesContext(connection) as queries:
        html = staff_client.get(URL + "?owner_kind=user").content.decode()
    assert "Threads: more than 2" in html
    sql = [q["sql"] for q in queries.captured_queries if "django_chatkit_thread" in q["sql"]]
    (count,) = [s for s in sql if "COUNT(*)" in s]
    assert "LIMIT 3" in count and FIGURE not in count and "ORDER BY" not in count
    (page,) = [s for s in sql if FIGURE in s]
    assert page.endswith("LIMIT 1")


def test_unfiltered_count_is_exact_when_not_estimated(staff_client, alice):
    make_busy_threads(alice, 3)
    with CaptureQueriesContext(connection) as queries:
        html = staff_client.get(URL).content.decode()
    assert re.search(r"\n3 threads\n", html)
    # PostgreSQL is asked for its estimate, found below the threshold: counted exactly.
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert ("pg_class" in sql) == (connection.vendor == "postgresql")
    assert "COUNT(*)" in sql


@on_postgresql
def test_unfiltered_count_is_estimated_on_postgresql(staff_client, alice, monkeypatch):
    make_busy_threads(alice, 7)
    with connection.cursor() as cursor:
        # The rows of this (uncommitted) test transaction count: ANALYZE sees its own inserts.
        cursor.execute("ANALYZE django_chatkit_thread")
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'django_chatkit_thread'::regclass"
        )
        (estimate,) = cursor.fetchone()
    assert estimate == 7
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 5)
    with CaptureQueriesContext(connection) as queries:
        html = staff_client.get(URL).content.decode()
    assert "Threads: about 7" in html
    # Not beside the search box as Django would ("7 results (Show all)"): an estimate.
    assert "results" not in html.split('id="changelist-search"')[1].split("</form>")[0]
    sql = [q["sql"] for q in queries.captured_queries]
    assert [s for s in sql if "pg_class" in s]
    # No COUNT(*) over the table (the figures' correlated COUNTs are per row, not this).
    assert not [s for s in sql if "COUNT(*)" in s], sql
    # Below the threshold (a small table), the count is exact.
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 8)
    with CaptureQueriesContext(connection) as queries:
        html = staff_client.get(URL).content.decode()
    assert re.search(r"\n7 threads\n", html) and "about" not in html.split('class="paginator"')[1]
    assert [q for q in queries.captured_queries if "COUNT(*)" in q["sql"]]
    # Filtered: never the table's estimate.
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_threshold", 0)
    html = staff_client.get(URL + "?failed_runs=yes").content.decode()
    assert re.search(r"\n3 threads\n", html)
    # Filtered and exact: also beside the search box, as in Django.
    assert "3 results" in html.split('id="changelist-search"')[1].split("</form>")[0]


def test_view_only_staff_sees_the_changelist(alice):
    make_thread(alice, title="Trip to Lisbon", texts=("hello",))
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_thread"))
    client = Client()
    client.force_login(viewer)
    response = client.get(URL + "?q=hello&negative_feedback=no&owner_kind=user")
    assert response.status_code == 200
    assert ">Trip to Lisbon</a>" in response.content.decode()


def test_last_activity_is_the_only_sortable_column(staff_client, alice):
    newer = make_thread(alice, ago=timedelta(minutes=1))
    older = make_thread(alice, ago=timedelta(days=3))
    response = staff_client.get(URL)
    assert response.context["cl"].get_ordering_field_columns()  # ordered by updated_at
    assert listed(staff_client) == [newer.pk, older.pk]
    html = response.content.decode()
    (sortable,) = re.findall(r'<th scope="col" class="sortable ([a-z_-]+)', html)
    assert sortable == "column-last_activity"
    # Its sort link (column 5, after the action checkbox), ascending then.
    assert listed(staff_client, "?o=5") == [older.pk, newer.pk]
    assert listed(staff_client, "?o=-5") == [newer.pk, older.pk]


def test_later_pages_pick_their_rows_by_key(staff_client, alice, monkeypatch):
    from django_chatkit.admin.threads import ThreadAdmin

    monkeypatch.setattr(ThreadAdmin, "list_per_page", 3)
    threads = [make_thread(alice, ago=timedelta(minutes=n), texts=("hi",)) for n in range(7)]
    newest_first = [t.pk for t in threads]
    assert listed(staff_client) == newest_first[:3]
    with CaptureQueriesContext(connection) as queries:
        assert listed(staff_client, "?p=2") == newest_first[3:6]
    sql = [q["sql"] for q in queries.captured_queries if "django_chatkit_thread" in q["sql"]]
    (keys,) = [s for s in sql if "OFFSET 3" in s]
    # The skipped rows' figures are never computed: the OFFSET query selects keys only.
    assert FIGURE not in keys
    (page,) = [s for s in sql if FIGURE in s]
    assert "OFFSET" not in page
    assert listed(staff_client, "?p=3") == newest_first[6:]
    assert listed(staff_client, "?p=3&negative_feedback=no") == newest_first[6:]
    cells = row_cells(staff_client.get(URL + "?p=2").content.decode(), threads[4])
    assert cells["item_count"] == "1"


@on_postgresql
def test_title_search_can_use_the_trigram_index(db):
    """Migration 0006: ``UPPER(title)`` indexed with trigrams, the expression ``icontains``
    compiles to; with sequential scans off, PostgreSQL must still be able to answer it."""
    make_thread(title="Planning the wedding")
    query = models.Thread.objects.filter(title__icontains="wedd").order_by().values("pk")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        # No table scan and no walk of another index with a filter: what remains is an index
        # that can answer the LIKE itself.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "chatkit_thread_title_trigram" in plan, plan
