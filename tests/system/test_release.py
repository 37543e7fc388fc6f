"""Real release bundles: built with PyInstaller, installed, run with no Python on the host."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.system.conftest import REAL_VERSIONS
from tests.system.releases import (
    INSTALL_SH,
    UNIT_NAMES,
    build_release,
    serve,
)

pytestmark = [
    pytest.mark.slow,
    # One worker for every test that needs the real release builds, so they are built once.
    pytest.mark.xdist_group("releases"),
    pytest.mark.timeout(900),  # builds two releases with PyInstaller on first use
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer must run as root"),
]

NO_PYTHON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def no_python_bin(tmp_path: Path) -> str:
    """A PATH with the usual tools but no python at all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in NO_PYTHON_PATH.split(":"):
        for name in os.listdir(directory):
            target = Path(directory) / name
            if "python" in name or (bin_dir / name).exists() or target.is_dir():
                continue
            (bin_dir / name).symlink_to(target)
    return str(bin_dir)


class TestReleaseBundle:
    def test_layout_matches_what_the_installer_downloads(self, real_releases: Path) -> None:
        """<base>/latest, <base>/v<v>/<tarball> + SHA256SUMS, one top folder per tarball."""
        arch = build_release().host_arch()
        assert (real_releases / "latest").read_text() == f"v{REAL_VERSIONS[-1]}\n"
        for version in REAL_VERSIONS:
            folder = real_releases / f"v{version}"
            name = f"logpulse-agent-{version}-linux-{arch}.tar.gz"
            digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
            assert (folder / "SHA256SUMS").read_text() == f"{digest}  {name}\n"
            with tarfile.open(folder / name) as tar:
                names = tar.getnames()
                assert {n.split("/")[0] for n in names} == {f"logpulse-agent-{version}"}
                assert f"logpulse-agent-{version}/logpulse-agent" in names
                for script in ("logpulse-agent-upgrade", "logpulse-agent-probation"):
                    member = tar.getmember(f"logpulse-agent-{version}/systemd/{script}")
                    assert member.mode == 0o755
                for unit in UNIT_NAMES:
                    assert f"logpulse-agent-{version}/systemd/{unit}" in names
                assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())

    def test_bundle_is_built_for_a_small_daemon(self, real_releases: Path, tmp_path: Path) -> None:
        """What keeps the daemon's RSS down (benchmarks/README.md): bytecode without docstrings
        (-OO), and none of the modules httpx or PyInstaller would otherwise load at every start;
        the help text still comes through."""
        from PyInstaller.archive.readers import CArchiveReader

        version = REAL_VERSIONS[0]
        name = f"logpulse-agent-{version}-linux-{build_release().host_arch()}.tar.gz"
        with tarfile.open(real_releases / f"v{version}" / name) as tar:
            tar.extractall(tmp_path, filter="data")
        executable = tmp_path / f"logpulse-agent-{version}" / "logpulse-agent"
        pyz = CArchiveReader(str(executable)).open_embedded_archive("PYZ.pyz")
        tops = {module.split(".")[0] for module in pyz.toc}
        assert {"logpulse_agent", "httpx", "structlog"} <= tops
        assert not tops & {"pygments", "rich", "_pytest", "multiprocessing", "ctypes"}
        settings = pyz.extract("logpulse_agent.settings")  # its module's code object
        docstring = "Static settings: the settings file"
        assert not any(isinstance(c, str) and docstring in c for c in settings.co_consts)
        helped = subprocess.run(
            [str(executable), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert helped.returncode == 0, helped.stderr
        assert "Run the agent daemon" in helped.stdout

    def test_installed_bundle_runs_without_any_python(
        self, real_releases: Path, root: Path, tmp_path: Path
    ) -> None:
        """Installed from 127.0.0.1, the agent answers --version, status and vector-secret with
        a PATH that has no python (the bundle carries its own)."""
        path = no_python_bin(tmp_path)
        assert shutil.which("python3", path=path) is None
        with serve(real_releases.parent) as server:
            done = subprocess.run(
                ["sh", str(INSTALL_SH)],
                env={
                    "PATH": path,
                    "LOGPULSE_ROOT": str(root),
                    "LOGPULSE_DOWNLOAD_BASE": f"{server.url}/releases",
                    "LOGPULSE_VERSION": f"v{REAL_VERSIONS[0]}",
                },
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        assert done.returncode == 0, done.stdout + done.stderr
        agent = root / "opt/logpulse-agent/current/logpulse-agent"
        env = {"PATH": path, "LANG": "C.UTF-8"}

        def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(agent), *args], input=stdin, env=env, capture_output=True, text=True
            )

        version = run("--version")
        assert version.stdout.strip() == f"logpulse-agent {REAL_VERSIONS[0]}", version.stderr
        dirs = ["--config-dir", str(tmp_path / "etc"), "--state-dir", str(tmp_path / "state")]
        status = run("status", *dirs, "--log-dir", str(tmp_path / "log"))
        assert status.returncode == 2 and "not enrolled" in status.stdout
        token_file = tmp_path / "agent-token"
        token_file.write_text("AGT_bundle_test\n")
        token_file.chmod(0o600)
        # Both as a person types it and as the agent renders it for Vector when frozen
        # (sys.executable -m logpulse_agent vector-secret ...).
        for prefix in ((), ("-m", "logpulse_agent")):
            secret = run(
                *prefix,
                "vector-secret",
                "--token-file",
                str(token_file),
                stdin=json.dumps({"version": "1.0", "secrets": ["agent_token"]}),
            )
            assert secret.returncode == 0, secret.stderr
            assert json.loads(secret.stdout) == {
                "agent_token": {"value": "AGT_bundle_test", "error": None}
            }
