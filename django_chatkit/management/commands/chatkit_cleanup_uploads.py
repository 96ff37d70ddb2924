"""Remove orphaned attachments and their files: uploads never completed, or never sent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_chatkit.attachments.lifecycle import delete_orphans, orphans
from django_chatkit.attachments.owner_quota import forget_idle_locks
from django_chatkit.conf import chatkit_settings
from django_chatkit.models import AttachmentStatus


class Command(BaseCommand):
    help = (
        "Delete attachments older than CHATKIT['ORPHAN_UPLOAD_MAX_AGE'] seconds that never "
        "finished uploading or were never sent in a message, with their stored files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            metavar="SECONDS",
            help="Age in seconds (default: CHATKIT['ORPHAN_UPLOAD_MAX_AGE']).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be removed; remove nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        max_age = options["older_than"]
        if max_age is None:
            max_age = chatkit_settings.ORPHAN_UPLOAD_MAX_AGE
        if max_age < 0:
            self.stderr.write("--older-than must be >= 0.")
            raise SystemExit(2)
        found = orphans(max_age)
        if options["dry_run"]:
            rows = list(found.order_by("created_at").values_list("id", "status", "name"))
            for attachment_id, status, name in rows:
                reason = (
                    "upload never finished" if status == AttachmentStatus.PENDING else "never sent"
                )
                self.stdout.write(f"would remove {attachment_id} ({reason}): {name}")
            self.stdout.write(f"{len(rows)} orphaned attachment(s) would be removed (dry run).")
            return
        deleted = delete_orphans(max_age)
        # The per-owner lock rows of owners idle as long (made again on their next upload).
        forget_idle_locks(max_age)
        self.stdout.write(f"Removed {deleted} orphaned attachment(s) and their files.")
