"""Fixtures shared by the system tests."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.releases import build_release, make_rootfs, world_traversable_dir

# The versions of the real (PyInstaller) releases the slow tests build.
REAL_VERSIONS = ("0.1.0", "0.2.0")


@pytest.fixture(scope="session")
def real_releases() -> Iterator[Path]:
    """A download base with real self-contained builds of REAL_VERSIONS (latest: the last).

    Built once per session (about 40 s per version on 2 cores).
    """
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (dev extra)")
    top = world_traversable_dir("logpulse-real-releases-")
    out = top / "releases"
    try:
        for version in REAL_VERSIONS:
            build_release().build(version, out, latest=True, say=False)
        yield out
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def root() -> Iterator[Path]:
    """An empty root filesystem (passwd, group, directories) to install into."""
    parent = world_traversable_dir("logpulse-root-")
    root = parent / "root"
    root.mkdir(mode=0o755)
    make_rootfs(root)
    try:
        yield root
    finally:
        shutil.rmtree(parent, ignore_errors=True)
