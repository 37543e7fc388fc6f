"""Headless Chromium for the fleet-page tests: Debian's browser, driven by Playwright.

Playwright's own browser download is not used (and not reachable here): it drives the system
``chromium`` (``scripts/bootstrap`` installs Debian's package when run as root). The launch
flags keep Chromium from reaching out to the network by itself, which this closed network
refuses; Playwright gives every launch a fresh ``--user-data-dir``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium to drive: ``LOGPULSE_TEST_CHROMIUM``, else ``chromium`` on ``PATH``."""
    return os.environ.get("LOGPULSE_TEST_CHROMIUM") or shutil.which("chromium")


def missing_reason() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package (the dev extra: scripts/bootstrap)"
    if chromium_path() is None:
        return (
            "needs Debian's chromium (scripts/bootstrap installs it as root;"
            " or apt-get install chromium, or set LOGPULSE_TEST_CHROMIUM)"
        )
    return None


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, url: str, token: str) -> None:
    """Sign in through the form, the way an operator does."""
    page.goto(f"{url}/ui/")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/agents")
