"""Indexes for the review queues' default order, so their first page is an index walk.

The runs list shows failures first, then the newest; the feedback queue unreviewed votes first,
negative ones first among them, then the newest (``django_chatkit.admin.common.first_when``).
Each order starts with a CASE expression: only an index on that same expression serves it,
else every page view sorts every run (2,650,000 runs: five seconds). Created where the
database supports indexes on expressions (PostgreSQL, SQLite); MariaDB and MySQL before 8.0.13
do not, and keep the sort. Not declared in the models' Meta: Django would warn (models.W043)
on every MariaDB site that it cannot create them.

The attachments list's order (newest first) is a plain index on (created_at, id).
"""

from django.db import migrations, models
from django.db.models import Case, F, Value, When

EXPRESSION_INDEXES = {
    "Run": models.Index(
        Case(When(status="failed", then=Value(0)), default=Value(1)),
        F("started_at").desc(),
        F("id").desc(),
        name="chatkit_run_review_order",
    ),
    "Feedback": models.Index(
        Case(When(reviewed_at__isnull=True, then=Value(0)), default=Value(1)),
        Case(When(kind="negative", then=Value(0)), default=Value(1)),
        F("updated_at").desc(),
        F("id").desc(),
        name="chatkit_feedback_review_order",
    ),
}


def create_expression_indexes(apps, schema_editor):
    if not schema_editor.connection.features.supports_expression_indexes:
        return
    for model_name, index in EXPRESSION_INDEXES.items():
        schema_editor.add_index(apps.get_model("django_chatkit", model_name), index)


def drop_expression_indexes(apps, schema_editor):
    if not schema_editor.connection.features.supports_expression_indexes:
        return
    for model_name, index in EXPRESSION_INDEXES.items():
        schema_editor.remove_index(apps.get_model("django_chatkit", model_name), index)


class Migration(migrations.Migration):
    dependencies = [("django_chatkit", "0007_i18n")]

    operations = [
        migrations.AddIndex(
            model_name="attachment",
            index=models.Index(fields=["created_at", "id"], name="chatkit_attachment_recent"),
        ),
        migrations.RunPython(create_expression_indexes, drop_expression_indexes),
    ]
