"""``python -m tests.export_source DB_PATH MEDIA_ROOT OUTPUT``: a new SQLite database at DB_PATH
filled by ``tests.export_data.populate`` (files under MEDIA_ROOT), exported with its files to
OUTPUT. The source of the cross-database round trip (tests/test_import.py)."""

from __future__ import annotations

import os
import sys

import django


def main(db_path: str, media_root: str, output: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["CHATKIT_TEST_MEDIA_ROOT"] = media_root
    django.setup()
    from django.core.management import call_command

    from tests.export_data import populate

    call_command("migrate", verbosity=0)
    populate()
    call_command("chatkit_export", "--with-files", "--output", output)


if __name__ == "__main__":
    main(*sys.argv[1:4])
