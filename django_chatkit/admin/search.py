"""The threads changelist's search: by id, title, owner and message text, at a million threads.

Django's default search ORs ``icontains`` over every search field, joining the related tables.
Field by field, what stays sane at 1,000,000 threads / 5,000,000 items:

- id: exact match only, through the primary key. Ids are opaque ("thr_..."), copied whole from
  a log or a URL; a substring match would scan the table for nothing a moderator needs. A term
  that is a thread's id finds that thread alone (ThreadAdmin.get_search_results), at once.
- title: Django's behaviour (each word ``icontains``, all words required). There is no index for
  a substring, so this reads the titles; but it is one pass over one narrow table, no join, and
  with the changelist's ordering the page is found as soon as enough rows match.
- owner username / email: ``icontains`` on the users table (far smaller than the threads), then
  ``user_id IN (those users)`` through the threads' owner index: no join from every thread to
  its user.
- message text: on PostgreSQL, full-text search over ``ThreadItem.text`` with the "simple"
  configuration (no stemming, no stop words: any language), compiled to the very expression of
  the GIN index chatkit_item_text_search (migration 0005), so the items are found from the index
  and not by reading five million texts. The terms are parsed as websearch_to_tsquery does: all
  words of the query in one message, "quoted phrases", -excluded words. Elsewhere (no such
  index), every word ``icontains`` in one message: a scan, fine for the small databases that
  are not PostgreSQL.

The conditions are ORed in one WHERE; owners and messages as key lists or subqueries rather
than joins, so no thread is listed twice and no DISTINCT over the table is needed. Few matching
owners / threads with a matching message (looked up first, thread_search) enter as key lists;
many, as subqueries (messages: an EXISTS correlated to the thread, probed along the list's
order, where a common word is met at once). ``pk IN (all matching items)`` was measured too:
a word in every message took seconds. Titles: on PostgreSQL, migration 0006 indexes
``UPPER(title)`` with trigrams (pg_trgm), which answers ``icontains``; without it (no
extension, other databases) a title search that matches few threads reads the table once.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from django_chatkit import models

# Both the index (migration 0005) and the query use this configuration.
TEXT_SEARCH_CONFIG = "simple"


def search_words(term: str) -> list[str]:
    """The words of a search term as Django's admin splits them ("quoted phrases" kept whole)."""
    words = []
    for bit in smart_split(term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            words.append(bit)
    return words


# Owners and threads with a matching message are first looked up on their own, up to this
# many: see thread_search.
PROBE = 1000


def thread_search(queryset: QuerySet[models.Thread], term: str) -> Q:
    """The condition a thread must meet to match ``term`` (a non-empty, stripped search term).

    The matching owners, and on PostgreSQL the threads with a matching message, are first
    looked up on their own (one short query each, the latter through the GIN index). When
    they are few, they enter the condition as lists of keys, whose selectivity the planner
    knows; as subqueries, ORed with the title's condition, it can only guess (three rows in
    four kept), and then walks the list's ordering index through every thread expecting to
    stop early, where a parallel scan of the titles was three times faster (at 1,000,000
    threads: ~500 ms against ~160 ms for a rare word). When they are many, the subquery is
    the right plan (matches are met soon along the ordering) and is kept.
    """
    words = search_words(term) or [term]
    by_title = Q.create([("title__icontains", word) for word in words], connector=Q.AND)
    users = _users(term)
    few_users = list(users.values_list("pk", flat=True)[: PROBE + 1])
    by_owner = Q(user__in=few_users) if len(few_users) <= PROBE else Q(user__in=users)
    items = _items(queryset, term, words)
    by_text = Q(Exists(items.filter(thread=OuterRef("pk"))))
    if connections[queryset.db].vendor == "postgresql":
        # Item rows, not distinct threads: DISTINCT would read every match of a common word.
        found = list(items.values_list("thread_id", flat=True)[: PROBE + 1])
        if len(found) <= PROBE:
            by_text = Q(pk__in=set(found))
    return Q(pk=term) | by_title | by_owner | by_text


def _users(term: str) -> QuerySet[Any]:
    user_model = get_user_model()
    fields = {user_model.USERNAME_FIELD, user_model.get_email_field_name()}
    # Only fields that exist: a custom user model may have no email.
    names = {field.name for field in user_model._meta.get_fields()}
    matches = Q.create(
        [(f"{field}__icontains", term) for field in sorted(fields & names)], connector=Q.OR
    )
    return user_model._default_manager.filter(matches).values("pk")


def _items(queryset: QuerySet[models.Thread], term: str, words: list[str]) -> QuerySet[Any]:
    items = models.ThreadItem.objects.order_by()
    if connections[queryset.db].vendor == "postgresql":
        # Imported here: django.contrib.postgres needs psycopg, which SQLite sites lack.
        from django.contrib.postgres.search import SearchQuery, SearchVector

        vector = SearchVector("text", config=TEXT_SEARCH_CONFIG)
        query = SearchQuery(term, config=TEXT_SEARCH_CONFIG, search_type="websearch")
        items = items.annotate(search=vector).filter(search=query)
    else:
        items = items.filter(
            Q.create([("text__icontains", word) for word in words], connector=Q.AND)
        )
    return items
