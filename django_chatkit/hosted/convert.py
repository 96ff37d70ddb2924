"""Upstream hosted ChatKit items (``openai.types.beta.chatkit``) as the SDK's ``ThreadItem``.

Imported items are stored exactly as self-hosted ones are (``serialization.item_row_values``),
so the admin's transcript, search, feedback review, export and retention treat both modes alike.
Ids are kept: the upstream item id is the item's id, the upstream thread id the thread's.

The mapping: user and assistant messages to ``UserMessageItem`` / ``AssistantMessageItem``
(quoted text, attachments and annotations kept); a widget to ``WidgetItem`` (the serialised
widget parsed back); a client tool call to ``ClientToolCallItem`` (arguments and output
decoded from JSON); a task to ``TaskItem``; a task group to a ``WorkflowItem`` of its tasks.
Anything else, or an item that does not fit its type, becomes a ``HiddenContextItem`` holding
the upstream item verbatim: staff still see it (as hidden context), nothing is lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ClientToolCallItem,
    CustomTask,
    HiddenContextItem,
    InferenceOptions,
    Task,
    TaskItem,
    ThoughtTask,
    ThreadItem,
    ToolChoice,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
    Workflow,
    WorkflowItem,
)
from pydantic import ValidationError

from django_chatkit.serialization import ATTACHMENT_ADAPTER, to_sdk_datetime

# The client tool call's upstream status, in the SDK's words.
_TOOL_STATUS = {"in_progress": "pending", "completed": "completed"}


def timestamp(seconds: Any) -> datetime:
    """An upstream Unix time (seconds) as an aware datetime."""
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def is_final(item: dict[str, Any]) -> bool:
    """Whether the upstream item can no longer change: only a client tool call still running
    (its output to come) can. The import resumes from the last final item."""
    return not (
        item.get("type") == "chatkit.client_tool_call" and item.get("status") != "completed"
    )


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _base(item: dict[str, Any], thread_id: str) -> dict[str, Any]:
    # The SDK's items carry naive local times (serialization.to_sdk_datetime).
    return {
        "id": item["id"],
        "thread_id": thread_id,
        "created_at": to_sdk_datetime(timestamp(item["created_at"])),
    }


def _attachment(raw: dict[str, Any], thread_id: str) -> Any:
    data = {
        "id": raw.get("id"),
        "name": raw.get("name") or "",
        "mime_type": raw.get("mime_type") or "application/octet-stream",
        "thread_id": thread_id,
        "type": raw.get("type"),
    }
    if raw.get("type") == "image" and raw.get("preview_url"):
        data["preview_url"] = raw["preview_url"]
    else:
        data["type"] = "file"  # an image without a preview is shown as a file
    return ATTACHMENT_ADAPTER.validate_python(data)


def _user_message(item: dict[str, Any], thread_id: str) -> ThreadItem:
    parts = item.get("content") or []
    texts = [p.get("text") or "" for p in parts if p.get("type") == "input_text"]
    quoted = [p.get("text") or "" for p in parts if p.get("type") == "quoted_text"]
    options = item.get("inference_options") or {}
    choice = options.get("tool_choice") or None
    return UserMessageItem(
        **_base(item, thread_id),
        content=[UserMessageTextContent(text=text) for text in texts],
        attachments=[_attachment(a, thread_id) for a in item.get("attachments") or []],
        quoted_text="\n".join(quoted) or None,
        inference_options=InferenceOptions(
            model=options.get("model"),
            tool_choice=ToolChoice(id=choice["id"]) if choice else None,
        ),
    )


def _annotation(raw: dict[str, Any]) -> dict[str, Any]:
    source = raw.get("source") or {}
    if source.get("type") == "url":
        url = source.get("url") or ""
        return {"source": {"type": "url", "url": url, "title": url}}
    name = source.get("filename") or ""
    return {"source": {"type": "file", "filename": name, "title": name}}


def _assistant_message(item: dict[str, Any], thread_id: str) -> ThreadItem:
    return AssistantMessageItem(
        **_base(item, thread_id),
        content=[
            AssistantMessageContent.model_validate(
                {
                    "text": part.get("text") or "",
                    "annotations": [_annotation(a) for a in part.get("annotations") or []],
                }
            )
            for part in item.get("content") or []
        ],
    )


def _widget(item: dict[str, Any], thread_id: str) -> ThreadItem:
    return WidgetItem.model_validate({**_base(item, thread_id), "widget": _decode(item["widget"])})


def _client_tool_call(item: dict[str, Any], thread_id: str) -> ThreadItem:
    arguments = _decode(item.get("arguments"))
    output = _decode(item.get("output"))
    return ClientToolCallItem(
        **_base(item, thread_id),
        status=_TOOL_STATUS.get(item.get("status") or "", "pending"),  # type: ignore[arg-type]
        call_id=item["call_id"],
        name=item["name"],
        arguments=arguments if isinstance(arguments, dict) else {"arguments": arguments},
        output=output,
    )


def _task(raw: dict[str, Any]) -> Task:
    kind = raw.get("task_type", raw.get("type"))
    if kind == "thought":
        return ThoughtTask(title=raw.get("heading"), content=raw.get("summary") or "")
    return CustomTask(title=raw.get("heading"), content=raw.get("summary"))


def _task_item(item: dict[str, Any], thread_id: str) -> ThreadItem:
    return TaskItem(**_base(item, thread_id), task=_task(item))


def _task_group(item: dict[str, Any], thread_id: str) -> ThreadItem:
    tasks = [_task(t) for t in item.get("tasks") or []]
    return WorkflowItem(**_base(item, thread_id), workflow=Workflow(type="custom", tasks=tasks))


_CONVERTERS = {
    "chatkit.user_message": _user_message,
    "chatkit.assistant_message": _assistant_message,
    "chatkit.widget": _widget,
    "chatkit.client_tool_call": _client_tool_call,
    "chatkit.task": _task_item,
    "chatkit.task_group": _task_group,
}


def to_thread_item(item: dict[str, Any], thread_id: str) -> ThreadItem:
    """The SDK item standing for the upstream ``item`` (a JSON dict) of ``thread_id``."""
    converter = _CONVERTERS.get(item.get("type") or "")
    if converter is not None:
        try:
            return converter(item, thread_id)
        except (ValidationError, KeyError, TypeError, ValueError, AttributeError):
            pass  # kept verbatim below
    return HiddenContextItem(**_base(item, thread_id), content={"hosted_item": item})
