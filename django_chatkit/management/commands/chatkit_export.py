"""Export threads as JSON Lines or Markdown (docs/export.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from django_chatkit import models
from django_chatkit.export.archive import iter_archive
from django_chatkit.export.jsonl import iter_jsonl
from django_chatkit.export.records import ThreadExport


def parse_since(value: str) -> datetime:
    """A date (midnight in the site's time zone) or a datetime (naive: the site's time zone)."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r}: expected YYYY-MM-DD or an ISO 8601 datetime")
        moment = datetime.combine(day, time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment.astimezone(UTC)


def find_user(value: str) -> Any:
    model = get_user_model()
    manager = model._default_manager
    user = manager.filter(**{model.USERNAME_FIELD: value}).first()
    if user is not None:
        return user
    matches = list(manager.filter(**{model.get_email_field_name(): value})[:2])
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CommandError(f"--user {value!r}: several users have this email; give the username")
    raise CommandError(f"--user {value!r}: no user has this username or email")


def selected_threads(options: dict[str, Any]) -> QuerySet[models.Thread]:
    threads = models.Thread.objects.all()
    if options["user"]:
        threads = threads.filter(user=find_user(options["user"]))
    if options["thread"]:
        wanted = set(options["thread"])
        found = set(threads.filter(pk__in=wanted).values_list("pk", flat=True))
        if missing := sorted(wanted - found):
            raise CommandError(
                f"No such thread (for the other options given): {', '.join(missing)}"
            )
        threads = threads.filter(pk__in=wanted)
    if options["since"]:
        threads = threads.filter(Q(updated_at__gte=parse_since(options["since"])))
    return threads


class Progress:
    """A line on stderr rewritten every so many threads: only when stderr is a terminal."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.threads = 0
        self.missing = 0

    def thread(self, export: ThreadExport) -> None:
        self.threads += 1
        if self.enabled and self.threads % 100 == 0:
            self.stream.write(f"\r{self.threads} threads exported")
            self.stream.flush()

    def missing_file(self, attachment: dict[str, Any], exc: Exception) -> None:
        self.missing += 1
        self.stream.write(
            f"\nAttachment {attachment['id']}: its file could not be read ({exc}); "
            "its metadata is exported, its bytes are not.\n"
        )

    def done(self) -> None:
        if self.enabled:
            self.stream.write(f"\r{self.threads} threads exported.\n")


class Command(BaseCommand):
    help = (
        "Export threads with their items, attachments' metadata, feedback and runs: JSON Lines "
        "(one thread per line, re-importable with chatkit_import) or Markdown (a tar of one "
        ".md file per thread). --with-files: a tar holding the export and the attachments' bytes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="Only this user's threads (username or email).")
        parser.add_argument(
            "--thread", action="append", default=[], metavar="ID", help="This thread (repeatable)."
        )
        parser.add_argument(
            "--since", metavar="DATE", help="Only threads active since DATE (YYYY-MM-DD or ISO)."
        )
        parser.add_argument("--format", choices=("jsonl", "markdown"), default="jsonl")
        parser.add_argument(
            "--with-files",
            action="store_true",
            help="Write a tar: the export plus files/<attachment id> for each attachment.",
        )
        parser.add_argument(
            "--output", "-o", default="-", metavar="FILE", help="Where to write (default: stdout)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        threads = selected_threads(options)
        progress = Progress(sys.stderr, sys.stderr.isatty())
        pieces: Iterator[bytes]
        if options["with_files"] or options["format"] == "markdown":
            pieces = iter_archive(
                threads,
                fmt=options["format"],
                with_files=options["with_files"],
                on_thread=progress.thread,
                on_missing=progress.missing_file,
            )
        else:
            pieces = iter_jsonl(threads, on_thread=progress.thread)
        output = options["output"]
        if output == "-":
            self._write(pieces, sys.stdout.buffer)
        else:
            try:
                handle = open(output, "wb")  # noqa: SIM115 (closed below, also on failure)
            except OSError as exc:
                raise CommandError(f"--output {output}: {exc.strerror}") from exc
            with handle:
                self._write(pieces, handle)
        progress.done()

    def _write(self, pieces: Iterator[bytes], handle: IO[bytes]) -> None:
        for piece in pieces:
            handle.write(piece)
        handle.flush()
