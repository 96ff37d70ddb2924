"""Attachments on local disk (FileSystemStorage in a temporary MEDIA root), end to end through the
real views: two-phase upload, what is refused and why, tokens, downloads, cross-owner ids,
deletion cascades and orphan cleanup."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import signing
from django.core.management import call_command
from django.test import AsyncClient, override_settings
from django.utils import timezone
from PIL import Image

from django_chatkit import models
from django_chatkit.attachments.previews import MAX_PREVIEW_CHARS, PLACEHOLDER_PREVIEW
from django_chatkit.attachments.tokens import make_upload_token
from django_chatkit.context import Owner
from django_chatkit.testing import user_input
from tests.attachment_flow import (
    CHATKIT_ORIGIN,
    Uploader,
    body,
    download,
    download_path,
    local_media,
    path_of,
)
from tests.attachment_samples import (
    EXE,
    PDF,
    TEXT,
    image_bytes,
    png_header_only,
    png_with_broken_pixels,
    stored_files,
)
from tests.factories import fresh_like

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {
    "SERVER": "tests.servers.ScriptedServer",
    "ATTACHMENTS": {"ENABLED": True, "MAX_BYTES": 2 * 1024 * 1024},
}


@pytest.fixture
def media(tmp_path) -> Iterator[Path]:
    root = tmp_path / "media"
    with local_media(root, SETTINGS):
        yield root


@pytest.fixture
def alice_up(http_alice, media) -> Uploader:
    return Uploader(http_alice)


@pytest.fixture
def bob_up(http_bob, media) -> Uploader:
    return Uploader(http_bob)


async def row(attachment_id: str) -> models.Attachment:
    return await models.Attachment.objects.aget(id=attachment_id)


def only_file(media: Path) -> Path:
    files = stored_files(media)
    assert len(files) == 1, files
    return files[0]


class TestTwoPhaseUpload:
    async def test_image_upload_is_verified_stored_and_previewed(self, alice_up, media):
        png = image_bytes("PNG")
        status, created = await alice_up.create("holiday.png", "image/png", len(png))
        assert status == 200
        descriptor = created["upload_descriptor"]
        assert descriptor["method"] == "POST"
        assert descriptor["url"].startswith("http://testserver/chatkit/attachments/atc_")
        assert "token=" in descriptor["url"]
        assert created["type"] == "image" and created["preview_url"] == PLACEHOLDER_PREVIEW
        assert "metadata" not in created
        pending = await row(created["id"])
        assert pending.status == "pending" and stored_files(media) == []

        response = await alice_up.send(descriptor["url"], png, content_type="image/png")
        assert response.status_code == 200, response.content
        assert response["Access-Control-Allow-Origin"] == CHATKIT_ORIGIN
        assert "Access-Control-Allow-Credentials" not in response
        ready = body(response)
        assert ready["id"] == created["id"] and "upload_descriptor" not in ready
        assert "metadata" not in ready
        assert ready["preview_url"].startswith("data:image/webp;base64,")
        assert len(ready["preview_url"]) <= MAX_PREVIEW_CHARS

        stored = await row(created["id"])
        assert stored.status == "ready"
        assert stored.storage_alias == "default"
        assert stored.storage_name.startswith(f"chatkit/attachments/{created['id']}/")
        assert stored.storage_name.endswith(".png")
        assert (stored.size, stored.sha256) == (len(png), hashlib.sha256(png).hexdigest())
        assert stored.payload["metadata"] == {
            "storage_alias": "default",
            "storage_name": stored.storage_name,
        }
        assert only_file(media).read_bytes() == png
        assert only_file(media) == media / stored.storage_name

    async def test_pdf_as_a_raw_put_body(self, alice_up, media):
        _, created = await alice_up.create("report.pdf", "application/pdf", len(PDF))
        response = await alice_up.send(
            created["upload_descriptor"]["url"], PDF, raw=True, method="PUT",
            content_type="application/pdf",
        )  # fmt: skip
        assert response.status_code == 200, response.content
        assert body(response)["type"] == "file"
        assert only_file(media).read_bytes() == PDF

    @pytest.mark.parametrize(
        ("name", "mime", "data"),
        [
            ("notes.txt", "text/plain", TEXT),
            ("readme.md", "text/markdown", b"# Title\n\nSome *text*.\n"),
            ("numbers.csv", "text/csv", b"a,b\n1,2\n"),
            ("photo.jpg", "image/jpeg", image_bytes("JPEG")),
            ("anim.gif", "image/gif", image_bytes("GIF", mode="P")),
            ("pic.webp", "image/webp", image_bytes("WEBP")),
        ],
    )
    async def test_every_default_type_is_accepted(self, alice_up, media, name, mime, data):
        ready = await alice_up.attach(name, mime, data)
        assert ready["mime_type"] == mime
        assert only_file(media).read_bytes() == data

    async def test_a_large_photo_gets_a_small_preview(self, alice_up):
        photo = image_bytes("JPEG", size=(3000, 2000))
        ready = await alice_up.attach("big.jpg", "image/jpeg", photo)
        assert len(ready["preview_url"]) <= MAX_PREVIEW_CHARS
        import base64

        data = base64.b64decode(ready["preview_url"].split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as preview:
            assert max(preview.size) <= 256 and preview.size[0] > preview.size[1]

    async def test_path_traversal_name_is_display_metadata_only(self, alice_up, media, tmp_path):
        png = image_bytes("PNG", size=(32, 32))
        for evil in ("../../../../etc/passwd.png", "..\\..\\windows\\evil.png", "/abs/x.png"):
            ready = await alice_up.attach(evil, "image/png", png)
            stored = await row(ready["id"])
            assert ready["name"] == stored.name and "/" not in stored.name
            assert "\\" not in stored.name and ".." not in stored.name
            assert stored.storage_name.startswith(f"chatkit/attachments/{ready['id']}/")
            assert ".." not in stored.storage_name
        files = stored_files(tmp_path)
        assert len(files) == 3 and all(media in path.parents for path in files)

    async def test_message_with_the_attachment_stamps_its_thread_and_hides_metadata(
        self, alice_up, http_alice
    ):
        ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
        sent = await http_alice.create_thread("see", attachments=[ready["id"]])
        assert sent.status_code == 200 and sent.error is None, sent
        assert b"storage_name" not in sent.content and b"storage_alias" not in sent.content
        stored = await row(ready["id"])
        assert stored.thread_id is not None
        reply = await http_alice.request("items.list", thread_id=stored.thread_id, order="asc")
        status, page = reply.status_code, reply.data
        assert status == 200
        assert page["data"][0]["attachments"][0]["id"] == ready["id"]
        assert "storage_name" not in json.dumps(page)

    async def test_a_message_cannot_use_an_attachment_still_waiting_for_its_bytes(
        self, alice_up, http_alice
    ):
        _, created = await alice_up.create("report.pdf", "application/pdf", len(PDF))
        reply = await http_alice.request("threads.create", input=user_input("see", [created["id"]]))
        status, answer = reply.status_code, reply.data
        assert status == 409 and answer["error"]["code"] == "attachment_not_uploaded"
        assert not await models.Thread.objects.aexists()


# -- what is refused ------------------------------------------------------------------------------


class TestRefusedAtCreate:
    @pytest.mark.parametrize(
        ("name", "mime", "size", "status", "code"),
        [
            ("tool.exe", "application/x-msdownload", 100, 415, "unsupported_type"),
            ("page.html", "text/html", 100, 415, "unsupported_type"),
            ("photo.exe", "image/png", 100, 415, "unsupported_type"),  # lying extension
            ("report.png", "application/pdf", 100, 415, "unsupported_type"),
            ("big.pdf", "application/pdf", 2 * 1024 * 1024 + 1, 413, "file_too_large"),
            ("empty.txt", "text/plain", 0, 400, "empty_file"),
        ],
    )
    async def test_declared_metadata(self, alice_up, media, name, mime, size, status, code):
        got, answer = await alice_up.create(name, mime, size)
        assert (got, answer["error"]["code"]) == (status, code), answer
        assert not await models.Attachment.objects.aexists()


REFUSED_UPLOADS = [
    # (label, name, declared type, bytes, raw body?, status, code)
    (
        "png declared as pdf",
        "report.pdf",
        "application/pdf",
        image_bytes("PNG"),
        False,
        415,
        "unsupported_type",
    ),
    ("exe named photo.png", "photo.png", "image/png", EXE, False, 415, "unsupported_type"),
    ("exe as raw body", "photo.png", "image/png", EXE, True, 415, "unsupported_type"),
    (
        "jpeg declared as png",
        "photo.png",
        "image/png",
        image_bytes("JPEG"),
        False,
        415,
        "unsupported_type",
    ),
    ("pdf declared as text", "notes.txt", "text/plain", PDF, False, 415, "unsupported_type"),
    ("exe declared as text", "notes.txt", "text/plain", EXE, True, 415, "unsupported_type"),
    (
        "latin-1 declared as utf-8 text",
        "notes.txt",
        "text/plain",
        "café".encode("latin-1"),
        False,
        415,
        "unsupported_type",
    ),
    (
        "text with NUL bytes",
        "notes.txt",
        "text/plain",
        b"abc\x00def",
        False,
        415,
        "unsupported_type",
    ),
    (
        "truncated png",
        "photo.png",
        "image/png",
        image_bytes("PNG")[:300],
        False,
        415,
        "unsupported_type",
    ),
    (
        "png whose pixels do not decode",
        "photo.png",
        "image/png",
        png_with_broken_pixels(),
        False,
        415,
        "unsupported_type",
    ),
    ("pdf named .pdf declared as png", "x.png", "image/png", PDF, False, 415, "unsupported_type"),
    (
        "64 megapixel png",
        "huge.png",
        "image/png",
        png_header_only(8000, 8000),
        False,
        413,
        "image_too_large",
    ),
    (
        "decompression bomb png",
        "bomb.png",
        "image/png",
        png_header_only(30000, 30000),
        False,
        413,
        "image_too_large",
    ),
]


class TestRefusedAtUpload:
    @pytest.mark.parametrize(
        ("label", "name", "mime", "data", "raw", "status", "code"),
        REFUSED_UPLOADS,
        ids=[case[0] for case in REFUSED_UPLOADS],
    )
    async def test_content_is_judged_on_its_bytes(
        self, alice_up, media, label, name, mime, data, raw, status, code
    ):
        got, created = await alice_up.create(name, mime, len(data))
        assert got == 200, created
        response = await alice_up.send(
            created["upload_descriptor"]["url"], data, raw=raw, content_type=mime, filename=name
        )
        assert (response.status_code, body(response)["error"]["code"]) == (status, code)
        assert body(response)["error"]["message"]
        assert response["Access-Control-Allow-Origin"] == CHATKIT_ORIGIN  # readable by the iframe
        assert stored_files(media) == []
        assert (await row(created["id"])).status == "pending"

    @pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
    async def test_more_bytes_than_allowed(self, alice_up, media, raw):
        declared = 1000
        _, created = await alice_up.create("big.pdf", "application/pdf", declared)
        oversized = PDF + b"0" * (2 * 1024 * 1024)
        response = await alice_up.send(
            created["upload_descriptor"]["url"], oversized, raw=raw, content_type="application/pdf"
        )
        assert response.status_code == 413 and body(response)["error"]["code"] == "file_too_large"
        assert stored_files(media) == []

    async def test_oversized_stream_stops_at_the_limit_without_a_content_length(
        self, alice_up, media
    ):
        from django_chatkit.attachments.receiving import copy_limited
        from django_chatkit.errors import RequestRejected

        chunks_read = 0

        def endless():
            nonlocal chunks_read
            while True:
                chunks_read += 1
                yield b"x" * 65536

        with pytest.raises(RequestRejected) as refused:
            copy_limited(endless(), 1_000_000)
        assert refused.value.status == 413 and chunks_read == 16

    async def test_empty_body(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", 10)
        response = await alice_up.send(created["upload_descriptor"]["url"], b"", raw=True)
        assert response.status_code == 400 and body(response)["error"]["code"] == "empty_file"

    async def test_multipart_without_the_file_field(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", 10)
        response = await alice_up.send(created["upload_descriptor"]["url"], PDF, field="document")
        assert response.status_code == 400 and body(response)["error"]["code"] == "invalid_upload"
        assert stored_files(media) == []

    async def test_get_is_not_an_upload(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", 10)
        response = await alice_up.anonymous.get(path_of(created["upload_descriptor"]["url"]))
        assert (
            response.status_code == 405 and body(response)["error"]["code"] == "method_not_allowed"
        )


# -- tokens ---------------------------------------------------------------------------------------


def with_token(url: str, token: str) -> str:
    return url.split("?", 1)[0] + f"?token={token}"


class TestUploadTokens:
    async def test_missing_or_tampered_token_is_refused(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        url = created["upload_descriptor"]["url"]
        token = url.split("token=", 1)[1]
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        other_salt = signing.dumps({"a": created["id"], "o": "x"})
        answers = []
        for bad in (url.split("?", 1)[0], with_token(url, tampered), with_token(url, other_salt)):
            response = await alice_up.send(bad, PDF)
            answers.append((response.status_code, body(response)["error"]["code"]))
        assert answers == [
            (403, "upload_token_missing"),
            (403, "upload_token_invalid"),
            (403, "upload_token_invalid"),
        ]
        assert stored_files(media) == []

    async def test_expired_token_is_refused(self, alice_up, media, alice):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        an_hour_ago = time.time() - 3600
        with mock.patch("django.core.signing.time") as clock:
            clock.time.return_value = an_hour_ago
            old_token = make_upload_token(created["id"], Owner(user_id=alice.pk))
        url = with_token(created["upload_descriptor"]["url"], old_token)
        response = await alice_up.send(url, PDF)
        assert response.status_code == 403
        assert body(response)["error"]["code"] == "upload_token_expired"
        assert stored_files(media) == []

    @override_settings(CHATKIT={**SETTINGS, "UPLOAD_TOKEN_MAX_AGE": 1})
    async def test_the_max_age_setting_applies(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        with mock.patch("django.core.signing.time") as clock:
            clock.time.return_value = time.time() + 3
            response = await alice_up.send(created["upload_descriptor"]["url"], PDF)
        assert body(response)["error"]["code"] == "upload_token_expired"

    async def test_a_token_works_once(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        url = created["upload_descriptor"]["url"]
        first = await alice_up.send(url, PDF)
        second = await alice_up.send(url, image_bytes("PNG"))
        assert first.status_code == 200
        assert second.status_code == 409
        assert body(second)["error"]["code"] == "upload_already_used"
        assert only_file(media).read_bytes() == PDF

    async def test_two_uploads_racing_with_one_token_store_one_file(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        url = created["upload_descriptor"]["url"]
        other = Uploader(alice_up.http)
        answers = await asyncio.gather(alice_up.send(url, PDF), other.send(url, PDF))
        assert sorted(answer.status_code for answer in answers) == [200, 409]
        assert only_file(media) == media / (await row(created["id"])).storage_name

    async def test_a_failure_after_storing_leaves_no_file(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        with (
            mock.patch(
                "django_chatkit.attachments.uploads._mark_ready", side_effect=RuntimeError("db")
            ),
            pytest.raises(RuntimeError),
        ):
            await alice_up.send(created["upload_descriptor"]["url"], PDF)
        assert stored_files(media) == []

    async def test_foreign_token_answers_like_a_random_id(self, alice_up, bob_up, media, bob):
        _, alices = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        _, bobs = await bob_up.create("b.pdf", "application/pdf", len(PDF))
        bob_token = bobs["upload_descriptor"]["url"].split("token=", 1)[1]
        random_id = fresh_like(alices["id"])

        async def attempt(attachment_id: str, token: str) -> tuple[int, dict[str, Any]]:
            url = f"http://testserver/chatkit/attachments/{attachment_id}/upload/?token={token}"
            response = await bob_up.send(url, PDF)
            error = body(response)["error"]
            return response.status_code, {
                **error,
                "message": error["message"].replace(attachment_id, "ID"),
            }

        # Bob's valid token on Alice's attachment, and on an id that never existed.
        assert await attempt(alices["id"], bob_token) == await attempt(random_id, bob_token)
        assert (await attempt(alices["id"], bob_token))[0] == 404
        # A token naming Alice's attachment but made for Bob (as a leaked signing key would
        # allow): the owner does not match, so it is missing too.
        forged = make_upload_token(alices["id"], Owner(user_id=bob.pk))
        assert await attempt(alices["id"], forged) == await attempt(random_id, bob_token)
        assert stored_files(media) == []
        assert (await row(alices["id"])).status == "pending"


# -- CORS -----------------------------------------------------------------------------------------


class TestCors:
    async def test_preflight_from_the_chatkit_iframe(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        response = await alice_up.anonymous.options(
            path_of(created["upload_descriptor"]["url"]),
            headers={
                "Origin": CHATKIT_ORIGIN,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == CHATKIT_ORIGIN
        assert response["Access-Control-Allow-Methods"] == "POST, PUT"
        assert response["Access-Control-Allow-Headers"] == "Content-Type"
        assert response["Vary"] == "Origin"
        assert "Access-Control-Allow-Credentials" not in response

    async def test_other_origins_are_refused(self, alice_up, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        url = created["upload_descriptor"]["url"]
        preflight = await alice_up.anonymous.options(
            path_of(url), headers={"Origin": "https://evil.example"}
        )
        upload = await alice_up.send(url, PDF, origin="https://evil.example")
        for response in (preflight, upload):
            assert response.status_code == 403
            assert body(response)["error"]["code"] == "origin_not_allowed"
            assert "Access-Control-Allow-Origin" not in response
        assert stored_files(media) == []

    async def test_same_origin_and_no_origin_need_no_cors(self, alice_up, media):
        for origin in ("http://testserver", None):
            ready = await alice_up.attach("a.pdf", "application/pdf", PDF, origin=origin)
            assert ready["type"] == "file"

    @override_settings(CHATKIT={**SETTINGS, "UPLOAD_ALLOWED_ORIGINS": ["https://chat.example"]})
    async def test_the_allowed_origins_setting(self, alice_up, media):
        ready = await alice_up.attach(
            "a.pdf", "application/pdf", PDF, origin="https://chat.example"
        )
        assert ready["type"] == "file"
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        refused = await alice_up.send(created["upload_descriptor"]["url"], PDF)
        assert refused.status_code == 403


# -- downloads ------------------------------------------------------------------------------------


@pytest.fixture
async def staff_client(db):
    def make(with_permission: bool):
        user = get_user_model().objects.create_user(
            f"staff{int(with_permission)}", password="pw", is_staff=True
        )
        if with_permission:
            user.user_permissions.add(
                Permission.objects.get(
                    codename="view_attachment", content_type__app_label="django_chatkit"
                )
            )
        client = AsyncClient()
        client.force_login(user)
        return client

    return sync_to_async(make)


class TestDownload:
    async def test_owner_downloads_a_file_as_an_attachment(self, alice_up, http_alice, media):
        ready = await alice_up.attach("Q3 report.pdf", "application/pdf", PDF)
        response, content = await download(http_alice.client, ready["id"])
        assert response.status_code == 200 and content == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == 'attachment; filename="Q3 report.pdf"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Length"] == str(len(PDF))
        assert "private" in response["Cache-Control"]

    async def test_head_answers_the_headers_only(self, alice_up, http_alice, media):
        ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
        response = await http_alice.client.head(download_path(ready["id"]))
        assert response.status_code == 200 and response.content == b""
        assert response["Content-Length"] == str(len(PDF))
        assert response["Content-Type"] == "application/pdf"

    async def test_images_are_inline_unless_asked_to_download(self, alice_up, http_alice, media):
        png = image_bytes("PNG", size=(20, 20))
        ready = await alice_up.attach("dot.png", "image/png", png)
        response, content = await download(http_alice.client, ready["id"])
        assert content == png and response["Content-Type"] == "image/png"
        assert response["Content-Disposition"] == 'inline; filename="dot.png"'
        response, _ = await download(http_alice.client, ready["id"], download="1")
        assert response["Content-Disposition"].startswith("attachment;")

    async def test_text_has_a_charset(self, alice_up, http_alice, media):
        ready = await alice_up.attach("notes.txt", "text/plain", TEXT)
        response, content = await download(http_alice.client, ready["id"])
        assert content == TEXT and response["Content-Type"] == "text/plain; charset=utf-8"

    async def test_staff_with_the_view_permission_may_review(self, alice_up, media, staff_client):
        ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
        reviewer = await staff_client(True)
        response, content = await download(reviewer, ready["id"])
        assert response.status_code == 200 and content == PDF
        bare_staff = await staff_client(False)
        response, _ = await download(bare_staff, ready["id"])
        assert response.status_code == 404

    async def test_pending_attachments_have_nothing_to_download(self, alice_up, http_alice, media):
        _, created = await alice_up.create("a.pdf", "application/pdf", len(PDF))
        response, _ = await download(http_alice.client, created["id"])
        assert response.status_code == 404

    async def test_signed_out_visitors_get_401(self, alice_up, media):
        ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
        response, _ = await download(AsyncClient(), ready["id"])
        assert response.status_code == 401


# -- another owner's ids ---------------------------------------------------------------------------


def shape(status: int, answer: dict[str, Any], attachment_id: str) -> tuple[int, str]:
    error = answer["error"]
    return status, f"{error['code']}: {error['message'].replace(attachment_id, 'ID')}"


class TestAnotherOwnersAttachment:
    """Bob names Alice's attachment on every op: each answer is the one a random id gets."""

    async def test_every_op(self, alice_up, bob_up, http_bob, media):
        ready = await alice_up.attach("secret.pdf", "application/pdf", PDF)
        alices, random_id = ready["id"], fresh_like(ready["id"])
        await http_bob.create_thread("mine")
        bobs_thread = await models.Thread.objects.values_list("id", flat=True).aget()
        answers = {}
        for label, attachment_id in (("alice's", alices), ("random", random_id)):
            reply = await http_bob.request(
                "threads.add_user_message",
                thread_id=bobs_thread,
                input=user_input("hi", [attachment_id]),
            )
            status, answer = reply.status_code, reply.data
            add = shape(status, answer, attachment_id)
            reply = await http_bob.request("attachments.delete", attachment_id=attachment_id)
            status, answer = reply.status_code, reply.data
            delete = shape(status, answer, attachment_id)
            reply = await http_bob.request(
                "threads.create", input=user_input("hi", [attachment_id])
            )
            status, answer = reply.status_code, reply.data
            create = shape(status, answer, attachment_id)
            response, content = await download(http_bob.client, attachment_id)
            fetch = shape(response.status_code, json.loads(content), attachment_id)
            answers[label] = (add, delete, create, fetch)
        assert answers["alice's"] == answers["random"]
        assert [answer[0] for answer in answers["random"]] == [404, 404, 404, 404]
        assert only_file(media).read_bytes() == PDF
        assert (await row(alices)).status == "ready"
        assert await models.Thread.objects.acount() == 1  # Bob's own, unchanged
        assert await models.ThreadItem.objects.acount() == 2

    @override_settings(CHATKIT={**SETTINGS, "ALLOW_ANONYMOUS": True})
    async def test_anonymous_visitors_own_theirs_and_see_no_one_elses(
        self, alice_up, http_anonymous, media
    ):
        ready = await alice_up.attach("secret.pdf", "application/pdf", PDF)
        visitor = Uploader(http_anonymous)
        mine = await visitor.attach("mine.pdf", "application/pdf", PDF)
        response, content = await download(http_anonymous.client, mine["id"])
        assert response.status_code == 200 and content == PDF
        response, _ = await download(http_anonymous.client, ready["id"])
        assert response.status_code == 404
        stored = await row(mine["id"])
        assert stored.user_id is None and stored.anonymous_key


