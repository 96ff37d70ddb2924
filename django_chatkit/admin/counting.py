"""Counting the changelist's rows without scanning a table of a million threads.

Django's paginator counts with ``SELECT COUNT(*)``: on PostgreSQL that reads every row (or every
index entry) of the table, seconds at a few million rows, on every page view. The threads
changelist does not need the exact figure, so:

- unfiltered, on PostgreSQL: the planner's estimate of the table's rows (``pg_class.reltuples``,
  kept current by autovacuum / ANALYZE), shown as "about N threads";
- filtered or searched: an exact count of at most ``count_cap`` rows (a ``LIMIT``, which stops
  reading at the cap), shown as "more than N threads" when the cap is reached; pages up to the
  cap stay reachable. A search counts by collecting the matching keys in order (``keys_first``)
  and fetches its page by these keys: a search reads the table once, not twice;
- small tables, and other databases: Django's exact count (cheap there, and what tests expect).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils import formats

if TYPE_CHECKING:  # Paginator is generic for type checkers only
    AnyPaginator = Paginator[Any]
else:
    AnyPaginator = Paginator


class EstimatedCountPaginator(AnyPaginator):
    # Below this many rows (by the estimate) COUNT(*) is cheap and the exact figure is shown.
    estimate_threshold = 100_000
    # Filtered counts stop at this many rows (ten pages of a hundred rows). Counting is what
    # grows with the table: 10,000 rows of "has negative feedback" at a million threads read
    # every negative vote and a third of the threads (over 100 ms); 1,000 stop after 35,000
    # index entries (5 ms). A filter that matches more is refined (the activity date filter)
    # rather than paged through.
    count_cap = 1_000
    # Filtered, collect the matching keys in order while counting, then fetch the page by key:
    # for filters that read the whole table anyway (a search without an index), one read
    # instead of two (the count's, the page's). For indexed filters, ordering ten thousand keys
    # costs more than a second, ordered read of a hundred rows. Set per request (ThreadAdmin).
    keys_first = False
    # Keys collected this way stop at the same cap: the walk along the list's order that finds
    # them is the longer, the more pages it fills.
    keys_cap = 1_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set by ``count``: the template says "about N" or "more than N" instead of "N".
        self.estimated = False
        self.capped = False
        # The filtered rows' keys, in order (set by ``count``); None when not filtered.
        self.keys: list[Any] | None = None

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):  # a list (Django's "show all" never is)
            return len(queryset)
        if not queryset.query.where:  # every row of the table: estimate it
            estimate = table_estimate(queryset)
            if estimate is not None and estimate >= self.estimate_threshold:
                self.estimated = True
                return estimate
            return queryset.count()
        cap = self.count_cap
        if self.keys_first:
            # The keys of the matching rows, in the list's order, no further than the cap: the
            # one read of the filter serves both the count and the page, then fetched by key.
            # values_list("pk") leaves out the per-row figures (annotations).
            cap = self.keys_cap
            keys = list(queryset.values_list("pk", flat=True)[: cap + 1])
            self.keys = keys[:cap]
            counted = len(keys)
        else:
            # Counted no further than the cap, in any order (the planner may then read an
            # index, or hash a semi-join, rather than walk the list's ordering). A sliced
            # queryset is counted as a subquery that keeps its annotations: values("pk") and
            # order_by() leave them out, else every counted row would compute its figures.
            counted = queryset.order_by().values("pk")[: cap + 1].count()
        if counted > cap:
            self.capped = True
            return cap
        return counted

    @property
    def count_display(self) -> str:
        """The count with its thousands grouped ("about 1,000,000 threads")."""
        return formats.number_format(self.count, force_grouping=True)

    def page(self, number: Any) -> Any:
        """The page, its rows fetched by primary key.

        An OFFSET makes the database produce every skipped row; with the per-row figures
        (correlated subqueries in the SELECT list), it would compute them for each skipped row
        too: page 5,000 computed 500,000 rows' figures. Here the page's keys come first, from
        the filtered count (``count``) or, unfiltered, from the ordering alone (on PostgreSQL an
        index-only scan of chatkit_thread_activity); then the page's own rows, with their
        figures, by primary key. The first unfiltered page needs neither: it has no OFFSET.
        """
        number = self.validate_number(number)  # counts, so keys is known from here on
        rows = self.object_list
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        if not isinstance(rows, QuerySet):
            return super().page(number)
        if self.keys is not None:
            keys = self.keys[bottom:top]
        elif bottom == 0:
            return super().page(number)
        else:
            keys = list(rows.values_list("pk", flat=True)[bottom:top])
        # Still in the queryset's order. A list of keys, not a subquery with a LIMIT: MySQL and
        # MariaDB do not accept one inside IN.
        return Page(rows.filter(pk__in=keys), number, self)


def table_estimate(queryset: QuerySet[Any]) -> int | None:
    """The planner's row estimate for the queryset's table on PostgreSQL, else None (unknown:
    another database, or a table never analysed, whose reltuples is -1 on PostgreSQL 14+)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        # to_regclass: the quoted table name resolved through the search_path, as queries do.
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class BoundedChangeList(ChangeList):
    """Django's ChangeList, whose single page of results is bounded: fetched by the keys the
    filtered count found (EstimatedCountPaginator.keys), else given a LIMIT.

    When every row fits on one page, Django runs the page's query unsliced. The rows are few,
    but the planner does not know it (a search's selectivity is a guess), and prices the
    per-row figures for every row it guesses: on PostgreSQL, a cost high enough to compile the
    query to machine code (JIT), over a second of work for a query that runs in milliseconds.
    A LIMIT of the page size, or a list of keys, bounds that estimate and changes nothing in
    the result; the keys also spare a second run of the filter.
    """

    def get_results(self, request: Any) -> None:
        super().get_results(request)
        rows = self.result_list
        # Django's own test for "the whole queryset is the page" (else the paginator's page).
        whole = (self.show_all and self.can_show_all) or not self.multi_page
        if whole and isinstance(rows, QuerySet) and not rows.query.is_sliced:
            keys = getattr(self.paginator, "keys", None)
            if keys is not None:  # filtered: every matching row's key is known already
                self.result_list = rows.filter(pk__in=keys)
            else:
                bound = self.list_max_show_all if self.show_all else self.list_per_page
                self.result_list = rows[: max(bound, self.result_count)]
