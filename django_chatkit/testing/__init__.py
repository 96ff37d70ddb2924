"""Test helpers for projects using django_chatkit (and for its own suite)."""

from .client import ChatKitResponse, ChatKitTestClient, parse_sse, user_input
from .fake_openai import DefaultReply, FakeOpenAI, RecordedRequest, Reply, ToolCall, Usage
from .titles import is_title_request, title_from_message

__all__ = [
    "ChatKitResponse",
    "ChatKitTestClient",
    "DefaultReply",
    "FakeOpenAI",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "Usage",
    "is_title_request",
    "parse_sse",
    "title_from_message",
    "user_input",
]
