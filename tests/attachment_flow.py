"""The two-phase upload as the ChatKit client does it, through the real views.

``attachments.create`` goes through the protocol endpoint with the owner's session; the bytes
go to the descriptor's URL from a client **without** the site's cookies (as from OpenAI's
iframe), carrying only what the descriptor says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, override_settings

from django_chatkit.testing import ChatKitTestClient

CHATKIT_ORIGIN = "https://cdn.platform.openai.com"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def body(response: Any) -> Any:
    return json.loads(response.content)


def download_path(attachment_id: str, **query: str) -> str:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return f"/chatkit/attachments/{attachment_id}/{suffix}"


async def download(client: AsyncClient, attachment_id: str, **query: str) -> tuple[Any, bytes]:
    """GET the download view; return the response and the whole body (streamed or not)."""
    response: Any = await client.get(download_path(attachment_id, **query))
    content = (
        b"".join([chunk async for chunk in response.streaming_content])
        if response.streaming
        else response.content
    )
    return response, content


def local_media(root: Path, chatkit: dict[str, Any] | None = None) -> override_settings:
    """Settings storing attachments on local disk under ``root`` (and these CHATKIT settings)."""
    storages = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    if chatkit is None:
        return override_settings(STORAGES=storages)
    return override_settings(STORAGES=storages, CHATKIT=chatkit)


class Uploader:
    def __init__(self, http: ChatKitTestClient) -> None:
        self.http = http
        self.anonymous = AsyncClient()  # no session, no CSRF cookie: the token must suffice

    async def create(self, name: str, mime_type: str, size: int) -> tuple[int, Any]:
        reply = await self.http.request(
            "attachments.create", name=name, size=size, mime_type=mime_type
        )
        return reply.status_code, reply.data

    async def send(
        self,
        url: str,
        data: bytes,
        *,
        raw: bool = False,
        method: str = "POST",
        content_type: str = "application/octet-stream",
        origin: str | None = CHATKIT_ORIGIN,
        filename: str = "upload.bin",
        field: str = "file",
    ) -> Any:
        headers = {"Origin": origin} if origin else {}
        call = self.anonymous.put if method == "PUT" else self.anonymous.post
        if raw:
            return await call(path_of(url), data=data, content_type=content_type, headers=headers)
        upload = SimpleUploadedFile(filename, data, content_type=content_type)
        return await call(path_of(url), {field: upload}, headers=headers)

    async def attach(
        self, name: str, mime_type: str, data: bytes, **options: Any
    ) -> dict[str, Any]:
        """Create and upload; return the ready attachment (asserting every step succeeded).

        Without ``options`` (for :meth:`send`), as the public client's ``attach`` does it."""
        if not options:
            return await self.http.attach(name, mime_type, data)
        status, created = await self.create(name, mime_type, len(data))
        assert status == 200, created
        response = await self.send(
            created["upload_descriptor"]["url"], data, content_type=mime_type, **options
        )
        assert response.status_code == 200, response.content
        ready: dict[str, Any] = body(response)
        return ready
