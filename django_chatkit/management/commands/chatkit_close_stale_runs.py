"""Close runs left "running" by a process that died mid-answer (killed, out of memory, ...)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from django_chatkit.models import Run, RunStatus

DEFAULT_MAX_AGE = 3600
STALE_ERROR_CODE = "abandoned"


def close_stale_runs(max_age: int) -> int:
    """Mark runs started more than ``max_age`` seconds ago and still running as failed."""
    cutoff = timezone.now() - timedelta(seconds=max_age)
    return Run.objects.filter(status=RunStatus.RUNNING, started_at__lt=cutoff).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error_code=STALE_ERROR_CODE,
        error_message="The process serving this run ended before the run did.",
    )


class Command(BaseCommand):
    help = (
        "Mark runs still 'running' long after they started as failed (code 'abandoned'): "
        "their process ended without closing them. Run it periodically (cron)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=DEFAULT_MAX_AGE,
            metavar="SECONDS",
            help=f"Started at least this long ago (default: {DEFAULT_MAX_AGE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        max_age = options["older_than"]
        if max_age < 0:
            self.stderr.write("--older-than must be >= 0.")
            raise SystemExit(2)
        closed = close_stale_runs(max_age)
        self.stdout.write(f"Closed {closed} abandoned run(s).")