# -- files follow their rows ----------------------------------------------------------------------


class TestDeletion:
    async def test_attachments_delete_removes_the_file(self, alice_up, http_alice, media):
        ready = await alice_up.attach("report.pdf", "application/pdf", PDF)
        reply = await http_alice.request("attachments.delete", attachment_id=ready["id"])
        status, _ = reply.status_code, reply.data
        assert status == 200
        assert stored_files(media) == [] and not await models.Attachment.objects.aexists()

    async def test_deleting_a_thread_removes_its_files(self, alice_up, http_alice, media):
        first = await alice_up.attach("a.pdf", "application/pdf", PDF)
        second = await alice_up.attach("b.png", "image/png", image_bytes("PNG", size=(8, 8)))
        kept = await alice_up.attach("c.txt", "text/plain", TEXT)  # never sent
        await http_alice.create_thread("x", attachments=[first["id"], second["id"]])
        thread_id = (await row(first["id"])).thread_id
        assert len(stored_files(media)) == 3
        reply = await http_alice.request("threads.delete", thread_id=thread_id)
        status, _ = reply.status_code, reply.data
        assert status == 200
        assert stored_files(media) == [media / (await row(kept["id"])).storage_name]

    async def test_deleting_a_user_removes_their_files(self, alice_up, bob_up, alice, media):
        await alice_up.attach("a.pdf", "application/pdf", PDF)
        bobs = await bob_up.attach("b.pdf", "application/pdf", PDF)
        await sync_to_async(alice.delete)()
        assert stored_files(media) == [media / (await row(bobs["id"])).storage_name]

    async def test_a_rolled_back_delete_keeps_the_file(self, alice_up, media):
        ready = await alice_up.attach("a.pdf", "application/pdf", PDF)

        def delete_then_fail():
            from django.db import transaction

            with transaction.atomic():
                models.Attachment.objects.filter(id=ready["id"]).delete()
                transaction.set_rollback(True)

        await sync_to_async(delete_then_fail)()
        assert len(stored_files(media)) == 1 and await models.Attachment.objects.aexists()


