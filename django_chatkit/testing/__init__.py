"""Test helpers for projects using django_chatkit (and for its own suite)."""

from .client import (
    CSRF_TOKEN,
    ChatKitResponse,
    ChatKitTestClient,
    request_body,
    user_input,
)
from .fake_openai import DefaultReply, FakeOpenAI, RecordedRequest, Reply, ToolCall, Usage
from .live import async_live_client, live_client
from .sse import SSEFormatError, aiter_sse, iter_sse, parse_sse, parse_sse_json, to_event
from .titles import is_title_request, title_from_message

__all__ = [
    "CSRF_TOKEN",
    "ChatKitResponse",
    "ChatKitTestClient",
    "DefaultReply",
    "FakeOpenAI",
    "RecordedRequest",
    "Reply",
    "SSEFormatError",
    "ToolCall",
    "Usage",
    "aiter_sse",
    "async_live_client",
    "is_title_request",
    "iter_sse",
    "live_client",
    "parse_sse",
    "parse_sse_json",
    "request_body",
    "title_from_message",
    "to_event",
    "user_input",
]
