"""The transcript on a thread's admin page: the conversation as a reader sees a chat.

Oldest first, a page at a time: the thread's page shows the newest ``PAGE_SIZE`` items and a
page of its own (``<thread>/transcript/``) shows any other, by keyset paging on
``(created_at, id)`` (the ``chatkit_item_page`` index), so every item of a long thread is
reachable at the cost of one page. Each page costs the same few queries however long the thread:
its items, the owner's feedback on them, the answer runs around them and their attachments.

Every item type is rendered from ``ThreadItem.payload`` (the SDK item's JSON) as plain data
for the templates, which escape it. The one exception is assistant markdown, rendered by
markdown-it (raw HTML off) and then cleaned by nh3 with an allow-list: no script, no event
handler, no URL but http(s) in links, no image from message content.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode, urlsplit

import nh3
from django.conf import settings
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from markdown_it import MarkdownIt

from django_chatkit import models
from django_chatkit.admin import stopping
from django_chatkit.admin.links import may_view

if TYPE_CHECKING:
    from django_chatkit.admin.common import ThreadModelAdmin

# Items on one page. The change page shows the newest page; older ones are a link away.
PAGE_SIZE = 50
# A page shown around one item (transcript_url) shows this many items after it, the rest before.
AROUND_AFTER = 10
# Item types an answer run produces: each may show the run that made it.
ANSWER_TYPES = frozenset(
    {
        "assistant_message",
        "client_tool_call",
        "widget",
        "generated_image",
        "structured_input",
        "workflow",
        "task",
    }
)
TEMPLATE_DIR = "admin/django_chatkit/transcript"
# Who an item is from, as the transcript labels it.
_LABELS = {
    "user_message": _("User"),
    "assistant_message": _("Assistant"),
    "client_tool_call": _("Assistant: client tool call"),
    "widget": _("Assistant: widget"),
    "generated_image": _("Assistant: generated image"),
    "structured_input": _("Assistant: question form"),
    "workflow": _("Assistant: workflow"),
    "task": _("Assistant: task"),
    "hidden_context_item": _("Hidden context (never shown to the user)"),
    "sdk_hidden_context": _("Hidden SDK context (never shown to the user)"),
    "end_of_turn": _("End of turn"),
}
# Inline thumbnails: raster images only, base64, as django_chatkit.attachments.previews makes
# them. An SVG could carry script; a URL would make staff browsers fetch whatever it names.
_RASTER_DATA_URL = re.compile(r"\Adata:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+=*\Z")
_SAFE_SCHEMES = frozenset({"http", "https"})


# ---------------------------------------------------------------------------------------------
# Cursors


_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_CURSOR = re.compile(r"\A(-?\d{1,20})_(\d{1,20})\Z")


@dataclass(frozen=True)
class Cursor:
    """A place in the thread: ``(created_at, id)`` of an item, as URLs carry it."""

    created_at: datetime
    pk: int

    def encode(self) -> str:
        epoch = _EPOCH_AWARE if self.created_at.tzinfo is not None else _EPOCH_NAIVE
        micros = (self.created_at - epoch) // timedelta(microseconds=1)
        return f"{micros}_{self.pk}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        found = _CURSOR.match(text)
        if found is None:
            raise ValueError(text)
        epoch = _EPOCH_AWARE if settings.USE_TZ else _EPOCH_NAIVE
        try:
            created_at = epoch + timedelta(microseconds=int(found.group(1)))
        except OverflowError as exc:
            raise ValueError(text) from exc
        return cls(created_at, int(found.group(2)))


def _older_than(cursor: Cursor, *, inclusive: bool = False) -> Q:
    # The created_at bound alone is what an index range needs; the OR only sorts out the rows
    # sharing the cursor's created_at.
    same = Q(created_at=cursor.created_at) & (
        Q(pk__lte=cursor.pk) if inclusive else Q(pk__lt=cursor.pk)
    )
    return Q(created_at__lte=cursor.created_at) & (Q(created_at__lt=cursor.created_at) | same)


def _newer_than(cursor: Cursor) -> Q:
    same = Q(created_at=cursor.created_at, pk__gt=cursor.pk)
    return Q(created_at__gte=cursor.created_at) & (Q(created_at__gt=cursor.created_at) | same)


# ---------------------------------------------------------------------------------------------
# Safe HTML


def safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) URL, else None (javascript:, data:, relative...)."""
    if not isinstance(url, str):
        return None
    text: str = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc:
        return None
    # Control characters and whitespace inside a URL are how scheme filters are tricked.
    if any(ord(char) < 33 or ord(char) == 127 for char in text):
        return None
    return text


