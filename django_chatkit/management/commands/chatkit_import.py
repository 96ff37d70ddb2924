"""Import an export of chatkit_export (JSONL, or its tar with files) into this database."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_chatkit.export.importing import (
    UNKNOWN_POLICIES,
    ImportRefused,
    OwnerResolver,
    import_export,
)


def parse_owner_map(values: list[str]) -> dict[str, str]:
    """``OLD=NEW`` pairs; a value without ``=`` is a file of such pairs, one a line (``#``
    starts a comment)."""
    mapping: dict[str, str] = {}
    for value in values:
        if "=" in value:
            pairs = [(value, "--owner-map")]
        else:
            try:
                with open(value, encoding="utf-8") as handle:
                    pairs = [
                        (line.strip(), f"{value}:{n}")
                        for n, line in enumerate(handle, start=1)
                        if line.strip() and not line.lstrip().startswith("#")
                    ]
            except OSError as exc:
                raise CommandError(
                    f"--owner-map {value!r}: expected OLD=NEW or a file of such lines "
                    f"({exc.strerror})"
                ) from exc
        for pair, where in pairs:
            old, sep, new = pair.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise CommandError(f"{where}: {pair!r} is not OLD=NEW")
            mapping[old.strip()] = new.strip()
    return mapping


class Command(BaseCommand):
    help = (
        "Import threads exported by chatkit_export (JSONL, or the tar written with --with-files) "
        "into this database. Threads that exist already are skipped: running it again changes "
        "nothing. Owners are found by username, then by email."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The .jsonl file or the .tar archive.")
        parser.add_argument(
            "--owner-map",
            action="append",
            default=[],
            metavar="OLD=NEW",
            help="The exported owner OLD (username or email) is the user NEW here (username or "
            "email). Repeatable; or a file of OLD=NEW lines.",
        )
        parser.add_argument(
            "--unknown-owners",
            choices=UNKNOWN_POLICIES,
            default="error",
            help="An owner with no user here: stop before importing anything (error, the "
            "default), skip their threads, or create the user (no usable password).",
        )
        parser.add_argument(
            "--without-files",
            action="store_true",
            help="From a tar: restore the rows only, keeping the exported storage names.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file")
        owners = OwnerResolver(
            owner_map=parse_owner_map(options["owner_map"]), unknown=options["unknown_owners"]
        )
        try:
            stats = import_export(path, owners, with_files=not options["without_files"])
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Imported {stats.threads} thread(s): {stats.items} items, "
            f"{stats.attachments} attachments ({stats.files} files), {stats.feedback} feedback, "
            f"{stats.runs} runs. Skipped {stats.skipped_existing} already present, "
            f"{stats.skipped_owner} of unknown owners. Users created: {stats.users_created}."
        )
        if stats.reviewers_unknown:
            self.stdout.write(
                f"{stats.reviewers_unknown} feedback review(s) by users unknown here: "
                "imported without their reviewer."
            )
