"""Conformance of DjangoStore to the chatkit.store.Store contract.

Tests are synchronous and drive the async store through ``async_to_sync``, so the store's ORM
work runs on the test's own connection (inside the test transaction, where queries are counted).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ClosedStatus,
    FileAttachment,
    LockedStatus,
    Page,
    Thread,
    ThreadMetadata,
)
from django.contrib.auth import get_user_model
from django.utils import timezone

from django_chatkit import models
from django_chatkit.store import DjangoStore
from tests.items import every_item

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 12, 0, 0, 500000)


def run(coroutine_function, *args):
    return async_to_sync(coroutine_function)(*args)


def new_thread(store, ctx, *, created_at=T0, title=None) -> ThreadMetadata:
    thread = ThreadMetadata(id=store.generate_thread_id(ctx), created_at=created_at, title=title)
    run(store.save_thread, thread, ctx)
    return thread


def message(thread_id: str, n: int, created_at: datetime) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=f"msg_{n:04d}",
        thread_id=thread_id,
        created_at=created_at,
        content=[AssistantMessageContent(text=f"message {n}")],
    )


def fill(store, ctx, thread, count, *, same_time=False):
    items = [
        message(thread.id, n, T0 if same_time else T0 + timedelta(seconds=n)) for n in range(count)
    ]
    for item in items:
        run(store.add_thread_item, thread.id, item, ctx)
    return items


def ids(page: Page[Any]) -> list[str]:
    return [row.id for row in page.data]


# -- threads -------------------------------------------------------------------------------------


class TestThreads:
    def test_round_trip_keeps_every_field(self, store, alice_ctx):
        thread = ThreadMetadata(
            id=store.generate_thread_id(alice_ctx),
            title="Trip to Lyon",
            created_at=T0,
            status=LockedStatus(reason="Under review"),
            allowed_image_domains=["img.example.com"],
            metadata={"tenant": 7, "tags": ["a"]},
        )
        run(store.save_thread, thread, alice_ctx)
        assert run(store.load_thread, thread.id, alice_ctx) == thread

    def test_status_columns_are_real_and_closed_round_trips(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        thread.status = ClosedStatus(reason=None)
        run(store.save_thread, thread, alice_ctx)
        row = models.Thread.objects.get(id=thread.id)
        assert (row.status, row.status_reason) == ("closed", "")
        assert run(store.load_thread, thread.id, alice_ctx).status == ClosedStatus()

    def test_created_at_is_stored_aware_and_handed_back_naive_like_the_sdk(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        row = models.Thread.objects.get(id=thread.id)
        assert timezone.is_aware(row.created_at)
        assert row.created_at == timezone.make_aware(T0, timezone.get_default_timezone())
        loaded = run(store.load_thread, thread.id, alice_ctx)
        assert loaded.created_at == T0 and loaded.created_at.tzinfo is None

    def test_save_thread_is_an_upsert(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx, title="Old")
        thread.title = "New"
        run(store.save_thread, thread, alice_ctx)
        assert models.Thread.objects.filter(id=thread.id).count() == 1
        assert run(store.load_thread, thread.id, alice_ctx).title == "New"

    def test_saving_an_unchanged_thread_writes_nothing(
        self, store, alice_ctx, django_assert_num_queries
    ):
        thread = new_thread(store, alice_ctx, title="Same")
        loaded = run(store.load_thread, thread.id, alice_ctx)
        with django_assert_num_queries(0):
            run(store.save_thread, loaded, alice_ctx)

    def test_saving_writes_only_what_changed_so_a_concurrent_lock_survives(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx, title="Before")
        loaded = run(store.load_thread, thread.id, alice_ctx)
        # Meanwhile, in another request, staff lock the thread.
        models.Thread.objects.filter(id=thread.id).update(status="locked", status_reason="Spam")
        loaded.title = "After"
        run(store.save_thread, loaded, alice_ctx)
        row = models.Thread.objects.get(id=thread.id)
        assert (row.title, row.status, row.status_reason) == ("After", "locked", "Spam")

    def test_a_title_set_if_untitled_is_not_written_twice(
        self, store, alice_ctx, django_assert_num_queries
    ):
        thread = new_thread(store, alice_ctx)
        loaded = run(store.load_thread, thread.id, alice_ctx)
        assert run(store.set_title_if_untitled, thread.id, "Named", alice_ctx)
        loaded.title = "Named"  # what the agent server does, so that the SDK sends thread.updated
        with django_assert_num_queries(0):
            run(store.save_thread, loaded, alice_ctx)
        assert models.Thread.objects.get(id=thread.id).title == "Named"
        # A title the user set meanwhile is never replaced.
        models.Thread.objects.filter(id=thread.id).update(title="Mine")
        assert not run(store.set_title_if_untitled, thread.id, "Other", alice_ctx)
        assert models.Thread.objects.get(id=thread.id).title == "Mine"

    def test_save_thread_given_a_thread_with_items_stores_only_metadata(self, store, alice_ctx):
        thread_id = store.generate_thread_id(alice_ctx)
        full = Thread(
            id=thread_id,
            created_at=T0,
            title="With items",
            items=Page(data=[message(thread_id, 1, T0)]),
        )
        run(store.save_thread, full, alice_ctx)
        assert models.ThreadItem.objects.count() == 0
        assert run(store.load_thread, thread_id, alice_ctx).title == "With items"

    def test_missing_thread_raises_not_found(self, store, alice_ctx):
        with pytest.raises(NotFoundError):
            run(store.load_thread, "thr_missing", alice_ctx)

    def test_another_owners_thread_is_missing(self, store, alice_ctx, bob_ctx):
        thread = new_thread(store, alice_ctx)
        with pytest.raises(NotFoundError):
            run(store.load_thread, thread.id, bob_ctx)

    def test_saving_over_another_owners_thread_id_is_refused_and_changes_nothing(
        self, store, alice_ctx, bob_ctx
    ):
        thread = new_thread(store, alice_ctx, title="Alice's")
        with pytest.raises(NotFoundError):
            run(store.save_thread, thread.model_copy(update={"title": "Bob's"}), bob_ctx)
        assert run(store.load_thread, thread.id, alice_ctx).title == "Alice's"

    def test_delete_removes_items_feedback_and_attachments(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 3)
        run(store.save_feedback, thread.id, [items[0].id], "positive", alice_ctx)
        run(store.save_attachment, attachment("atc_1", thread.id), alice_ctx)
        run(store.delete_thread, thread.id, alice_ctx)
        for model in (models.Thread, models.ThreadItem, models.Feedback, models.Attachment):
            assert model.objects.count() == 0, model

    def test_delete_missing_or_foreign_thread_raises_and_keeps_it(self, store, alice_ctx, bob_ctx):
        thread = new_thread(store, alice_ctx)
        with pytest.raises(NotFoundError):
            run(store.delete_thread, thread.id, bob_ctx)
        with pytest.raises(NotFoundError):
            run(store.delete_thread, "thr_missing", alice_ctx)
        assert models.Thread.objects.filter(id=thread.id).exists()

    def test_deleting_a_user_deletes_their_threads(self, store, alice, alice_ctx, bob_ctx):
        mine = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, mine, 2)
        run(store.save_feedback, mine.id, [items[0].id], "positive", alice_ctx)
        run(store.save_attachment, attachment("atc_sent", mine.id), alice_ctx)
        run(store.save_attachment, attachment("atc_unsent", None), alice_ctx)
        models.Run.objects.create(
            thread_id=mine.id, kind="answer", started_at=timezone.now(), **alice_ctx.owner.fields()
        )
        theirs = new_thread(store, bob_ctx)
        # Every row that names the user goes, never updated first: on MySQL / MariaDB Django's
        # CASCADE nulls the user before deleting, which the one-owner constraints refuse.
        alice.delete()
        assert list(models.Thread.objects.values_list("id", flat=True)) == [theirs.id]
        for model in (models.ThreadItem, models.Feedback, models.Attachment, models.Run):
            assert model.objects.count() == 0, model


class TestThreadPages:
    def make(self, store, ctx, count, *, same_time=False):
        return [
            new_thread(store, ctx, created_at=T0 if same_time else T0 + timedelta(minutes=n))
            for n in range(count)
        ]

    def test_empty(self, store, alice_ctx):
        page = run(store.load_threads, 10, None, "desc", alice_ctx)
        assert page == Page(data=[], has_more=False, after=None)

    def test_exact_page_has_no_more(self, store, alice_ctx):
        threads = self.make(store, alice_ctx, 3)
        page = run(store.load_threads, 3, None, "asc", alice_ctx)
        assert ids(page) == [t.id for t in threads]
        assert page.has_more is False and page.after is None  # no cursor past the last page

    def test_pages_walk_both_orders_without_gaps_or_repeats(self, store, alice_ctx, bob_ctx):
        threads = self.make(store, alice_ctx, 7)
        self.make(store, bob_ctx, 3)  # never shows up
        for order, expected in (("asc", threads), ("desc", threads[::-1])):
            seen, after = [], None
            while True:
                page = run(store.load_threads, 3, after, order, alice_ctx)
                seen += ids(page)
                if not page.has_more:
                    assert page.after is None
                    break
                after = page.after
            assert seen == [t.id for t in expected], order

    def test_after_the_last_id_is_empty(self, store, alice_ctx):
        threads = self.make(store, alice_ctx, 2)
        page = run(store.load_threads, 10, threads[-1].id, "asc", alice_ctx)
        assert page == Page(data=[], has_more=False, after=None)

    def test_unknown_or_foreign_cursor_is_not_found(self, store, alice_ctx, bob_ctx):
        self.make(store, alice_ctx, 2)
        bobs = self.make(store, bob_ctx, 1)
        for cursor in ("thr_unknown", bobs[0].id):
            with pytest.raises(NotFoundError):
                run(store.load_threads, 10, cursor, "desc", alice_ctx)

    def test_ties_on_created_at_keep_creation_order(self, store, alice_ctx):
        threads = self.make(store, alice_ctx, 5, same_time=True)
        assert ids(run(store.load_threads, 10, None, "asc", alice_ctx)) == [t.id for t in threads]
        desc = run(store.load_threads, 2, None, "desc", alice_ctx)
        assert ids(desc) == [threads[4].id, threads[3].id]
        rest = run(store.load_threads, 10, desc.after, "desc", alice_ctx)
        assert ids(rest) == [t.id for t in threads[2::-1]]

    def test_limit_is_clamped(self, store, alice_ctx, settings):
        settings.CHATKIT = {**settings.CHATKIT, "MAX_PAGE_SIZE": 2}
        self.make(store, alice_ctx, 4)
        assert len(run(store.load_threads, 1000, None, "asc", alice_ctx).data) == 2
        assert len(run(store.load_threads, -5, None, "asc", alice_ctx).data) == 1


# -- items ---------------------------------------------------------------------------------------


class TestItems:
    def test_every_item_type_round_trips_exactly(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = every_item(thread.id)
        assert len({item.type for item in items}) == 11
        for item in items:
            run(store.add_thread_item, thread.id, item, alice_ctx)
        for item in items:
            assert run(store.load_item, thread.id, item.id, alice_ctx) == item, item.type
        page = run(store.load_thread_items, thread.id, None, 50, "asc", alice_ctx)
        assert page.data == items

    def test_real_columns_hold_type_time_and_plain_text(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = every_item(thread.id)
        for item in items:
            run(store.add_thread_item, thread.id, item, alice_ctx)
        rows = {row.item_id: row for row in models.ThreadItem.objects.all()}
        assert rows["msg_user"].type == "user_message"
        assert rows["msg_user"].text == "Héllo 👋 <b>world</b>\n@doc"
        assert rows[items[1].id].text == "See [1] and [2].\nSecond part"
        assert rows["msg_widget"].text == "Order 42 shipped"
        assert rows["tc_1"].text == ""
        assert all(timezone.is_aware(row.created_at) for row in rows.values())

    def test_add_is_an_upsert(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        first = message(thread.id, 1, T0)
        run(store.add_thread_item, thread.id, first, alice_ctx)
        again = first.model_copy(update={"content": [AssistantMessageContent(text="edited")]})
        run(store.add_thread_item, thread.id, again, alice_ctx)
        assert models.ThreadItem.objects.count() == 1
        assert run(store.load_item, thread.id, first.id, alice_ctx) == again

    def test_placeholder_ids_get_ids_of_their_own(self, store, alice_ctx, caplog):
        # The Agents SDK's "__fake_id__" (Chat Completions): never one row for every answer.
        thread = new_thread(store, alice_ctx)
        for n in range(3):
            fake = message(thread.id, n, T0 + timedelta(seconds=n))
            placeholder = fake.model_copy(update={"id": "__fake_id__"})
            run(store.add_thread_item, thread.id, placeholder, alice_ctx)
        page = run(store.load_thread_items, thread.id, None, 10, "asc", alice_ctx)
        assert [item.content[0].text for item in page.data] == [
            "message 0",
            "message 1",
            "message 2",
        ]
        assert len(set(ids(page))) == 3 and all(i.startswith("msg_") for i in ids(page))
        assert "placeholder id" in caplog.text

    def test_save_item_inserts_or_replaces_in_place(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 3)
        replaced = items[0].model_copy(update={"content": [AssistantMessageContent(text="new")]})
        run(store.save_item, thread.id, replaced, alice_ctx)
        page = run(store.load_thread_items, thread.id, None, 10, "asc", alice_ctx)
        assert page.data == [replaced, items[1], items[2]]
        extra = message(thread.id, 99, T0 + timedelta(hours=1))
        run(store.save_item, thread.id, extra, alice_ctx)
        assert run(store.load_item, thread.id, extra.id, alice_ctx) == extra

    def test_same_item_id_may_live_in_two_threads(self, store, alice_ctx):
        one, two = new_thread(store, alice_ctx), new_thread(store, alice_ctx)
        run(store.add_thread_item, one.id, message(one.id, 1, T0), alice_ctx)
        run(store.add_thread_item, two.id, message(two.id, 1, T0), alice_ctx)
        assert run(store.load_item, two.id, "msg_0001", alice_ctx).thread_id == two.id

    def test_a_new_item_bumps_the_threads_updated_time(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        models.Thread.objects.filter(id=thread.id).update(
            updated_at=timezone.now() - timedelta(days=1)
        )
        before = models.Thread.objects.get(id=thread.id).updated_at
        run(store.add_thread_item, thread.id, message(thread.id, 1, T0), alice_ctx)
        assert models.Thread.objects.get(id=thread.id).updated_at > before

    def test_adding_to_a_foreign_or_missing_thread_is_refused(self, store, alice_ctx, bob_ctx):
        thread = new_thread(store, alice_ctx)
        for ctx, thread_id in ((bob_ctx, thread.id), (alice_ctx, "thr_missing")):
            with pytest.raises(NotFoundError):
                run(store.add_thread_item, thread_id, message(thread_id, 1, T0), ctx)
            with pytest.raises(NotFoundError):
                run(store.save_item, thread_id, message(thread_id, 1, T0), ctx)
        assert models.ThreadItem.objects.count() == 0

    def test_load_item_missing_or_foreign(self, store, alice_ctx, bob_ctx):
        thread = new_thread(store, alice_ctx)
        fill(store, alice_ctx, thread, 1)
        with pytest.raises(NotFoundError):
            run(store.load_item, thread.id, "msg_0001", alice_ctx)
        with pytest.raises(NotFoundError):
            run(store.load_item, thread.id, "msg_0000", bob_ctx)

    def test_delete_item_removes_it_and_its_feedback_only(self, store, alice_ctx, bob_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 2)
        run(store.save_feedback, thread.id, [i.id for i in items], "negative", alice_ctx)
        run(store.delete_thread_item, thread.id, items[0].id, bob_ctx)  # foreign: no effect
        assert models.ThreadItem.objects.count() == 2
        run(store.delete_thread_item, thread.id, items[0].id, alice_ctx)
        run(store.delete_thread_item, thread.id, items[0].id, alice_ctx)  # already gone: fine
        assert list(models.ThreadItem.objects.values_list("item_id", flat=True)) == [items[1].id]
        assert list(models.Feedback.objects.values_list("item_id", flat=True)) == [items[1].id]


class TestItemPages:
    def test_empty_thread(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        for order in ("asc", "desc"):
            page = run(store.load_thread_items, thread.id, None, 20, order, alice_ctx)
            assert page == Page(data=[], has_more=False, after=None)

    def test_exact_page(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 4)
        page = run(store.load_thread_items, thread.id, None, 4, "desc", alice_ctx)
        assert page.data == items[::-1] and page.has_more is False
        assert page.after is None  # no cursor past the last page

    def test_has_more_and_cursor_continue_exclusive(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 5)
        first = run(store.load_thread_items, thread.id, None, 2, "asc", alice_ctx)
        assert first.data == items[:2] and first.has_more and first.after == items[1].id
        second = run(store.load_thread_items, thread.id, first.after, 2, "asc", alice_ctx)
        assert second.data == items[2:4] and second.has_more
        third = run(store.load_thread_items, thread.id, second.after, 2, "asc", alice_ctx)
        assert third.data == items[4:] and not third.has_more and third.after is None

    def test_desc_pages(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 5)
        first = run(store.load_thread_items, thread.id, None, 3, "desc", alice_ctx)
        assert first.data == items[:1:-1] and first.has_more and first.after == items[2].id
        rest = run(store.load_thread_items, thread.id, first.after, 3, "desc", alice_ctx)
        assert rest.data == items[1::-1] and not rest.has_more and rest.after is None

    def test_after_the_last_id(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 3)
        page = run(store.load_thread_items, thread.id, items[-1].id, 10, "asc", alice_ctx)
        assert page == Page(data=[], has_more=False, after=None)
        page = run(store.load_thread_items, thread.id, items[0].id, 10, "desc", alice_ctx)
        assert page == Page(data=[], has_more=False, after=None)

    def test_unknown_cursor_or_cursor_from_another_thread(self, store, alice_ctx):
        thread, other = new_thread(store, alice_ctx), new_thread(store, alice_ctx)
        fill(store, alice_ctx, thread, 2)
        run(store.add_thread_item, other.id, message(other.id, 50, T0), alice_ctx)
        for cursor in ("msg_nope", "msg_0050"):
            with pytest.raises(NotFoundError):
                run(store.load_thread_items, thread.id, cursor, 10, "asc", alice_ctx)

    def test_ties_broken_by_insertion_order(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        # Ids deliberately not in alphabetical order: insertion order must win.
        items = [message(thread.id, n, T0) for n in (5, 1, 9, 3)]
        for item in items:
            run(store.add_thread_item, thread.id, item, alice_ctx)
        asc = run(store.load_thread_items, thread.id, None, 2, "asc", alice_ctx)
        asc2 = run(store.load_thread_items, thread.id, asc.after, 2, "asc", alice_ctx)
        assert asc.data + asc2.data == items
        desc = run(store.load_thread_items, thread.id, None, 3, "desc", alice_ctx)
        desc2 = run(store.load_thread_items, thread.id, desc.after, 3, "desc", alice_ctx)
        assert desc.data + desc2.data == items[::-1]

    def test_foreign_thread_items_are_missing(self, store, alice_ctx, bob_ctx):
        thread = new_thread(store, alice_ctx)
        fill(store, alice_ctx, thread, 2)
        with pytest.raises(NotFoundError):
            run(store.load_thread_items, thread.id, None, 10, "asc", bob_ctx)

    def test_bad_order_is_a_value_error(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        with pytest.raises(ValueError, match="order"):
            run(store.load_thread_items, thread.id, None, 10, "sideways", alice_ctx)


class TestItemPagesAfterHistory:
    """The newest page right after ``load_recent_items`` comes from the history just read (no
    query), and is the very page the database would give, cursor included."""

    @pytest.mark.parametrize(
        ("stored", "history", "limit"),
        [
            (3, 10, 5),  # whole thread read, page holds it all: the last page
            (3, 10, 3),  # exactly full: still the last page
            (5, 10, 2),  # whole thread read, more than a page
            (8, 4, 2),  # part of the thread read, more than a page
        ],
    )
    def test_same_page_as_the_database(
        self, store, alice_ctx, stored, history, limit, django_assert_num_queries
    ):
        ctx = alice_ctx
        thread = new_thread(store, ctx)
        fill(store, ctx, thread, stored)
        from_database = run(store.load_thread_items, thread.id, None, limit, "desc", ctx)
        run(store.load_recent_items, thread.id, history, ctx)
        with django_assert_num_queries(0):
            from_history = run(store.load_thread_items, thread.id, None, limit, "desc", ctx)
        assert from_history == from_database
        assert from_history.after == (from_history.data[-1].id if from_history.has_more else None)


# -- attachments and feedback --------------------------------------------------------------------


def attachment(attachment_id: str, thread_id: str | None = None) -> FileAttachment:
    return FileAttachment(
        id=attachment_id,
        name="report.pdf",
        mime_type="application/pdf",
        thread_id=thread_id,
        metadata={"storage_name": "x"},
    )


class TestAttachments:
    def test_round_trip_upsert_and_delete(self, store, alice_ctx):
        run(store.save_attachment, attachment("atc_1"), alice_ctx)
        thread = new_thread(store, alice_ctx)
        stamped = attachment("atc_1", thread.id)
        run(store.save_attachment, stamped, alice_ctx)
        assert run(store.load_attachment, "atc_1", alice_ctx) == stamped
        assert models.Attachment.objects.get().thread_id == thread.id
        run(store.delete_attachment, "atc_1", alice_ctx)
        with pytest.raises(NotFoundError):
            run(store.load_attachment, "atc_1", alice_ctx)

    def test_foreign_attachment_is_missing_for_every_method(self, store, alice_ctx, bob_ctx):
        run(store.save_attachment, attachment("atc_1"), alice_ctx)
        with pytest.raises(NotFoundError):
            run(store.load_attachment, "atc_1", bob_ctx)
        with pytest.raises(NotFoundError):
            run(store.delete_attachment, "atc_1", bob_ctx)
        with pytest.raises(NotFoundError):
            run(
                store.save_attachment, attachment("atc_1").model_copy(update={"name": "b"}), bob_ctx
            )
        assert run(store.missing_attachments, ["atc_1", "atc_2"], bob_ctx) == ["atc_1", "atc_2"]
        assert run(store.missing_attachments, ["atc_1", "atc_2"], alice_ctx) == ["atc_2"]
        assert run(store.load_attachment, "atc_1", alice_ctx).name == "report.pdf"


class TestFeedback:
    def test_one_vote_per_item_and_it_can_change(self, store, alice_ctx):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 2)
        run(store.save_feedback, thread.id, [items[0].id], "positive", alice_ctx)
        run(store.save_feedback, thread.id, [items[0].id, items[1].id], "negative", alice_ctx)
        votes = dict(models.Feedback.objects.values_list("item_id", "kind"))
        assert votes == {items[0].id: "negative", items[1].id: "negative"}

    def test_unknown_or_foreign_items_are_not_found_and_nothing_is_stored(
        self, store, alice_ctx, bob_ctx
    ):
        thread = new_thread(store, alice_ctx)
        items = fill(store, alice_ctx, thread, 1)
        with pytest.raises(NotFoundError):
            run(store.save_feedback, thread.id, [items[0].id, "msg_nope"], "positive", alice_ctx)
        with pytest.raises(NotFoundError):
            run(store.save_feedback, thread.id, [items[0].id], "positive", bob_ctx)
        with pytest.raises(NotFoundError):
            run(store.save_feedback, thread.id, [], "positive", bob_ctx)
        assert models.Feedback.objects.count() == 0


class TestAnonymousOwners:
    def test_sessions_are_owners_and_never_see_users_threads(self, store, alice_ctx):
        from django_chatkit.context import ChatKitContext

        visitor = ChatKitContext.for_anonymous("visitor-key")
        other = ChatKitContext.for_anonymous("other-key")
        mine = new_thread(store, visitor)
        new_thread(store, alice_ctx)
        assert ids(run(store.load_threads, 10, None, "asc", visitor)) == [mine.id]
        assert run(store.load_threads, 10, None, "asc", other).data == []
        with pytest.raises(NotFoundError):
            run(store.load_thread, mine.id, other)


def test_the_user_model_is_the_owner(db):
    assert models.Thread._meta.get_field("user").related_model is get_user_model()


def test_store_is_a_complete_store():
    DjangoStore()  # abstract methods left unimplemented would raise TypeError here