def safe_image_data_url(url: Any) -> str | None:
    """``url`` if it is a base64 raster image ``data:`` URL (what previews are), else None."""
    if isinstance(url, str) and _RASTER_DATA_URL.match(url):
        return url
    return None


_ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return safe_url(value)
    return value


@cache
def _markdown() -> MarkdownIt:
    # CommonMark with raw HTML off (it is shown as text) plus GFM tables and strikethrough.
    # Images are off: ``![alt](url)`` stays a link to the URL, never an image staff's browsers
    # would fetch from wherever the message points.
    return (
        MarkdownIt("commonmark", {"html": False})
        .enable(["table", "strikethrough"])
        .disable("image")
    )


def render_markdown(text: str) -> SafeString:
    """Assistant markdown as HTML that is safe to show: rendered, then cleaned by allow-list."""
    html = _markdown().render(text)
    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=set(_SAFE_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # nh3's allow-list output


def pretty_json(value: Any) -> str:
    """For a ``<pre>``: indented, non-ASCII kept readable (the template escapes it)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


# ---------------------------------------------------------------------------------------------
# Item views: plain data for the templates


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _source(source: Any) -> dict[str, Any]:
    source = _dict(source)
    kind = _str(source.get("type"))
    detail = ""
    if kind == "file":
        detail = _str(source.get("filename"))
    elif kind == "entity":
        detail = _str(source.get("label")) or _str(source.get("id"))
    return {
        "kind": kind,
        "title": _str(source.get("title")) or _str(source.get("url")) or detail,
        "url": safe_url(source.get("url")),
        "raw_url": _str(source.get("url")),
        "detail": detail,
        "description": _str(source.get("description")),
    }


def _task(task: Any) -> dict[str, Any]:
    task = _dict(task)
    return {
        "kind": _str(task.get("type")),
        "title": _str(task.get("title")) or _str(task.get("title_query")),
        "content": _str(task.get("content")),
        "status": _str(task.get("status_indicator")),
        "queries": [q for q in _list(task.get("queries")) if isinstance(q, str)],
        "sources": [_source(s) for s in _list(task.get("sources"))],
    }


def _user_message(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    parts = []
    for part in _list(payload.get("content")):
        part = _dict(part)
        kind = "tag" if part.get("type") == "input_tag" else "text"
        parts.append({"kind": kind, "text": _str(part.get("text"))})
    attachments = []
    for attachment in _list(payload.get("attachments")):
        attachment = _dict(attachment)
        attachment_id = _str(attachment.get("id"))
        row = page.attachments.get(attachment_id)
        attachments.append(
            {
                "id": attachment_id,
                "name": _str(attachment.get("name")) or attachment_id,
                "mime_type": _str(attachment.get("mime_type")),
                "preview": safe_image_data_url(attachment.get("preview_url")),
                "size": row.size if row else None,
                "missing": row is None,
                "download_url": row.download_url if row else None,
            }
        )
    options = _dict(payload.get("inference_options"))
    return {
        "parts": parts,
        "quoted_text": _str(payload.get("quoted_text")),
        "attachments": attachments,
        "model": _str(options.get("model")),
        "tool_choice": _str(_dict(options.get("tool_choice")).get("id")),
    }


def _assistant_message(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    parts = []
    for part in _list(payload.get("content")):
        part = _dict(part)
        annotations = [
            {**_source(_dict(a).get("source")), "index": _dict(a).get("index")}
            for a in _list(part.get("annotations"))
        ]
        parts.append({"html": render_markdown(_str(part.get("text"))), "annotations": annotations})
    return {"parts": parts}


def _client_tool_call(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    return {
        "name": _str(payload.get("name")),
        "call_id": _str(payload.get("call_id")),
        "status": _str(payload.get("status")),
        "arguments": pretty_json(payload.get("arguments")),
        "has_output": payload.get("output") is not None,
        "output": pretty_json(payload.get("output")),
    }


# Widget fields that hold what a person reads, in the order a card would show them.
_WIDGET_TEXT_KEYS = ("title", "value", "label", "text", "alt")


def widget_text(node: Any, out: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The text a person reads in a widget tree, component by component, in document order.

    Actions (``onClickAction``...) carry data for the server, not text: they are skipped.
    """
    out = [] if out is None else out
    if isinstance(node, list):
        for child in node:
            widget_text(child, out)
    elif isinstance(node, dict):
        kind = _str(node.get("type"))
        for key in _WIDGET_TEXT_KEYS:
            value = node.get(key)
            if isinstance(value, str) and value.strip():
                out.append({"kind": kind, "text": value})
        for key, value in node.items():
            if key in _WIDGET_TEXT_KEYS or key.lower().endswith("action"):
                continue
            if isinstance(value, dict | list):
                widget_text(value, out)
    return out


def _widget(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    tree = payload.get("widget")
    return {
        "lines": widget_text(tree),
        "copy_text": _str(payload.get("copy_text")),
        "raw": pretty_json(tree),
    }


def _generated_image(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    image = _dict(payload.get("image"))
    url = image.get("url")
    return {
        "image_id": _str(image.get("id")),
        # Inline only as a raster data URL; a web URL is a link, fetched only if staff click it.
        "src": safe_image_data_url(url),
        "url": safe_url(url),
        "pending": not image,
    }


def _structured_input(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    inputs = []
    for entry in _list(payload.get("inputs")):
        entry = _dict(entry)
        answer = _dict(entry.get("answer"))
        inputs.append(
            {
                "question": _str(entry.get("question")),
                "description": _str(entry.get("description")),
                "options": [_str(_dict(o).get("value")) for o in _list(entry.get("options"))],
                "multiple": bool(entry.get("multiple")),
                "answered": bool(answer),
                "values": [v for v in _list(answer.get("values")) if isinstance(v, str)],
                "skipped": bool(answer.get("skipped")),
            }
        )
    return {"status": _str(payload.get("status")), "inputs": inputs}


def _workflow(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    workflow = _dict(payload.get("workflow"))
    summary = _dict(workflow.get("summary"))
    duration = summary.get("duration")
    return {
        "kind": _str(workflow.get("type")),
        "summary": _str(summary.get("title")),
        "duration": duration if isinstance(duration, int) else None,
        "tasks": [_task(t) for t in _list(workflow.get("tasks"))],
    }


def _task_item(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    return {"task": _task(payload.get("task"))}


def _hidden_context(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    content = payload.get("content")
    if isinstance(content, str):
        return {"text": content, "json": ""}
    return {"text": "", "json": pretty_json(content)}


def _end_of_turn(payload: dict[str, Any], page: PageData) -> dict[str, Any]:
    return {}


_BUILDERS: dict[str, Callable[[dict[str, Any], PageData], dict[str, Any]]] = {
    "user_message": _user_message,
    "assistant_message": _assistant_message,
    "client_tool_call": _client_tool_call,
    "widget": _widget,
    "generated_image": _generated_image,
    "structured_input": _structured_input,
    "workflow": _workflow,
    "task": _task_item,
    "hidden_context_item": _hidden_context,
    "sdk_hidden_context": _hidden_context,
    "end_of_turn": _end_of_turn,
}
# Item types drawn by another type's template: both kinds of hidden context look alike.
_TEMPLATES = {"sdk_hidden_context": "hidden_context_item"}


# ---------------------------------------------------------------------------------------------
# A page


@dataclass
class AttachmentRow:
    size: int | None
    download_url: str | None


@dataclass
class RunView:
    pk: int
    model: str
    status: str
    status_label: str
    failed: bool
    input_tokens: int
    output_tokens: int
    started_at: datetime
    first_token_seconds: float | None
    duration_seconds: float | None
    error_code: str
    error_message: str
    admin_url: str | None
    # The moderator who stopped the answer (django_chatkit.stops), else "".
    stopped_by: str = ""


@dataclass
class Entry:
    """One line of the transcript: an item (with its feedback, and the run that made it,
    shown after its last item), or a run that left no item on this page (a failed call)."""

    kind: str  # "item" | "run"
    anchor: str = ""
    item_type: str = ""
    template: str = ""
    created_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    label: str = ""
    feedback: dict[str, Any] | None = None
    run: RunView | None = None
    hidden: bool = False


@dataclass
class PageData:
    thread: models.Thread
    rows: list[dict[str, Any]]
    has_older: bool
    has_newer: bool
    # The page covers [lo, hi): runs that started in it and made no item here are shown here.
    lo: datetime | None
    hi: datetime | None
    target: str = ""  # the item a page around one item was asked for
    attachments: dict[str, AttachmentRow] = field(default_factory=dict)
    feedback: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[RunView] = field(default_factory=list)
    staff: dict[int, str] = field(default_factory=dict)  # staff authors of replies (takeover)

    def cursor(self, row: Mapping[str, Any]) -> str:
        return Cursor(row["created_at"], row["id"]).encode()


_ROW_FIELDS = ("id", "item_id", "type", "created_at", "payload", "staff_author_id")


def _items(thread: models.Thread) -> QuerySet[models.ThreadItem]:
    return models.ThreadItem.objects.filter(thread_id=thread.pk)


def _newest_first(queryset: QuerySet[models.ThreadItem], limit: int) -> list[dict[str, Any]]:
    return list(queryset.order_by("-created_at", "-id").values(*_ROW_FIELDS)[:limit])


def _oldest_first(queryset: QuerySet[models.ThreadItem], limit: int) -> list[dict[str, Any]]:
    return list(queryset.order_by("created_at", "id").values(*_ROW_FIELDS)[:limit])


def load_page(
    thread: models.Thread,
    *,
    before: Cursor | None = None,
    after: Cursor | None = None,
    around: str | None = None,
    size: int = PAGE_SIZE,
) -> PageData:
    """The items of one page (oldest first) and what is shown with them. Raises
    ``LookupError`` when ``around`` names no item of the thread."""
    items = _items(thread)
    if around is not None:
        target = next(iter(items.filter(item_id=around).values_list("created_at", "id")[:1]), None)
        if target is None:
            raise LookupError(around)
        cursor = Cursor(*target)
        before_size = size - min(AROUND_AFTER, size - 1)
        older = _newest_first(items.filter(_older_than(cursor, inclusive=True)), before_size + 1)
        has_older = len(older) > before_size
        older = older[:before_size]
        # Near the thread's start, the page fills up with later items instead.
        after_size = size - len(older)
        newer = _oldest_first(items.filter(_newer_than(cursor)), after_size + 1)
        has_newer = len(newer) > after_size
        rows = [*reversed(older), *newer[:after_size]]
        hi = newer[after_size]["created_at"] if has_newer else None
        page = PageData(thread, rows, has_older, has_newer, None, hi, target=around)
    elif after is not None:
        newer = _oldest_first(items.filter(_newer_than(after)), size + 1)
        if not newer:  # nothing after it any more: the newest page
            return load_page(thread, size=size)
        has_newer = len(newer) > size
        hi = newer[size]["created_at"] if has_newer else None
        page = PageData(thread, newer[:size], True, has_newer, None, hi)
    else:
        queryset = items.filter(_older_than(before)) if before is not None else items
        older = _newest_first(queryset, size + 1)
        has_older = len(older) > size
        hi = before.created_at if before is not None else None
        rows = list(reversed(older[:size]))
        page = PageData(thread, rows, has_older, before is not None, None, hi)
    if page.has_older and page.rows:
        page.lo = page.rows[0]["created_at"]
    _load_attachments(page)
    _load_feedback(page)
    _load_runs(page)
    _load_staff(page)
    return page


def _load_staff(page: PageData) -> None:
    ids = {row["staff_author_id"] for row in page.rows if row.get("staff_author_id")}
    if ids:
        for user in get_user_model().objects.filter(pk__in=ids):
            page.staff[user.pk] = str(user)


def _attachment_ids(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    ids = set()
    for row in rows:
        if row["type"] != "user_message":
            continue
        for attachment in _list(_dict(row["payload"]).get("attachments")):
            attachment_id = _dict(attachment).get("id")
            if isinstance(attachment_id, str):
                ids.add(attachment_id)
    return ids


def _download_url(attachment_id: str) -> str | None:
    try:
        return reverse("chatkit:download", args=[attachment_id])
    except NoReverseMatch:  # the project does not serve the package's URLs
        return None


def _load_attachments(page: PageData) -> None:
    ids = _attachment_ids(page.rows)
    if not ids:
        return
    found = models.Attachment.objects.filter(id__in=ids).values_list(
        "id", "size", "status", "storage_name"
    )
    for attachment_id, size, status, storage_name in found:
        downloadable = status == models.AttachmentStatus.READY and bool(storage_name)
        page.attachments[attachment_id] = AttachmentRow(
            size=size, download_url=_download_url(attachment_id) if downloadable else None
        )


def _load_feedback(page: PageData) -> None:
    ids = [row["item_id"] for row in page.rows]
    if not ids:
        return
    votes = models.Feedback.objects.filter(thread_id=page.thread.pk, item_id__in=ids)
    for vote in votes.select_related("reviewed_by"):
        page.feedback[vote.item_id] = {
            "kind": vote.kind,
            "label": vote.get_kind_display(),
            "positive": vote.kind == models.FeedbackKind.POSITIVE,
            "updated_at": vote.updated_at,
            "reviewed_at": vote.reviewed_at,
            "reviewed_by": str(vote.reviewed_by) if vote.reviewed_by else "",
            "review_note": vote.review_note,
        }


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 2)


def _run_admin_url(pk: int) -> str | None:
    try:
        return reverse("admin:django_chatkit_run_change", args=[pk])
    except NoReverseMatch:
        return None


def _load_runs(page: PageData) -> None:
    """Answer runs that may have made this page's items, and runs that started within it.

    An item was made by the last answer run started at or before it, within the same turn
    (after the user's message); its ``finished_at`` is not compared, since the SDK may stamp
    an item after the model call has ended (stream events are queued). So the query reaches
    back to the last run started before the page, and no further.
    """
    runs = models.Run.objects.filter(thread_id=page.thread.pk, kind=models.RunKind.ANSWER)
    if page.hi is not None:
        runs = runs.filter(started_at__lt=page.hi)
    if page.lo is not None:
        last_before = (
            models.Run.objects.filter(
                thread_id=page.thread.pk, kind=models.RunKind.ANSWER, started_at__lte=page.lo
            )
            .order_by("-started_at")
            .values("started_at")[:1]
        )
        runs = runs.filter(started_at__gte=Coalesce(Subquery(last_before), Value(page.lo)))
    for run in runs.select_related("stopped_by").order_by("started_at", "pk"):
        page.runs.append(
            RunView(
                pk=run.pk,
                model=run.model,
                status=run.status,
                status_label=run.get_status_display(),
                failed=run.status == models.RunStatus.FAILED,
                input_tokens=run.input_tokens,
                output_tokens=run.output_tokens,
                started_at=run.started_at,
                first_token_seconds=_seconds(run.started_at, run.first_token_at),
                duration_seconds=_seconds(run.started_at, run.finished_at),
                error_code=run.error_code,
                error_message=run.error_message,
                admin_url=_run_admin_url(run.pk),
                stopped_by=str(run.stopped_by) if run.stopped_by is not None else "",
            )
        )


def _item_entry(row: Mapping[str, Any], page: PageData) -> Entry:
    item_type = str(row["type"])
    payload = _dict(row["payload"])
    entry = Entry(
        kind="item",
        anchor=str(row["item_id"]),
        item_type=item_type,
        created_at=row["created_at"],
        raw=pretty_json(row["payload"]),
        label=str(_LABELS.get(item_type, item_type)),
        feedback=page.feedback.get(row["item_id"]),
        hidden=item_type in ("hidden_context_item", "sdk_hidden_context"),
    )
    if row.get("staff_author_id"):
        # A reply staff wrote during a takeover (django_chatkit.live.staff).
        author = page.staff.get(row["staff_author_id"], gettext("a deleted account"))
        entry.label = gettext("Staff reply by %(user)s") % {"user": author}
    builder = _BUILDERS.get(item_type)
    if builder is not None:
        try:
            entry.data = builder(payload, page)
            entry.template = f"{TEMPLATE_DIR}/items/{_TEMPLATES.get(item_type, item_type)}.html"
        except (TypeError, ValueError, AttributeError, KeyError):
            # A payload the SDK would not have written: shown as its JSON, not as an error page.
            entry.data = {}
    if not entry.template:
        entry.template = f"{TEMPLATE_DIR}/items/unknown.html"
    return entry


def build_entries(page: PageData) -> list[Entry]:
    """The page's timeline: items oldest first, each run after the last item it made."""
    entries = [_item_entry(row, page) for row in page.rows]
    starts = [run.started_at for run in page.runs]
    made_last: dict[int, int] = {}  # run pk -> index of its last item on the page
    turn_started: datetime | None = None
    for index, row in enumerate(page.rows):
        created = row["created_at"]
        if row["type"] == "user_message":
            turn_started = created
            continue
        if row["type"] not in ANSWER_TYPES:
            continue
        at = bisect.bisect_right(starts, created) - 1
        if at < 0:
            continue
        run = page.runs[at]
        if turn_started is not None and run.started_at < turn_started:
            continue  # the last run before it answered an earlier message
        made_last[run.pk] = index
    timeline: list[Entry] = []
    by_index: dict[int, list[RunView]] = {}
    for run in page.runs:
        if run.pk in made_last:
            by_index.setdefault(made_last[run.pk], []).append(run)
    # Runs that made nothing here, started within the page: placed where they started.
    loose = [
        run
        for run in page.runs
        if run.pk not in made_last
        and (page.lo is None or run.started_at >= page.lo)
        and (page.hi is None or run.started_at < page.hi)
    ]
    loose_at = 0
    for index, entry in enumerate(entries):
        created = page.rows[index]["created_at"]
        while loose_at < len(loose) and loose[loose_at].started_at < created:
            timeline.append(_run_entry(loose[loose_at]))
            loose_at += 1
        timeline.append(entry)
        timeline.extend(_run_entry(run) for run in by_index.get(index, []))
    timeline.extend(_run_entry(run) for run in loose[loose_at:])
    return timeline


def _run_entry(run: RunView) -> Entry:
    return Entry(kind="run", anchor=f"run-{run.pk}", created_at=run.started_at, run=run)


# ---------------------------------------------------------------------------------------------
# Rendering, URLs, the view


def _url_name(admin_site_name: str = "admin") -> str:
    opts = models.Thread._meta
    return f"{admin_site_name}:{opts.app_label}_{opts.model_name}_transcript"


def _page_url(thread_id: str, admin_site_name: str, **query: str) -> str:
    url = reverse(_url_name(admin_site_name), args=[quote(thread_id)])
    return f"{url}?{urlencode(query)}" if query else url


def transcript_url(thread_id: str, item_id: str) -> str:
    """The URL of a transcript page showing ``item_id`` of ``thread_id``, scrolled to it."""
    base = _page_url(thread_id, "admin", item=item_id)
    return f"{base}#{url_quote(item_id, safe='')}"


def render_page(
    page: PageData, *, admin_site_name: str = "admin", run_links: bool = True
) -> SafeString:
    """The transcript's HTML; ``run_links``: whether each run links to its page in the runs
    admin (only for those who may open it)."""
    if not run_links:
        page.runs[:] = [replace(run, admin_url=None) for run in page.runs]
    thread_id = str(page.thread.pk)
    older_url = newer_url = ""
    if page.rows and page.has_older:
        older_url = _page_url(thread_id, admin_site_name, before=page.cursor(page.rows[0]))
    if page.rows and page.has_newer:
        newer_url = _page_url(thread_id, admin_site_name, after=page.cursor(page.rows[-1]))
    context = {
        "entries": build_entries(page),
        "older_url": older_url,
        "newer_url": newer_url,
        "target": page.target,
        "empty": not page.rows,
    }
    return render_to_string(f"{TEMPLATE_DIR}/transcript.html", context)


def render_newest(thread: models.Thread, *, run_links: bool = True) -> SafeString:
    """The thread's change page: its newest page of items."""
    return render_page(load_page(thread), run_links=run_links)


def transcript_view(
    model_admin: ThreadModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """One page of a thread's transcript (``?before=`` / ``?after=`` a cursor, or ``?item=``
    an item id), for staff who may view the thread."""
    thread = model_admin.get_object(request, unquote(object_id))
    if thread is None:
        raise Http404(gettext("No thread with this id."))
    if not model_admin.has_view_or_change_permission(request, thread):
        raise PermissionDenied
    params = request.GET
    try:
        before = Cursor.decode(params["before"]) if "before" in params else None
        after = Cursor.decode(params["after"]) if "after" in params else None
    except ValueError:
        return HttpResponseBadRequest(gettext("This transcript page link is not valid."))
    try:
        page = load_page(thread, before=before, after=after, around=params.get("item"))
    except LookupError as exc:
        raise Http404(gettext("This thread has no such item.")) from exc
    opts = model_admin.model._meta
    site_name = model_admin.admin_site.name
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Transcript of “%(thread)s”") % {"thread": thread},
        "subtitle": None,
        "opts": opts,
        "original": thread,
        "has_view_permission": True,
        "change_url": reverse(
            f"{site_name}:{opts.app_label}_{opts.model_name}_change", args=[quote(thread.pk)]
        ),
        "transcript": render_page(
            page,
            admin_site_name=site_name,
            run_links=may_view(request, model_admin.admin_site, models.Run),
        ),
        # The stop button: for moderators, while an answer streams (django_chatkit.stops).
        "stop_url": (
            reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_stop", args=[quote(thread.pk)])
            if stopping.may_moderate(model_admin, request) and stopping.answer_running(thread)
            else ""
        ),
    }
    request.current_app = site_name
    return TemplateResponse(request, f"{TEMPLATE_DIR}/page.html", context)
