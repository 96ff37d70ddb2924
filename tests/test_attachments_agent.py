"""The agent sees the attachments: uploaded through the real two-phase flow, read back from
storage into model input, and sent to the (fake) OpenAI Responses API as ``input_image`` and
``input_file`` data URLs holding the very bytes that were uploaded."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import override_settings

from django_chatkit.testing import Reply
from tests.attachment_flow import Uploader
from tests.attachment_samples import PDF, image_bytes
from tests.test_agent import AGENT_SETTINGS, is_answer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent(fake_openai, tmp_path):
    storages = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings = {**AGENT_SETTINGS, "ATTACHMENTS": {"ENABLED": True}, "GENERATE_TITLES": False}
    with override_settings(STORAGES=storages, CHATKIT=settings):
        yield fake_openai


def content_parts(request) -> list[dict[str, Any]]:
    parts = []
    for message in request.json["input"]:
        content = message.get("content")
        if isinstance(content, list):
            parts.extend(content)
    return parts


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def test_uploaded_image_and_pdf_reach_the_model(agent, http_alice):
    png = image_bytes("PNG", size=(48, 32))
    uploader = Uploader(http_alice)
    image = await uploader.attach("chart.png", "image/png", png)
    pdf = await uploader.attach("report.pdf", "application/pdf", PDF)
    agent.queue(Reply(text="A chart and a report.", when=is_answer))

    reply = await http_alice.create_thread("What are these?", attachments=[image["id"], pdf["id"]])
    assert reply.status_code == 200 and reply.answer == "A chart and a report.", reply

    [request] = [r for r in agent.requests if is_answer(r)]
    parts = content_parts(request)
    assert {"type": "input_text", "text": "What are these?"} in parts
    [sent_image] = [p for p in parts if p["type"] == "input_image"]
    assert sent_image["image_url"] == data_url("image/png", png)
    [sent_file] = [p for p in parts if p["type"] == "input_file"]
    assert sent_file["file_data"] == data_url("application/pdf", PDF)
    assert sent_file["filename"] == "report.pdf"


async def test_history_keeps_sending_them_on_the_next_turn(agent, http_alice):
    png = image_bytes("PNG", size=(16, 16))
    image = await Uploader(http_alice).attach("dot.png", "image/png", png)
    agent.queue(Reply(text="A dot.", when=is_answer), Reply(text="Still a dot.", when=is_answer))
    first = await http_alice.create_thread("What?", attachments=[image["id"]])
    assert first.status_code == 200 and first.thread_id, first
    again = await http_alice.send(first.thread_id, "And now?")
    assert again.status_code == 200 and again.error is None, again
    second = [r for r in agent.requests if is_answer(r)][-1]
    images = [p for p in content_parts(second) if p["type"] == "input_image"]
    assert [p["image_url"] for p in images] == [data_url("image/png", png)]