class TestOrphanCleanup:
    async def make_orphans(self, alice_up, http_alice):
        old = timezone.now() - timedelta(days=2)
        _, pending_old = await alice_up.create("p.pdf", "application/pdf", len(PDF))
        unsent_old = await alice_up.attach("u.pdf", "application/pdf", PDF)
        sent_old = await alice_up.attach("s.pdf", "application/pdf", PDF)
        await http_alice.create_thread("x", attachments=[sent_old["id"]])
        _, pending_new = await alice_up.create("n.pdf", "application/pdf", len(PDF))
        await models.Attachment.objects.exclude(id=pending_new["id"]).aupdate(created_at=old)
        return pending_old["id"], unsent_old["id"], sent_old["id"], pending_new["id"]

    async def test_dry_run_then_cleanup(self, alice_up, http_alice, media):
        pending_old, unsent_old, sent_old, pending_new = await self.make_orphans(
            alice_up, http_alice
        )
        assert len(stored_files(media)) == 2
        out = io.StringIO()
        await sync_to_async(call_command)("chatkit_cleanup_uploads", "--dry-run", stdout=out)
        report = out.getvalue()
        assert f"would remove {pending_old} (upload never finished)" in report
        assert f"would remove {unsent_old} (never sent)" in report
        assert sent_old not in report and pending_new not in report
        assert "2 orphaned attachment(s) would be removed (dry run)." in report
        assert await models.Attachment.objects.acount() == 4 and len(stored_files(media)) == 2

        out = io.StringIO()
        await sync_to_async(call_command)("chatkit_cleanup_uploads", stdout=out)
        assert "Removed 2 orphaned attachment(s)" in out.getvalue()
        left = {a async for a in models.Attachment.objects.values_list("id", flat=True)}
        assert left == {sent_old, pending_new}
        assert stored_files(media) == [media / (await row(sent_old)).storage_name]

    @override_settings(CHATKIT={**SETTINGS, "ORPHAN_UPLOAD_MAX_AGE": 7 * 24 * 3600})
    async def test_the_age_comes_from_the_setting_or_the_option(self, alice_up, http_alice, media):
        await self.make_orphans(alice_up, http_alice)
        out = io.StringIO()
        await sync_to_async(call_command)("chatkit_cleanup_uploads", stdout=out)
        assert "Removed 0 orphaned" in out.getvalue()
        await sync_to_async(call_command)(
            "chatkit_cleanup_uploads", "--older-than", "60", stdout=out
        )
        assert "Removed 2 orphaned" in out.getvalue()
