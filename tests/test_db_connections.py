"""Database connections of streamed answers: an open stream holds none while the model talks.

Under ASGI each request's synchronous code runs in a thread of its own, with its own connection;
Django closes it only when the response ends. ``django_chatkit.db`` gives connections back
around the model call, so a worker's connections follow its database work, not its open streams.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import connection

from django_chatkit.db import in_thread, release_connections
from django_chatkit.models import Run, Thread, ThreadItem
from django_chatkit.testing import (
    FakeOpenAI,
    Reply,
    iter_sse,
    live_client,
    request_body,
    user_input,
)
from django_chatkit.testing.titles import is_title_request, title_from_message
from tests.live_server import database_url, live_asgi_server
from tests.test_live_agent import SERVER_SETTINGS
from tests.test_live_asgi import TEXT_DELTA
from tests.waiting import wait_for

STREAMS = 6
WORDS = [f"w{i} " for i in range(60)]  # 6 s of answer, 0.1 s apart


def _query() -> Any:
    Thread.objects.exists()
    return connection


# -- in_thread / release_connections, in the calling thread ---------------------------------------
# async_to_sync from a synchronous test runs in_thread's function in the test's own thread, so
# `connection` below is the connection in_thread used.


@pytest.mark.django_db(transaction=True)
def test_a_plain_call_keeps_an_unpooled_connection_for_the_next_query():
    used = async_to_sync(in_thread(_query))()
    assert used is connection
    assert connection.connection is not None  # no reconnect per query


@pytest.mark.django_db(transaction=True)
def test_a_call_before_a_wait_closes_an_unpooled_connection():
    async_to_sync(in_thread(_query, before_wait=True))()
    assert connection.connection is None
    # The next call simply connects again.
    assert async_to_sync(in_thread(_query))() is connection
    assert connection.connection is not None


@pytest.mark.django_db
def test_a_connection_in_a_transaction_is_never_released():
    user = get_user_model().objects.create_user("tx")
    assert connection.in_atomic_block
    async_to_sync(in_thread(_query, before_wait=True))()
    release_connections(unpooled=True)
    assert connection.connection is not None
    # Still the same transaction: the uncommitted row is there.
    assert get_user_model().objects.filter(pk=user.pk).exists()


# -- a real ASGI server with several answers streaming at once -------------------------------------


SERVER_APPLICATION_NAME = f"chatkit-live-{os.getpid()}"


def server_database_url() -> str:
    """The test database, under a name of its own on PostgreSQL, so that the server's
    connections can be told from any other (this process's own threads keep some)."""
    url = database_url()
    if connection.vendor == "postgresql":
        url += f"?application_name={SERVER_APPLICATION_NAME}"
    return url


def server_connections(server_pid: int) -> int:
    """Connections the server process holds to the test database right now."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [SERVER_APPLICATION_NAME],
            )
            return int(cursor.fetchone()[0])
    if connection.vendor == "sqlite":
        # Each SQLite connection keeps the database file open.
        database = Path(connection.settings_dict["NAME"]).resolve()
        count = 0
        for fd in Path(f"/proc/{server_pid}/fd").iterdir():
            try:
                if Path(os.readlink(fd)) == database:
                    count += 1
            except OSError:
                continue  # closed meanwhile
        return count
    if connection.vendor == "mysql":
        # MariaDB shows no client name without performance_schema (off by default): count the
        # server process's own TCP connections to the database's port instead.
        return len(_tcp_connections_to(server_pid, int(connection.settings_dict["PORT"] or 3306)))
    raise NotImplementedError(connection.vendor)


def _tcp_connections_to(pid: int, port: int) -> list[int]:
    """Socket inodes of ``pid``'s established TCP connections to ``port`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    found = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            if established and remote_port == port and int(fields[9]) in inodes:
                found.append(int(fields[9]))
    return found


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("titles", [False, True], ids=["titles off", "titles on"])
def test_open_streams_hold_no_database_connection_while_the_model_talks(titles):
    user = get_user_model().objects.create_user("stream", password="pw")
    mid_answer = threading.Barrier(STREAMS + 1, timeout=30)
    release = threading.Event()
    thread_ids: list[str] = []
    errors: list[BaseException] = []

    def chat(http: Any) -> None:
        try:
            with http.stream(
                "POST",
                "/chatkit/",
                content=request_body("threads.create", input=user_input("Count")),
            ) as response:
                assert response.status_code == 200
                deltas = 0
                for event in iter_sse(response.iter_raw()):
                    if event["type"] == "thread.created":
                        thread_ids.append(event["thread"]["id"])
                    elif event["type"] == "thread.item.updated" and (
                        event["update"]["type"] == TEXT_DELTA
                    ):
                        deltas += 1
                        if deltas == 2:
                            mid_answer.wait()
                            release.wait(30)
        except BaseException as exc:
            errors.append(exc)
            mid_answer.abort()

    # With titles on, each title's Run is written while its answer streams.
    with FakeOpenAI(default_reply=title_from_message) as fake:
        fake.side_requests = is_title_request
        for _ in range(STREAMS):
            # Slow enough that every stream is mid-answer when the connections are counted.
            fake.queue(Reply(tokens=WORDS, token_delay=0.1))
        env = {
            **fake.env,
            "CHATKIT_TEST_SETTINGS": json.dumps({**SERVER_SETTINGS, "GENERATE_TITLES": titles}),
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
        }
        with live_asgi_server("uvicorn", db_url=server_database_url(), extra_env=env) as server:
            clients = [live_client(server.url, user) for _ in range(STREAMS)]
            workers = [threading.Thread(target=chat, args=(http,)) for http in clients]
            for worker in workers:
                worker.start()
            try:
                mid_answer.wait()
                # Every answer has started streaming: the model is talking to all of them.
                held = wait_for(
                    lambda: server_connections(server.process.pid) == 0 or None,
                    timeout=2,
                    describe=lambda: (
                        f"{server_connections(server.process.pid)} connections held by "
                        f"{STREAMS} open streams\n{server.describe()}"
                    ),
                )
                assert held
                counted_at = time.monotonic()
            finally:
                release.set()
                for worker in workers:
                    worker.join(30)
                for http in clients:
                    http.close()
            assert not errors, (errors, server.describe())
            upstream = [
                request
                for request in fake.wait_for_requests(STREAMS * (2 if titles else 1), timeout=10)
                if not is_title_request(request)
            ]
            # The model was still talking to every stream when the connections were counted.
            finished = [request.finished_at for request in upstream]
            assert all(at is not None and at > counted_at for at in finished), finished

    # Connecting again after the answer worked: every answer and run is stored in full.
    assert len(thread_ids) == STREAMS
    answers = ThreadItem.objects.filter(thread_id__in=thread_ids, type="assistant_message")
    assert sorted(item.text for item in answers) == ["".join(WORDS)] * STREAMS
    completed = Run.objects.filter(thread_id__in=thread_ids, status="completed")
    assert completed.filter(kind="answer").count() == STREAMS
    assert completed.filter(kind="title").count() == (STREAMS if titles else 0)
