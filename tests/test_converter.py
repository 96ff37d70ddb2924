"""What the agent's converter sends the model for stored items."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    FileAttachment,
    InferenceOptions,
    ThreadItem,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)
from openai._utils._transform import async_maybe_transform
from openai.types.responses import response_create_params

from django_chatkit.converter import DjangoThreadItemConverter

NOW = datetime(2026, 1, 1, 12, 0, 0)


def user(text: str, **fields: Any) -> UserMessageItem:
    return UserMessageItem(
        id="msg_u",
        thread_id="thr_1",
        created_at=NOW,
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
        **fields,
    )


async def test_text_only_messages_are_plain_strings():
    items: list[ThreadItem] = [
        user("Hello"),
        AssistantMessageItem(
            id="msg_a",
            thread_id="thr_1",
            created_at=NOW,
            content=[AssistantMessageContent(text="Hi! "), AssistantMessageContent(text="How?")],
        ),
        user("Quoting", quoted_text="the bit"),
    ]
    converted: list[Any] = await DjangoThreadItemConverter().to_agent_input(items)
    assert converted == [
        {"type": "message", "role": "user", "content": "Hello"},
        {"type": "message", "role": "assistant", "content": "Hi! How?"},
        {"type": "message", "role": "user", "content": "Quoting"},
        {
            "type": "message",
            "role": "user",
            "content": "The user is referring to this in particular: \nthe bit",
        },
    ]


async def test_messages_with_more_than_text_keep_their_parts():
    tagged = UserMessageItem(
        id="msg_t",
        thread_id="thr_1",
        created_at=NOW,
        content=[
            UserMessageTextContent(text="Ask "),
            UserMessageTagContent(id="t1", text="Bob", data={"team": "ops"}, interactive=False),
        ],
        inference_options=InferenceOptions(),
    )
    with_file = user(
        "See file",
        attachments=[
            # Not in storage: the converter says so in a text part, beside the message's text.
            FileAttachment(id="atc_1", name="a.txt", mime_type="text/plain", thread_id="thr_1")
        ],
    )
    converted: list[Any] = await DjangoThreadItemConverter().to_agent_input([tagged, with_file])
    texts = [item["content"] for item in converted]
    assert texts[0] == "Ask @Bob"
    # The tags' context: two text parts, kept as a list.
    assert [part["text"] for part in texts[1]][1] == '@Bob refers to: {"team": "ops"}'
    assert texts[2][0] == {"type": "input_text", "text": "See file"}
    assert texts[2][1]["type"] == "input_text" and "a.txt" in texts[2][1]["text"]


@pytest.mark.parametrize("text", ["plain", "", "ünïcode ✓ \n lines"])
async def test_plain_strings_are_what_the_openai_client_sends(text):
    # The openai client's request preparation keeps a plain string content as it is.
    converted: list[Any] = await DjangoThreadItemConverter().to_agent_input([user(text)])
    params: Any = await async_maybe_transform(
        {"model": "m", "input": converted}, response_create_params.ResponseCreateParamsStreaming
    )
    assert params["input"] == [{"type": "message", "role": "user", "content": text}]
