"""Takeover: staff answer a thread in the agent's place, then hand it back.

A thread is taken over while ``Thread.taken_over_at`` is set. Meanwhile the server stores what
the user sends and calls no model: the user's stream ends with a notice that a person will
reply (``DjangoChatKitServer._process_events``). Staff replies are stored as ordinary assistant
messages, so that the widget shows them as the answers they are and the agent, once the thread
is handed back, reads them in its history like its own; ``ThreadItem.staff_author`` says who
wrote one (the admin shows it; the user never gets it). The user sees each reply under
``CHATKIT["STAFF_DISPLAY_NAME"]``, written at the head of the message when it is stored: the
ChatKit item has no author field, and the model should know a person said it too.

Each change is recorded in the thread's admin history (``LogEntry``) and published as a notice
after commit (``thread.takeover``, ``item.added``), whichever worker the user's socket is on.
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from django_chatkit import models
from django_chatkit.conf import chatkit_settings
from django_chatkit.ids import new_typed_id
from django_chatkit.live import notices
from django_chatkit.stops import request_stop

if TYPE_CHECKING:
    from chatkit.types import NoticeEvent

# The SDK's types are imported where they are used: the admin imports this module, and
# `manage.py` commands (the checks) must not load the SDK (tests/test_checks.py).

# The placeholders STAFF_DISPLAY_NAME may use: never anything else of the staff account.
PLACEHOLDERS: Final = frozenset({"first_name", "last_name", "username"})
# A reply is a chat message, not a document.
MAX_REPLY_LENGTH: Final = 20_000


def display_name_errors(value: Any) -> str | None:
    """What is wrong with a STAFF_DISPLAY_NAME value (for chatkit.E014), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string or None."
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError:
        return f"is not a valid format string: {value!r}."
    unknown = fields - PLACEHOLDERS
    if unknown:
        return f"uses unknown placeholder(s) {sorted(unknown)!r}."
    return None


def display_name(user: Any) -> str:
    """The name a staff reply is shown under to the user."""
    configured = chatkit_settings.STAFF_DISPLAY_NAME
    if configured is None:
        return gettext("Support team")
    values = {name: str(getattr(user, name, "") or "") for name in PLACEHOLDERS}
    try:
        shown = configured.format_map(values).strip()
    except (KeyError, ValueError, IndexError):  # reported by chatkit.E014
        shown = ""
    return shown or gettext("Support team")


def taken_over_notice() -> NoticeEvent:
    """What the user's stream says instead of an answer while staff have the thread."""
    from chatkit.types import NoticeEvent

    return NoticeEvent(
        level="info",
        message=gettext(
            "A member of our team has taken over this conversation and will reply here."
        ),
    )


def is_taken_over(thread_id: str) -> bool:
    return models.Thread.objects.filter(pk=thread_id, taken_over_at__isnull=False).exists()


def _log(user: Any, thread: models.Thread, message: str) -> None:
    LogEntry.objects.create(
        user_id=user.pk,
        content_type_id=ContentType.objects.get_for_model(models.Thread).pk,
        object_id=str(thread.pk),
        object_repr=str(thread)[:200],
        action_flag=CHANGE,
        change_message=message,
    )


def take_over(thread: models.Thread, user: Any) -> bool:
    """Take ``thread`` over for ``user``; False when someone already has it."""
    with transaction.atomic():
        now = timezone.now()
        taken = models.Thread.objects.filter(pk=thread.pk, taken_over_at__isnull=True).update(
            taken_over_at=now, taken_over_by=user
        )
        if not taken:
            return False
        thread.taken_over_at, thread.taken_over_by = now, user
        _log(user, thread, gettext("Took the conversation over from the assistant."))
        # The agent stops answering it: an answer it is streaming now is stopped too (as the
        # transcript's stop button does), whichever worker streams it.
        request_stop([str(thread.pk)], user.pk)
        notices.publish_on_commit([notices.notice(notices.THREAD_TAKEOVER, str(thread.pk))])
    return True


def hand_back(thread: models.Thread, user: Any) -> bool:
    """Give ``thread`` back to the agent; False when it was not taken over."""
    with transaction.atomic():
        released = models.Thread.objects.filter(pk=thread.pk, taken_over_at__isnull=False).update(
            taken_over_at=None, taken_over_by=None
        )
        if not released:
            return False
        thread.taken_over_at = thread.taken_over_by = None
        _log(user, thread, gettext("Handed the conversation back to the assistant."))
        notices.publish_on_commit([notices.notice(notices.THREAD_TAKEOVER, str(thread.pk))])
    return True


def reply_text(name: str, text: str) -> str:
    # Markdown, as the widget renders answers: the name in bold on a line of its own.
    return f"**{name}**\n\n{text}"


def post_reply(thread: models.Thread, user: Any, text: str) -> str | None:
    """Store a staff reply as an assistant message; its item id, or None when the thread is
    not (or no longer) taken over."""
    from chatkit.types import AssistantMessageContent, AssistantMessageItem

    from django_chatkit.serialization import item_row_values

    item = AssistantMessageItem(
        id=new_typed_id("message"),
        thread_id=str(thread.pk),
        created_at=_now_like_the_store(),
        content=[AssistantMessageContent(text=reply_text(display_name(user), text))],
    )
    with transaction.atomic():
        # The same row lock the store takes (updated_at), and the check that it is still ours.
        touched = models.Thread.objects.filter(pk=thread.pk, taken_over_at__isnull=False).update(
            updated_at=timezone.now()
        )
        if not touched:
            return None
        models.ThreadItem.objects.create(
            thread_id=thread.pk, staff_author=user, **item_row_values(item)
        )
        notices.publish_on_commit([notices.notice(notices.ITEM_ADDED, str(thread.pk), item.id)])
    return item.id


def _now_like_the_store() -> datetime:
    # The SDK stamps items with a naive local datetime.now(); item_row_values makes it aware.
    return datetime.now()
