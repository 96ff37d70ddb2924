"""DjangoStore: the only place the ChatKit SDK meets the ORM.

Every query is scoped to the context's owner, so another owner's thread, item or attachment
behaves exactly as a missing one. Each public method runs one synchronous function in a worker
thread (one hop, one transaction where it writes) and issues a constant number of queries.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from chatkit.store import NotFoundError, Store, StoreItemType
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata, UserMessageItem
from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, Model, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from django.utils.translation import gettext

from django_chatkit import models, signals
from django_chatkit.attachments import copies
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.db import in_thread, upsert_options
from django_chatkit.errors import RequestRejected, StoredDataInvalid
from django_chatkit.fake_ids import is_fake, store_type
from django_chatkit.ids import new_typed_id
from django_chatkit.live import notices
from django_chatkit.serialization import (
    THREAD_FIELDS,
    attachment_from_payload,
    attachment_row_values,
    item_from_payload,
    item_row_values,
    thread_from_row,
    thread_row_values,
    to_aware,
)

logger = logging.getLogger("django_chatkit")

# Keys of ChatKitContext.extra used by the store.
_NEW_THREAD_IDS = "django_chatkit.new_thread_ids"
_CHECKED_THREADS = "django_chatkit.checked_threads"
_RECENT_ITEMS = "django_chatkit.recent_items"
# Thread id -> metadata columns as this request last read or wrote them: a save_thread that
# changes nothing writes nothing, and one that changes a column writes just that column (so it
# cannot undo what another request changed meanwhile, e.g. staff locking the thread mid-answer).
_STORED_THREADS = "django_chatkit.stored_threads"
# Set (to a number of items) by a server whose answer starts by reading the thread's newest
# items, as the agent server reads its history: the write of the user's message then reads them
# in the same trip to the worker thread, one hop fewer before the model call.
HISTORY_PREFETCH = "django_chatkit.history_prefetch"
# Thread id -> (limit, items) read that way, for load_recent_items.
_PREFETCHED = "django_chatkit.prefetched_history"
# Thread id -> whether it is on legal hold, as this request loaded it (is_on_legal_hold).
_LEGAL_HOLDS = "django_chatkit.legal_holds"
# Thread id -> whether staff had taken it over, as this request loaded it (is_taken_over).
_TAKEN_OVER = "django_chatkit.taken_over"

M = TypeVar("M", bound=Model)
P = TypeVar("P", ThreadMetadata, ThreadItem)


class _RowAfter(Func):
    """``(created_at, id) > (x, y)`` (or ``<``) as one SQL row-value comparison.

    PostgreSQL, MySQL/MariaDB and SQLite (3.15+) compare row values natively, so the database
    seeks the ``(owner|thread, created_at, id)`` index straight to the cursor even when many rows
    share one ``created_at``; an ``a > x OR (a = x AND b > y)`` filter only seeks on ``a``.
    """

    output_field = BooleanField()

    def __init__(self, created_at: Any, pk: Any, *, descending: bool) -> None:
        self.operator = "<" if descending else ">"
        created_field = models.ThreadItem._meta.get_field("created_at")
        super().__init__(
            F("created_at"), F("pk"), Value(created_at, output_field=created_field), Value(pk)
        )

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        parts: list[str] = []
        params: list[Any] = []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        return f"({parts[0]}, {parts[1]}) {self.operator} ({parts[2]}, {parts[3]})", tuple(params)


def _keyset_after(queryset: QuerySet[M], cursor: Mapping[str, Any], order: str) -> QuerySet[M]:
    """Rows strictly after ``cursor`` (its created_at and pk) in ``order``.

    The redundant ``created_at`` range keeps the index range bounded on planners that do not
    use row comparisons as index conditions.
    """
    created, pk = cursor["created_at"], cursor["pk"]
    if order == "asc":
        return queryset.filter(_RowAfter(created, pk, descending=False), created_at__gte=created)
    return queryset.filter(_RowAfter(created, pk, descending=True), created_at__lte=created)


def _ordered(queryset: QuerySet[M], order: str) -> QuerySet[M]:
    if order == "asc":
        return queryset.order_by("created_at", "pk")
    return queryset.order_by("-created_at", "-pk")


def _order(order: str) -> Literal["asc", "desc"]:
    if order not in ("asc", "desc"):
        raise ValueError(f"Unknown order {order!r}: use 'asc' or 'desc'.")
    return "asc" if order == "asc" else "desc"


def _page_size(limit: int) -> int:
    return max(1, min(int(limit), chatkit_settings.MAX_PAGE_SIZE))


def _page(data: list[P], has_more: bool) -> Page[P]:
    """A page whose ``after`` is the cursor of the next one: None on the last page, as the SDK's
    own tests require, so that a client never asks for a page that cannot exist."""
    return Page(data=data, has_more=has_more, after=data[-1].id if has_more else None)


def _first(queryset: QuerySet[Any, Any]) -> Any:
    """The first row of a lookup by unique key, without the ORDER BY ``.first()`` adds."""
    return next(iter(queryset.order_by()[:1]), None)


def _owners_threads(context: ChatKitContext, prefix: str = "") -> dict[str, Any]:
    """Lookups selecting the threads this owner sees (``prefix`` e.g. ``"thread__"``): theirs,
    except those they deleted while on legal hold, which are kept for staff only and are, to
    their owner, missing; and hosted threads imported for review, which OpenAI serves to their
    owner (docs/hosted.md): here they are missing too, so that nobody writes to a copy.
    All are columns of the thread row, so no query joins more for it."""
    return {
        **context.owner.filter(prefix),
        f"{prefix}deleted_by_owner_at__isnull": True,
        f"{prefix}source": models.ThreadSource.SELF,
    }


def _owned_thread(
    thread_id: str, context: ChatKitContext, *fields: str, **annotations: Any
) -> dict[str, Any] | None:
    """The thread's ``fields`` if it exists and this owner sees it, else None. One query.

    Looked up by primary key alone and the owner compared here: a combined filter lets the
    planner walk the owner's whole index instead of the primary key.
    """
    row = (
        models.Thread.objects.filter(id=thread_id)
        .annotate(**annotations)
        .order_by()
        .values(*fields, "user_id", "anonymous_key", "deleted_by_owner_at", "source")[:1]
    )
    found = next(iter(row), None)
    if found is None or found["deleted_by_owner_at"] is not None:
        return None
    if found["source"] != models.ThreadSource.SELF:  # imported, see _owners_threads
        return None
    return found if context.owner.owns(found) else None


def locked_refusal(change: str, reason: str | None) -> RequestRejected:
    """The 409 refusing the owner ``change`` (what they tried, translated) on a locked thread,
    with the moderator's message to them (``Thread.status_reason``; never the internal note)."""
    message = gettext("This conversation is locked: %(change)s.") % {"change": change}
    return RequestRejected(409, "thread_locked", with_reason(message, reason))


