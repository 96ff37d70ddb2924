"""Recognising and answering django_chatkit's thread-title requests in a fake OpenAI."""

from __future__ import annotations

from django_chatkit.titles import TITLE_INSTRUCTIONS

from .fake_openai import RecordedRequest, Reply


def is_title_request(request: RecordedRequest) -> bool:
    """Whether the request is the title call ``AgentChatKitServer`` makes beside an answer."""
    return request.instructions == TITLE_INSTRUCTIONS


def title_from_message(request: RecordedRequest) -> Reply | None:
    """A default reply for title requests: the first five words of the user's message."""
    if not is_title_request(request):
        return None
    return Reply(text=" ".join(request.last_user_text.split()[:5]) or "New chat")
