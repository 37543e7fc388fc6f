"""Which Debian archive the container test's debootstrap uses: the host's own apt mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.container import debian_mirror


def test_the_environment_wins() -> None:
    env = {"LOGPULSE_TEST_DEBIAN_MIRROR": "http://mirror.example/debian"}
    assert debian_mirror(env, []) == "http://mirror.example/debian"


def test_a_deb822_source_is_read(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    )
    assert debian_mirror({}, [sources]) == "http://mirror.example/debian"


def test_a_one_line_source_with_options_is_read(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list"
    sources.write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg] https://mirror.example/debian/ bookworm main\n"
    )
    assert debian_mirror({}, [sources]) == "https://mirror.example/debian/"


def test_no_debian_archive_says_how_to_set_one(tmp_path: Path) -> None:
    other = tmp_path / "other.list"
    other.write_text("deb https://packages.example/node nodistro main\n")
    with pytest.raises(RuntimeError, match="LOGPULSE_TEST_DEBIAN_MIRROR"):
        debian_mirror({}, [other, tmp_path / "missing.sources"])
