"""An attachment belongs to one thread: sent again in another thread, that thread gets a copy
(new id, own file), so deleting either thread leaves the other's file downloadable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from chatkit.store import NotFoundError
from django.db import connections
from django.test import override_settings

from django_chatkit import models
from django_chatkit.context import ChatKitContext
from django_chatkit.serialization import attachment_from_payload
from django_chatkit.store import DjangoStore
from django_chatkit.testing import ChatKitTestClient, user_input
from tests.attachment_flow import Uploader, download, local_media
from tests.attachment_samples import PDF, image_bytes, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS: dict[str, Any] = {"ENABLED": True, "MAX_BYTES": 1024 * 1024}
SETTINGS = {"SERVER": "tests.servers.ScriptedServer", "ATTACHMENTS": LIMITS}


@pytest.fixture
def media(tmp_path) -> Iterator[Path]:
    with local_media(tmp_path / "media", SETTINGS):
        yield tmp_path / "media"


@pytest.fixture
def uploader(http_alice, media) -> Uploader:
    return Uploader(http_alice)


def sent_attachments(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attachments of the user message a turn's events report as done."""
    [item] = [
        event["item"]
        for event in events
        if event["type"] == "thread.item.done" and event["item"]["type"] == "user_message"
    ]
    return list(item["attachments"])


async def new_thread(
    http: ChatKitTestClient, attachment_ids: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    reply = await http.request("threads.create", input=user_input("see", attachment_ids))
    status, events = reply.status_code, reply.json_events
    assert status == 200 and events[0]["type"] == "thread.created", events
    return events[0]["thread"]["id"], sent_attachments(events)


async def add_message(
    http: ChatKitTestClient, thread_id: str, attachment_ids: list[str]
) -> list[dict[str, Any]]:
    reply = await http.request(
        "threads.add_user_message", thread_id=thread_id, input=user_input("again", attachment_ids)
    )
    status, events = reply.status_code, reply.json_events
    assert status == 200, reply.data or events
    return sent_attachments(events)


async def stored_item_attachments(http: ChatKitTestClient, thread_id: str) -> list[list[str]]:
    """Each user message's attachment ids, as items.list answers them."""
    reply = await http.request("items.list", thread_id=thread_id, order="asc")
    status, page = reply.status_code, reply.data
    assert status == 200
    return [
        [attachment["id"] for attachment in item["attachments"]]
        for item in page["data"]
        if item["type"] == "user_message"
    ]


async def fetch(http: ChatKitTestClient, attachment_id: str) -> tuple[int, bytes]:
    response, content = await download(http.client, attachment_id)
    return response.status_code, content


class TestSendingInASecondThread:
    @pytest.mark.parametrize("delete", ["second", "first"])
    async def test_each_thread_keeps_a_working_file_whichever_is_deleted(
        self, uploader, http_alice, media, delete
    ):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        first, [in_first] = await new_thread(http_alice, [ready["id"]])
        second, [in_second] = await new_thread(http_alice, [ready["id"]])

        assert in_first["id"] == ready["id"]  # the first thread keeps the original
        assert in_second["id"] != ready["id"]  # the second one names its copy
        assert in_second["thread_id"] == second and in_second["name"] == "report.pdf"
        assert await stored_item_attachments(http_alice, second) == [[in_second["id"]]]
        original = await models.Attachment.objects.aget(id=ready["id"])
        copy = await models.Attachment.objects.aget(id=in_second["id"])
        assert (original.thread_id, copy.thread_id) == (first, second)
        assert copy.user_id == original.user_id and copy.status == "ready"
        assert copy.storage_name != original.storage_name
        assert copy.payload["metadata"]["storage_name"] == copy.storage_name
        assert copy.payload["id"] == copy.id and copy.payload["thread_id"] == second
        assert (copy.size, copy.sha256) == (original.size, original.sha256)
        assert len(stored_files(media)) == 2

        gone, kept, kept_id = (
            (second, first, ready["id"]) if delete == "second" else (first, second, copy.id)
        )
        assert (await http_alice.request("threads.delete", thread_id=gone)).status_code == 200
        assert await fetch(http_alice, kept_id) == (200, PDF)
        assert await stored_item_attachments(http_alice, kept) == [[kept_id]]
        assert [path.read_bytes() for path in stored_files(media)] == [PDF]

    async def test_adding_it_to_an_existing_thread_copies_it_too(self, uploader, http_alice, media):
        png = image_bytes("PNG", size=(16, 16))
        ready = await uploader.attach("dot.png", "image/png", png)
        first, _ = await new_thread(http_alice, [ready["id"]])
        second, _ = await new_thread(http_alice, [])
        [in_second] = await add_message(http_alice, second, [ready["id"]])
        assert in_second["id"] != ready["id"] and in_second["thread_id"] == second
        assert in_second["preview_url"] == ready["preview_url"]
        assert (await http_alice.request("threads.delete", thread_id=first)).status_code == 200
        assert await fetch(http_alice, in_second["id"]) == (200, png)

    async def test_sending_it_again_in_its_own_thread_makes_no_copy(
        self, uploader, http_alice, media
    ):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        thread_id, _ = await new_thread(http_alice, [ready["id"]])
        [again] = await add_message(http_alice, thread_id, [ready["id"]])
        assert again["id"] == ready["id"]
        assert await models.Attachment.objects.acount() == 1
        assert len(stored_files(media)) == 1

    async def test_an_unsent_attachment_added_to_a_thread_is_simply_its_own(
        self, uploader, http_alice, media
    ):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        thread_id, _ = await new_thread(http_alice, [])
        [sent] = await add_message(http_alice, thread_id, [ready["id"]])
        assert sent["id"] == ready["id"]
        assert (await models.Attachment.objects.aget()).thread_id == thread_id

    async def test_copies_count_against_the_owners_bytes(self, uploader, http_alice, media):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        await new_thread(http_alice, [ready["id"]])
        limits = {**LIMITS, "MAX_BYTES_PER_OWNER": len(PDF) * 2}
        with override_settings(CHATKIT={**SETTINGS, "ATTACHMENTS": limits}):
            await new_thread(http_alice, [ready["id"]])  # the copy fits, just
            reply = await http_alice.request(
                "threads.create", input=user_input("third", [ready["id"]])
            )
            status, answer = reply.status_code, reply.data
        assert status == 413 and answer["error"]["code"] == "attachment_storage_full"
        assert await models.Thread.objects.acount() == 2  # refused before the thread was made
        assert await models.Attachment.objects.acount() == 2
        assert len(stored_files(media)) == 2

    async def test_another_owner_cannot_send_it(self, uploader, http_alice, http_bob, media):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        await new_thread(http_alice, [ready["id"]])
        reply = await http_bob.request("threads.create", input=user_input("mine?", [ready["id"]]))
        status, answer = reply.status_code, reply.data
        assert status == 404 and answer["error"]["code"] == "not_found"
        assert await models.Attachment.objects.acount() == 1

    async def test_two_threads_sending_one_unsent_attachment_at_once(
        self, uploader, http_alice, media
    ):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)

        async def send() -> tuple[str, list[dict[str, Any]]]:
            async with ThreadSensitiveContext():
                try:
                    return await new_thread(http_alice, [ready["id"]])
                finally:
                    await sync_to_async(connections.close_all)()

        sends = await asyncio.gather(*(send() for _ in range(3)))
        ids = [attachments[0]["id"] for _, attachments in sends]
        assert len(set(ids)) == 3 and ready["id"] in ids
        for thread_id, [attachment] in sends:
            row = await models.Attachment.objects.aget(id=attachment["id"])
            assert row.thread_id == thread_id
        for thread_id, _ in sends[:2]:
            assert (
                await http_alice.request("threads.delete", thread_id=thread_id)
            ).status_code == 200
        assert await fetch(http_alice, sends[2][1][0]["id"]) == (200, PDF)


