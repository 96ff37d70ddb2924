"""The human format: one Markdown file per thread (a transcript, not a backup: no import)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.utils.translation import gettext

from django_chatkit.export.records import ThreadExport

ROLE_LABELS = {"user_message": "User", "assistant_message": "Assistant"}


def _owner(owner: dict[str, str]) -> str:
    if "anonymous_key" in owner:
        return str(gettext("anonymous visitor"))
    if owner.get("email"):
        return f"{owner['username']} <{owner['email']}>"
    return str(owner["username"])


def _role(item: dict[str, Any]) -> str:
    if item["type"] == "user_message":
        return str(gettext("User"))
    if item["type"] == "assistant_message":
        return str(gettext("Assistant"))
    return str(item["type"]).replace("_", " ")


def _size(attachment: dict[str, Any]) -> str:
    if attachment["size"] is None:
        return str(attachment["mime_type"])
    return gettext("%(type)s, %(size)s bytes") % {
        "type": attachment["mime_type"],
        "size": attachment["size"],
    }


def render(export: ThreadExport) -> Iterator[str]:
    """The thread's transcript, oldest message first, in pieces."""
    fields = export.fields
    title = fields["title"] or gettext("Untitled conversation")
    yield f"# {title}\n\n"
    yield f"- {gettext('Thread')}: `{fields['id']}`\n"
    yield f"- {gettext('Owner')}: {_owner(fields['owner'])}\n"
    yield f"- {gettext('Created')}: {fields['created_at']}\n"
    yield f"- {gettext('Last activity')}: {fields['updated_at']}\n"
    status = fields["status"]
    if fields["status_reason"]:
        status = f"{status} ({fields['status_reason']})"
    yield f"- {gettext('Status')}: {status}\n"
    if fields["legal_hold"]:
        yield f"- {gettext('On legal hold')}\n"
    if export.attachments:
        yield f"\n## {gettext('Attachments')}\n\n"
        for attachment in export.attachments:
            yield f"- {attachment['name']} ({_size(attachment)}): `files/{attachment['id']}`\n"
    votes = {vote["item_id"]: vote["kind"] for vote in export.feedback}
    yield "\n---\n"
    for item in export.items():
        heading = f"{_role(item)} · {item['created_at']}"
        if item["item_id"] in votes:
            heading += " · " + gettext("feedback: %(kind)s") % {"kind": votes[item["item_id"]]}
        yield f"\n### {heading}\n\n"
        text = item["text"].strip()
        yield (text if text else f"*({gettext('no text')})*") + "\n"
    # The runs' cursor is the batch's: read past this thread's runs (not shown here).
    for _ in export.runs():
        pass
