"""Per-owner attachment limits (MAX_PENDING_PER_OWNER, MAX_BYTES_PER_OWNER), through the real
views: concurrent requests cannot pass them, other owners are unaffected, deleting frees them,
and an upload is counted at its real size."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.management import call_command
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_chatkit import models
from django_chatkit.attachments.owner_quota import owner_key
from django_chatkit.context import Owner
from django_chatkit.testing import ChatKitTestClient, user_input
from tests.attachment_flow import Uploader, body, local_media
from tests.attachment_samples import TEXT, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

MAX_PENDING = 4
MAX_STORED = 1000  # bytes
LIMITS: dict[str, Any] = {
    "ENABLED": True,
    "MAX_BYTES": 600,
    "MAX_COUNT": 4,
    "MAX_PENDING_PER_OWNER": MAX_PENDING,
    "MAX_BYTES_PER_OWNER": MAX_STORED,
}
SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "ALLOW_ANONYMOUS": True,
    "ATTACHMENTS": LIMITS,
}

T = TypeVar("T")


@pytest.fixture
def media(tmp_path) -> Iterator[Path]:
    with local_media(tmp_path / "media", SETTINGS):
        yield tmp_path / "media"


async def in_own_thread(call: Callable[[], Awaitable[T]]) -> T:
    """Run one request as an ASGI server would: its database work in a thread (and connection)
    of its own, so that requests gathered together really overlap in the database."""
    async with ThreadSensitiveContext():
        try:
            return await call()
        finally:
            await sync_to_async(connections.close_all)()


async def create(http: ChatKitTestClient, size: int = 10, name: str = "a.txt") -> tuple[int, Any]:
    reply = await http.request("attachments.create", name=name, size=size, mime_type="text/plain")
    return reply.status_code, reply.data


def error_code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def owned(user_id: Any) -> int:
    return await models.Attachment.objects.filter(user_id=user_id).acount()


class TestPendingLimit:
    async def test_concurrent_creates_cannot_pass_the_limit(self, http_alice, alice, media):
        answers = await asyncio.gather(
            *(in_own_thread(lambda: create(http_alice)) for _ in range(4 * MAX_PENDING))
        )
        accepted = [answer for status, answer in answers if status == 200]
        refused = [(status, error_code(answer)) for status, answer in answers if status != 200]
        assert len(accepted) == MAX_PENDING
        assert set(refused) == {(429, "too_many_pending_attachments")}
        assert await owned(alice.pk) == MAX_PENDING

    async def test_the_refusal_is_a_json_error_saying_what_to_do(self, http_alice, media):
        for _ in range(MAX_PENDING):
            assert (await create(http_alice))[0] == 200
        response = await http_alice.raw_post(
            {
                "type": "attachments.create",
                "params": {"name": "a.txt", "size": 10, "mime_type": "text/plain"},
            }
        )
        assert response.status_code == 429
        assert response["Content-Type"] == "application/json"
        error = json.loads(response.content)["error"]
        assert error["code"] == "too_many_pending_attachments"
        assert f"{MAX_PENDING} attachments waiting to be sent" in error["message"]

    async def test_another_owner_is_unaffected(self, http_alice, http_bob, http_anonymous, media):
        for _ in range(MAX_PENDING):
            assert (await create(http_alice))[0] == 200
        assert (await create(http_alice))[0] == 429
        for other in (http_bob, http_anonymous):
            for _ in range(MAX_PENDING):
                assert (await create(other))[0] == 200

    async def test_anonymous_visitors_count_by_their_own_key(self, http_anonymous, db, media):
        from django.test import AsyncClient

        for _ in range(MAX_PENDING):
            assert (await create(http_anonymous))[0] == 200
        status, answer = await create(http_anonymous)
        assert (status, error_code(answer)) == (429, "too_many_pending_attachments")
        # Another visitor (another session, so another key) has a quota of their own.
        assert (await create(ChatKitTestClient(client=AsyncClient(enforce_csrf_checks=True))))[
            0
        ] == 200
        keys = models.Attachment.objects.values_list("anonymous_key", flat=True)
        assert len({key async for key in keys}) == 2

    async def test_sending_or_deleting_frees_a_place(self, http_alice, media):
        uploader = Uploader(http_alice)
        first = await uploader.attach("a.txt", "text/plain", TEXT)
        second = (await create(http_alice))[1]
        for _ in range(MAX_PENDING - 2):
            assert (await create(http_alice))[0] == 200
        assert (await create(http_alice))[0] == 429

        reply = await http_alice.request("threads.create", input=user_input("x", [first["id"]]))
        _, events = reply.status_code, reply.json_events
        assert events[0]["type"] == "thread.created"
        assert (await create(http_alice))[0] == 200  # the sent one no longer waits
        assert (await create(http_alice))[0] == 429

        reply = await http_alice.request("attachments.delete", attachment_id=second["id"])
        status, _ = reply.status_code, reply.data
        assert status == 200
        assert (await create(http_alice))[0] == 200


class TestStoredBytesLimit:
    async def test_concurrent_creates_cannot_pass_it(self, http_alice, alice, media):
        size = 300  # three fit in MAX_STORED, not four
        with override_settings(
            CHATKIT={
                **SETTINGS,
                "ATTACHMENTS": {**LIMITS, "MAX_PENDING_PER_OWNER": None},
            }
        ):
            answers = await asyncio.gather(
                *(in_own_thread(lambda: create(http_alice, size)) for _ in range(12))
            )
        accepted = [answer for status, answer in answers if status == 200]
        refused = {(status, error_code(answer)) for status, answer in answers if status != 200}
        assert len(accepted) == MAX_STORED // size
        assert refused == {(413, "attachment_storage_full")}
        declared = models.Attachment.objects.filter(user_id=alice.pk).values_list("size", flat=True)
        assert sum([size or 0 async for size in declared]) <= MAX_STORED

    async def test_uploaded_sent_and_pending_bytes_all_count(self, http_alice, media):
        uploader = Uploader(http_alice)
        sent = await uploader.attach("a.txt", "text/plain", b"x" * 400)
        await http_alice.request("threads.create", input=user_input("x", [sent["id"]]))
        await uploader.attach("b.txt", "text/plain", b"y" * 300)  # uploaded, not sent
        assert (await create(http_alice, 200))[0] == 200  # declared, waiting: 900 in all
        status, answer = await create(http_alice, 101)
        assert (status, error_code(answer)) == (413, "attachment_storage_full")
        assert (
            "more than the 1000 bytes you may store (900 bytes used)" in answer["error"]["message"]
        )
        assert (await create(http_alice, 100))[0] == 200

    async def test_deleting_a_thread_or_an_attachment_frees_its_bytes(self, http_alice, media):
        uploader = Uploader(http_alice)
        sent = await uploader.attach("a.txt", "text/plain", b"x" * 500)
        reply = await http_alice.request("threads.create", input=user_input("x", [sent["id"]]))
        _, events = reply.status_code, reply.json_events
        thread_id = events[0]["thread"]["id"]
        kept = await uploader.attach("b.txt", "text/plain", b"y" * 500)
        assert (await create(http_alice, 1))[0] == 413

        assert (await http_alice.request("threads.delete", thread_id=thread_id)).status_code == 200
        assert (await create(http_alice, 500))[0] == 200
        assert (await create(http_alice, 1))[0] == 413
        assert (
            await http_alice.request("attachments.delete", attachment_id=kept["id"])
        ).status_code == 200
        assert (await create(http_alice, 500))[0] == 200

    async def test_another_owner_is_unaffected(self, http_alice, http_bob, media):
        assert (await create(http_alice, 600))[0] == 200
        assert (await create(http_alice, 600))[0] == 413
        assert (await create(http_bob, 600))[0] == 200

    async def test_an_upload_is_counted_at_its_real_size(self, http_alice, alice, media):
        uploader = Uploader(http_alice)
        _, small = await create(http_alice, 10)  # declares 10 bytes, then sends 600
        assert (await create(http_alice, 500))[0] == 200  # 510 of 1000 declared
        response = await uploader.send(small["upload_descriptor"]["url"], b"z" * 600)
        assert response.status_code == 413, response.content
        assert body(response)["error"]["code"] == "attachment_storage_full"
        assert stored_files(media) == []  # refused before anything was stored
        row = await models.Attachment.objects.aget(id=small["id"])
        assert (row.status, row.size) == ("pending", 10)

        # Fewer bytes than declared: the real size is what counts from then on.
        response = await uploader.send(small["upload_descriptor"]["url"], b"z" * 4)
        assert response.status_code == 200, response.content
        assert (await models.Attachment.objects.aget(id=small["id"])).size == 4
        assert (await create(http_alice, 496))[0] == 200
        assert (await create(http_alice, 1))[0] == 413


class TestCost:
    def test_create_issues_the_same_queries_however_much_the_owner_holds(self, alice, media):
        from tests.test_query_counts import Browser

        browser = Browser(alice)
        limits = {**LIMITS, "MAX_PENDING_PER_OWNER": 1000}

        def count() -> int:
            with CaptureQueriesContext(connection) as queries:
                browser.send("attachments.create", name="a.txt", size=1, mime_type="text/plain")
            return len(queries)

        with override_settings(CHATKIT={**SETTINGS, "ATTACHMENTS": limits}):
            count()  # the owner's lock row now exists
            few = count()
            models.Attachment.objects.bulk_create(
                models.Attachment(
                    id=f"atc_held_{n}", user_id=alice.pk, name="h.txt", payload={}, size=1
                )
                for n in range(200)
            )
            many = count()
        assert few == many


class TestLockRows:
    async def test_one_per_owner_and_the_cleanup_forgets_idle_ones(self, http_alice, alice, media):
        await create(http_alice)
        await create(http_alice)
        key = owner_key(Owner(user_id=alice.pk))
        assert [
            k async for k in models.AttachmentOwnerLock.objects.values_list("owner_key", flat=True)
        ] == [key]
        await models.AttachmentOwnerLock.objects.aupdate(
            touched_at=timezone.now() - timedelta(days=2)
        )
        await sync_to_async(call_command)("chatkit_cleanup_uploads", stdout=io.StringIO())
        assert not await models.AttachmentOwnerLock.objects.aexists()
        assert (await create(http_alice))[0] == 200  # made again when needed
