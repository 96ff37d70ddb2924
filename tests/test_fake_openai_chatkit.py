"""The fake's hosted ChatKit threads (/v1/chatkit/threads): shapes the real openai client
parses, cursor paging both ways, errors, scripted faults and what it records."""

from __future__ import annotations

import httpx
import openai
import pytest

from django_chatkit.testing import FakeOpenAI, Reply
from django_chatkit.testing.fake_openai.chatkit_threads import assistant_message, user_message


@pytest.fixture
def fake():
    with FakeOpenAI() as running:
        yield running


def test_lists_page_by_cursor_in_both_orders(fake):
    threads = fake.chatkit_threads
    ids = [threads.seed_thread("u1", created_at=1_700_000_000 + i) for i in range(5)]
    threads.seed_thread("u2")
    api = fake.client().beta.chatkit.threads
    first = api.list(user="u1", limit=2)  # newest first by default
    assert [t.id for t in first.data] == [ids[4], ids[3]]
    assert (first.first_id, first.last_id, first.has_more) == (ids[4], ids[3], True)
    assert [t.id for t in api.list(user="u1", limit=2, after=ids[3]).data] == [ids[2], ids[1]]
    last = api.list(user="u1", limit=2, after=ids[1])
    assert [t.id for t in last.data] == [ids[0]] and last.has_more is False
    assert [t.id for t in api.list(user="u1", order="asc", limit=2, before=ids[3]).data] == [
        ids[1],
        ids[2],
    ]
    # The client's auto-paging walks every page.
    assert [t.id for t in api.list(user="u1", order="asc", limit=2)] == ids
    assert len(list(api.list(limit=100))) == 6  # no user: everyone's
    assert [r.query for r in fake.requests][:1] == [{"user": "u1", "limit": "2"}]


def test_items_retrieve_and_delete(fake):
    threads = fake.chatkit_threads
    thread_id = threads.seed_thread(
        "u1", title="T", items=[user_message("hi"), assistant_message("yo")]
    )
    api = fake.client().beta.chatkit.threads
    items = api.list_items(thread_id, order="asc")
    assert [i.type for i in items.data] == ["chatkit.user_message", "chatkit.assistant_message"]
    assert items.data[0].content[0].text == "hi" and items.data[1].thread_id == thread_id
    assert api.retrieve(thread_id).title == "T"
    assert api.delete(thread_id).deleted is True
    for call in (api.retrieve, api.delete, api.list_items):
        with pytest.raises(openai.NotFoundError):
            call(thread_id)


def test_scripted_faults_hit_the_chosen_calls_only(fake):
    threads = fake.chatkit_threads
    thread_id = threads.seed_thread("u1")
    threads.fail(Reply(status=429, retry_after=2), method="DELETE", times=1)
    api = fake.client().beta.chatkit.threads
    assert api.retrieve(thread_id).id == thread_id
    with pytest.raises(openai.RateLimitError) as caught:
        api.delete(thread_id)
    assert caught.value.response.headers["retry-after"] == "2"
    assert api.delete(thread_id).deleted is True
    assert [r.status for r in fake.requests] == [200, 429, 200]


def test_refuses_what_the_api_refuses(fake):
    threads = fake.chatkit_threads
    threads.seed_thread("u1")
    # Without the beta header.
    assert httpx.get(f"{fake.base_url}/chatkit/threads").status_code == 400
    api = fake.client().beta.chatkit.threads
    with pytest.raises(openai.BadRequestError):
        api.list(limit=101)
    with pytest.raises(openai.BadRequestError):
        api.list(after="cthr_unknown")
