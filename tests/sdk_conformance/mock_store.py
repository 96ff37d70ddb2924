"""``helpers.mock_store.SQLiteStore`` of the SDK's tests: DjangoStore on the test database."""

from __future__ import annotations

from django_chatkit.store import DjangoStore


class SQLiteStore(DjangoStore):
    """Takes the SDK tests' SQLite path (kept, as they read it back) and ignores it: the data
    goes through the ORM to the test database, SQLite or PostgreSQL per ``DATABASE_URL``."""

    def __init__(self, db_path: str) -> None:
        super().__init__()
        self.db_path = db_path
