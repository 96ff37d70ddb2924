"""Test helpers for projects using django_chatkit (and for its own suite)."""

from .client import ChatKitResponse, ChatKitTestClient, parse_sse, user_input
from .fake_openai import DefaultReply, FakeOpenAI, RecordedRequest, Reply, ToolCall, Usage

__all__ = [
    "ChatKitResponse",
    "ChatKitTestClient",
    "DefaultReply",
    "FakeOpenAI",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "Usage",
    "parse_sse",
    "user_input",
]
