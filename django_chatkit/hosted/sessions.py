"""Minting a ChatKit client secret for one visitor of a hosted workflow.

The secret is all the browser gets: OpenAI's ``sessions.create`` is called here, with the
site's API key, for a workflow of the allow-list (:mod:`.workflows`), with ``user`` set to the
owner's keyed hash (:mod:`.identity`). Upstream failures become :class:`RequestRejected` with
a status that says whose fault it is: 503 (retry later: OpenAI is rate limiting this site or
cannot be reached), 502 (OpenAI answered with an error; for a refused key, this site's
misconfiguration). Their messages never repeat OpenAI's, which may quote part of the key.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.utils.translation import gettext

from django_chatkit.context import NEW_ANONYMOUS_OWNER, ChatKitContext
from django_chatkit.errors import RequestRejected
from django_chatkit.hosted.identity import derive_upstream_user, upstream_user
from django_chatkit.hosted.rate_limit import check_and_count_session
from django_chatkit.hosted.workflows import allowed_workflows
from django_chatkit.openai_client import get_openai_client

if TYPE_CHECKING:
    import openai
    from openai.types.beta.chatkit import ChatSession

logger = logging.getLogger("django_chatkit")

# Seconds a client is asked to wait after OpenAI refused or failed, when it did not say.
DEFAULT_RETRY_AFTER = 5
# A Retry-After from OpenAI beyond this is not passed on: the widget would wait that long.
MAX_RETRY_AFTER = 60


@dataclass(frozen=True)
class ClientSecret:
    """What the session endpoint answers: the secret and when it expires (Unix seconds); and
    the session's id, which stays on the server (signing out cancels it: .signout)."""

    client_secret: str
    expires_at: int
    session_id: str


class WorkflowNotAllowed(RequestRejected):
    def __init__(self) -> None:
        super().__init__(
            403,
            "workflow_not_allowed",
            gettext("This chat is not available on this site."),
        )


def misconfigured() -> RequestRejected:
    return RequestRejected(
        502,
        "hosted_misconfigured",
        gettext(
            "The chat is not available: this site's connection to the chat service is "
            "misconfigured. The fault has been logged."
        ),
    )


async def mint_client_secret(context: ChatKitContext, workflow_id: str) -> ClientSecret:
    """A new client secret of ``workflow_id`` for the context's owner.

    Raises :class:`RequestRejected`: 403 ``workflow_not_allowed`` for a workflow off the
    allow-list, 429 past ``HOSTED_SESSIONS_PER_MINUTE``, 502/503 for upstream failures.
    """
    workflow = allowed_workflows().get(workflow_id)
    if workflow is None:
        raise WorkflowNotAllowed()
    await check_and_count_session(context)
    new_owner = bool(context.extra.get(NEW_ANONYMOUS_OWNER))
    # A new anonymous visitor keeps their token only if this succeeds (the view then stores it
    # in their session): record their identifier only then, not for a token about to vanish.
    user = (
        derive_upstream_user(context.owner)
        if new_owner
        else await sync_to_async(upstream_user)(context.owner, minting=True)
    )
    session = await _create_session(user, workflow.id, workflow.session_arguments())
    if new_owner:
        await sync_to_async(upstream_user)(context.owner, minting=True)
    return ClientSecret(
        client_secret=session.client_secret, expires_at=session.expires_at, session_id=session.id
    )


async def _create_session(user: str, workflow_id: str, arguments: dict[str, Any]) -> ChatSession:
    import openai  # here: the system checks import this module's neighbours, never openai

    try:
        client = get_openai_client()
    except openai.OpenAIError as exc:  # no API key configured anywhere (check chatkit.W009)
        logger.error("ChatKit cannot mint client secrets for %s: %s", workflow_id, exc)
        raise misconfigured() from exc
    try:
        return await client.beta.chatkit.sessions.create(user=user, **arguments)
    except openai.APIStatusError as exc:
        raise _upstream_refusal(exc, workflow_id) from exc
    except openai.APIConnectionError as exc:  # timeouts included
        logger.warning("ChatKit could not reach OpenAI to mint a client secret: %r", exc)
        raise RequestRejected(
            503,
            "upstream_unavailable",
            gettext("The chat service could not be reached. Retry in a moment."),
            retry_after=DEFAULT_RETRY_AFTER,
        ) from exc


def _retry_after(exc: openai.APIStatusError) -> int:
    raw = exc.response.headers.get("retry-after")
    try:
        seconds = float(raw) if raw is not None else float(DEFAULT_RETRY_AFTER)
    except ValueError:  # an HTTP date: not worth parsing for a value capped at a minute
        seconds = DEFAULT_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(1, math.ceil(seconds)))


def _upstream_refusal(exc: openai.APIStatusError, workflow_id: str) -> RequestRejected:
    status = exc.status_code
    # The code and request id only: OpenAI's message about a bad key quotes part of it.
    what = f"HTTP {status}, code {exc.code!r}, request {exc.request_id!r}"
    if status == 429:
        logger.warning("OpenAI rate limits the minting of ChatKit client secrets (%s)", what)
        return RequestRejected(
            503,
            "upstream_rate_limited",
            gettext("The chat service is busy. Retry in a few seconds."),
            retry_after=_retry_after(exc),
        )
    if status in (401, 403):
        logger.error(
            "OpenAI refused this site's API key while minting a ChatKit client secret for %s "
            "(%s): check OPENAI_API_KEY and its project's access to the workflow.",
            workflow_id,
            what,
        )
        return misconfigured()
    if status >= 500:
        logger.warning(
            "OpenAI failed to mint a ChatKit client secret for %s (%s)", workflow_id, what
        )
        return RequestRejected(
            502,
            "upstream_error",
            gettext("The chat service failed to start a session. Retry in a moment."),
            retry_after=DEFAULT_RETRY_AFTER,
        )
    # Any other 4xx: what this site sent is wrong (an unknown workflow, a bad option).
    logger.error(
        "OpenAI refused to mint a ChatKit client secret for %s (%s): %s",
        workflow_id,
        what,
        exc.message,
    )
    return misconfigured()
