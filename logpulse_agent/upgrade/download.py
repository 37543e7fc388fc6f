"""Downloading the install script: TLS verified by the injected client, redirects followed by
hand (none from https to http), at most 1 MiB, never with the control plane's credentials.

Every failure is an :class:`ActionError` with a one-line message naming the URL (redacted).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit

import httpx

from logpulse_agent.errors import ActionError, SettingsError
from logpulse_agent.redact import redact
from logpulse_agent.settings import check_url

MAX_SCRIPT_BYTES = 1024 * 1024
MAX_REDIRECTS = 5


async def fetch_install_script(
    http: httpx.AsyncClient, url: str, *, allow_insecure_http: bool, timeout: float
) -> bytes:
    """The body of the install script at ``url``, within ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(_follow(http, url, allow_insecure_http), timeout)
    except asyncio.TimeoutError:
        raise ActionError(
            f"downloading the install script from {redact(url)} timed out after {timeout:g} s"
        ) from None


async def _follow(http: httpx.AsyncClient, start: str, allow_insecure_http: bool) -> bytes:
    url = start
    for _ in range(MAX_REDIRECTS + 1):
        try:
            check_url("install_url", url, allow_insecure_http)
        except SettingsError as exc:
            raise ActionError(f"refusing to fetch the install script: {exc}") from None
        try:
            target, body = await _get_once(http, url)
        except httpx.HTTPError as exc:
            reason = redact(str(exc)) or type(exc).__name__
            raise ActionError(
                f"downloading the install script from {redact(url)} failed: {reason}"
            ) from None
        if target is None:
            if not body.strip():
                raise ActionError(f"install script at {redact(url)} is empty")
            return body
        if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
            raise ActionError(
                f"install script at {redact(url)} redirects to {redact(target)}: "
                "a redirect from https to plain http is refused"
            )
        url = target
    raise ActionError(f"install script at {redact(start)}: too many redirects")


async def _get_once(http: httpx.AsyncClient, url: str) -> tuple[str | None, bytes]:
    """One GET: ``(redirect target, b"")`` or ``(None, body)``; ActionError on non-2xx."""
    request = http.build_request("GET", url)
    # The client may be shared with the control-plane calls: never send it credentials.
    request.headers.pop("Authorization", None)
    response = await http.send(request, stream=True, follow_redirects=False)
    try:
        if response.is_redirect and "location" in response.headers:
            return urljoin(url, response.headers["location"]), b""
        if not response.is_success:
            raise ActionError(
                f"downloading the install script from {redact(url)} failed: "
                f"HTTP {response.status_code}"
            )
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_SCRIPT_BYTES:
                raise ActionError(
                    f"install script at {redact(url)} is larger than "
                    f"{MAX_SCRIPT_BYTES // 1024} KiB; refusing it"
                )
        return None, bytes(body)
    finally:
        await response.aclose()
