"""Who a visitor is to OpenAI's hosted ChatKit: a stable identifier that reveals nothing.

OpenAI keys every hosted thread by the ``user`` string the session was minted with. Ours is a
keyed hash of the owner (``SECRET_KEY``), never the user's pk, username or email, nor an
anonymous visitor's token (as good as a password). It is computed once per owner and then kept
in :class:`~django_chatkit.models.HostedUser`: rotating ``SECRET_KEY`` later must not cut a
user off from their hosted threads, and the import (which lists threads per upstream user)
finds every owner who ever opened a hosted widget there.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from django_chatkit import models
from django_chatkit.context import Owner

SALT = "django_chatkit.hosted.user"
PREFIX = "dck_"


def owner_key(owner: Owner) -> str:
    """``HostedUser.owner_key``: one row per owner."""
    if owner.user_id is not None:
        return f"user:{owner.user_id}"
    return f"anonymous:{owner.anonymous_key}"


def derive_upstream_user(owner: Owner) -> str:
    """The identifier first given to ``owner`` (48 characters): not reversible without
    ``SECRET_KEY``, and unrelated to the owner's other keyed hashes (a salt of its own)."""
    return PREFIX + salted_hmac(SALT, owner_key(owner), algorithm="sha256").hexdigest()[:44]


def upstream_user(owner: Owner, *, minting: bool = False) -> str:
    """``owner``'s identifier upstream, recorded the first time (and, with ``minting``, the
    time of this session: the import looks at owners who opened a session since its last run)."""
    key = owner_key(owner)
    found = models.HostedUser.objects.filter(owner_key=key).first()
    now = timezone.now()
    if found is not None:
        if minting:
            models.HostedUser.objects.filter(pk=found.pk).update(last_session_at=now)
        return found.upstream_user
    try:
        with transaction.atomic():
            created = models.HostedUser.objects.create(
                upstream_user=derive_upstream_user(owner),
                owner_key=key,
                last_session_at=now if minting else None,
                **owner.fields(),
            )
    except IntegrityError:
        # Another request of the same owner recorded it first.
        return models.HostedUser.objects.get(owner_key=key).upstream_user
    return created.upstream_user
