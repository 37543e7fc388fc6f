"""Fixtures shared by every test module."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the agent uses in production."""
    return "asyncio"
