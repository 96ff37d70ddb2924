"""One instance of every ThreadItem type the SDK defines, filled in richly, for round-trips."""

from __future__ import annotations

from datetime import datetime, timedelta

from chatkit.types import (
    Annotation,
    AssistantMessageContent,
    AssistantMessageItem,
    ClientToolCallItem,
    CustomSummary,
    CustomTask,
    EndOfTurnItem,
    EntitySource,
    FileAttachment,
    FileSource,
    GeneratedImage,
    GeneratedImageItem,
    HiddenContextItem,
    ImageAttachment,
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
    ThreadItem,
    ToolChoice,
    URLSource,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    Workflow,
    WorkflowItem,
)
from chatkit.widgets import WidgetRoot
from pydantic import AnyUrl, TypeAdapter

WIDGET_JSON = {
    "type": "Card",
    "size": "md",
    "children": [
        {"type": "Title", "value": "Order #42"},
        {"type": "Text", "id": "status", "value": "Shipped", "streaming": False},
        {
            "type": "Button",
            "label": "Track",
            "onClickAction": {"type": "track", "payload": {"n": 42}},
        },
    ],
}


def widget() -> WidgetRoot:
    return TypeAdapter(WidgetRoot).validate_python(WIDGET_JSON)


def every_item(thread_id: str, start: datetime | None = None) -> list[ThreadItem]:
    """Items of all 11 types, one second apart, with naive local times as the SDK makes them."""
    start = start or datetime(2026, 3, 29, 1, 59, 58, 123456)  # spans a DST change in Paris
    at = [start + timedelta(seconds=n) for n in range(11)]
    return [
        UserMessageItem(
            id="msg_user",
            thread_id=thread_id,
            created_at=at[0],
            content=[
                UserMessageTextContent(text="Héllo 👋 <b>world</b>"),
                UserMessageTagContent(
                    id="tag1",
                    text="@doc",
                    data={"k": [1, 2.5, None]},
                    group="docs",
                    interactive=True,
                ),
            ],
            attachments=[
                FileAttachment(
                    id="atc_file",
                    name="a.pdf",
                    mime_type="application/pdf",
                    thread_id=thread_id,
                    metadata={"server": "only"},
                ),
                ImageAttachment(
                    id="atc_img",
                    name="p.png",
                    mime_type="image/png",
                    preview_url=AnyUrl("data:image/png;base64,iVBORw0KGgo="),
                ),
            ],
            quoted_text="quoted",
            inference_options=InferenceOptions(tool_choice=ToolChoice(id="search"), model="gpt-x"),
        ),
        AssistantMessageItem(
            id="msg_01JABCDEF_responses_api_style_long_identifier_0123456789abcdef",
            thread_id=thread_id,
            created_at=at[1],
            content=[
                AssistantMessageContent(
                    text="See [1] and [2].",
                    annotations=[
                        Annotation(
                            source=URLSource(title="Site", url="https://example.com"), index=4
                        ),
                        Annotation(source=FileSource(title="File", filename="f.txt")),
                        Annotation(source=EntitySource(title="Ent", id="e1", data={"x": 1})),
                    ],
                ),
                AssistantMessageContent(text="Second part"),
            ],
        ),
        ClientToolCallItem(
            id="tc_1",
            thread_id=thread_id,
            created_at=at[2],
            call_id="call_1",
            name="get_location",
            arguments={"precise": True, "n": [1, {"a": None}]},
            status="completed",
            output={"lat": 48.85},
        ),
        WidgetItem(
            id="msg_widget",
            thread_id=thread_id,
            created_at=at[3],
            widget=widget(),
            copy_text="Order 42 shipped",
        ),
        GeneratedImageItem(
            id="msg_img",
            thread_id=thread_id,
            created_at=at[4],
            image=GeneratedImage(id="img_1", url="https://img.example/1.png"),
        ),
        StructuredInputItem(
            id="msg_form",
            thread_id=thread_id,
            created_at=at[5],
            status="answered",
            inputs=[
                StructuredInputFreeform(
                    id="q1",
                    question="Name?",
                    description="Full name",
                    answer=StructuredInputAnswer(values=["Ada"]),
                ),
                StructuredInputMultipleChoice(
                    id="q2",
                    question="Colour?",
                    multiple=True,
                    options=[
                        StructuredInputMultipleChoiceOption(value="red"),
                        StructuredInputMultipleChoiceOption(value="blue"),
                    ],
                    answer=StructuredInputAnswer(skipped=True),
                ),
            ],
        ),
        WorkflowItem(
            id="wf_1",
            thread_id=thread_id,
            created_at=at[6],
            workflow=Workflow(
                type="custom",
                tasks=[
                    CustomTask(title="Step", content="done", status_indicator="complete"),
                    SearchTask(
                        title="Searching",
                        queries=["q"],
                        sources=[URLSource(title="S", url="https://s.example")],
                    ),
                    ThoughtTask(content="hmm"),
                ],
                summary=CustomSummary(title="Did things"),
                expanded=True,
            ),
        ),
        TaskItem(
            id="tsk_1",
            thread_id=thread_id,
            created_at=at[7],
            task=CustomTask(title="Lone task", icon="check"),
        ),
        HiddenContextItem(
            id="hcx_1",
            thread_id=thread_id,
            created_at=at[8],
            content={"note": "for the model", "n": 3},
        ),
        SDKHiddenContextItem(
            id="shcx_1",
            thread_id=thread_id,
            created_at=at[9],
            content="The user cancelled the stream.",
        ),
        EndOfTurnItem(id="eot_1", thread_id=thread_id, created_at=at[10]),
    ]
