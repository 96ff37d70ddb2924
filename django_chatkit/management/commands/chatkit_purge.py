"""Delete threads idle longer than the retention settings say, with everything they hold.

Run it from cron or as a periodic task (docs/retention.md). Safe to interrupt and run again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_chatkit.attachments import journal
from django_chatkit.hosted import deleting as hosted_deleting
from django_chatkit.purge import (
    DEFAULT_BATCH_SIZE,
    Counts,
    NothingConfigured,
    Policy,
    held_skipped,
    make_policy,
    purge,
)


def find_user(value: str) -> Any:
    """The user whose username (``USERNAME_FIELD``) or else e-mail address is ``value``."""
    User = get_user_model()
    found = list(User._default_manager.filter(**{User.USERNAME_FIELD: value})[:2])
    email_field = User.get_email_field_name()
    if not found and any(f.name == email_field for f in User._meta.get_fields()):
        found = list(User._default_manager.filter(**{f"{email_field}__iexact": value})[:2])
    if not found:
        raise CommandError(f"No user has the username or e-mail address {value!r}.")
    if len(found) > 1:
        raise CommandError(f"Several users have the e-mail address {value!r}: give a username.")
    return found[0]


RELEASED = (
    "Purging threads deleted by their owner, or whose owner was deleted, while on legal hold, "
    "once the hold is lifted."
)


def days(limit: timedelta) -> str:
    return f"{limit / timedelta(days=1):g} day(s)"


def scope(policy: Policy, user: Any) -> list[str]:
    """What this run purges, in words: the first lines of its report."""
    if user is not None:
        assert policy.user_limit is not None
        return [
            f"Purging {user}'s threads idle for more than {days(policy.user_limit)}.",
            RELEASED,
        ]
    lines = []
    if policy.user_limit is None:
        lines.append(
            "Signed-in users' threads are kept: CHATKIT['RETENTION'] is None and no "
            "--older-than was given."
        )
    else:
        lines.append(f"Purging users' threads idle for more than {days(policy.user_limit)}.")
    # Always set without --user: ANONYMOUS_RETENTION, or RETENTION when that is shorter.
    assert policy.anonymous_limit is not None
    lines.append(
        f"Purging anonymous visitors' threads idle for more than {days(policy.anonymous_limit)}."
    )
    lines.append(RELEASED)
    return lines


def describe(counts: Counts) -> str:
    return (
        f"{counts.threads:,} thread(s), {counts.items:,} item(s), "
        f"{counts.feedback:,} feedback, {counts.runs:,} run(s), "
        f"{counts.attachments:,} attachment(s), {counts.bytes:,} bytes"
    )


class Command(BaseCommand):
    help = (
        "Delete threads idle longer than CHATKIT['RETENTION'] days (users') or "
        "CHATKIT['ANONYMOUS_RETENTION'] (anonymous visitors'), with their items, feedback, runs, "
        "attachments and stored files, in batches. Threads on legal hold are kept. Safe to "
        "interrupt and run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="DAYS",
            help="Idle for more than DAYS days (default: CHATKIT['RETENTION']).",
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME_OR_EMAIL",
            help="Only this user's threads (anonymous visitors' are then left alone).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted, batch by batch; delete nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Threads per transaction (default {DEFAULT_BATCH_SIZE}).",
        )

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # progress of a long run, as it happens, also through a pipe

    def handle(self, *args: Any, **options: Any) -> None:
        older_than, batch_size = options["older_than"], options["batch_size"]
        if older_than is not None and not older_than >= 0:  # NaN too
            raise CommandError("--older-than must be a number of days >= 0.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        user = find_user(options["user"]) if options["user"] else None
        try:
            policy = make_policy(older_than=older_than, user_pk=None if user is None else user.pk)
        except NothingConfigured as exc:
            raise CommandError(
                f"{exc} Set CHATKIT['RETENTION'] (days) or pass --older-than DAYS."
            ) from exc
        dry_run = options["dry_run"]
        for line in scope(policy, user):
            self.say(line)
        verb = "would delete" if dry_run else "deleted"

        entries = journal.pending()
        if entries and dry_run:
            self.say(f"{len(entries)} removal journal entry(ies) of interrupted runs to settle.")
        elif entries:
            settled = journal.recover()
            self.say(
                f"Settled {settled.entries} of {len(entries)} removal journal entry(ies) of "
                f"interrupted runs: files of {settled.files} attachment(s) removed, "
                f"{settled.bytes:,} bytes."
            )

        total = Counts()
        batches = 0
        for counts in purge(policy, batch_size=batch_size, dry_run=dry_run):
            batches += 1
            total.add(counts)
            self.say(f"Batch {batches}: {verb} {describe(counts)}.")
        if not dry_run and journal.pending():
            # Entries of batches killed before their commit, whose threads this run deleted.
            journal.recover()
        if not dry_run:
            # Hosted threads deleted here (this run, or before: an outage, a user's erasure)
            # are deleted at OpenAI too; what fails stays owed (django_chatkit.hosted.deleting).
            owed = hosted_deleting.settle()
            if owed.deleted or owed.already_gone or owed.pending:
                self.say(owed.describe() + ".")
            for failure in owed.failed:
                self.stderr.write(f"Deleting at OpenAI failed: {failure}")
        held = held_skipped(policy)
        summary = "Dry run: would delete" if dry_run else "Purged"
        self.say(
            f"{summary} {describe(total)} in {batches} batch(es); "
            f"{held:,} thread(s) on legal hold kept."
        )
