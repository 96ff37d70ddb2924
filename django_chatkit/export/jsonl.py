"""The JSON Lines writer: one thread per line, keys sorted, no whitespace, UTF-8.

A line is exactly ``json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``, but written piece by piece (the record's keys in sorted order: attachments,
feedback, format_version, items, runs, thread), so that a thread's items are never all in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from django_chatkit import models
from django_chatkit.export import FORMAT_VERSION
from django_chatkit.export.records import ThreadExport, iter_threads

# A thread's line is handed on in pieces of about this size (a long thread is not one string).
PIECE_BYTES = 64 * 1024


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _array(values: Iterable[Any]) -> Iterator[str]:
    yield "["
    first = True
    for value in values:
        yield dumps(value) if first else "," + dumps(value)
        first = False
    yield "]"


def thread_line(export: ThreadExport) -> Iterator[bytes]:
    """The thread's line, newline included, in UTF-8 pieces."""
    parts: Iterator[str] = _chain(
        ['{"attachments":', dumps(export.attachments)],
        [',"feedback":', dumps(export.feedback)],
        [',"format_version":', dumps(FORMAT_VERSION), ',"items":'],
        _array(export.items()),
        [',"runs":'],
        _array(export.runs()),
        [',"thread":', dumps(export.fields), "}\n"],
    )
    buffer: list[str] = []
    size = 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= PIECE_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _chain(*iterables: Iterable[str]) -> Iterator[str]:
    for iterable in iterables:
        yield from iterable


def iter_jsonl(
    threads: QuerySet[models.Thread],
    *,
    on_thread: Callable[[ThreadExport], None] | None = None,
) -> Iterator[bytes]:
    """The JSONL export of ``threads``, in pieces; ``on_thread`` sees each thread first."""
    for export in iter_threads(threads):
        if on_thread is not None:
            on_thread(export)
        yield from thread_line(export)
