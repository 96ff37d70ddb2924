"""``tests._types.RequestContext`` of the SDK's tests: a signed-in Django user's context."""

from __future__ import annotations

import weakref
from typing import Any

from django.contrib.auth import get_user_model

from django_chatkit.context import ChatKitContext, Owner

# Username -> user pk, for the current test (the plugin clears it before each one).
_user_pks: dict[str, Any] = {}
_contexts: list[weakref.ref[RequestContext]] = []


def start_test() -> None:
    """Forget the last test's users and per-request state: the SDK's tests build their
    contexts once per module, where each real request gets a new one."""
    _user_pks.clear()
    for context in filter(None, (ref() for ref in _contexts)):
        context.extra.clear()


def user_pk(username: str) -> Any:
    """The pk of the Django user named ``username``, created on first use in a test.

    Resolved when the store first reads the owner (in its synchronous ORM code), not when the
    context is built: the SDK's tests build theirs at import time, before any database exists.
    """
    if username not in _user_pks:
        user, _ = get_user_model().objects.get_or_create(username=username)
        _user_pks[username] = user.pk
    return _user_pks[username]


class RequestContext(ChatKitContext):
    """``RequestContext(user_id="alice")`` is the context of the Django user named ``alice``."""

    def __init__(self, user_id: str) -> None:
        super().__init__(owner=Owner(anonymous_key="unresolved"))
        self.user_id = user_id
        _contexts.append(weakref.ref(self))

    @property
    def owner(self) -> Owner:
        return Owner(user_id=user_pk(self.user_id))

    @owner.setter
    def owner(self, value: Owner) -> None:
        pass  # ChatKitContext.__init__ assigns one; the user is looked up instead

    def __eq__(self, other: object) -> bool:
        # By user name, as the SDK's own RequestContext: comparing owners would query the
        # database, which the tests do from async code.
        if not isinstance(other, RequestContext):
            return NotImplemented
        return (self.user_id, self.request, self.extra) == (
            other.user_id,
            other.request,
            other.extra,
        )

    __hash__ = None  # type: ignore[assignment]
