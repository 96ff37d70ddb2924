"""A database that refuses connections (down, restarting, out of connections) answers 503 with
a JSON error the widget can show and a Retry-After, never Django's HTML 500 page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from django_chatkit.models import Thread
from tests.conftest import CSRF_TOKEN, ENDPOINT, user_input
from tests.processes import free_port
from tests.test_query_counts import Browser

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_unreachable() -> Iterator[None]:
    """The real driver fails to connect: a missing directory (SQLite), a closed port (others)."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-chatkit-dir/db.sqlite3"
    else:
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = free_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.parametrize(
    "op", [("threads.create", {"input": user_input("Hi")}), ("threads.list", {})]
)
def test_a_refused_connection_is_a_503_json_error_and_nothing_is_lost(alice, op):
    browser = Browser(alice)
    thread_id = browser.send("threads.create", input=user_input("Kept"))[0]["thread"]["id"]
    kind, params = op
    with database_unreachable():
        response = browser.client.post(
            ENDPOINT,
            data=json.dumps({"type": kind, "params": params}),
            content_type="application/json",
            headers={"X-CSRFToken": CSRF_TOKEN},
        )
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["error"]["code"] == "database_unavailable"
    # Back up: what was stored is there, and the same client goes on.
    assert list(Thread.objects.values_list("id", flat=True)) == [thread_id]
    [page] = browser.send("threads.list")
    assert [thread["id"] for thread in page["data"]] == [thread_id]
