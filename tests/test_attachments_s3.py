"""Attachments on S3 through django-storages, against moto's S3 server on loopback: uploads
through the site, presigned uploads straight to the bucket (verified when a message first uses
them), presigned downloads, and files following their rows."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import override_settings

from django_chatkit import models
from django_chatkit.converter import DjangoThreadItemConverter
from django_chatkit.serialization import attachment_from_payload
from tests import moto_s3
from tests.attachment_flow import Uploader
from tests.attachment_samples import EXE, PDF, image_bytes
from tests.moto_s3 import ALIAS, Bucket

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "STORAGE": ALIAS,
    "ATTACHMENTS": {"ENABLED": True, "MAX_BYTES": 1024 * 1024},
}
PRESIGNED = {**SETTINGS, "S3_PRESIGNED_UPLOADS": True}


@pytest.fixture(scope="session")
def s3_endpoint():
    yield from moto_s3.serve()


@pytest.fixture
def s3_bucket(s3_endpoint, tmp_path):
    yield from moto_s3.bucket_with_storages(s3_endpoint, tmp_path)


@pytest.fixture
def uploader(http_alice, s3_bucket) -> Iterator[Uploader]:
    with override_settings(CHATKIT=SETTINGS):
        yield Uploader(http_alice)


@pytest.fixture
def presigned(http_alice, s3_bucket) -> Iterator[Uploader]:
    with override_settings(CHATKIT=PRESIGNED):
        yield Uploader(http_alice)


async def send_message(http, attachment_ids: list[str]) -> tuple[int, Any]:
    reply = await http.create_thread("look", attachments=attachment_ids)
    return reply.status_code, reply.data


async def put(url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    """What the browser does with a presigned descriptor: PUT the bytes with its headers."""
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.put(url, content=data, headers=headers)


class TestThroughTheSite:
    async def test_upload_lands_in_the_bucket_and_downloads_by_presigned_redirect(
        self, uploader, http_alice, s3_bucket: Bucket
    ):
        png = image_bytes("PNG", size=(40, 30))
        ready = await uploader.attach("map.png", "image/png", png)
        stored = await models.Attachment.objects.aget(id=ready["id"])
        assert stored.storage_alias == ALIAS
        assert s3_bucket.keys() == [stored.storage_name]
        assert s3_bucket.read(stored.storage_name) == png
        head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=stored.storage_name)
        assert head["ContentType"] == "image/png"

        response = await http_alice.client.get(f"/chatkit/attachments/{ready['id']}/")
        assert response.status_code == 302
        location = response["Location"]
        assert location.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/")
        assert "X-Amz-Expires=60" in location and "X-Amz-Signature=" in location
        async with httpx.AsyncClient(timeout=10) as client:
            fetched = await client.get(location)
        assert fetched.status_code == 200 and fetched.content == png
        assert fetched.headers["content-disposition"] == 'inline; filename="map.png"'

    async def test_deleting_the_thread_removes_the_objects(
        self, uploader, http_alice, s3_bucket: Bucket
    ):
        ready = await uploader.attach("a.pdf", "application/pdf", PDF)
        status, _ = await send_message(http_alice, [ready["id"]])
        assert status == 200 and len(s3_bucket.keys()) == 1
        thread_id = (await models.Attachment.objects.aget(id=ready["id"])).thread_id
        reply = await http_alice.request("threads.delete", thread_id=thread_id)
        status, _ = reply.status_code, reply.data
        assert status == 200 and s3_bucket.keys() == []

    async def test_a_second_thread_gets_an_object_of_its_own(
        self, uploader, http_alice, s3_bucket: Bucket
    ):
        ready = await uploader.attach("a.pdf", "application/pdf", PDF)
        for _ in range(2):
            status, _ = await send_message(http_alice, [ready["id"]])
            assert status == 200
        original = await models.Attachment.objects.aget(id=ready["id"])
        copy = await models.Attachment.objects.exclude(id=ready["id"]).aget()
        assert sorted(s3_bucket.keys()) == sorted([original.storage_name, copy.storage_name])
        assert s3_bucket.read(copy.storage_name) == PDF
        head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=copy.storage_name)
        assert head["ContentType"] == "application/pdf"
        reply = await http_alice.request("threads.delete", thread_id=original.thread_id)
        status, _ = reply.status_code, reply.data
        assert status == 200 and s3_bucket.keys() == [copy.storage_name]


class TestPresigned:
    async def test_put_straight_to_s3_then_the_message_completes_it(
        self, presigned, http_alice, s3_bucket: Bucket
    ):
        png = image_bytes("PNG", size=(64, 64))
        status, created = await presigned.create("chart.png", "image/png", len(png))
        assert status == 200
        descriptor = created["upload_descriptor"]
        assert descriptor["method"] == "PUT"
        assert descriptor["url"].startswith(
            f"{s3_bucket.endpoint}/{s3_bucket.name}/chatkit/incoming/"
        )
        assert descriptor["headers"] == {"Content-Type": "image/png"}
        assert (await put(descriptor["url"], png, descriptor["headers"])).status_code == 200
        pending = await models.Attachment.objects.aget(id=created["id"])
        assert pending.status == "pending" and s3_bucket.keys() == [pending.incoming_name]

        status, _ = await send_message(http_alice, [created["id"]])
        assert status == 200
        ready = await models.Attachment.objects.aget(id=created["id"])
        assert ready.status == "ready" and ready.size == len(png)
        assert ready.payload["preview_url"].startswith("data:image/webp;base64,")
        assert ready.payload["upload_descriptor"] is None
        # The verified copy is kept, the object the browser wrote is gone.
        assert s3_bucket.keys() == [ready.storage_name]
        assert s3_bucket.read(ready.storage_name) == png
        # And it is what the agent's converter reads back for the model.
        assert ready.payload["metadata"] == {
            "storage_alias": ALIAS,
            "storage_name": ready.storage_name,
        }
        converted = await DjangoThreadItemConverter().attachment_to_message_content(
            attachment_from_payload(ready.payload)
        )
        assert converted == {
            "type": "input_image",
            "detail": "auto",
            "image_url": "data:image/png;base64," + base64.b64encode(png).decode(),
        }

        # The presigned URL outlives the upload; a second PUT to it cannot touch the
        # verified file (and is removed with the attachment).
        assert (await put(descriptor["url"], EXE, descriptor["headers"])).status_code == 200
        assert s3_bucket.read(ready.storage_name) == png
        reply = await http_alice.request("threads.delete", thread_id=ready.thread_id)
        status, _ = reply.status_code, reply.data
        assert status == 200 and s3_bucket.keys() == []

    @pytest.mark.parametrize(
        ("name", "mime", "data", "status", "code"),
        [
            ("photo.png", "image/png", EXE, 415, "unsupported_type"),
            ("report.pdf", "application/pdf", image_bytes("PNG"), 415, "unsupported_type"),
            ("big.pdf", "application/pdf", PDF + b"0" * (1024 * 1024), 413, "file_too_large"),
        ],
    )
    async def test_a_bad_object_is_refused_when_first_used_and_removed(
        self, presigned, http_alice, s3_bucket: Bucket, name, mime, data, status, code
    ):
        got, created = await presigned.create(name, mime, 1000)
        descriptor = created["upload_descriptor"]
        assert (await put(descriptor["url"], data, descriptor["headers"])).status_code == 200
        got, answer = await send_message(http_alice, [created["id"]])
        assert (got, answer["error"]["code"]) == (status, code)
        assert name in answer["error"]["message"]
        assert s3_bucket.keys() == []
        assert not await models.Thread.objects.aexists()
        assert (await models.Attachment.objects.aget(id=created["id"])).status == "pending"

    async def test_a_message_before_the_upload_is_refused(
        self, presigned, http_alice, s3_bucket: Bucket
    ):
        _, created = await presigned.create("a.pdf", "application/pdf", len(PDF))
        status, answer = await send_message(http_alice, [created["id"]])
        assert status == 409 and answer["error"]["code"] == "attachment_not_uploaded"

    async def test_another_owner_cannot_complete_or_use_it(
        self, presigned, http_alice, http_bob, s3_bucket: Bucket
    ):
        _, created = await presigned.create("a.pdf", "application/pdf", len(PDF))
        descriptor = created["upload_descriptor"]
        await put(descriptor["url"], PDF, descriptor["headers"])
        status, answer = await send_message(http_bob, [created["id"]])
        assert status == 404 and answer["error"]["code"] == "not_found"
        assert (await models.Attachment.objects.aget(id=created["id"])).status == "pending"
        assert len(s3_bucket.keys("chatkit/incoming/")) == 1

    async def test_orphan_cleanup_removes_the_uploaded_object(
        self, presigned, http_alice, s3_bucket: Bucket
    ):
        from asgiref.sync import sync_to_async
        from django.core.management import call_command

        _, created = await presigned.create("a.pdf", "application/pdf", len(PDF))
        descriptor = created["upload_descriptor"]
        await put(descriptor["url"], PDF, descriptor["headers"])
        assert len(s3_bucket.keys()) == 1
        await sync_to_async(call_command)("chatkit_cleanup_uploads", "--older-than", "0")
        assert s3_bucket.keys() == [] and not await models.Attachment.objects.aexists()
