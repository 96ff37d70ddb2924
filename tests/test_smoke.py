import pytest

from tests.conftest import user_input

pytestmark = pytest.mark.django_db(transaction=True)


async def test_create_thread_streams_and_persists(http_alice):
    status, events = await http_alice.stream("threads.create", input=user_input("hello"))
    assert status == 200
    types = [e["type"] for e in events]
    assert types[0] == "thread.created"
    thread_id = events[0]["thread"]["id"]
    status, thread = await http_alice.json("threads.get_by_id", thread_id=thread_id)
    assert status == 200
    texts = [i.get("content") for i in thread["items"]["data"]]
    assert len(thread["items"]["data"]) == 2, (types, texts)
