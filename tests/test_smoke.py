import pytest

from django_chatkit.testing import user_input

pytestmark = pytest.mark.django_db(transaction=True)


async def test_create_thread_streams_and_persists(http_alice):
    reply = await http_alice.request("threads.create", input=user_input("hello"))
    status, events = reply.status_code, reply.json_events
    assert status == 200
    types = [e["type"] for e in events]
    assert types[0] == "thread.created"
    thread_id = events[0]["thread"]["id"]
    reply = await http_alice.request("threads.get_by_id", thread_id=thread_id)
    status, thread = reply.status_code, reply.data
    assert status == 200
    texts = [i.get("content") for i in thread["items"]["data"]]
    assert len(thread["items"]["data"]) == 2, (types, texts)
