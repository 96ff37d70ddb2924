"""The ``on_delete`` of an owned row's ``user``: Django's CASCADE, minus a step MySQL breaks.

On databases that cannot defer constraint checks (MySQL, MariaDB), ``models.CASCADE`` first
sets a nullable foreign key to NULL and then deletes the rows, and it records no deletion order
for them. For an owned row that interim state (no user, no anonymous key) is exactly what the
``*_one_owner`` check constraints refuse, so deleting a user failed there. Collected as a
non-nullable cascade instead, the rows are deleted, never updated, before the user they
reference: the order the collector follows anyway when nothing is nullable, and the one a
non-deferred foreign key check needs. Nothing points back from a user to these rows, so that
order has no cycle to break.

Rows a legal hold keeps (held threads, and the attachments and runs of held threads) are left
out of the cascade: ``django_chatkit.erasure`` re-owns them inside the deletion's transaction,
before the user row is deleted, so they outlive their owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import ForeignKey, Model, QuerySet
from django.db.models.deletion import Collector


# Named like Django's CASCADE, which it stands for.
def CASCADE_OWNED(
    collector: Collector, field: ForeignKey[Any, Any], sub_objs: Sequence[Model], using: str
) -> None:
    if isinstance(sub_objs, QuerySet):
        # Imported here: the migrations import this module, and erasure imports the models.
        from django_chatkit.erasure import held

        sub_objs = sub_objs.exclude(held(sub_objs.model))
    collector.collect(
        sub_objs,
        source=field.remote_field.model,
        source_attr=field.name,
        nullable=False,
        fail_on_restricted=False,
    )
