"""Concurrent turns on one thread, from separate OS threads with their own database connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient

from django_chatkit import models
from django_chatkit.testing import ChatKitTestClient, user_input

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 8


def test_concurrent_messages_on_one_thread_keep_every_item(alice):
    setup = ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True))
    setup.client.force_login(alice)
    reply = async_to_sync(setup.request)("threads.create", input=user_input("start"))
    assert reply.status_code == 200
    thread_id = reply.json_events[0]["thread"]["id"]
    barrier = threading.Barrier(WORKERS)

    def send(n: int) -> tuple[int, list[dict[str, Any]]]:
        http = ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True))
        http.client.force_login(alice)
        barrier.wait()
        try:
            reply = async_to_sync(http.request)(
                "threads.add_user_message", thread_id=thread_id, input=user_input(f"message {n}")
            )
            return reply.status_code, reply.json_events
        finally:
            connections.close_all()

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(send, range(WORKERS)))

    assert [status for status, _ in results] == [200] * WORKERS
    assert all(events[-1]["type"] == "thread.item.done" for _, events in results), results
    texts = list(
        models.ThreadItem.objects.filter(thread_id=thread_id, type="user_message").values_list(
            "text", flat=True
        )
    )
    assert sorted(texts) == sorted(["start"] + [f"message {n}" for n in range(WORKERS)])
    answers = models.ThreadItem.objects.filter(thread_id=thread_id, type="assistant_message")
    assert answers.count() == WORKERS + 1
    assert models.ThreadItem.objects.filter(thread_id=thread_id).count() == 2 * (WORKERS + 1)
