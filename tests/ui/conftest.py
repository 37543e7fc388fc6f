"""Fixtures of the fleet-page tests: the app on a temporary database with a fake clock, a
signed-in page client, and the admin API helper for setting up and checking state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from logpulse_agent.server.app import create_app
from logpulse_agent.server.render import IngestSettings
from tests.server.harness import ADMIN_TOKEN, FakeClock, Fleet
from tests.ui.pages import Pages

INGEST = IngestSettings(endpoint="https://ingest.example.com")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[Starlette]:
    app = create_app(
        tmp_path / "server.db",
        admin_token=ADMIN_TOKEN,
        ingest=INGEST,
        clock=clock,
        sweep_interval=None,
    )
    yield app
    app.state.ctx.store.close()


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def fleet(http: httpx.AsyncClient) -> Fleet:
    return Fleet(http)


@pytest.fixture
async def pages(http: httpx.AsyncClient) -> Pages:
    """A client signed in through the form."""
    signed = Pages(http)
    response = await signed.sign_in()
    assert response.status_code == 303, response.text
    return signed