class TestStoreSave:
    """The store's own guard, for a save that finds the attachment taken by another thread
    (what a concurrent request can cause between the check and the save)."""

    async def test_the_saved_object_becomes_the_copy(self, uploader, http_alice, alice, media):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        first, _ = await new_thread(http_alice, [ready["id"]])
        second, _ = await new_thread(http_alice, [])
        store, context = DjangoStore(), ChatKitContext.for_user(alice)
        loaded = await store.load_attachment(ready["id"], context)
        stamped = loaded.model_copy(update={"thread_id": second})
        await store.save_attachment(stamped, context)

        assert stamped.id != ready["id"] and stamped.thread_id == second
        copy = await models.Attachment.objects.aget(id=stamped.id)
        assert copy.thread_id == second
        assert attachment_from_payload(copy.payload) == stamped
        assert (await models.Attachment.objects.aget(id=ready["id"])).thread_id == first
        assert (media / copy.storage_name).read_bytes() == PDF

    async def test_a_foreign_attachment_is_still_missing(self, uploader, bob, media):
        ready = await uploader.attach("report.pdf", "application/pdf", PDF)
        store, context = DjangoStore(), ChatKitContext.for_user(bob)
        attachment = attachment_from_payload(
            (await models.Attachment.objects.aget(id=ready["id"])).payload
        )
        with pytest.raises(NotFoundError):
            await store.save_attachment(attachment.model_copy(update={"name": "x"}), context)
        assert await models.Attachment.objects.acount() == 1
