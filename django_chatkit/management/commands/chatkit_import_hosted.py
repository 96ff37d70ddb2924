"""Import hosted conversations (kept by OpenAI) into the admin for review.

Run it from cron or as a periodic task (docs/hosted.md). Safe to interrupt and run
again: each thread is committed on its own, and a re-run fetches only what changed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_chatkit import models
from django_chatkit.hosted.importing import due, import_hosted
from django_chatkit.management.commands.chatkit_purge import find_user


class Command(BaseCommand):
    help = (
        "Import the threads and items of OpenAI-hosted ChatKit conversations into the ChatKit "
        "admin: by default those of users who opened a hosted session since their last import; "
        "--all for every user who ever had one; --user for some. Incremental, resumable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="USERNAME_OR_EMAIL",
            help="Only this user's hosted threads (repeatable).",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help=(
                "Every user who ever had a hosted session, not only those active since their "
                "last import (also finds threads deleted upstream meanwhile)."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Fetch and count what would be imported; write nothing.",
        )

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user"] and options["all"]:
            raise CommandError("Give --user or --all, not both.")
        queryset = models.HostedUser.objects.order_by("pk")
        if options["user"]:
            users = [find_user(value) for value in options["user"]]
            queryset = queryset.filter(user__in=users)
            found = set(queryset.values_list("user_id", flat=True))
            for user in users:
                if user.pk not in found:
                    self.say(f"{user} never had a hosted session: nothing to import.")
        elif not options["all"]:
            queryset = due(queryset)
        report = import_hosted(queryset.iterator(), dry_run=options["dry_run"], progress=self.say)
        for line in report.lines():
            self.say(line)
        if report.stopped:
            raise CommandError(report.stopped)
