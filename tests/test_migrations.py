from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_pending_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "django_chatkit", "--check", "--dry-run", stdout=out)
    except SystemExit:  # pragma: no cover - only reached when a migration is missing
        pytest.fail(f"Model changes without a migration:\n{out.getvalue()}")
