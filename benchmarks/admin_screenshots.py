"""Screenshots of the moderation admin in headless Chromium (issue #13's "Done when").

    python -m benchmarks.admin_screenshots                       # into docs/screenshots/
    python -m benchmarks.admin_screenshots --output /tmp/shots   # elsewhere

Two real HTTP servers (``django-admin runserver --noreload --insecure``: daphne's runserver, as
``daphne`` is an installed app; ``--insecure`` makes it serve the admin's static files although
``benchmarks.settings`` has ``DEBUG = False``), both on ``benchmarks.settings``:

- **the site at scale**: ``--database-url`` (default: the 1,000,000-thread database that
  ``python -m benchmarks.admin_scale --threads 1000000 --load-only`` fills). It is a benchmark
  fixture: nothing here migrates it or changes its rows. The only row written there is the staff
  user this script signs in as (``STAFF_USER``, a superuser, its password a new random one on
  every run), and the session that signing in makes. The lock action's confirmation page is
  opened, never submitted;
- **a thread with every item type**: a database of its own (``--transcript-database``, default
  ``chatkit_screenshots``, dropped and made again on every run) holding one conversation stored
  through ``DjangoStore`` as the endpoint saves it: user messages (one with a PNG and a text file
  uploaded through the real two-phase upload into Django's storage, under a temporary
  ``MEDIA_ROOT``), Markdown answers with sources, a client tool call, a widget, a generated
  image, structured input, a workflow, a task, hidden context of both kinds, end of turn, the
  owner's votes, the answers' runs and a failed run.

Playwright drives the system's Chromium (``/usr/bin/chromium``, headless), signs in through
``/admin/login/`` and writes PNGs: ``changelist.png`` (the threads list), ``lock-confirmation.png``
(two threads selected, "lock" chosen, Go pressed), ``feedback-negative.png`` (the feedback queue
filtered to negative votes, its top 2,400 pixels), ``usage.png`` (the usage overview), ``transcript.png`` (the thread's
change page, full height) and ``transcript-page.png`` (its transcript page). A PNG over ``--max-kb`` is saved again with a 256-colour palette.

Database work runs in child processes of this module (``--prepare site|transcript``), each with
its own ``BENCH_DATABASE_URL``; this process only starts them, the servers and the browser.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tests.processes import HOST, free_port, stop_process, wait_until_listening

if TYPE_CHECKING:
    from chatkit.types import ThreadItem
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.settings"
SITE_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatkit_bench_admin_1000000"
TRANSCRIPT_DATABASE = "chatkit_screenshots"
# Signs in on both databases; a user of its own, so that the fixture's rows stay as loaded.
STAFF_USER = "bench-admin-screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1400, "height": 900}
# The usage overview aggregates 30 days of runs: seconds at a million threads on 2 cores.
PAGE_TIMEOUT_MS = 180_000
THREAD_TITLE = "Long weekend in Lisbon: itinerary and budget"

CHANGELIST = "/admin/django_chatkit/thread/"
FEEDBACK_NEGATIVE = "/admin/django_chatkit/feedback/?kind__exact=negative"
USAGE = "/admin/django_chatkit/run/usage/"
LOCK_ACTION = "lock_threads"
FEEDBACK_HEIGHT = 2400


# -- child processes: the databases --------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def child_env(database_url: str, media_root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "BENCH_DATABASE_URL": database_url,
        # tests.settings: MEDIA_ROOT, where the default storage keeps the uploaded files.
        "CHATKIT_TEST_MEDIA_ROOT": str(media_root),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "PYTHONUNBUFFERED": "1",
    }


def run_prepare(kind: str, env: dict[str, str], password: str, timeout: float) -> dict[str, Any]:
    """Run ``--prepare kind`` in a child process; what it printed last (JSON)."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.admin_screenshots", "--prepare", kind],
        cwd=REPO,
        env={**env, "SCREENSHOTS_PASSWORD": password},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"--prepare {kind} failed:\n{result.stdout}\n{result.stderr}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _staff_user(password: str) -> None:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    user = model.objects.filter(username=STAFF_USER).first()
    if user is None:
        user = model(username=STAFF_USER, email="screenshots@example.com")
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()


