"""A user's deletion erases their conversations, except those on legal hold.

Django deletes a user's threads, attachments and runs with the user (``CASCADE_OWNED``, see
``django_chatkit.deletion``), and their files go with the attachment rows. A thread on legal
hold must outlive its owner, so the cascade leaves held threads (and the attachments and runs
of held threads) out, and :func:`keep_held_threads`, run inside the deletion's transaction
before any row is deleted, hands them to a *tombstone owner*: no user, and the anonymous key
``deleted-user:<former pk>``. The ``*_one_owner`` constraints accept it (an anonymous key and no
user), no visitor can ever hold it (real anonymous keys are random URL-safe tokens, without a
colon), and the admin shows such rows as "owner deleted".

Once its hold is lifted, such a thread has no one left to keep it for: ``chatkit_purge`` deletes
it on its next run, whatever its age.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from django_chatkit import models

TOMBSTONE_PREFIX = "deleted-user:"


def tombstone_key(user_pk: Any) -> str:
    return f"{TOMBSTONE_PREFIX}{user_pk}"


def is_tombstone(anonymous_key: str) -> bool:
    return anonymous_key.startswith(TOMBSTONE_PREFIX)


def tombstone_user_pk(anonymous_key: str) -> str:
    return anonymous_key.removeprefix(TOMBSTONE_PREFIX)


def held(model: type[Any]) -> Q:
    """The rows of ``model`` (Thread, Attachment or Run) that a hold keeps; none of another
    owned model (a HostedUser: no thread of its own)."""
    if model is models.Thread:
        return Q(legal_hold=True)
    if model in (models.Attachment, models.Run):
        return Q(thread__legal_hold=True)
    return Q(pk__in=[])


def keep_held_threads(sender: type[Any], instance: Any, using: str, **kwargs: Any) -> None:
    """``pre_delete`` of the user model: re-own the user's held threads and the attachments and
    runs of held threads to the user's tombstone, before the user row goes."""
    owner = {"user": None, "anonymous_key": tombstone_key(instance.pk)}
    for model in (models.Thread, models.Attachment, models.Run):
        model._default_manager.using(using).filter(held(model), user_id=instance.pk).update(**owner)


def journal_files_of_user(sender: type[Any], instance: Any, using: str, **kwargs: Any) -> None:
    """``pre_delete`` of the user model (after :func:`keep_held_threads`): list in the removal
    journal the files the cascade is about to delete, so that a process killed between the
    commit and their removal leaves them for ``chatkit_purge`` to find."""
    from django.db import transaction

    from django_chatkit.attachments import journal
    from django_chatkit.attachments.lifecycle import RemovedFiles

    doomed = (
        models.Attachment._default_manager.using(using)
        .filter(Q(user_id=instance.pk) | Q(thread__user_id=instance.pk))
        .exclude(held(models.Attachment))
        .exclude(storage_alias="")
        .values_list("pk", "storage_alias", "storage_name", "incoming_name", "size")
    )
    files = [
        RemovedFiles(pk, alias, tuple(n for n in (name, incoming) if n), size or 0)
        for pk, alias, name, incoming, size in doomed.iterator()
    ]
    entry = journal.write(f for f in files if f.names)
    if entry is not None:
        # After the commit: the attachment receiver removes the files too (a missing file is no
        # error); settling removes the entry once they are all gone.
        transaction.on_commit(lambda: journal.settle(entry), using=using)
