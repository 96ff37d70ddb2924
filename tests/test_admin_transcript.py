"""The transcript on a thread's admin page: every item type for a human, safe markdown, keyset
paging that reaches the first item of a long thread in constant queries, feedback and runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadItem,
    UserMessageItem,
    UserMessageTextContent,
)
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_chatkit import models
from django_chatkit.admin import transcript
from django_chatkit.admin.transcript import (
    PAGE_SIZE,
    Cursor,
    render_markdown,
    transcript_url,
    widget_text,
)
from django_chatkit.context import ChatKitContext
from django_chatkit.store import DjangoStore
from tests.items import WIDGET_JSON, every_item

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)

# A message trying every way of running script in a staff browser: raw tags, an event handler,
# javascript: and data: links (markdown and autolinks), an image that would phone out.
HOSTILE_MARKDOWN = (
    "<script>window.pwned = 1</script>\n\n"
    '<img src=x onerror="window.pwned = 1">\n\n'
    "[click me](javascript:window.pwned=1) "
    "[data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cucHduZWQ9MTwvc2NyaXB0Pg==) "
    "[spaced](java\tscript:window.pwned=1) "
    "<javascript:window.pwned=1> "
    "![pixel](https://tracker.example/p.png) "
    '[fine](https://example.com/a "t")\n\n'
    '<a href="javascript:window.pwned=1" onclick="window.pwned=1">raw link</a>'
)


@pytest.fixture
def superuser(db) -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def staff_client(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def staff_with(*codenames: str) -> Client:
    user = get_user_model().objects.create_user(
        f"staff-{'-'.join(codenames) or 'none'}", password="pw", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def new_thread(owner: Any, title: str = "Review me") -> models.Thread:
    return models.Thread.objects.create(user=owner, title=title, created_at=START, updated_at=START)


def store_items(owner: Any, thread: models.Thread, items: list[ThreadItem]) -> None:
    """Through the package's store, as the endpoint saves them."""
    context = ChatKitContext.for_user(owner)
    for item in items:
        async_to_sync(DjangoStore().add_thread_item)(thread.id, item, context)


def change_url(thread: models.Thread) -> str:
    return reverse("admin:django_chatkit_thread_change", args=[thread.id])


