"""Signing out cancels the hosted sessions that browser session minted.

A client secret lets the widget talk to OpenAI directly, until it expires: signing out of the
site would otherwise leave the hosted conversation open in the page (on a shared computer, to
the next person), where the self-hosted endpoint refuses the next request at once. So the
session endpoint remembers the ids of the sessions it minted in the Django session that asked
(never sent to the browser), and Django's ``user_logged_out`` signal, sent before ``logout()``
flushes that session, cancels those not expired yet (``sessions.cancel``). The same user's other
browsers keep theirs.

Sign-out waits for the cancellations, at most ``CANCEL_TIMEOUT_SECONDS`` each; a failure is
logged and the sign-out goes through (the secret then lives until it expires).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from django_chatkit.openai_client import configured_api_key, configured_base_url

logger = logging.getLogger("django_chatkit")

SESSION_KEY: Final = "_chatkit_hosted_sessions"
# Enough for a long visit's refreshes of several widgets; the oldest are dropped first (each
# expires anyway).
MAX_REMEMBERED: Final = 20
CANCEL_TIMEOUT_SECONDS: Final = 3.0


def _unexpired(remembered: Any, now: float) -> list[list[Any]]:
    if not isinstance(remembered, list):
        return []
    return [
        [entry[0], entry[1]]
        for entry in remembered
        if isinstance(entry, list | tuple)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], int | float)
        and entry[1] > now
    ]


async def remember_session(session: Any, session_id: str, expires_at: int) -> None:
    """Record a minted session in the Django ``session`` of the browser that asked."""
    kept = _unexpired(await session.aget(SESSION_KEY), time.time())
    kept = [*kept[-(MAX_REMEMBERED - 1) :], [session_id, expires_at]]
    await session.aset(SESSION_KEY, kept)


@receiver(user_logged_out, dispatch_uid="django_chatkit.hosted.signout")
def cancel_sessions_of_browser(sender: Any, request: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is None:
        return
    session_ids = [entry[0] for entry in _unexpired(session.get(SESSION_KEY), time.time())]
    api_key = configured_api_key()
    if not session_ids or not api_key:
        return
    import openai  # here: most sign-outs have nothing to cancel

    # A client of its own, synchronous (signals are), short and without retries: a sign-out
    # waits for it.
    with openai.OpenAI(
        api_key=api_key,
        base_url=configured_base_url(),
        timeout=CANCEL_TIMEOUT_SECONDS,
        max_retries=0,
    ) as client:
        for session_id in session_ids:
            try:
                client.beta.chatkit.sessions.cancel(session_id)
            except openai.NotFoundError:
                continue  # gone already
            except openai.APIConnectionError as exc:
                logger.warning("ChatKit could not reach OpenAI to cancel sessions: %r", exc)
                return  # the next would wait as long
            except openai.APIStatusError as exc:
                logger.warning(
                    "OpenAI refused to cancel a ChatKit session (HTTP %s, request %r)",
                    exc.status_code,
                    exc.request_id,
                )
