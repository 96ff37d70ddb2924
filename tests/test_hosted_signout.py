"""Signing out cancels the hosted sessions that browser session minted (issue #16; a client
secret would otherwise keep the hosted conversation open in the page until it expires), and
only those: the same user's other browser keeps its own (django_chatkit.hosted.signout)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_chatkit.hosted.signout import MAX_REMEMBERED
from django_chatkit.testing import FakeOpenAI, Reply
from django_chatkit.testing.fake_openai.chatkit_sessions import is_cancel_request
from tests.test_hosted_sessions import (
    _settings,  # noqa: F401  (an autouse fixture: these tests' settings)
    ask,
    client_for,
    hosted,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def carol(db: None) -> Any:
    return get_user_model().objects.create_user("carol", password="carol-pw")


def statuses(fake: FakeOpenAI) -> list[str]:
    return [session["status"] for session in fake.chatkit_sessions.minted]


def cancels(fake: FakeOpenAI) -> list[str]:
    return [r.path.split("/")[-2] for r in fake.requests if is_cancel_request(r)]


async def test_signing_out_cancels_that_browsers_sessions_only(
    fake_openai: FakeOpenAI, carol: Any
) -> None:
    laptop, phone = await client_for(carol), await client_for(carol)
    for client in (laptop, laptop, phone):  # the laptop's widget refreshed its secret once
        response = await ask(client)
        assert response.status_code == 200
        assert set(response.json()) == {"client_secret", "expires_at"}  # no session id
    minted = [session["id"] for session in fake_openai.chatkit_sessions.minted]

    await laptop.alogout()

    assert sorted(cancels(fake_openai)) == sorted(minted[:2])
    assert statuses(fake_openai) == ["cancelled", "cancelled", "active"]


async def test_expired_sessions_are_not_cancelled(fake_openai: FakeOpenAI, carol: Any) -> None:
    fake_openai.chatkit_sessions.expires_in = -1  # already expired when minted
    client = await client_for(carol)
    assert (await ask(client)).status_code == 200
    await client.alogout()
    assert cancels(fake_openai) == []


async def test_a_failing_cancel_is_logged_and_the_sign_out_goes_through(
    fake_openai: FakeOpenAI, carol: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await client_for(carol)
    assert (await ask(client)).status_code == 200
    fake_openai.chatkit_sessions.queue(Reply(status=500, when=is_cancel_request))
    with caplog.at_level(logging.WARNING, logger="django_chatkit"):
        await client.alogout()
    assert len(cancels(fake_openai)) == 1
    assert "refused to cancel a ChatKit session (HTTP 500" in caplog.text
    assert statuses(fake_openai) == ["active"]
    assert (await ask(client)).status_code == 401  # signed out all the same


async def test_a_browser_remembers_its_newest_sessions_only(
    fake_openai: FakeOpenAI, carol: Any
) -> None:
    client = await client_for(carol)
    with hosted(HOSTED_SESSIONS_PER_MINUTE=MAX_REMEMBERED * 2):
        for _ in range(MAX_REMEMBERED + 2):
            assert (await ask(client)).status_code == 200
    await client.alogout()
    minted = [session["id"] for session in fake_openai.chatkit_sessions.minted]
    assert sorted(cancels(fake_openai)) == sorted(minted[-MAX_REMEMBERED:])