def page_url(thread: models.Thread, **query: str) -> str:
    url = reverse("admin:django_chatkit_thread_transcript", args=[thread.id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def html_of(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response
    return response.content.decode()


def item_html(html: str, item_id: str) -> str:
    """The <li> of one item (up to the next entry), to assert on one item at a time."""
    match = re.search(
        rf'<li id="{re.escape(item_id)}"(.*?)(?=<li id="|</ol>\s*(?:<p|</div))', html, re.S
    )
    assert match, f"no item {item_id} in the page"
    return match.group(0)


@pytest.fixture
def every(alice) -> tuple[models.Thread, str]:
    thread = new_thread(alice)
    store_items(alice, thread, every_item(thread.id))
    return thread, html_of_superuser(thread)


def html_of_superuser(thread: models.Thread) -> str:
    root = get_user_model().objects.filter(is_superuser=True).first() or (
        get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    )
    client = Client()
    client.force_login(root)
    return html_of(client, change_url(thread))


# --- one test per item type ------------------------------------------------------------------


def test_user_message_shows_text_quote_tag_attachments(every, alice):
    thread, html = every
    models.Attachment.objects.create(
        id="atc_img",
        user=alice,
        thread=thread,
        type="image",
        name="p.png",
        mime_type="image/png",
        payload={},
        size=2048,
        storage_alias="default",
        storage_name="chatkit/p.png",
    )
    html = html_of_superuser(thread)
    item = item_html(html, "msg_user")
    assert "Héllo 👋 &lt;b&gt;world&lt;/b&gt;" in item and "<b>world" not in item
    assert '<blockquote class="ck-quote"' in item and ">quoted</blockquote>" in item
    assert '<span class="ck-tag">@doc</span>' in item
    # The image's thumbnail inline (its data: preview), its name, size and download link.
    assert '<img class="ck-thumb" src="data:image/png;base64,iVBORw0KGgo="' in item
    assert "p.png" in item and "2.0\xa0KB" in item
    assert f'href="{reverse("chatkit:download", args=["atc_img"])}?download=1"' in item
    # The PDF's row is gone (deleted): named, no link.
    assert "a.pdf" in item and "deleted" in item
    assert "gpt-x" in item and "search" in item  # the model and tool the user chose
    assert ">User<" in item


def test_assistant_message_is_markdown_with_sources(alice):
    thread = new_thread(alice)
    message = AssistantMessageItem(
        id="msg_md",
        thread_id=thread.id,
        created_at=START,
        content=[
            AssistantMessageContent(
                text="# Plan\n\n* **bold** step\n* `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |"
            ),
        ],
    )
    store_items(alice, thread, [message, *every_item(thread.id, START.replace(tzinfo=None))[1:2]])
    html = html_of_superuser(thread)
    item = item_html(html, "msg_md")
    assert "<h1>Plan</h1>" in item and "<strong>bold</strong>" in item
    assert "<code>code</code>" in item and "<td>1</td>" in item
    annotated = item_html(
        html, "msg_01JABCDEF_responses_api_style_long_identifier_0123456789abcdef"
    )
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">Site</a>' in annotated
    assert "File" in annotated and "f.txt" in annotated  # a file source, by name
    assert "Ent" in annotated  # an entity source, by title
    assert "Second part" in annotated


def test_client_tool_call_shows_name_arguments_output(every):
    item = item_html(every[1], "tc_1")
    assert "get_location" in item and "call_1" in item and "completed" in item
    assert "&quot;precise&quot;: true" in item  # pretty JSON, escaped
    assert "&quot;lat&quot;: 48.85" in item


def test_widget_is_a_readable_card_with_its_json_behind_a_toggle(every):
    item = item_html(every[1], "msg_widget")
    card, raw = item.split("<details", 1)
    assert "Order #42" in card and "Shipped" in card and "Track" in card
    assert "onClickAction" not in card  # actions are data, not text
    assert "Order 42 shipped" in card  # the copy text
    assert "&quot;onClickAction&quot;" in raw and "<summary>" in raw
    assert [line["text"] for line in widget_text(WIDGET_JSON)] == ["Order #42", "Shipped", "Track"]


def test_generated_image_from_a_web_address_is_a_link(every):
    item = item_html(every[1], "msg_img")
    assert '<a href="https://img.example/1.png" rel="noopener noreferrer nofollow">' in item
    assert "<img" not in item  # not fetched by staff browsers unless clicked


def test_generated_image_inline_as_data_url_only_raster(alice):
    thread = new_thread(alice)
    png = "data:image/png;base64,iVBORw0KGgo="
    svg = "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+"
    for n, url in enumerate((png, svg)):
        models.ThreadItem.objects.create(
            thread=thread,
            item_id=f"img_{n}",
            type="generated_image",
            created_at=START + timedelta(seconds=n),
            payload={
                "type": "generated_image",
                "id": f"img_{n}",
                "thread_id": thread.id,
                "created_at": START.isoformat(),
                "image": {"id": "g", "url": url},
            },
        )
    html = html_of_superuser(thread)
    assert f'<img class="ck-generated" src="{png}"' in item_html(html, "img_0")
    assert "svg" not in item_html(html, "img_1") and "<img" not in item_html(html, "img_1")


def test_structured_input_shows_questions_and_answers(every):
    item = item_html(every[1], "msg_form")
    assert "Name?" in item and "Full name" in item and "<strong>Ada</strong>" in item
    assert "Colour?" in item and "red" in item and "blue" in item and "Skipped" in item
    assert "answered" in item


def test_workflow_is_a_step_list(every):
    item = item_html(every[1], "wf_1")
    assert "Did things" in item
    steps = re.findall(r'<li class="ck-step ck-step-(\w+)', item)
    assert steps == ["custom", "web_search", "thought"]
    assert "done" in item and "<q>q</q>" in item and 'href="https://s.example"' in item
    assert "hmm" in item


def test_task_is_a_step(every):
    item = item_html(every[1], "tsk_1")
    assert '<li class="ck-step ck-step-custom' in item and "Lone task" in item


def test_hidden_context_is_marked_hidden_from_the_user(every):
    item = item_html(every[1], "hcx_1")
    assert "ck-hidden" in item and "Hidden from the user" in item
    assert "&quot;note&quot;: &quot;for the model&quot;" in item


def test_sdk_hidden_context_is_marked_hidden_from_the_user(every):
    item = item_html(every[1], "shcx_1")
    assert "ck-hidden" in item and "Hidden from the user" in item
    assert "The user cancelled the stream." in item


def test_end_of_turn_is_a_marker(every):
    item = item_html(every[1], "eot_1")
    assert "The assistant ended its turn." in item


def test_every_type_in_order_with_local_times_not_iso(every):
    html = every[1]
    ids = re.findall(r'<li id="([^"]+)" class="ck-item', html)
    assert ids == [item.id for item in every_item(every[0].id)]
    # Naive SDK times are local (Europe/Paris): 01:59:58 then, shown as such, not as ISO text.
    assert "March 29, 2026, 1:59 a.m." in html
    assert ">2026-03-29T" not in html


def test_unknown_item_type_shows_its_json(alice):
    thread = new_thread(alice)
    models.ThreadItem.objects.create(
        thread=thread,
        item_id="future_1",
        type="hologram",
        created_at=START,
        payload={"type": "hologram", "beam": "<script>x</script>"},
    )
    item = item_html(html_of_superuser(thread), "future_1")
    assert "hologram" in item and "&lt;script&gt;x&lt;/script&gt;" in item


# --- feedback and runs --------------------------------------------------------------------


def make_turns(owner: Any, thread: models.Thread, count: int, start: datetime = START) -> list[str]:
    """``count`` user/assistant pairs, a second apart, each answer made by an answer run;
    ThreadItem rows in bulk (as the store writes them: the SDK's JSON), with their runs."""
    rows, runs, ids = [], [], []
    for n in range(count):
        asked = start + timedelta(seconds=2 * n)
        answered = asked + timedelta(milliseconds=1500)
        user = UserMessageItem(
            id=f"msg_u{n:05d}",
            thread_id=thread.id,
            created_at=asked,
            content=[UserMessageTextContent(text=f"question {n}")],
            inference_options=InferenceOptions(),
        )
        answer = AssistantMessageItem(
            id=f"msg_a{n:05d}",
            thread_id=thread.id,
            created_at=answered,
            content=[AssistantMessageContent(text=f"answer **{n}**")],
        )
        for item in (user, answer):
            rows.append(
                models.ThreadItem(
                    thread=thread,
                    item_id=item.id,
                    type=item.type,
                    created_at=item.created_at,
                    text="",
                    payload=item.model_dump(mode="json"),
                )
            )
            ids.append(item.id)
        runs.append(
            models.Run(
                thread=thread,
                user=owner,
                kind=models.RunKind.ANSWER,
                model="gpt-test",
                status=models.RunStatus.COMPLETED,
                started_at=asked + timedelta(milliseconds=100),
                first_token_at=asked + timedelta(milliseconds=600),
                finished_at=answered,
                input_tokens=100 + n,
                output_tokens=20,
            )
        )
    models.ThreadItem.objects.bulk_create(rows)
    models.Run.objects.bulk_create(runs)
    return ids


def test_feedback_and_runs_show_beside_the_answers(alice, staff_client):
    thread = new_thread(alice)
    make_turns(alice, thread, 2)
    models.Feedback.objects.create(thread=thread, item_id="msg_a00001", kind="negative")
    failed_at = START + timedelta(seconds=10)
    models.ThreadItem.objects.create(
        thread=thread,
        item_id="msg_u_fail",
        type="user_message",
        created_at=failed_at,
        payload={"type": "user_message", "content": [{"type": "input_text", "text": "and now?"}]},
    )
    failed = models.Run.objects.create(
        thread=thread,
        user=alice,
        kind="answer",
        model="gpt-test",
        status="failed",
        started_at=failed_at + timedelta(milliseconds=50),
        finished_at=failed_at + timedelta(seconds=2),
        error_code="rate_limited",
        error_message="Too many <requests>",
    )
    html = html_of(staff_client, change_url(thread))
    answer = item_html(html, "msg_a00001")
    assert "ck-feedback-negative" in answer and "The owner rated this: Negative" in answer
    assert "ck-feedback" not in item_html(html, "msg_a00000")
    # Each answer's run after it: model, tokens, latency, status.
    runs = re.findall(r'<li id="run-(\d+)"(.*?)</li>', html, re.S)
    by_pk = {int(pk): body for pk, body in runs}
    assert len(by_pk) == 3
    first = models.Run.objects.filter(thread=thread, input_tokens=100).get()
    body = by_pk[first.pk]
    assert "gpt-test" in body and "100 in, 20 out" in body and "first token after 0.5 s" in body
    assert "took 1.4 s" in body and "Completed" in body
    order = re.findall(r'<li id="([^"]+)"', html)
    assert order.index(f"run-{first.pk}") == order.index("msg_a00000") + 1
    # The failed run made no item: shown after the message it failed to answer, with its error.
    assert order[-2:] == ["msg_u_fail", f"run-{failed.pk}"]
    assert "rate_limited" in by_pk[failed.pk] and "Too many &lt;requests&gt;" in by_pk[failed.pk]
    assert "ck-run-failed" in html


def test_links_into_the_runs_admin_only_for_those_who_may_open_it(alice, staff_client):
    thread = new_thread(alice)
    make_turns(alice, thread, 1)
    run = models.Run.objects.get(thread=thread)
    run_page = reverse("admin:django_chatkit_run_change", args=[run.pk])
    runs_list = reverse("admin:django_chatkit_run_changelist") + f"?thread__id__exact={thread.id}"
    readers = {
        "superuser": staff_client,
        "view_thread + view_run": staff_with("view_thread", "view_run"),
    }
    for who, client in readers.items():
        for url in (change_url(thread), page_url(thread)):
            html = html_of(client, url)
            assert f'href="{run_page}"' in html, (who, url)
            assert "gpt-test" in html, (who, url)  # the run's figures
        assert f'href="{runs_list}"' in html_of(client, change_url(thread)), who
        assert client.get(run_page).status_code == 200, who
    # Thread viewers who may not open runs see each run's figures, and no link to a page that
    # would answer 403: neither the run's nor the thread's "Model calls" list.
    viewer = staff_with("view_thread")
    assert viewer.get(run_page).status_code == 403
    for url in (change_url(thread), page_url(thread)):
        html = html_of(viewer, url)
        assert f"Run {run.pk}" in html and "gpt-test" in html, url
        assert "/admin/django_chatkit/run/" not in html, url
    assert "Model calls" not in html_of(viewer, change_url(thread))


# --- paging ------------------------------------------------------------------------------


def earlier_link(html: str) -> str | None:
    found = re.search(r'<a class="ck-older" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def later_link(html: str) -> str | None:
    found = re.search(r'<a class="ck-newer" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def page_ids(html: str) -> list[str]:
    return re.findall(r'<li id="(msg_[^"]+)" class="ck-item', html)


def test_earlier_messages_reach_the_first_item_of_a_long_thread(alice, staff_client):
    thread = new_thread(alice)
    ids = make_turns(alice, thread, 250)  # 500 items
    # Ties on created_at are broken by id: a burst of items stamped alike pages without loss.
    models.ThreadItem.objects.filter(item_id__in=["msg_u00100", "msg_a00100", "msg_u00101"]).update(
        created_at=START + timedelta(seconds=200)
    )
    expected = list(
        models.ThreadItem.objects.filter(thread=thread)
        .order_by("created_at", "id")
        .values_list("item_id", flat=True)
    )
    assert sorted(expected) == sorted(ids)
    html = html_of(staff_client, change_url(thread))
    pages = [page_ids(html)]
    assert pages[0] == expected[-PAGE_SIZE:]
    url = earlier_link(html)
    while url is not None:
        html = html_of(staff_client, url)
        pages.insert(0, page_ids(html))
        url = earlier_link(html)
    assert len(pages) == 500 // PAGE_SIZE
    assert [item for page in pages for item in page] == expected
    assert pages[0][0] == "msg_u00000"
    # And back: "Later messages" from the first page walks forward to the newest.
    forward: list[str] = page_ids(html)
    url = later_link(html)
    while url is not None:
        html = html_of(staff_client, url)
        forward += page_ids(html)
        url = later_link(html)
    assert forward == expected


def test_transcript_url_shows_the_page_around_an_old_item(alice, staff_client):
    thread = new_thread(alice)
    make_turns(alice, thread, 250)
    url = transcript_url(thread.id, "msg_a00100")
    assert url.endswith("#msg_a00100")
    html = html_of(staff_client, url.split("#")[0])
    shown = page_ids(html)
    assert "msg_a00100" in shown and "msg_u00100" in shown and len(shown) == PAGE_SIZE
    assert shown.index("msg_a00100") == PAGE_SIZE - 1 - transcript.AROUND_AFTER
    assert 'class="ck-item ck-type-assistant_message ck-target"' in item_html(html, "msg_a00100")
    assert earlier_link(html) and later_link(html)
    # Near the start, the page fills with later items: still a full page, from the first item.
    shown = page_ids(html_of(staff_client, transcript_url(thread.id, "msg_a00002").split("#")[0]))
    assert shown[0] == "msg_u00000" and len(shown) == PAGE_SIZE
    assert staff_client.get(page_url(thread, item="msg_nope")).status_code == 404


@pytest.mark.parametrize("cursor", ["x", "1_", "99999999999999999999_1", "1_2_3"])
def test_a_mangled_cursor_is_a_bad_request(alice, staff_client, cursor):
    thread = new_thread(alice)
    assert staff_client.get(page_url(thread, before=cursor)).status_code == 400


def test_cursor_round_trips():
    at = timezone.now()
    assert Cursor.decode(Cursor(at, 42).encode()) == Cursor(at, 42)


def count_queries(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_query_counts_equal_for_10_and_200_items(alice, staff_client):
    small, large = new_thread(alice, "small"), new_thread(alice, "large")
    make_turns(alice, small, 5)
    make_turns(alice, large, 100)
    for thread in (small, large):  # feedback on a shown item of each
        models.Feedback.objects.create(thread=thread, item_id="msg_a00004", kind="positive")
    count_queries(staff_client, change_url(small))  # warm Django's caches (content types)
    few = count_queries(staff_client, change_url(small))
    many = count_queries(staff_client, change_url(large))
    assert len(few) == len(many), many
    last = models.ThreadItem.objects.filter(thread=large).order_by("-created_at", "-id")[PAGE_SIZE]
    cursor = Cursor(last.created_at, last.pk).encode()
    deep = count_queries(staff_client, page_url(large, before=cursor))
    first_of_small = models.ThreadItem.objects.filter(thread=small).order_by("created_at").first()
    assert first_of_small is not None
    shallow = count_queries(
        staff_client,
        page_url(
            small, before=Cursor(first_of_small.created_at, first_of_small.pk + 10**6).encode()
        ),
    )
    assert len(deep) == len(shallow), deep


# --- permissions -------------------------------------------------------------------------


def test_view_only_staff_sees_the_transcript(alice):
    thread = new_thread(alice)
    make_turns(alice, thread, 30)
    viewer = staff_with("view_thread")
    html = html_of(viewer, change_url(thread))
    assert "msg_a00029" in html and "answer <strong>29</strong>" in html
    assert earlier_link(html)
    assert "msg_u00000" in html_of(viewer, earlier_link(html) or "")
    # Nothing said can be edited: no form field for any item.
    assert 'name="payload' not in html and "<textarea" not in html.split("ck-transcript")[1]


def test_staff_without_view_permission_is_refused(alice):
    thread = new_thread(alice)
    make_turns(alice, thread, 2)
    nobody = staff_with()
    assert nobody.get(change_url(thread)).status_code == 403
    assert nobody.get(page_url(thread)).status_code == 403
    outsider = Client()
    outsider.force_login(alice)  # not staff: the admin's login page
    response = outsider.get(page_url(thread))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- the sanitizer -----------------------------------------------------------------------


class Tags(HTMLParser):
    """Every element and attribute as a browser would parse them (text is not a tag)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str, allowed_images: tuple[str, ...] = ()) -> None:
    for tag, attrs in Tags(html).tags:
        assert tag not in {"script", "iframe", "object", "embed", "style", "form", "svg"}, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        for name in ("href", "src", "action", "formaction", "xlink:href"):
            value = (attrs.get(name) or "").strip().lower()
            if tag == "img" and name == "src":
                assert attrs[name] in allowed_images, attrs
            elif value:
                assert value.startswith(("https://", "http://", "/", "#", "?")), (tag, attrs)


def test_markdown_sanitizer_leaves_nothing_that_runs():
    html = str(render_markdown(HOSTILE_MARKDOWN))
    assert_inert(html)
    links = [attrs for tag, attrs in Tags(html).tags if tag == "a"]
    assert [a["href"] for a in links] == ["https://tracker.example/p.png", "https://example.com/a"]
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in links)
    assert not [tag for tag, _ in Tags(html).tags if tag == "img"]
    # What was written is still readable, as text.
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html
    assert "click me" in html and "data link" in html


def test_hostile_content_is_inert_on_the_page(alice, staff_client):
    thread = new_thread(alice)
    store_items(alice, thread, hostile_items(thread.id))
    html = html_of(staff_client, change_url(thread))
    body = html.split('<div class="ck-transcript">')[1].split("<!-- /ck-transcript -->")[0]
    assert_inert(body)  # the SVG "preview" is not shown: no image at all
    # What was written is shown, as text.
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in body
    assert "evil source" in body and "<code" in body


def hostile_items(thread_id: str) -> list[ThreadItem]:
    from chatkit.types import Annotation, ImageAttachment, URLSource
    from pydantic import AnyUrl

    return [
        UserMessageItem(
            id="msg_evil_user",
            thread_id=thread_id,
            created_at=START,
            content=[
                UserMessageTextContent(
                    text='<script>window.pwned = 1</script><img src=x onerror="window.pwned = 1">'
                )
            ],
            attachments=[
                ImageAttachment(
                    id="atc_evil",
                    name='"><script>window.pwned=1</script>',
                    mime_type="image/svg+xml",
                    preview_url=AnyUrl(
                        "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9IndpbmRvdy5wd25lZD0xIi8+"
                    ),
                )
            ],
            quoted_text="</blockquote><script>window.pwned = 1</script>",
            inference_options=InferenceOptions(),
        ),
        AssistantMessageItem(
            id="msg_evil_answer",
            thread_id=thread_id,
            created_at=START + timedelta(seconds=1),
            content=[
                AssistantMessageContent(
                    text=HOSTILE_MARKDOWN,
                    annotations=[
                        Annotation(
                            source=URLSource(title="evil source", url="javascript:window.pwned=1")
                        ),
                        Annotation(
                            source=URLSource(
                                title="data source",
                                url="data:text/html,<script>window.pwned=1</script>",
                            )
                        ),
                    ],
                )
            ],
        ),
    ]


# --- the sanitizer, proven in a browser ------------------------------------------------------


@pytest.fixture
def hostile_site(transactional_db: None) -> Any:
    from tests.live_server import live_asgi_server

    root = get_user_model().objects.create_superuser("root", "root@example.com", "root-pw")
    thread = new_thread(root)
    store_items(root, thread, hostile_items(thread.id))
    with live_asgi_server("daphne") as server:
        yield server, thread


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_hostile_transcript_runs_nothing_in_chromium(hostile_site: Any) -> None:
    """The page flag ``window.pwned`` that every payload tries to set stays unset after the
    page loads and after every link of the transcript is clicked."""
    from playwright.async_api import async_playwright

    from tests.test_browser import CHROMIUM_ARGS, chromium_path

    site, thread = hostile_site
    elsewhere: list[str] = []
    dialogs: list[str] = []

    async def route(route: Any) -> None:
        if route.request.url.startswith(site.url + "/"):
            await route.continue_()
        else:
            # Nothing leaves the machine; 204 keeps the page where it is (no navigation).
            elsewhere.append(route.request.url)
            await route.fulfill(status=204, body="")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            await page.route("**/*", route)
            await page.goto(f"{site.url}/admin/login/?next=/admin/")
            await page.fill("input[name=username]", "root")
            await page.fill("input[name=password]", "root-pw")
            await page.click("input[type=submit]")
            await page.wait_for_url("**/admin/")
            url = f"{site.url}{change_url(thread)}"
            await page.goto(url, wait_until="load")
            assert await page.locator("#msg_evil_answer .ck-markdown").count() == 1
            assert await page.evaluate("window.pwned") is None
            assert await page.locator(".ck-transcript img").count() == 0  # no SVG "preview"
            links = page.locator(".ck-transcript .ck-markdown a, .ck-transcript .ck-sources a")
            hrefs = [
                str(await links.nth(n).get_attribute("href")) for n in range(await links.count())
            ]
            assert hrefs == ["https://tracker.example/p.png", "https://example.com/a"], hrefs
            for n, href in enumerate(hrefs):
                # Clicked: its request reaches the router (answered 204: the page stays).
                async with page.expect_request(href):
                    await links.nth(n).click()
                assert page.url == url
                assert await page.evaluate("window.pwned") is None
            assert elsewhere == hrefs
            # The flag does catch a script that runs (the check above can fail): a link like the
            # ones the sanitizer removed, put in by hand, does set it.
            await page.evaluate(
                """() => { const a = document.createElement('a');
                a.id = 'control'; a.href = 'javascript:window.pwned = 1'; a.textContent = 'x';
                document.querySelector('.ck-transcript').append(a); }"""
            )
            await page.click("#control")
            await page.wait_for_function("window.pwned === 1", timeout=5000)
            assert dialogs == []
        finally:
            await browser.close()
