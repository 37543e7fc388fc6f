"""The root side of a remote upgrade: systemd/logpulse-agent-upgrade, run as root.

It takes exactly one thing from the unprivileged agent, a version in the request file, and
runs the installer it fetches itself, pinned to that version. These tests run it as root with
``nobody`` standing in for the agent user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.system.releases import REPO, ReleaseServer, serve, world_traversable_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the upgrade helper runs as root")

HELPER = REPO / "systemd" / "logpulse-agent-upgrade"
NOBODY = 65534

# The installer the helper downloads: records what it was given, exits with $EXIT_WITH.
INSTALLER = """#!/bin/sh
env | sort > "{work}/installer.env"
echo "fake installer: installing $LOGPULSE_VERSION"
exit {exit_code}
"""


@dataclass
class Host:
    work: Path
    request: Path
    log: Path
    server: ReleaseServer

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LOGPULSE_AGENT_USER": "nobody",
            "LOGPULSE_UPGRADE_REQUEST": str(self.request),
            "LOGPULSE_UPGRADE_LOG": str(self.log),
            "LOGPULSE_INSTALL_URL": f"{self.server.url}/install.sh",
            "LOGPULSE_DOWNLOAD_BASE": "https://releases.example/releases",
            "SECRET_OF_THE_SERVICE": "must-not-reach-the-installer",
            **env,
        }
        return subprocess.run(
            ["sh", str(HELPER)], env=environ, capture_output=True, text=True, timeout=60
        )

    def ask(self, content: str) -> None:
        """What the agent does: write the request as its own user."""
        self.request.write_text(content)
        os.chown(self.request, NOBODY, NOBODY)

    def installer(self, exit_code: int = 0) -> None:
        (self.work / "srv" / "install.sh").write_text(
            INSTALLER.format(work=self.work, exit_code=exit_code)
        )


@pytest.fixture
def host() -> Iterator[Host]:
    work = world_traversable_dir("logpulse-helper-")
    for name in ("state", "log"):
        (work / name).mkdir(mode=0o750)
        os.chown(work / name, NOBODY, NOBODY)
    (work / "srv").mkdir()
    try:
        with serve(work / "srv") as server:
            host = Host(
                work, work / "state" / "upgrade-request", work / "log" / "upgrade.log", server
            )
            host.installer()
            yield host
    finally:
        shutil.rmtree(work, ignore_errors=True)


class TestUpgradeHelper:
    def test_runs_the_fetched_installer_pinned_to_the_requested_version(self, host: Host) -> None:
        """A valid request: the installer from the configured URL runs with only the pinned
        version and the download settings in its environment; the request is consumed."""
        host.ask("0.2.0\n")
        done = host.run()
        assert done.returncode == 0, done.stdout + done.stderr
        assert not host.request.exists()
        assert host.server.requests == ["/install.sh"]
        env = dict(
            line.split("=", 1) for line in (host.work / "installer.env").read_text().splitlines()
        )
        assert env["LOGPULSE_VERSION"] == "v0.2.0"
        assert env["LOGPULSE_DOWNLOAD_BASE"] == "https://releases.example/releases"
        assert "SECRET_OF_THE_SERVICE" not in env
        log = host.log.read_text()
        assert "fake installer: installing v0.2.0" in log
        assert "installer exited with status 0" in log
        assert host.log.stat().st_uid == NOBODY  # appended with the agent's rights, not root's
        assert "fake installer: installing v0.2.0" in done.stdout  # the journal gets it too

    @pytest.mark.parametrize(
        "request_text",
        ["1.2.3; touch /tmp/logpulse-pwned", "$(touch /tmp/logpulse-pwned)", "1.2", "v1.2.3\nx"],
    )
    def test_refuses_anything_but_a_strict_version(self, host: Host, request_text: str) -> None:
        """Shell or garbage in the request: refused, nothing fetched, nothing run."""
        host.ask(request_text)
        done = host.run()
        assert done.returncode == 2
        assert "refused" in host.log.read_text()
        assert host.server.requests == []
        assert not Path("/tmp/logpulse-pwned").exists()
        assert not host.request.exists()

    def test_a_symlinked_request_is_read_with_the_agents_rights(self, host: Host) -> None:
        """A request planted as a symlink to a root-only file reveals nothing and runs nothing."""
        secret = host.work / "root-only"
        secret.write_text("v6.6.6\n")
        secret.chmod(0o600)
        host.request.symlink_to(secret)
        done = host.run()
        assert done.returncode == 0
        assert "no upgrade request" in host.log.read_text()
        assert "6.6.6" not in host.log.read_text()
        assert host.server.requests == []
        assert secret.read_text() == "v6.6.6\n"

    def test_a_symlinked_log_is_not_written_through_as_root(self, host: Host) -> None:
        """upgrade.log planted as a symlink to a root file: root's file stays untouched."""
        target = host.work / "root-file"
        target.write_text("precious\n")
        target.chmod(0o644)
        host.log.symlink_to(target)
        host.ask("0.2.0")
        host.run()
        assert target.read_text() == "precious\n"

    def test_a_failing_installer_fails_the_service_with_its_status(self, host: Host) -> None:
        """The installer's status is the service's; the log says so for the agent to report."""
        host.installer(exit_code=3)
        host.ask("v0.2.0")
        done = host.run()
        assert done.returncode == 3
        assert "installer exited with status 3" in host.log.read_text()

    def test_refuses_a_plain_http_install_url_off_loopback(self, host: Host) -> None:
        """Root fetches the installer over https (loopback http only for tests)."""
        host.ask("0.2.0")
        done = host.run(LOGPULSE_INSTALL_URL="http://get.example/install.sh")
        assert done.returncode == 2
        assert "plain http" in host.log.read_text()

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1@get.example/install.sh",
            "http://localhost:80@get.example/install.sh",
            "http://[::1]@get.example/install.sh",
            "http://127.get.example/install.sh",
            "http://localhost.get.example/install.sh",
        ],
    )
    def test_a_url_that_only_starts_like_loopback_is_not_loopback(
        self, host: Host, url: str
    ) -> None:
        host.ask("0.2.0")
        done = host.run(LOGPULSE_INSTALL_URL=url)
        assert done.returncode == 2
        assert "plain http" in host.log.read_text()

    @pytest.mark.parametrize(
        ("installed", "requested", "allowed"),
        [
            ("0.3.0", "0.2.9", False),
            ("0.3.0", "v0.1.0", False),
            ("0.10.0", "0.9.0", False),
            ("0.3.0", "0.3.1", True),
            ("0.3.0", "0.10.0", True),
            ("0.3.0-rc.1", "0.3.0", True),
            ("0.3.0", "0.3.0-rc.1", False),  # a pre-release of the installed final release
            ("0.3.0-rc.1", "0.3.0-rc.2", True),
            ("0.3.0", "0.3.0", True),
        ],
    )
    def test_never_downgrades_on_the_agents_word(
        self, host: Host, installed: str, requested: str, allowed: bool
    ) -> None:
        """A compromised agent user must not get root to reinstall an older, flawed release:
        older versions are refused unless root's install.env allows downgrades."""
        current = host.work / "opt" / "current"
        current.parent.mkdir()
        current.symlink_to(f"versions/{installed}")
        host.ask(requested)
        done = host.run(LOGPULSE_CURRENT_LINK=str(current))
        if allowed:
            assert done.returncode == 0, host.log.read_text()
            assert host.server.requests == ["/install.sh"]
        else:
            assert done.returncode == 2
            assert f"is older than the installed {installed}" in host.log.read_text()
            assert host.server.requests == []
            host.ask(requested)
            allowed_by_root = host.run(
                LOGPULSE_CURRENT_LINK=str(current), LOGPULSE_ALLOW_DOWNGRADE="1"
            )
            assert allowed_by_root.returncode == 0, host.log.read_text()

    def test_refuses_to_fetch_the_installer_with_wget(self, host: Host, tmp_path: Path) -> None:
        """Without curl the installer is not fetched at all: wget would follow a redirect from
        https to http and has no size cap, so it is never the fallback."""
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            for name in os.listdir(directory) if os.path.isdir(directory) else ():
                link = bin_dir / name
                if name != "curl" and not link.exists() and not link.is_symlink():
                    link.symlink_to(Path(directory) / name)
        host.ask("0.2.0")
        done = host.run(PATH=str(bin_dir))
        assert done.returncode == 2
        assert "refused: curl is required to fetch the installer" in host.log.read_text()
        assert host.server.requests == []
        assert not (host.work / "installer.env").exists()

    def test_killing_the_agents_log_writer_does_not_kill_the_installer(self, host: Host) -> None:
        """The agent user owns the process appending to upgrade.log; killing it mid-upgrade
        must not SIGPIPE the root installer between switching `current` and restarting."""
        (host.work / "srv" / "install.sh").write_text(
            "#!/bin/sh\n"
            'echo "fake installer: switching"\n'
            "pkill -KILL -u nobody -x tee\n"
            "sleep 0.5\n"
            'for i in 1 2 3 4 5; do echo "fake installer: still going $i"; done\n'
            f'touch "{host.work}/finished"\n'
        )
        host.ask("0.2.0")
        done = host.run()
        assert (host.work / "finished").exists(), done.stdout + done.stderr
        assert done.returncode == 0
