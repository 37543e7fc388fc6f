"""Fixtures of the server tests: an app on a temporary database with a fake clock, and a
client whose every response is checked against ``openapi.yaml``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from logpulse_agent.server.app import create_app
from logpulse_agent.server.render import IngestSettings
from tests.server.harness import ADMIN_TOKEN, FakeClock, Fleet
from tests.server.spec_check import SpecChecker

INGEST = IngestSettings(endpoint="https://ingest.example.com")


@pytest.fixture(scope="session")
def spec() -> SpecChecker:
    return SpecChecker()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "server.db"


@pytest.fixture
def app(db_path: Path, clock: FakeClock) -> Iterator[Starlette]:
    app = create_app(
        db_path, admin_token=ADMIN_TOKEN, ingest=INGEST, clock=clock, sweep_interval=None
    )
    yield app
    app.state.ctx.store.close()


@pytest.fixture
async def client(app: Starlette, spec: SpecChecker) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [spec.acheck]}
    ) as async_client:
        yield async_client


@pytest.fixture
def fleet(client: httpx.AsyncClient) -> Fleet:
    return Fleet(client)
