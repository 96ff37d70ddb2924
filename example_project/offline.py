"""The offline demo model: without OPENAI_API_KEY, the demo talks to django_chatkit's fake OpenAI.

Everything else is real: the agent runs through the openai and openai-agents clients, over HTTP
on loopback, and every item, title and Run lands in the database as with OpenAI.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the fake imports the ChatKit SDK: only when the demo starts it
    from django_chatkit.testing import FakeOpenAI, RecordedRequest, Reply

GREETING = (
    "Hello! I am the offline demo model: no OPENAI_API_KEY is set, so nothing leaves this "
    "machine and I only repeat what you write. Set OPENAI_API_KEY and restart to talk to "
    "OpenAI."
)

_fake: FakeOpenAI | None = None


def demo_reply(request: RecordedRequest) -> Reply:
    from django_chatkit.testing import Reply

    said = request.last_user_text.strip()
    if not request.stream:  # the title of a new thread
        return Reply(text=" ".join(said.split()[:5]) or "Offline demo")
    return Reply(
        text=f"(offline demo model) You said: “{said}”. {GREETING}",
        token_delay=0.03,
    )


def start_offline_model() -> str:
    """Start the fake once per process, point the OpenAI client at it and return its URL."""
    global _fake
    if _fake is None:
        from agents import set_tracing_disabled

        from django_chatkit.testing import FakeOpenAI

        set_tracing_disabled(True)  # the trace exporter would call api.openai.com
        _fake = FakeOpenAI(default_reply=demo_reply).start()
        os.environ.update(_fake.env)
    return _fake.base_url


def offline() -> bool:
    """No OpenAI key and no other server named: the demo must answer by itself."""
    return not os.environ.get("OPENAI_API_KEY") and not os.environ.get("OPENAI_BASE_URL")


def running() -> bool:
    """Whether this process answers with the offline demo model."""
    return _fake is not None
