"""The admin in headless Chromium, for the synchronous browser tests of the live pages
(tests/test_browser_stop.py, tests/test_browser_live_list.py): a moderator, and a page signed in
as them on a live server that serves no static files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders

from tests.test_browser import CHROMIUM_ARGS, chromium_path

MODERATOR_PERMISSIONS = ("view_thread", "moderate_thread")


def moderator_user(username: str, password: str) -> Any:
    """Staff with ``view_thread`` and ``moderate_thread``."""
    user = get_user_model().objects.create_user(username, password=password, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_chatkit", codename__in=MODERATOR_PERMISSIONS
        )
    )
    return user


def serve_static(page: Any) -> None:
    """The live site serves no static files: the admin's scripts and styles from the finders."""

    def route(route: Any) -> None:
        found = finders.find(urlsplit(route.request.url).path.removeprefix("/static/"))
        if not found:
            route.fulfill(status=404, body="")
            return
        kind = "text/javascript" if found.endswith(".js") else "text/css"
        route.fulfill(status=200, content_type=kind, body=Path(found).read_bytes())

    page.route("**/static/**", route)


@dataclass
class AdminPage:
    page: Any
    # What the page logged as errors (its scripts must log none).
    console_errors: list[str] = field(default_factory=list)


@contextmanager
def signed_in_admin_page(
    site_url: str, username: str, password: str, next_path: str
) -> Iterator[AdminPage]:
    """Chromium on ``next_path`` of the site, signed in through the admin's login form."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            admin_page = AdminPage(browser.new_page())
            page = admin_page.page
            page.on(
                "console",
                lambda message: (
                    admin_page.console_errors.append(message.text)
                    if message.type == "error"
                    else None
                ),
            )
            serve_static(page)
            page.goto(f"{site_url}/admin/login/?next={next_path}")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("input[type=submit]")
            yield admin_page
        finally:
            browser.close()
