"""Short thread titles: written by a model, or a clean truncation of the first message."""

from __future__ import annotations

import re

TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for a conversation that starts with the user's message "
    "below. Use the message's language. Answer with the title only: no quotes, no final period."
)
MAX_TITLE_CHARS = 80
# Longest title a user may set (threads.update): room for any sensible name, not for a document.
MAX_TITLE_LENGTH = 200


def truncate_title(text: str, limit: int = 60) -> str:
    """The message's first words, cut at a word boundary, with an ellipsis when cut."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words
    cut = words[: limit + 1].rsplit(" ", 1)[0] if " " in words[:limit] else words[:limit]
    return cut.rstrip(" ,;:.-") + "…"


def clean_model_title(text: str) -> str:
    title = " ".join(text.split()).strip("\"'“”‘’«» ")
    title = re.sub(r"^(title|titre)\s*:\s*", "", title, flags=re.IGNORECASE)
    title = title.rstrip(".")
    return truncate_title(title, MAX_TITLE_CHARS)