def with_reason(message: str, reason: str | None) -> str:
    """``message`` followed by the moderator's message to the owner, when there is one."""
    if not reason:
        return message
    return gettext("%(message)s Reason: %(reason)s") % {"message": message, "reason": reason}


def _remember_stored(context: ChatKitContext, thread_id: str, values: dict[str, Any]) -> None:
    context.extra.setdefault(_STORED_THREADS, {})[thread_id] = copy.deepcopy(values)


def _changed_columns(context: ChatKitContext, thread: ThreadMetadata) -> dict[str, Any] | None:
    """The metadata columns ``thread`` changes against what this request last read or wrote,
    or None when the request has not seen the row (then every column is written)."""
    stored = context.extra.get(_STORED_THREADS, {}).get(thread.id)
    if stored is None:
        return None
    return {
        column: value
        for column, value in thread_row_values(thread).items()
        if stored.get(column) != value
    }


def _thread_change_notices(thread_id: str, changed: dict[str, Any] | None) -> list[notices.Notice]:
    """What a metadata write changed, as notices (``changed`` None: not known, all written)."""
    if changed is None:
        return [notices.notice(notices.THREAD_UPDATED, thread_id)]
    events = []
    if "title" in changed:
        events.append(notices.THREAD_TITLE)
    if {"status", "status_reason"} & changed.keys():
        events.append(notices.THREAD_STATUS)
    if changed.keys() - {"title", "status", "status_reason"}:
        events.append(notices.THREAD_UPDATED)
    return [notices.notice(event, thread_id) for event in events]


