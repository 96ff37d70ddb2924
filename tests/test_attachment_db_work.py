"""Where the attachment code does its database work, and what the upload path imports.

Every query of the attachment store and views runs through ``django_chatkit.db.in_thread``,
which gives a pooled connection back (and reconnects once after a dropped connection) when the
query is done; a query made with plain ``sync_to_async`` or the async ORM would keep the
connection for the rest of the request, a download's whole stream included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from chatkit.store import NotFoundError
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.test import AsyncClient

from django_chatkit import db, models
from django_chatkit.attachments.downloads import StoredFile
from django_chatkit.attachments.store import DjangoAttachmentStore
from django_chatkit.attachments.views import attachment_store
from django_chatkit.context import ChatKitContext
from django_chatkit.testing import user_input
from tests.attachment_flow import Uploader, download, download_path, local_media
from tests.attachment_samples import PDF

SETTINGS = {"SERVER": "tests.servers.ScriptedServer", "ATTACHMENTS": {"ENABLED": True}}

# Tables whose queries must run through in_thread: ours, and the permission lookup that lets
# staff review an attachment. The session and user behind request.auser() are Django's own.
WATCHED = ("django_chatkit_", "auth_permission")


def _in_in_thread() -> bool:
    """Whether the current call stack is inside ``db.in_thread``'s wrapper."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "call_and_release" and code.co_filename == db.__file__:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@dataclass(eq=False)
class QueryLog:
    inside: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if any(table in sql for table in WATCHED):
            (self.inside if _in_in_thread() else self.outside).append(sql)
        return execute(sql, params, many, context)

    def take(self) -> tuple[list[str], list[str]]:
        taken = (self.inside, self.outside)
        self.inside, self.outside = [], []
        return taken


@pytest.fixture
async def queries() -> AsyncIterator[QueryLog]:
    """Every watched query from now on, sorted by whether it ran inside ``in_thread``.

    Async tests (and the AsyncClient's requests) do their synchronous work in asgiref's one
    worker thread: the log is installed on that thread's connection, and on any connection
    opened later in another thread.
    """
    log = QueryLog()
    watched: list[BaseDatabaseWrapper] = []

    def install(wrapper: BaseDatabaseWrapper) -> None:
        wrapper.execute_wrappers.append(log)
        watched.append(wrapper)

    def on_new_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if log not in connection.execute_wrappers:
            install(connection)

    # The wrapper object itself (``django.db.connection`` is a proxy to the calling thread's).
    await sync_to_async(lambda: install(connections[DEFAULT_DB_ALIAS]))()
    connection_created.connect(on_new_connection)
    try:
        yield log
    finally:
        connection_created.disconnect(on_new_connection)
        for wrapper in watched:
            wrapper.execute_wrappers.remove(log)


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    with local_media(tmp_path / "media", SETTINGS):
        yield tmp_path / "media"


@pytest.fixture
async def reviewer(db: Any) -> AsyncClient:
    def make() -> AsyncClient:
        user = get_user_model().objects.create_user("reviewer", password="pw", is_staff=True)
        user.user_permissions.add(
            Permission.objects.get(
                codename="view_attachment", content_type__app_label="django_chatkit"
            )
        )
        client = AsyncClient()
        client.force_login(user)
        return client

    return await sync_to_async(make)()


@pytest.mark.django_db(transaction=True)
async def test_every_attachment_query_runs_in_in_thread(
    http_alice: Any, http_bob: Any, reviewer: AsyncClient, media: Path, queries: QueryLog
) -> None:
    alice_up = Uploader(http_alice)
    steps: dict[str, tuple[list[str], list[str]]] = {}

    ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
    steps["create and upload"] = queries.take()

    reply = await http_alice.request("threads.create", input=user_input("see", [ready["id"]]))
    assert reply.status_code == 200 and reply.error is None, reply
    steps["send in a message"] = queries.take()

    response, content = await download(http_alice.client, ready["id"])
    assert response.status_code == 200 and content == PDF
    response = await http_alice.client.head(download_path(ready["id"]))
    assert response.status_code == 200
    steps["owner's download"] = queries.take()

    response, content = await download(reviewer, ready["id"])
    assert response.status_code == 200 and content == PDF
    steps["staff review"] = queries.take()

    response, _ = await download(http_bob.client, ready["id"])
    assert response.status_code == 404
    reply = await http_bob.request("attachments.delete", attachment_id=ready["id"])
    assert reply.status_code == 404
    steps["another owner's download and delete"] = queries.take()

    reply = await http_alice.request("attachments.delete", attachment_id=ready["id"])
    assert reply.status_code == 200
    steps["delete"] = queries.take()

    outside = {step: [q[:160] for q in sql] for step, (_, sql) in steps.items() if sql}
    assert not outside, json.dumps(outside, indent=2)
    # Each step was watched: it made its queries, all of them inside in_thread.
    assert all(inside for inside, _ in steps.values()), {k: len(v[0]) for k, v in steps.items()}
    assert any("auth_permission" in sql for sql in steps["staff review"][0])
    assert not await models.Attachment.objects.aexists()


