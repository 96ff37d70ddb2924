"""Create (or reset) the demo login: user ``demo``, password ``demo``, staff and superuser."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Ensure the demo superuser demo/demo exists (only with DEBUG on, unless --force)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo")
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("Refusing to create a well-known superuser with DEBUG off.")
        user, created = get_user_model().objects.get_or_create(
            username=options["username"], defaults={"email": ""}
        )
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.set_password(options["password"])
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            f"{verb} demo login: {options['username']} / {options['password']} (staff, superuser)."
        )