class DjangoStore(Store[ChatKitContext]):
    """A ChatKit ``Store`` over the Django ORM, scoped to ``context.owner``."""

    # -- ids ------------------------------------------------------------------------------------

    def generate_thread_id(self, context: ChatKitContext) -> str:
        thread_id = new_typed_id("thread")
        # Remembered so that the first save_thread inserts without trying an update first.
        context.extra.setdefault(_NEW_THREAD_IDS, set()).add(thread_id)
        return thread_id

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: ChatKitContext
    ) -> str:
        return new_typed_id(item_type)

    # -- threads --------------------------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: ChatKitContext) -> ThreadMetadata:
        checked: ThreadMetadata | None = context.extra.get(_CHECKED_THREADS, {}).pop(
            thread_id, None
        )
        if checked is not None:
            return checked
        return await in_thread(self._load_thread)(thread_id, context)

    async def load_thread_for_request(
        self, thread_id: str, context: ChatKitContext
    ) -> ThreadMetadata:
        """Load a thread while vetting a request, and hand it to the SDK's next load_thread.

        The SDK loads the thread again as the op starts; the request's checks already did, a
        moment earlier in the same request, so that second load is served from this one.
        """
        thread = await self.load_thread(thread_id, context)
        context.extra.setdefault(_CHECKED_THREADS, {})[thread_id] = thread.model_copy(deep=True)
        return thread

    def _load_thread(self, thread_id: str, context: ChatKitContext) -> ThreadMetadata:
        row = _owned_thread(thread_id, context, *THREAD_FIELDS, "legal_hold", "taken_over_at")
        if row is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        thread = thread_from_row(row)
        _remember_stored(context, thread.id, thread_row_values(thread))
        # Read with the thread (no query of their own) for is_on_legal_hold / is_taken_over.
        context.extra.setdefault(_LEGAL_HOLDS, {})[thread.id] = row["legal_hold"]
        context.extra.setdefault(_TAKEN_OVER, {})[thread.id] = row["taken_over_at"] is not None
        return thread

    def is_taken_over(self, thread_id: str, context: ChatKitContext) -> bool | None:
        """Whether staff had the thread, as this request loaded it (no query); None for a
        thread this request has not loaded. A takeover committed after that load is seen by
        the answer's stop watch (django_chatkit.stops), which stops the answer."""
        taken: dict[str, bool] = context.extra.get(_TAKEN_OVER, {})
        return taken.get(thread_id)

    def is_on_legal_hold(self, thread_id: str, context: ChatKitContext) -> bool:
        """Whether the thread, as this request last loaded it, is on legal hold (no query).

        Raises ``LookupError`` for a thread this request has not loaded: a guess either way
        would be wrong, since the hold is what keeps evidence.
        """
        holds: dict[str, bool] = context.extra.get(_LEGAL_HOLDS, {})
        if thread_id not in holds:
            raise LookupError(f"Thread {thread_id} was not loaded by this request")
        return holds[thread_id]

    async def save_thread(self, thread: ThreadMetadata, context: ChatKitContext) -> None:
        changed = _changed_columns(context, thread)
        if changed == {}:
            return  # the SDK saves after every turn that touched the thread object at all
        await in_thread(self._save_thread)(thread, changed, context)

    def _save_thread(
        self, thread: ThreadMetadata, changed: dict[str, Any] | None, context: ChatKitContext
    ) -> None:
        """Write ``changed`` columns (all of them when None), inserting a thread not stored yet."""
        values = thread_row_values(thread)
        now = timezone.now()
        new_ids = context.extra.get(_NEW_THREAD_IDS, set())
        if thread.id in new_ids:
            new_ids.discard(thread.id)
        elif models.Thread.objects.filter(id=thread.id, **_owners_threads(context)).update(
            updated_at=now, **(values if changed is None else changed)
        ):
            _remember_stored(context, thread.id, values)
            notices.publish_on_commit(_thread_change_notices(thread.id, changed))
            return
        try:
            with transaction.atomic():
                models.Thread.objects.create(
                    id=thread.id,
                    created_at=to_aware(thread.created_at),
                    updated_at=now,
                    **context.owner.fields(),
                    **values,
                )
        except IntegrityError as exc:
            # The id exists but belongs to someone else: as far as this owner knows, it is missing.
            raise NotFoundError(f"Thread {thread.id} not found") from exc
        _remember_stored(context, thread.id, values)
        notices.publish_on_commit([notices.notice(notices.THREAD_CREATED, thread.id)])
        signals.thread_created.send(sender=models.Thread, thread=thread, context=context)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: ChatKitContext
    ) -> Page[ThreadMetadata]:
        return await in_thread(self._load_threads)(limit, after, order, context)

    def _load_threads(
        self, limit: int, after: str | None, order: str, context: ChatKitContext
    ) -> Page[ThreadMetadata]:
        queryset = models.Thread.objects.filter(**_owners_threads(context))
        if after is not None:
            cursor = _owned_thread(after, context, "created_at", "pk")
            if cursor is None:
                raise NotFoundError(f"Thread {after} (the 'after' cursor) not found")
            queryset = _keyset_after(queryset, cursor, _order(order))
        size = _page_size(limit)
        rows = list(_ordered(queryset, _order(order)).values(*THREAD_FIELDS)[: size + 1])
        data = [thread_from_row(row) for row in rows[:size]]
        return _page(data, has_more=len(rows) > size)

    async def delete_thread(self, thread_id: str, context: ChatKitContext) -> None:
        await in_thread(self._delete_thread)(thread_id, context)

    def _delete_thread(self, thread_id: str, context: ChatKitContext) -> None:
        """Delete the thread, or, while it is on legal hold, hide it from its owner.

        A held thread is evidence: the owner's delete marks it ``deleted_by_owner_at`` and from
        then on it is missing to them (every query here skips it) while staff still see it.
        The held case is tried second so that an ordinary delete costs no extra query.
        """
        # Items, feedback and attachments go with the thread (cascades), in one transaction.
        with transaction.atomic():
            deleted, _ = models.Thread.objects.filter(
                id=thread_id, legal_hold=False, **_owners_threads(context)
            ).delete()
        if not deleted:
            hidden = models.Thread.objects.filter(
                id=thread_id, legal_hold=True, **_owners_threads(context)
            ).update(deleted_by_owner_at=timezone.now())
            if not hidden:
                raise NotFoundError(f"Thread {thread_id} not found")
        notices.publish_on_commit([notices.notice(notices.THREAD_DELETED, thread_id)])

    # -- items ----------------------------------------------------------------------------------

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: ChatKitContext,
    ) -> Page[ThreadItem]:
        recent = self._recent_page(thread_id, after, limit, order, context)
        if recent is not None:
            return recent
        return await in_thread(self._load_thread_items)(thread_id, after, limit, order, context)

    def _recent_page(
        self, thread_id: str, after: str | None, limit: int, order: str, context: ChatKitContext
    ) -> Page[ThreadItem] | None:
        """The newest items, from the history ``load_recent_items`` read a moment ago.

        ``chatkit.agents.stream_agent_response`` looks at the thread's newest two items right
        after the agent server loaded its history: served from that (once), instead of two
        more queries. None when the history cannot answer the request.
        """
        recent = context.extra.get(_RECENT_ITEMS, {}).pop(thread_id, None)
        if recent is None or after is not None or order != "desc":
            return None
        items, complete = recent
        size = _page_size(limit)
        if len(items) <= size and not complete:
            return None  # the thread may hold more than what was loaded
        data = list(reversed(items))[:size]
        return _page(data, has_more=len(items) > size)

    def _load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: ChatKitContext,
    ) -> Page[ThreadItem]:
        direction = _order(order)
        # One query proves the thread is this owner's and finds the cursor's position.
        cursor_row = models.ThreadItem.objects.filter(
            thread_id=OuterRef("pk"), item_id=after
        ).order_by()
        found = _owned_thread(
            thread_id,
            context,
            "cursor_created_at",
            "cursor_pk",
            cursor_created_at=Subquery(cursor_row.values("created_at")[:1]),
            cursor_pk=Subquery(cursor_row.values("pk")[:1]),
        )
        if found is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        queryset = models.ThreadItem.objects.filter(thread_id=thread_id)
        if after is not None:
            if found["cursor_pk"] is None:
                raise NotFoundError(f"Item {after} (the 'after' cursor) not found")
            cursor = {"created_at": found["cursor_created_at"], "pk": found["cursor_pk"]}
            queryset = _keyset_after(queryset, cursor, direction)
        size = _page_size(limit)
        payloads = list(_ordered(queryset, direction).values_list("payload", flat=True)[: size + 1])
        data = [item_from_payload(payload) for payload in payloads[:size]]
        return _page(data, has_more=len(payloads) > size)

    async def load_recent_items(
        self, thread_id: str, limit: int, context: ChatKitContext
    ) -> list[ThreadItem]:
        """The newest ``limit`` items, oldest first, in one query (the model's history)."""
        prefetched = context.extra.get(_PREFETCHED, {}).pop(thread_id, None)
        if prefetched is not None and prefetched[0] == limit:
            items: list[ThreadItem] = prefetched[1]
        else:
            items = await in_thread(self._load_recent_items)(thread_id, limit, context)
        # Kept for the SDK's look at the newest items that follows (see _recent_page).
        complete = len(items) < max(1, limit)
        context.extra.setdefault(_RECENT_ITEMS, {})[thread_id] = (list(items), complete)
        return items

    def _load_recent_items(
        self, thread_id: str, limit: int, context: ChatKitContext
    ) -> list[ThreadItem]:
        payloads = list(
            models.ThreadItem.objects.filter(
                thread_id=thread_id, **_owners_threads(context, "thread__")
            )
            .order_by("-created_at", "-pk")
            .values_list("payload", flat=True)[: max(1, limit)]
        )
        return [item_from_payload(payload) for payload in reversed(payloads)]

    async def set_title_if_untitled(
        self, thread_id: str, title: str, context: ChatKitContext
    ) -> bool:
        """Give the thread a title unless it has one (a title the user chose is never replaced)."""
        return await in_thread(self._set_title_if_untitled)(thread_id, title, context)

    def _set_title_if_untitled(self, thread_id: str, title: str, context: ChatKitContext) -> bool:
        titled = bool(
            models.Thread.objects.filter(id=thread_id, title="", **_owners_threads(context)).update(
                title=title
            )
        )
        stored = context.extra.get(_STORED_THREADS, {}).get(thread_id)
        if titled and stored is not None:
            stored["title"] = title  # so the SDK's save of the titled thread writes nothing
        if titled:
            notices.publish_on_commit([notices.notice(notices.THREAD_TITLE, thread_id)])
        return titled

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: ChatKitContext
    ) -> None:
        # The SDK adds continued workflow items twice: adding is an upsert too.
        limit = context.extra.get(HISTORY_PREFETCH)
        if isinstance(item, UserMessageItem) and isinstance(limit, int):
            items = await in_thread(self._upsert_item_and_read_recent)(
                thread_id, item, limit, context
            )
            if items is not None:
                context.extra.setdefault(_PREFETCHED, {})[thread_id] = (limit, items)
            return
        await in_thread(self._upsert_item)(thread_id, item, context)

    def _upsert_item_and_read_recent(
        self, thread_id: str, item: ThreadItem, limit: int, context: ChatKitContext
    ) -> list[ThreadItem] | None:
        self._upsert_item(thread_id, item, context)
        try:
            return self._load_recent_items(thread_id, limit, context)
        except StoredDataInvalid:
            return None  # load_recent_items reads again and reports it where the answer starts

    async def save_item(self, thread_id: str, item: ThreadItem, context: ChatKitContext) -> None:
        await in_thread(self._upsert_item)(thread_id, item, context, notices.ITEM_UPDATED)

    def _upsert_item(
        self,
        thread_id: str,
        item: ThreadItem,
        context: ChatKitContext,
        event: str = notices.ITEM_ADDED,
    ) -> None:
        if is_fake(item.id):
            # A placeholder id shared by every answer (see fake_ids): stored under it, each
            # answer would replace the previous one. The agent server rewrites these before
            # they reach the client; a custom server's still get an id of their own here.
            item = item.model_copy(update={"id": new_typed_id(store_type(item))})
            logger.warning("ChatKit stored an item sent with a placeholder id as %s", item.id)
        with transaction.atomic():
            # Bumping updated_at doubles as the ownership check (and locks the thread row on
            # databases with row locks, which serialises writers to one thread).
            touched = models.Thread.objects.filter(id=thread_id, **_owners_threads(context)).update(
                updated_at=timezone.now()
            )
            if not touched:
                raise NotFoundError(f"Thread {thread_id} not found")
            # An existing item keeps its place in the thread (created_at and insertion order).
            models.ThreadItem.objects.bulk_create(
                [models.ThreadItem(thread_id=thread_id, **item_row_values(item))],
                **upsert_options(
                    models.ThreadItem, ["thread", "item_id"], ["type", "text", "payload"]
                ),
            )
            notices.publish_on_commit([notices.notice(event, thread_id, item.id)])
        signals.item_saved.send(
            sender=models.ThreadItem, thread_id=thread_id, item=item, context=context
        )

    async def load_item(self, thread_id: str, item_id: str, context: ChatKitContext) -> ThreadItem:
        return await in_thread(self._load_item)(thread_id, item_id, context)

    def _load_item(self, thread_id: str, item_id: str, context: ChatKitContext) -> ThreadItem:
        payload = _first(
            models.ThreadItem.objects.filter(
                thread_id=thread_id, item_id=item_id, **_owners_threads(context, "thread__")
            ).values_list("payload", flat=True)
        )
        if payload is None:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return item_from_payload(payload)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: ChatKitContext
    ) -> None:
        await in_thread(self._delete_thread_item)(thread_id, item_id, context)

    def _delete_thread_item(self, thread_id: str, item_id: str, context: ChatKitContext) -> None:
        # Deleting what is already gone is not an error: retries delete what they just listed.
        owned = {
            "thread_id": thread_id,
            "item_id": item_id,
            **_owners_threads(context, "thread__"),
        }
        with transaction.atomic():
            models.Feedback.objects.filter(**owned).delete()
            if models.ThreadItem.objects.filter(**owned).delete()[0]:
                notices.publish_on_commit(
                    [notices.notice(notices.ITEM_DELETED, thread_id, item_id)]
                )

    # -- feedback -------------------------------------------------------------------------------

    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: str, context: ChatKitContext
    ) -> None:
        await in_thread(self._save_feedback)(thread_id, item_ids, kind, context)

    def _save_feedback(
        self, thread_id: str, item_ids: list[str], kind: str, context: ChatKitContext
    ) -> None:
        wanted = set(item_ids)
        if not wanted:
            # Nothing to vote on, but the thread must still be this owner's.
            if _owned_thread(thread_id, context) is None:
                raise NotFoundError(f"Thread {thread_id} not found")
            return
        # The thread's status comes with the items (their owner check joins the thread anyway):
        # a locked thread's feedback is frozen, as its messages are, at no extra query.
        rows = list(
            models.ThreadItem.objects.filter(
                thread_id=thread_id, item_id__in=wanted, **_owners_threads(context, "thread__")
            ).values_list("item_id", "thread__status", "thread__status_reason")
        )
        found = {item_id for item_id, _, _ in rows}
        for _, status, reason in rows[:1]:
            if status == models.ThreadStatus.LOCKED:
                raise locked_refusal(gettext("its feedback cannot change"), reason)
        if found != wanted:
            missing = ", ".join(sorted(wanted - found))
            raise NotFoundError(f"Item(s) {missing} not found in thread {thread_id}")
        models.Feedback.objects.bulk_create(
            [models.Feedback(thread_id=thread_id, item_id=item_id, kind=kind) for item_id in found],
            **upsert_options(models.Feedback, ["thread", "item_id"], ["kind", "updated_at"]),
        )
        notices.publish_on_commit(
            notices.notice(notices.FEEDBACK, thread_id, item_id) for item_id in sorted(found)
        )
        signals.feedback_received.send(
            sender=models.Feedback,
            thread_id=thread_id,
            item_ids=sorted(found),
            kind=kind,
            context=context,
        )

    # -- attachments ----------------------------------------------------------------------------

    async def attachments_for_thread(
        self, attachment_ids: list[str], thread_id: str | None, context: ChatKitContext
    ) -> list[str]:
        """The attachment ids a new message in ``thread_id`` (None: a new thread) carries:
        a copy in place of each attachment another thread already sent (attachments.copies)."""
        return await copies.attachments_for_thread(attachment_ids, thread_id, context.owner)

    async def save_attachment(self, attachment: Attachment, context: ChatKitContext) -> None:
        sent_elsewhere = await in_thread(self._save_attachment)(attachment, context)
        if sent_elsewhere is None:
            return
        # Another request sent it in another thread a moment ago: this thread gets a copy. The
        # SDK saves the very objects its user message carries, so the message names the copy.
        copy = (
            await copies.copy_attachments([sent_elsewhere], context.owner, attachment.thread_id)
        )[attachment.id]
        attachment.id = copy.id
        attachment.metadata = copy.metadata

    def _save_attachment(
        self, attachment: Attachment, context: ChatKitContext
    ) -> dict[str, Any] | None:
        """Save the attachment; return its row instead when another thread has it (to copy)."""
        values = attachment_row_values(attachment)
        owned = models.Attachment.objects.filter(id=attachment.id, **context.owner.filter())
        if attachment.thread_id is not None:
            # An attachment belongs to the first thread that sends it (attachments.copies).
            owned = owned.filter(Q(thread__isnull=True) | Q(thread_id=attachment.thread_id))
        if owned.update(**values):
            return None
        if attachment.thread_id is not None:
            row = _first(
                models.Attachment.objects.filter(id=attachment.id, **context.owner.filter()).values(
                    *copies.COPIED_FIELDS
                )
            )
            if row is not None:
                return dict(row)
        try:
            with transaction.atomic():
                models.Attachment.objects.create(
                    id=attachment.id, **context.owner.fields(), **values
                )
        except IntegrityError as exc:
            raise NotFoundError(f"Attachment {attachment.id} not found") from exc
        return None

    async def load_attachment(self, attachment_id: str, context: ChatKitContext) -> Attachment:
        return await in_thread(self._load_attachment)(attachment_id, context)

    def _load_attachment(self, attachment_id: str, context: ChatKitContext) -> Attachment:
        payload = _first(
            models.Attachment.objects.filter(
                id=attachment_id, **context.owner.filter()
            ).values_list("payload", flat=True)
        )
        if payload is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return attachment_from_payload(payload)

    async def missing_attachments(
        self, attachment_ids: list[str], context: ChatKitContext
    ) -> list[str]:
        """The ids among ``attachment_ids`` that this owner has no attachment for."""
        if not attachment_ids:
            return []
        return await in_thread(self._missing_attachments)(attachment_ids, context)

    def _missing_attachments(self, attachment_ids: list[str], context: ChatKitContext) -> list[str]:
        found = set(
            models.Attachment.objects.filter(
                id__in=attachment_ids, **context.owner.filter()
            ).values_list("id", flat=True)
        )
        return sorted(set(attachment_ids) - found)

    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        await in_thread(self._delete_attachment)(attachment_id, context)

    def _delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        deleted, _ = models.Attachment.objects.filter(
            id=attachment_id, **context.owner.filter()
        ).delete()
        if not deleted:
            raise NotFoundError(f"Attachment {attachment_id} not found")