# -- a store that extends the built-in one decides the views' lookups -----------------------------


class ReviewOnlyStore(DjangoAttachmentStore):
    """Files can be uploaded as usual, but nobody downloads them here."""

    async def load_attachment_for_download(
        self, attachment_id: str, context: ChatKitContext
    ) -> StoredFile:
        raise NotFoundError(f"Attachment {attachment_id} not found")


@pytest.mark.django_db(transaction=True)
async def test_the_views_find_attachments_through_the_configured_store(
    http_alice: Any, media: Path
) -> None:
    custom = {**SETTINGS, "ATTACHMENT_STORE": f"{__name__}.ReviewOnlyStore"}
    with local_media(media, custom):
        assert isinstance(attachment_store(), ReviewOnlyStore)
        ready = await Uploader(http_alice).attach("report.pdf", "application/pdf", PDF)
        response, content = await download(http_alice.client, ready["id"])
        assert response.status_code == 404, content
    # The built-in store serves the same file.
    response, content = await download(http_alice.client, ready["id"])
    assert response.status_code == 200 and content == PDF


# -- with Django's connection pool (PostgreSQL) ---------------------------------------------------


@pytest.fixture
async def pooled() -> AsyncIterator[BaseDatabaseWrapper]:
    """The worker thread's connection, drawing from a psycopg pool of its own for this test.

    Only that thread's wrapper gets the pool (a copy of its settings), so pytest's own
    connection, which flushes the tables afterwards, is left as it was.
    """
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        pytest.skip("Django's connection pool is PostgreSQL's (psycopg 3)")

    def enable() -> BaseDatabaseWrapper:
        wrapper = connections[DEFAULT_DB_ALIAS]
        wrapper.close()
        original = wrapper.settings_dict
        options = {**original["OPTIONS"], "pool": {"min_size": 1, "max_size": 2, "timeout": 10}}
        wrapper.settings_dict = {**original, "OPTIONS": options}
        wrapper.original_settings_dict = original  # type: ignore[attr-defined]
        return wrapper

    def disable(wrapper: BaseDatabaseWrapper) -> None:
        wrapper.close()
        wrapper.close_pool()  # type: ignore[attr-defined]
        wrapper.settings_dict = wrapper.original_settings_dict  # type: ignore[attr-defined]

    wrapper = await sync_to_async(enable)()
    try:
        yield wrapper
    finally:
        await sync_to_async(disable)(wrapper)


async def holds_a_connection(wrapper: BaseDatabaseWrapper) -> bool:
    """Whether the worker thread still has a connection out of its pool."""
    return await sync_to_async(lambda: wrapper.connection is not None)()


@pytest.mark.django_db(transaction=True)
async def test_pooled_connections_go_back_while_a_download_streams(
    http_alice: Any, http_bob: Any, media: Path, pooled: BaseDatabaseWrapper
) -> None:
    alice_up = Uploader(http_alice)
    ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
    assert not await holds_a_connection(pooled)

    response: Any = await http_alice.client.get(download_path(ready["id"]))
    assert response.status_code == 200 and response.streaming
    # The file streams for as long as the client reads it: the connection is back already.
    assert not await holds_a_connection(pooled)
    assert b"".join([chunk async for chunk in response.streaming_content]) == PDF

    response, _ = await download(http_bob.client, ready["id"])
    assert response.status_code == 404
    assert not await holds_a_connection(pooled)

    reply = await http_bob.request("attachments.delete", attachment_id=ready["id"])
    assert reply.status_code == 404
    assert not await holds_a_connection(pooled)
    reply = await http_alice.request("attachments.delete", attachment_id=ready["id"])
    assert reply.status_code == 200
    assert not await holds_a_connection(pooled)
    stats = await sync_to_async(lambda: pooled.pool.get_stats())()  # type: ignore[attr-defined]
    assert stats["connections_num"] >= 1  # the pool did serve these requests


# -- what the upload path imports ------------------------------------------------------------------

AGENT_STACK = (
    "agents",
    "chatkit.agents",
    "django_chatkit.converter",
    "django_chatkit.agent_server",
)


@pytest.mark.parametrize(
    "module",
    [
        "django_chatkit.attachments.uploads",
        "django_chatkit.attachments.store",
        "django_chatkit.attachments.views",
        "django_chatkit.attachments.copies",
    ],
)
def test_the_upload_path_does_not_import_the_agent_stack(module: str) -> None:
    # A fresh interpreter: this one imported everything long ago.
    script = (
        "import json, sys, django\n"
        "django.setup()\n"
        f"import {module}\n"
        f"print(json.dumps([name for name in {AGENT_STACK!r} if name in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
