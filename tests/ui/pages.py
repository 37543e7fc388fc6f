"""A browser-less client of the fleet pages: sign in through the form, keep the cookie, post
forms with the session's CSRF token, and read values back out of the HTML."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from tests.server.harness import ADMIN_TOKEN

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    match = CSRF_RE.search(page)
    assert match, "no CSRF field in the page"
    return match.group(1)


def text_of(page: str) -> str:
    """The page's text, tags removed, entities decoded, whitespace collapsed to one space."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


class Pages:
    """Requests as a signed-in browser makes them (same-origin, with cookies)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def sign_in(self, token: str = ADMIN_TOKEN) -> httpx.Response:
        form = await self.client.get("/ui/signin")
        response = await self.client.post(
            "/ui/signin", data={"csrf": csrf_of(form.text), "token": token, "next": "/ui/agents"}
        )
        if response.status_code == 303:
            self.csrf = csrf_of((await self.client.get("/ui/agents")).text)
        return response

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params or None)

    async def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, **kw: Any
    ) -> httpx.Response:
        """A form post carrying the session's CSRF token (unless ``data`` already has one)."""
        fields: list[tuple[str, str]] = list(data.items() if isinstance(data, dict) else data or [])
        if not any(name == "csrf" for name, _ in fields):
            fields.append(("csrf", self.csrf))
        return await self.client.post(
            path,
            content=str(httpx.QueryParams(fields)),
            headers={"Content-Type": "application/x-www-form-urlencoded", **kw.pop("headers", {})},
            **kw,
        )
