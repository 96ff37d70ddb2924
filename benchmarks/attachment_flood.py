"""One owner floods the attachment endpoints: how much is accepted, how many bytes land.

Issue #10, finding 5 (300 ``attachments.create`` in 18 s were all accepted; twenty 9.8 MB uploads
wrote 190 MB in 7 s). Each request runs as an ASGI server would run it (its own thread and
database connection), all at once, through the real views, on a temporary SQLite database and
a temporary media directory, with the default attachment settings (attachments enabled)::

    python -m benchmarks.attachment_flood [--creates 300] [--uploads 20] [--size 9800000]

Not a test: it prints what was accepted and refused, the bytes stored and the time taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _setup(workdir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.pop("CHATKIT_TEST_SETTINGS", None)
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _stored_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


async def _flood(args: argparse.Namespace, media: Path) -> dict[str, Any]:
    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.contrib.auth import get_user_model
    from django.db import connections

    from django_chatkit.testing import ChatKitTestClient
    from tests.attachment_flow import Uploader

    def signed_in(name: str) -> ChatKitTestClient:
        from django.test import AsyncClient

        user = get_user_model().objects.create_user(name, password="pw")
        client = AsyncClient(enforce_csrf_checks=True)
        client.force_login(user)
        return ChatKitTestClient(client=client)

    async def own_thread(call: Any) -> Any:
        async with ThreadSensitiveContext():
            try:
                return await call()
            finally:
                await sync_to_async(connections.close_all)()

    creator = await sync_to_async(signed_in)("creator")
    uploader = Uploader(await sync_to_async(signed_in)("uploader"))

    async def create_one(http: ChatKitTestClient, size: int) -> tuple[int, Any]:
        reply = await http.request(
            "attachments.create", name="f.txt", size=size, mime_type="text/plain"
        )
        return reply.status_code, reply.data

    def create(http: ChatKitTestClient, size: int) -> Any:
        return own_thread(lambda: create_one(http, size))

    started = time.perf_counter()
    answers = await asyncio.gather(*(create(creator, 10) for _ in range(args.creates)))
    creates_seconds = time.perf_counter() - started
    create_outcomes = Counter(
        str(status) if status == 200 else f"{status} {answer['error']['code']}"
        for status, answer in answers
    )

    payload = b"a" * args.size
    started = time.perf_counter()
    created = await asyncio.gather(*(create(uploader.http, args.size) for _ in range(args.uploads)))
    urls = [answer["upload_descriptor"]["url"] for status, answer in created if status == 200]
    responses = await asyncio.gather(
        *(own_thread(lambda url=url: uploader.send(url, payload, raw=True)) for url in urls)
    )
    uploads_seconds = time.perf_counter() - started
    upload_outcomes = Counter(
        [f"create {status}" for status, _ in created]
        + [f"upload {response.status_code}" for response in responses]
    )
    return {
        "creates": {
            "sent": args.creates,
            "outcomes": dict(create_outcomes),
            "seconds": round(creates_seconds, 2),
        },
        "uploads": {
            "sent": args.uploads,
            "size": args.size,
            "outcomes": dict(upload_outcomes),
            "stored_bytes": _stored_bytes(media),
            "seconds": round(uploads_seconds, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--size", type=int, default=9_800_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatkit-flood-") as tmp:
        workdir = Path(tmp)
        _setup(workdir)
        from tests.attachment_flow import local_media

        media = workdir / "media"
        chatkit = {"SERVER": "tests.servers.ScriptedServer", "ATTACHMENTS": {"ENABLED": True}}
        with local_media(media, chatkit):
            result = asyncio.run(_flood(args, media))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
