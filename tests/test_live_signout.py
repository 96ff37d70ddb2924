"""Signing out closes the sockets the signed-out browser session opened (4401), and only those:
the same user's other browsers keep theirs (django_chatkit.live.signout)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from django_chatkit.live import routes
from django_chatkit.live.consumers import CloseCode
from django_chatkit.live.signout import session_group
from tests.test_live import (
    ORIGIN,
    anonymous_allowed,  # noqa: F401  (a fixture)
    application,
    connection_cache,  # noqa: F401  (a fixture)
    layer,  # noqa: F401  (a fixture)
    new_thread,
    outcome,
    session_cookie,
    socket,
    user,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("connection_cache", "layer"),
]

# Long enough that a close which is coming arrives: the message crosses one in-memory layer.
CLOSE_TIMEOUT = 5


def signed_in(someone: Any) -> tuple[Client, str]:
    """A browser of its own (a session of its own) with ``someone`` signed in."""
    client = Client()
    client.force_login(someone)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def staff_socket(cookie: str) -> WebsocketCommunicator:
    headers = [
        (b"host", b"testserver"),
        (b"origin", ORIGIN.encode()),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    return WebsocketCommunicator(application(), routes.STAFF_PATH, headers=headers)


async def closed_with(communicator: WebsocketCommunicator) -> int:
    message = await communicator.receive_output(CLOSE_TIMEOUT)
    assert message["type"] == "websocket.close", message
    return int(message["code"])


async def test_signing_out_closes_that_browsers_sockets_only() -> None:
    alice = await sync_to_async(user)("alice")
    thread_id = await sync_to_async(new_thread)(alice)
    laptop, laptop_cookie = await sync_to_async(signed_in)(alice)
    _, phone_cookie = await sync_to_async(signed_in)(alice)
    on_laptop, on_phone = socket(thread_id, laptop_cookie), socket(thread_id, phone_cookie)
    assert await outcome(on_laptop) == "open"
    assert await outcome(on_phone) == "open"

    await sync_to_async(laptop.logout)()

    assert await closed_with(on_laptop) == CloseCode.SIGNED_OUT
    assert CloseCode.SIGNED_OUT.value == 4401  # documented (docs/live.md)
    assert await on_phone.receive_nothing(timeout=0.2)
    await on_phone.disconnect()
    # Signed out, the laptop's next handshake is refused as anyone else's would be.
    again = socket(thread_id, laptop_cookie)
    assert await outcome(again) == CloseCode.NOT_FOUND


async def test_signing_out_closes_the_admins_staff_socket() -> None:
    moderator = await sync_to_async(user)("mod", "view_thread", staff=True)
    browser, cookie = await sync_to_async(signed_in)(moderator)
    communicator = staff_socket(cookie)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["event"] == "subscribed"

    await sync_to_async(browser.logout)()

    assert await closed_with(communicator) == CloseCode.SIGNED_OUT


@pytest.mark.usefixtures("anonymous_allowed")
async def test_an_anonymous_visitor_who_signs_out_is_closed_too() -> None:
    """Django's logout() signals for visitors who never signed in as well, and flushes their
    session: the anonymous owner token goes with it."""
    thread_id = await sync_to_async(new_thread)(None, "visitor-token")
    cookie = await sync_to_async(session_cookie)(None, "visitor-token")
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    communicator = socket(thread_id, cookie)
    assert await outcome(communicator) == "open"

    await sync_to_async(client.logout)()

    assert await closed_with(communicator) == CloseCode.SIGNED_OUT


def test_without_a_channel_layer_signing_out_works_and_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = get_user_model().objects.create_user("alice", password="pw")
    browser, cookie = signed_in(alice)
    with override_settings(CHANNEL_LAYERS={}), caplog.at_level(logging.WARNING):
        browser.logout()
    assert not Session.objects.filter(session_key=cookie).exists()
    assert caplog.records == []


def test_session_groups_are_valid_and_hide_the_key() -> None:
    group = session_group("k" * 32)
    assert group.startswith("chatkit.session.") and len(group) < 100
    assert "k" * 8 not in group