def prepare_site() -> dict[str, Any]:
    """The database at scale: check it is migrated and loaded (changing nothing), then the
    staff user."""
    import django
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    django.setup()
    from django_chatkit.models import Thread

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending)
        raise SystemExit(
            f"{connection.settings_dict['NAME']} lacks migrations ({names}): this script does "
            "not migrate a benchmark fixture; load it again with benchmarks.admin_scale"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [Thread._meta.db_table],
        )
        estimate = int(cursor.fetchone()[0])
    if estimate <= 0:
        raise SystemExit(f"{connection.settings_dict['NAME']} holds no threads (not loaded?)")
    _staff_user(os.environ["SCREENSHOTS_PASSWORD"])
    return {"database": connection.settings_dict["NAME"], "threads_estimate": estimate}


def prepare_transcript() -> dict[str, Any]:
    """A new database holding one thread with every item type; its id."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    from benchmarks.admin_data import maintenance

    name = settings.DATABASES["default"]["NAME"]
    if not name.startswith(TRANSCRIPT_DATABASE):
        raise SystemExit(f"refusing to drop {name!r}: not named {TRANSCRIPT_DATABASE}...")
    maintenance("drop", name)
    maintenance("create", name)
    call_command("migrate", verbosity=0, interactive=False)
    _staff_user(os.environ["SCREENSHOTS_PASSWORD"])
    thread_id = asyncio.run(_store_conversation())
    return {"database": name, "thread": thread_id}


def _png(width: int, height: int, draw: str) -> bytes:
    """A small picture drawn with Pillow: "hotel" (a street at sunset) or "map"."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (250, 244, 230))
    pen = ImageDraw.Draw(image)
    if draw == "hotel":
        for y in range(height):  # sky
            pen.line([(0, y), (width, y)], fill=(255, 170 + y * 60 // height, 120 + y // 3))
        pen.ellipse([width - 90, 20, width - 40, 70], fill=(255, 236, 150))
        colours = [(232, 120, 80), (245, 205, 120), (120, 170, 210), (240, 240, 235)]
        x = 0
        for n in range(7):  # houses
            w, h = 40 + n * 7 % 25, height // 2 + n * 13 % 50
            pen.rectangle([x, height - h, x + w, height], fill=colours[n % len(colours)])
            for wy in range(height - h + 12, height - 20, 22):
                pen.rectangle([x + 8, wy, x + 16, wy + 10], fill=(70, 80, 110))
            x += w + 2
        pen.rectangle([0, height - 12, width, height], fill=(150, 140, 130))
    else:
        pen.rectangle([0, height * 2 // 3, width, height], fill=(150, 200, 235))  # the river
        for n in range(6):
            pen.line([(0, 20 + n * 30), (width, 40 + n * 25)], fill=(200, 190, 170), width=3)
        for n, (x, y) in enumerate([(60, 50), (150, 90), (250, 60)]):
            pen.ellipse([x - 8, y - 8, x + 8, y + 8], fill=(220, 60, 60))
            pen.text((x + 12, y - 6), f"Day {n + 1}", fill=(40, 40, 40))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _widget() -> Any:
    from chatkit.widgets import WidgetRoot
    from pydantic import TypeAdapter

    return TypeAdapter(WidgetRoot).validate_python(
        {
            "type": "Card",
            "size": "md",
            "children": [
                {"type": "Title", "value": "Casa do Largo, Alfama"},
                {
                    "type": "Text",
                    "id": "dates",
                    "value": "Fri 15 – Mon 18 May · 3 nights · 2 adults",
                },
                {"type": "Text", "id": "price", "value": "€540 in all, breakfast included"},
                {
                    "type": "Button",
                    "label": "Book this room",
                    "onClickAction": {"type": "book_room", "payload": {"hotel": "casa-do-largo"}},
                },
            ],
        }
    )


def conversation(thread_id: str, start: datetime, attachments: list[Any]) -> list[ThreadItem]:
    """Three turns of a travel-planning chat holding every item type the SDK defines; times
    naive local, one to a few seconds apart, as the SDK makes them."""
    import base64

    from chatkit.types import (
        Annotation,
        AssistantMessageContent,
        AssistantMessageItem,
        ClientToolCallItem,
        CustomSummary,
        CustomTask,
        EndOfTurnItem,
        FileSource,
        GeneratedImage,
        GeneratedImageItem,
        HiddenContextItem,
        InferenceOptions,
        SDKHiddenContextItem,
        SearchTask,
        StructuredInputAnswer,
        StructuredInputFreeform,
        StructuredInputItem,
        StructuredInputMultipleChoice,
        StructuredInputMultipleChoiceOption,
        TaskItem,
        ThoughtTask,
        ToolChoice,
        URLSource,
        UserMessageItem,
        UserMessageTagContent,
        UserMessageTextContent,
        WidgetItem,
        Workflow,
        WorkflowItem,
    )

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    map_url = "data:image/png;base64," + base64.b64encode(_png(320, 200, "map")).decode()
    visit = URLSource(title="Visit Lisboa: Alfama", url="https://www.visitlisboa.com/en/places")
    answer = (
        "## Three days in Lisbon\n\n"
        "**Day 1 — Alfama.** Check in at *Casa do Largo*, walk up to the "
        "[Miradouro de Santa Luzia](https://www.visitlisboa.com/en/places), fado in the evening.\n\n"
        "**Day 2 — Belém.** Tram 15 to the Jerónimos Monastery; pastéis de nata at 10:00 before "
        "the queue.\n\n"
        "**Day 3 — Sintra.** Train from Rossio (40 min), Pena Palace, back for dinner.\n\n"
        "| Item | Cost |\n|---|---:|\n| Hotel, 3 nights | €540 |\n| Trams and trains | €45 |\n"
        "| Food | €240 |\n| **Total** | **€825** |\n\n"
        "Your packing list already covers the hills: keep the `comfortable shoes` line."
    )
    return [
        UserMessageItem(
            id="msg_user_plan",
            thread_id=thread_id,
            created_at=at(0),
            content=[
                UserMessageTextContent(
                    text="We're in Lisbon for a long weekend in May, staying here (photo). "
                    "Can you plan three days with a budget? My packing list is attached."
                ),
                UserMessageTagContent(
                    id="prefs", text="@travel-preferences", data={"pace": "slow"}, group="profile"
                ),
            ],
            attachments=attachments,
            quoted_text="Tell me your dates and where you are staying.",
            inference_options=InferenceOptions(
                tool_choice=ToolChoice(id="web_search"), model="gpt-4.1"
            ),
        ),
        HiddenContextItem(
            id="hcx_profile",
            thread_id=thread_id,
            created_at=at(1),
            content={"home_currency": "EUR", "user_timezone": "Europe/Lisbon", "plan": "pro"},
        ),
        WorkflowItem(
            id="wf_research",
            thread_id=thread_id,
            created_at=at(2),
            workflow=Workflow(
                type="reasoning",
                tasks=[
                    SearchTask(
                        title="Searching the web",
                        queries=["Lisbon 3 day itinerary May", "Sintra train from Rossio"],
                        sources=[visit, URLSource(title="CP trains", url="https://www.cp.pt/")],
                        status_indicator="complete",
                    ),
                    ThoughtTask(
                        title="Planning",
                        content="Alfama is close to the hotel; Sintra needs a full day.",
                    ),
                    CustomTask(
                        title="Checked the budget",
                        content="€825 of €900",
                        status_indicator="complete",
                    ),
                ],
                summary=CustomSummary(title="Researched for 6 seconds"),
                expanded=True,
            ),
        ),
        ClientToolCallItem(
            id="tc_exchange",
            thread_id=thread_id,
            created_at=at(3),
            call_id="call_fx_1",
            name="get_exchange_rate",
            arguments={"from": "EUR", "to": "GBP", "amount": 825},
            status="completed",
            output={"rate": 0.85, "converted": 701.25},
        ),
        AssistantMessageItem(
            id="msg_answer_plan",
            thread_id=thread_id,
            created_at=at(8),
            content=[
                AssistantMessageContent(
                    text=answer,
                    annotations=[
                        Annotation(source=visit, index=120),
                        Annotation(
                            source=FileSource(title="Packing list", filename="packing-list.txt")
                        ),
                    ],
                )
            ],
        ),
        WidgetItem(
            id="msg_widget_hotel",
            thread_id=thread_id,
            created_at=at(9),
            widget=_widget(),
            copy_text="Casa do Largo, 15–18 May, €540",
        ),
        GeneratedImageItem(
            id="msg_map",
            thread_id=thread_id,
            created_at=at(12),
            image=GeneratedImage(id="img_map", url=map_url),
        ),
        EndOfTurnItem(id="eot_1", thread_id=thread_id, created_at=at(13)),
        UserMessageItem(
            id="msg_user_cheaper",
            thread_id=thread_id,
            created_at=at(60),
            content=[
                UserMessageTextContent(text="That's a bit much. Anything cheaper near Alfama?")
            ],
            attachments=[],
            inference_options=InferenceOptions(),
        ),
        StructuredInputItem(
            id="msg_form_budget",
            thread_id=thread_id,
            created_at=at(62),
            status="answered",
            inputs=[
                StructuredInputFreeform(
                    id="max_price",
                    question="Highest price per night?",
                    description="In euros, for the room",
                    answer=StructuredInputAnswer(values=["120"]),
                ),
                StructuredInputMultipleChoice(
                    id="must_have",
                    question="Must have?",
                    multiple=True,
                    options=[
                        StructuredInputMultipleChoiceOption(value="breakfast"),
                        StructuredInputMultipleChoiceOption(value="lift"),
                        StructuredInputMultipleChoiceOption(value="terrace"),
                    ],
                    answer=StructuredInputAnswer(values=["breakfast", "lift"]),
                ),
            ],
        ),
        AssistantMessageItem(
            id="msg_answer_cheaper",
            thread_id=thread_id,
            created_at=at(75),
            content=[
                AssistantMessageContent(
                    text="Two options under €120 a night with breakfast and a lift:\n\n"
                    "1. **Alfama Patio** — €98, five minutes from the cathedral.\n"
                    "2. **Lisboa Tejo** — €115, next to Rossio, easy for the Sintra train."
                )
            ],
        ),
        TaskItem(
            id="tsk_saved",
            thread_id=thread_id,
            created_at=at(76),
            task=CustomTask(title="Saved both hotels to your trip notes", icon="check"),
        ),
        EndOfTurnItem(id="eot_2", thread_id=thread_id, created_at=at(77)),
        UserMessageItem(
            id="msg_user_book",
            thread_id=thread_id,
            created_at=at(140),
            content=[UserMessageTextContent(text="Book Alfama Patio for us, please.")],
            attachments=[],
            inference_options=InferenceOptions(),
        ),
        SDKHiddenContextItem(
            id="shcx_stop",
            thread_id=thread_id,
            created_at=at(141),
            content="The answer failed: the model's rate limit was reached.",
        ),
    ]


async def _upload(owner: Any, name: str, mime_type: str, data: bytes) -> str:
    """The ChatKit client's two-phase upload through the real views; the attachment id."""
    from django_chatkit.testing import ChatKitTestClient

    ready = await ChatKitTestClient(user=owner).attach(name, mime_type, data)
    return str(ready["id"])


async def _store_conversation() -> str:
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import override_settings
    from django.utils import timezone

    from django_chatkit import models
    from django_chatkit.context import ChatKitContext
    from django_chatkit.store import DjangoStore
    from tests.items import every_item

    owner = await get_user_model().objects.acreate(
        username="ada", first_name="Ada", last_name="Lovelace", email="ada@example.com"
    )
    context = ChatKitContext.for_user(owner)
    store = DjangoStore()
    now = timezone.now().replace(microsecond=0)
    started = now - timedelta(hours=2)
    thread = await models.Thread.objects.acreate(
        user=owner, title=THREAD_TITLE, created_at=started, updated_at=started
    )
    chatkit = {**settings.CHATKIT, "ATTACHMENTS": {"ENABLED": True}}
    with override_settings(CHATKIT=chatkit):
        ids = [
            await _upload(owner, "casa-do-largo.png", "image/png", _png(360, 240, "hotel")),
            await _upload(
                owner, "packing-list.txt", "text/plain", b"passport\ncomfortable shoes\n"
            ),
        ]
        attachments = []
        for attachment_id in ids:  # sent in the first message: they now belong to the thread
            attachment = await store.load_attachment(attachment_id, context)
            attachment.thread_id = thread.id
            attachment.upload_descriptor = None
            await store.save_attachment(attachment, context)
            attachments.append(attachment)
    local_start = timezone.localtime(started).replace(tzinfo=None)
    items = conversation(thread.id, local_start, attachments)
    missing = {item.type for item in every_item("x")} - {item.type for item in items}
    assert not missing, f"item types missing from the conversation: {missing}"
    for item in items:
        await store.add_thread_item(thread.id, item, context)

    def aware(seconds: float) -> datetime:
        return started + timedelta(seconds=seconds)

    def save_runs_and_votes() -> None:
        common = {"thread": thread, "user": owner, "kind": models.RunKind.ANSWER}
        models.Run.objects.create(
            **common,
            model="gpt-4.1",
            status=models.RunStatus.COMPLETED,
            started_at=aware(0.4),
            first_token_at=aware(2.1),
            finished_at=aware(8.6),
            input_tokens=1834,
            output_tokens=412,
            response_id="resp_plan",
        )
        models.Run.objects.create(
            **common,
            model="gpt-4.1-mini",
            status=models.RunStatus.COMPLETED,
            started_at=aware(62.5),
            first_token_at=aware(63.3),
            finished_at=aware(75.2),
            input_tokens=2390,
            output_tokens=96,
            response_id="resp_cheaper",
        )
        models.Run.objects.create(
            **common,
            model="gpt-4.1",
            status=models.RunStatus.FAILED,
            started_at=aware(140.3),
            finished_at=aware(140.9),
            error_code="rate_limit_exceeded",
            error_message="Rate limit reached for gpt-4.1 on tokens per min (TPM): "
            "Limit 30000, Used 29850, Requested 2460.",
        )
        models.Run.objects.create(
            thread=thread,
            user=owner,
            kind=models.RunKind.TITLE,
            model="gpt-4.1-mini",
            status=models.RunStatus.COMPLETED,
            started_at=aware(0.5),
            first_token_at=aware(0.9),
            finished_at=aware(1.2),
            input_tokens=120,
            output_tokens=11,
        )
        models.Feedback.objects.create(thread=thread, item_id="msg_answer_plan", kind="positive")
        models.Feedback.objects.create(thread=thread, item_id="msg_answer_cheaper", kind="negative")
        # Voted a little after each answer (created_at and updated_at are set on save: now).
        for item_id, seconds in (("msg_answer_plan", 30), ("msg_answer_cheaper", 90)):
            models.Feedback.objects.filter(thread=thread, item_id=item_id).update(
                created_at=aware(seconds), updated_at=aware(seconds)
            )
        models.Thread.objects.filter(pk=thread.pk).update(updated_at=aware(141))

    await sync_to_async(save_runs_and_votes)()
    return thread.id


# -- the servers -----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""


def wait_until_answering(server: Server, path: str, deadline: float) -> None:
    """Return once ``path`` answers 200 (the first request imports the admin: seconds)."""
    while True:
        try:
            with urllib.request.urlopen(server.url + path, timeout=30) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} does not answer {path}:\n{server.logs()}")
        time.sleep(0.2)


@contextmanager
def admin_server(name: str, env: dict[str, str], timeout: float) -> Iterator[Server]:
    port = free_port()
    address = f"{HOST}:{port}"
    fd, log_name = tempfile.mkstemp(prefix=f"chatkit-screenshots-{name}-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", "--noreload", "--insecure", address],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, f"http://{HOST}:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout
        wait_until_listening(process, (HOST, port), timeout, name=name, describe=server.logs)
        wait_until_answering(server, "/admin/login/", deadline)
        # The admin's own stylesheet: missing if static files were not served.
        wait_until_answering(server, "/static/admin/css/base.css", deadline)
        yield server
    finally:
        stop_process(process, 10)
        log_path.unlink(missing_ok=True)


# -- the browser ---------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def signed_in(browser: Browser, server: Server, password: str) -> Iterator[Page]:
    """A page of a browser context of its own (both servers are on 127.0.0.1: their session
    cookies would collide in one), signed in through the admin's login form."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")  # type: ignore[arg-type]
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(server.url + "/admin/login/?next=/admin/")
        page.fill("#id_username", STAFF_USER)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.click("input[type=submit]")
        if "/admin/login/" in page.url:
            raise RuntimeError(f"signing in to {server.name} failed: {page.url}")
        yield page
    finally:
        context.close()


def save(page: Page, path: Path, max_bytes: int, *, max_height: int | None = None) -> int:
    """A full-page screenshot to ``path`` (its top ``max_height`` pixels when given); over
    ``max_bytes``, saved again with a 256-colour palette."""
    from PIL import Image

    clip = None
    if max_height is not None:
        height = int(page.evaluate("document.documentElement.scrollHeight"))
        width = int(page.evaluate("document.documentElement.scrollWidth"))
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, max_height)}
    data = page.screenshot(full_page=True, clip=clip, type="png")  # type: ignore[arg-type]
    if len(data) > max_bytes:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        out = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            out, format="PNG", optimize=True
        )
        data = out.getvalue()
    path.write_bytes(data)
    return len(data)


def shoot(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    media_root = Path(tempfile.mkdtemp(prefix="chatkit-screenshots-media-"))
    site_env = child_env(args.database_url, media_root)
    transcript_url = with_database(args.database_url, args.transcript_database)
    transcript_env = child_env(transcript_url, media_root)
    shots: list[tuple[str, str, int]] = []
    max_bytes = args.max_kb * 1024
    try:
        site = run_prepare("site", site_env, password, args.timeout)
        print(f"site: {site['database']}, about {site['threads_estimate']:,} threads", flush=True)
        transcript = run_prepare("transcript", transcript_env, password, args.timeout)
        print(f"transcript: thread {transcript['thread']} in {transcript['database']}", flush=True)
        with (
            admin_server("site", site_env, args.timeout) as big,
            admin_server("transcript", transcript_env, args.timeout) as small,
            chromium() as browser,
        ):
            print(f"servers: {big.url} (site), {small.url} (transcript)", flush=True)

            def take(page: Page, name: str, what: str, **options: Any) -> None:
                path = output / name
                size = save(page, path, max_bytes, **options)
                shots.append((str(path), what, size))
                print(f"  {path} ({size / 1024:.0f} KB): {what}", flush=True)

            with signed_in(browser, big, password) as page:
                begin = time.perf_counter()
                page.goto(big.url + CHANGELIST)
                took = time.perf_counter() - begin
                take(page, "changelist.png", f"threads changelist ({took:.1f} s)")

                # Two threads selected, "lock" chosen, Go: the confirmation, left unsubmitted.
                boxes = page.locator("#result_list input.action-select")
                boxes.nth(0).check()
                boxes.nth(1).check()
                page.select_option("select[name=action]", LOCK_ACTION)
                with page.expect_navigation():
                    page.click("button[name=index]")
                # The reasons form: the message to the user and the internal note.
                page.get_by_text("Internal note").first.wait_for()
                take(page, "lock-confirmation.png", "lock confirmation (not submitted)")

                page.goto(big.url + FEEDBACK_NEGATIVE)
                # A page of 100 votes with their texts is 13,000 pixels high: its top only.
                take(
                    page,
                    "feedback-negative.png",
                    f"feedback queue, negative votes (top {FEEDBACK_HEIGHT} px)",
                    max_height=FEEDBACK_HEIGHT,
                )

                begin = time.perf_counter()
                page.goto(big.url + USAGE)
                took = time.perf_counter() - begin
                take(page, "usage.png", f"usage overview ({took:.1f} s)")

            with signed_in(browser, small, password) as page:
                thread = f"{small.url}/admin/django_chatkit/thread/{transcript['thread']}/"
                page.goto(thread + "change/")
                take(page, "transcript.png", "a thread with every item type, its change page")
                page.goto(thread + "transcript/")
                take(page, "transcript-page.png", "the same thread's transcript page")
    finally:
        shutil.rmtree(media_root, ignore_errors=True)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SCREENSHOTS_DATABASE_URL", SITE_DATABASE_URL),
        help="the loaded site (never changed but for the staff user); default %(default)s",
    )
    parser.add_argument(
        "--transcript-database",
        default=TRANSCRIPT_DATABASE,
        help="the database made anew for the every-item thread, on the same server",
    )
    parser.add_argument("--max-kb", type=int, default=400, help="palette PNGs above this size")
    parser.add_argument(
        "--width", type=int, default=VIEWPORT["width"], help="the window's width in pixels"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per step")
    parser.add_argument("--prepare", choices=("site", "transcript"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
        info = prepare_site() if args.prepare == "site" else prepare_transcript()
        print(json.dumps(info))
        return 0
    VIEWPORT["width"] = args.width
    if not args.transcript_database.startswith(TRANSCRIPT_DATABASE):
        parser.error(f"--transcript-database must start with {TRANSCRIPT_DATABASE!r}")
    if urlsplit(args.database_url).path.lstrip("/") == args.transcript_database:
        parser.error("--transcript-database is dropped on every run: not the site's database")
    for path, what, size in shoot(args):
        print(f"{path}\t{size}\t{what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
