"""Thread items to model input: the SDK's converter plus what it leaves to the integrator."""

from __future__ import annotations

import base64
import json

from agents import TResponseInputItem
from asgiref.sync import sync_to_async
from chatkit.agents import ThreadItemConverter
from chatkit.types import (
    AssistantMessageItem,
    Attachment,
    HiddenContextItem,
    ImageAttachment,
    UserMessageItem,
    UserMessageTagContent,
)
from django.core.files.storage import storages
from openai.types.responses import (
    EasyInputMessageParam,
    ResponseInputContentParam,
    ResponseInputFileParam,
    ResponseInputImageParam,
    ResponseInputTextParam,
)
from openai.types.responses.response_input_item_param import Message

from django_chatkit.attachments.metadata import STORAGE_ALIAS_KEY, STORAGE_NAME_KEY

__all__ = ["STORAGE_ALIAS_KEY", "STORAGE_NAME_KEY", "DjangoThreadItemConverter"]


def _read_from_storage(alias: str, name: str) -> bytes:
    with storages[alias].open(name, "rb") as handle:
        data: bytes = handle.read()  # File.read() is untyped in django-stubs
        return data


def _plain_text_message(item: TResponseInputItem) -> TResponseInputItem:
    """A user message holding one text part, as a message whose content is that text.

    The Responses API and Chat Completions read both forms alike. The plain form is what the
    openai client prepares fastest: it checks every request parameter against the API's types,
    and a list of content parts costs it several times as much as a string (with the default
    40 items of history, that check is the largest share of a turn's CPU).
    """
    if not isinstance(item, dict) or item.get("role") != "user" or item.get("type") != "message":
        return item
    content = item.get("content")
    if isinstance(content, list) and len(content) == 1:
        [part] = content
        if (
            isinstance(part, dict)
            and part.get("type") == "input_text"
            and set(part)
            == {
                "type",
                "text",
            }
        ):
            return EasyInputMessageParam(type="message", role="user", content=part["text"])
    return item


class DjangoThreadItemConverter(ThreadItemConverter):
    """Images become ``input_image`` data URLs and other files ``input_file``, read from storage.

    Tags become text the model can use; hidden context that is not a string is sent as JSON.
    Text-only user messages are sent as plain strings (see ``_plain_text_message``).
    """

    async def user_message_to_input(
        self, item: UserMessageItem, is_last_message: bool = True
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        converted = await super().user_message_to_input(item, is_last_message)
        if isinstance(converted, list):
            return [_plain_text_message(part) for part in converted]
        return None if converted is None else _plain_text_message(converted)

    async def attachment_bytes(self, attachment: Attachment) -> bytes | None:
        metadata = attachment.metadata or {}
        name = metadata.get(STORAGE_NAME_KEY)
        if not name:
            return None
        alias = metadata.get(STORAGE_ALIAS_KEY, "default")
        try:
            return await sync_to_async(_read_from_storage)(alias, name)
        except FileNotFoundError:
            return None

    async def attachment_to_message_content(
        self, attachment: Attachment
    ) -> ResponseInputContentParam:
        data = await self.attachment_bytes(attachment)
        if data is None:
            return ResponseInputTextParam(
                type="input_text",
                text=f"[The user attached {attachment.name!r} ({attachment.mime_type}); "
                "its content is not available.]",
            )
        encoded = base64.b64encode(data).decode("ascii")
        data_url = f"data:{attachment.mime_type};base64,{encoded}"
        if isinstance(attachment, ImageAttachment) or attachment.mime_type.startswith("image/"):
            return ResponseInputImageParam(type="input_image", detail="auto", image_url=data_url)
        return ResponseInputFileParam(
            type="input_file", filename=attachment.name, file_data=data_url
        )

    async def assistant_message_to_input(
        self, item: AssistantMessageItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        # The SDK sends earlier answers as "output_text" parts, which the Agents SDK cannot turn
        # into Chat Completions messages (it raises "Unknown content"): plain text works with
        # the Responses API and Chat Completions alike.
        return EasyInputMessageParam(
            type="message", role="assistant", content="".join(part.text for part in item.content)
        )

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputContentParam:
        details = json.dumps(tag.data, ensure_ascii=False, default=str) if tag.data else ""
        text = f"@{tag.text}" + (f" refers to: {details}" if details else "")
        return ResponseInputTextParam(type="input_text", text=text)

    async def hidden_context_to_input(self, item: HiddenContextItem) -> Message | None:
        content = (
            item.content
            if isinstance(item.content, str)
            else json.dumps(item.content, ensure_ascii=False, default=str)
        )
        text = (
            "Hidden context for the agent (not shown to the user):\n"
            f"<HiddenContext>\n{content}\n</HiddenContext>"
        )
        return Message(
            type="message",
            role="user",
            content=[ResponseInputTextParam(type="input_text", text=text)],
        )
