"""Who is asking: the per-request context handed to the ChatKit server and store."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.utils.crypto import salted_hmac

# Session key holding an anonymous visitor's owner token. It is our own random token rather than
# the session key, because Django rotates the session key at login (cycle_key) but keeps the data.
ANONYMOUS_SESSION_KEY = "_chatkit_owner"
NEW_ANONYMOUS_OWNER = "django_chatkit.new_anonymous_owner"
# Response header of the endpoint carrying the owner's memory_key(): a new anonymous visitor's
# page was rendered before they had one, and the widget's thread memory needs it from the first
# thread on.
OWNER_KEY_HEADER = "X-ChatKit-Owner"


@dataclass(frozen=True)
class Owner:
    """The owner of threads and attachments: a user, or an anonymous session token."""

    user_id: Any = None
    anonymous_key: str = ""

    def __post_init__(self) -> None:
        if (self.user_id is None) == (not self.anonymous_key):
            raise ValueError("An owner is either a user or an anonymous key, exactly one.")

    def filter(self, prefix: str = "") -> dict[str, Any]:
        """Queryset lookups that select this owner's rows (``prefix`` e.g. ``"thread__"``)."""
        if self.user_id is not None:
            return {f"{prefix}user_id": self.user_id}
        return {f"{prefix}user__isnull": True, f"{prefix}anonymous_key": self.anonymous_key}

    def owns(self, row: dict[str, Any]) -> bool:
        """Whether a row fetched with its ``user_id`` and ``anonymous_key`` is this owner's."""
        if self.user_id is not None:
            return bool(row["user_id"] == self.user_id)
        return row["user_id"] is None and row["anonymous_key"] == self.anonymous_key

    def fields(self) -> dict[str, Any]:
        """Model field values that make a new row belong to this owner."""
        return {"user_id": self.user_id, "anonymous_key": self.anonymous_key}

    def memory_key(self) -> str:
        """A stable, opaque key of this owner, partitioning the browser's thread memory.

        A keyed hash (``SECRET_KEY``): the page and the endpoint's answers show it, and it gives
        away neither the user's pk nor the anonymous token (which is as good as a password).
        """
        if self.user_id is not None:
            subject = f"user:{self.user_id}"
        else:
            subject = f"anonymous:{self.anonymous_key}"
        # SHA-1 named explicitly: Django 6.1 deprecates the implicit default (SHA-256 from Django
        # 2028), and a new algorithm would change every key, so browsers would forget the thread
        # they remember. As a MAC keyed with SECRET_KEY, HMAC-SHA1 is still sound.
        return salted_hmac("django_chatkit.widget.owner", subject, algorithm="sha1").hexdigest()[
            :32
        ]


@dataclass
class ChatKitContext:
    """Passed as ``context`` to every server and store call of one request."""

    owner: Owner
    request: HttpRequest | None = None
    user: Any = None
    # Free space for servers and hooks to share per-request state.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_user(cls, user: Any, request: HttpRequest | None = None) -> ChatKitContext:
        return cls(owner=Owner(user_id=user.pk), request=request, user=user)

    @classmethod
    def for_anonymous(cls, key: str, request: HttpRequest | None = None) -> ChatKitContext:
        return cls(owner=Owner(anonymous_key=key), request=request)


async def context_from_request(
    request: HttpRequest, *, allow_anonymous: bool
) -> ChatKitContext | None:
    """Build the context for a request, or None when nobody may be served."""
    user = await request.auser()
    if user.is_authenticated:
        return ChatKitContext.for_user(user, request)
    if not allow_anonymous or not hasattr(request, "session"):
        return None
    key = await request.session.aget(ANONYMOUS_SESSION_KEY)
    if key:
        return ChatKitContext.for_anonymous(str(key), request)
    context = ChatKitContext.for_anonymous(secrets.token_urlsafe(24), request)
    # Kept in the session only once a request is accepted (remember_anonymous_owner), so that
    # rejected requests from new visitors leave no session row behind.
    context.extra[NEW_ANONYMOUS_OWNER] = True
    return context


async def remember_anonymous_owner(context: ChatKitContext) -> None:
    """Store a new visitor's owner token in their session (after their request was accepted)."""
    if context.extra.pop(NEW_ANONYMOUS_OWNER, False) and context.request is not None:
        await context.request.session.aset(ANONYMOUS_SESSION_KEY, context.owner.anonymous_key)
