"""install.sh into a temporary root, with release bundles served from 127.0.0.1.

The installer runs for real (as root, as it must): downloads, checksum, unpack, the atomic
``current`` switch, the logpulse user in the root's own passwd, the directories and modes of the
file layout, the units. Every failure must leave the root byte-for-byte as it was.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.system.releases import (
    INSTALL_SH,
    REPO,
    UNIT_NAMES,
    ReleaseServer,
    build_release,
    passwd_ids,
    publish_fake,
    serve,
    snapshot,
    world_traversable_dir,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the installer must run as root")

LATEST = "0.2.0"
ARCH = build_release().host_arch()


@dataclass
class Releases:
    server: ReleaseServer
    base: str
    dir: Path


@pytest.fixture(scope="module")
def releases() -> Iterator[Releases]:
    top = world_traversable_dir("logpulse-releases-")
    out = top / "releases"
    try:
        for version in ("0.1.0", "0.3.0-rc.1", LATEST):
            publish_fake(out, version, ARCH, top / "work", latest=version == LATEST)
        # A release whose SHA256SUMS does not match its tarball.
        publish_fake(out, "0.9.0", ARCH, top / "work")
        sums = out / "v0.9.0" / "SHA256SUMS"
        sums.write_text("0" * 64 + sums.read_text()[64:])
        # A release that is not a logpulse-agent bundle at all.
        (top / "junk").mkdir()
        (top / "junk" / "README").write_text("not an agent\n")
        build_release().pack(top / "junk", "0.8.0", ARCH, out, latest=False)
        with serve(top) as server:
            yield Releases(server, f"{server.url}/releases", out)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def install(
    root: Path,
    releases: Releases,
    *,
    version: str | None = None,
    env: dict[str, str] | None = None,
    argv_prefix: tuple[str, ...] = (),
    path: str = "/usr/sbin:/usr/bin:/sbin:/bin",
) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": path,
        "LANG": "C.UTF-8",
        "LOGPULSE_ROOT": str(root),
        "LOGPULSE_DOWNLOAD_BASE": releases.base,
        "LOGPULSE_INSTALL_URL": f"{releases.server.url}/install.sh",
    }
    if version is not None:
        environ["LOGPULSE_VERSION"] = version
    environ.update(env or {})
    script = root.parent / "install.sh"
    if not script.exists():
        shutil.copy(INSTALL_SH, script)
        script.chmod(0o755)
    return subprocess.run(
        [*argv_prefix, "sh", str(script)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"installer failed:\n{done.stdout}\n{done.stderr}"
    return done


def mode_of(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


OPT = Path("opt/logpulse-agent")


class TestFreshInstall:
    def test_installs_the_latest_release_with_the_spec_layout(
        self, root: Path, releases: Releases
    ) -> None:
        """Latest by default; files, owners and modes of SPEC section 2."""
        done = ok(install(root, releases))
        uid, gid = passwd_ids(root, "logpulse")
        assert uid != 0 and gid != 0
        opt = root / OPT
        assert os.readlink(opt / "current") == f"versions/{LATEST}"
        assert mode_of(opt / "versions" / LATEST) == (0o755, 0, 0)
        assert mode_of(opt / "versions") == (0o755, 0, 0)
        assert os.readlink(root / "usr/bin/logpulse-agent") == (
            "/opt/logpulse-agent/current/logpulse-agent"
        )
        assert os.readlink(opt / "vector") == "current/vector"
        assert mode_of((opt / "vector").resolve()) == (0o755, 0, 0)
        assert os.access(opt / "vector" / "bin" / "vector", os.X_OK)
        etc = root / "etc/logpulse-agent"
        assert mode_of(etc) == (0o1770, 0, gid)
        assert mode_of(etc / "agent.yaml") == (0o640, 0, gid)
        assert mode_of(root / "var/lib/logpulse-agent") == (0o750, uid, gid)
        assert mode_of(root / "var/log/logpulse-agent") == (0o750, uid, gid)
        assert not (etc / "agent-token").exists()
        version = subprocess.run(
            [str(opt / "current" / "logpulse-agent"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert version.stdout.strip() == f"logpulse-agent {LATEST}"
        assert "logpulse-agent enrol --api-url" in done.stdout
        assert done.stderr == ""

    def test_installs_the_units_of_the_release(self, root: Path, releases: Releases) -> None:
        """The units are the repository's own, 0644, and the upgrade path unit is enabled."""
        ok(install(root, releases))
        for name in UNIT_NAMES:
            installed = root / "etc/systemd/system" / name
            assert installed.read_bytes() == (REPO / "systemd" / name).read_bytes()
            assert mode_of(installed) == (0o644, 0, 0)
        helper = root / OPT / "current/systemd/logpulse-agent-upgrade"
        assert helper.read_bytes() == (REPO / "systemd/logpulse-agent-upgrade").read_bytes()
        assert mode_of(helper) == (0o755, 0, 0)
        # The probation watcher runs from a copy outside the releases.
        watcher = root / OPT / "logpulse-agent-probation"
        assert watcher.read_bytes() == (REPO / "systemd/logpulse-agent-probation").read_bytes()
        assert mode_of(watcher) == (0o755, 0, 0)
        assert not (root / OPT / "probation").exists()  # a fresh install has nothing to prove
        if shutil.which("systemctl"):
            wants = root / "etc/systemd/system/multi-user.target.wants"
            assert (wants / "logpulse-agent-upgrade.path").is_symlink()
            assert not (wants / "logpulse-agent.service").exists()  # not before enrolment
            timers = root / "etc/systemd/system/timers.target.wants"
            assert (timers / "logpulse-agent-probation.timer").is_symlink()

    def test_records_where_upgrades_come_from(self, root: Path, releases: Releases) -> None:
        """The root-only install.env names the installer URL and the download base."""
        ok(install(root, releases))
        env = root / OPT / "install.env"
        assert mode_of(env) == (0o644, 0, 0)
        lines = env.read_text().splitlines()
        assert f"LOGPULSE_INSTALL_URL={releases.server.url}/install.sh" in lines
        assert f"LOGPULSE_DOWNLOAD_BASE={releases.base}" in lines

    def test_pins_the_requested_version(self, root: Path, releases: Releases) -> None:
        """LOGPULSE_VERSION=v0.1.0 installs exactly that release, with or without the v."""
        ok(install(root, releases, version="v0.1.0"))
        assert os.readlink(root / OPT / "current") == "versions/0.1.0"
        ok(install(root, releases, version="0.3.0-rc.1"))
        assert os.readlink(root / OPT / "current") == "versions/0.3.0-rc.1"

    def test_a_bare_staging_root_gets_no_user(self, root: Path, releases: Releases) -> None:
        """Without ROOT/etc/passwd the user is skipped with a note; files stay root's."""
        shutil.rmtree(root / "etc")
        done = ok(install(root, releases))
        assert "no logpulse user was created" in done.stdout
        assert mode_of(root / "var/lib/logpulse-agent") == (0o750, 0, 0)


class TestUpgradeAndRerun:
    def test_keeps_the_previous_release_and_prunes_older_ones(
        self, root: Path, releases: Releases
    ) -> None:
        """0.1.0 → 0.2.0 → 0.3.0-rc.1: current and previous are kept, 0.1.0 is removed."""
        ok(install(root, releases, version="0.1.0"))
        done = ok(install(root, releases, version="0.2.0"))
        assert "switched" in done.stdout and "(was 0.1.0)" in done.stdout
        versions = root / OPT / "versions"
        assert sorted(p.name for p in versions.iterdir()) == ["0.1.0", "0.2.0"]
        assert os.readlink(root / OPT / "previous") == "versions/0.1.0"
        ok(install(root, releases, version="0.3.0-rc.1"))
        assert sorted(p.name for p in versions.iterdir()) == ["0.2.0", "0.3.0-rc.1"]
        assert os.readlink(root / OPT / "current") == "versions/0.3.0-rc.1"
        assert os.readlink(root / OPT / "previous") == "versions/0.2.0"

    def test_installs_where_tmp_is_mounted_noexec(
        self, root: Path, releases: Releases, tmp_path: Path
    ) -> None:
        """CIS-hardened hosts mount /tmp noexec; the new build is unpacked and tried next to
        the releases instead, and a leftover of a killed run is cleared on the way."""
        noexec = tmp_path / "noexec-tmp"
        noexec.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "noexec,size=64m", "tmpfs", str(noexec)], check=True
        )
        try:
            ok(install(root, releases, version="0.1.0"))
            stale = root / OPT / "versions" / ".unpack-0.1.0.killed"
            stale.mkdir()
            two_hours_ago = time.time() - 7200
            os.utime(stale, (two_hours_ago, two_hours_ago))
            fresh = root / OPT / "versions" / ".unpack-0.2.0.running"  # another run, unpacking
            fresh.mkdir()
            ok(install(root, releases, env={"TMPDIR": str(noexec)}))
            assert os.readlink(root / OPT / "current") == f"versions/{LATEST}"
            assert sorted(p.name for p in (root / OPT / "versions").iterdir()) == [
                ".unpack-0.2.0.running",
                "0.1.0",
                LATEST,
            ]
            assert list(noexec.iterdir()) == []
        finally:
            subprocess.run(["umount", str(noexec)], check=True)

    def test_rerunning_changes_nothing(self, root: Path, releases: Releases) -> None:
        """A second run of the same version leaves every file, mode and link as it was,
        and keeps the previous release (it is not mistaken for an old one)."""
        ok(install(root, releases, version="0.1.0"))
        ok(install(root, releases))
        before = snapshot(root)
        done = ok(install(root, releases))
        assert snapshot(root) == before
        assert "already unpacked" in done.stdout
        assert os.readlink(root / OPT / "previous") == "versions/0.1.0"

    @pytest.mark.parametrize("kind", ["symlink", "hardlink"])
    @pytest.mark.parametrize("name", ["agent-token", "bootstrap-token", "agent.yaml"])
    def test_never_follows_the_agents_links_in_its_config_dir(
        self, root: Path, releases: Releases, name: str, kind: str
    ) -> None:
        """The agent can write into /etc/logpulse-agent; a link it plants there (here: to a
        root file outside the tree, as it would to /etc/shadow) is neither chowned nor
        chmodded by the root installer on the next run (an upgrade)."""
        ok(install(root, releases))
        victim = root.parent / "shadow"
        victim.write_text("root:secret\n")
        victim.chmod(0o600)
        planted = root / "etc/logpulse-agent" / name
        planted.unlink(missing_ok=True)
        if kind == "symlink":
            planted.symlink_to(victim)
        else:  # possible for the agent only where fs.protected_hardlinks=0
            os.link(victim, planted)
        done = ok(install(root, releases))
        assert mode_of(victim) == (0o600, 0, 0)
        if name != "agent-token":  # the agent's own file is not even looked at
            assert f"{name} is not a root-owned regular file with one link" in done.stderr

    def test_operator_lines_in_install_env_survive_every_upgrade(
        self, root: Path, releases: Releases
    ) -> None:
        """The installer rewrites its own three lines of install.env and keeps the operator's
        (here: downgrades allowed, a probation setting, a proxy and a comment) through two
        upgrades, in place, once each; its header is not repeated."""
        ok(install(root, releases, version="0.1.0"))
        env = root / OPT / "install.env"
        operator = [
            "# ours: staging hosts may go back",
            "LOGPULSE_ALLOW_DOWNGRADE=1",
            "LOGPULSE_UPGRADE_PROBATION=45",
            "LOGPULSE_UPGRADE_PROBATION_RESTARTS=3",
            "HTTPS_PROXY=http://proxy.example:3128",
        ]
        env.write_text(env.read_text() + "\n".join(operator) + "\n")
        mirror = f"{releases.server.url}/releases/"  # another spelling of the same base
        ok(install(root, releases, version="0.3.0-rc.1", env={"LOGPULSE_DOWNLOAD_BASE": mirror}))
        ok(install(root, releases, version="0.2.0"))
        lines = env.read_text().splitlines()
        for line in operator:
            assert lines.count(line) == 1, lines
        assert lines.count(f"LOGPULSE_DOWNLOAD_BASE={releases.base}") == 1, lines
        assert sum(line.startswith("LOGPULSE_DOWNLOAD_BASE=") for line in lines) == 1
        header = "# Written by the logpulse-agent installer"
        assert sum(line.startswith(header) for line in lines) == 1
        assert mode_of(env) == (0o644, 0, 0)

    @pytest.mark.parametrize(
        ("line", "error"),
        [
            ("LOGPULSE_UPGRADE_PROBATION=10m", "LOGPULSE_UPGRADE_PROBATION '10m' is not a number"),
            ("LOGPULSE_UPGRADE_PROBATION=5", "LOGPULSE_UPGRADE_PROBATION '5' is not a number"),
            ("LOGPULSE_UPGRADE_PROBATION=0600", "LOGPULSE_UPGRADE_PROBATION '0600' is not"),
            ("LOGPULSE_UPGRADE_PROBATION_RESTARTS=0", "_RESTARTS '0' is not a number from 1"),
        ],
    )
    def test_a_bad_operator_setting_fails_before_anything_changes(
        self, root: Path, releases: Releases, line: str, error: str
    ) -> None:
        """A probation setting in install.env that is not a number in range is one error line
        naming it, and the host stays as it was (an unattended upgrade reports that line)."""
        ok(install(root, releases, version="0.1.0"))
        env = root / OPT / "install.env"
        env.write_text(env.read_text() + line + "\n")
        before = snapshot(root)
        done = install(root, releases, version="0.2.0")
        assert done.returncode == 1
        errors = [e for e in done.stderr.splitlines() if "error:" in e]
        assert len(errors) == 1 and error in errors[0], done.stderr
        assert snapshot(root) == before

    def test_the_environment_overrides_install_env_for_one_run(
        self, root: Path, releases: Releases
    ) -> None:
        """LOGPULSE_UPGRADE_PROBATION given to the installer wins over install.env (so an
        operator can install once without probation) and is not written anywhere."""
        ok(install(root, releases, version="0.1.0"))
        env = root / OPT / "install.env"
        env.write_text(env.read_text() + "LOGPULSE_UPGRADE_PROBATION=10m\n")
        ok(install(root, releases, version="0.2.0", env={"LOGPULSE_UPGRADE_PROBATION": "0"}))
        assert "LOGPULSE_UPGRADE_PROBATION=0" not in env.read_text()
        assert "LOGPULSE_UPGRADE_PROBATION=10m" in env.read_text()

    def test_rerunning_keeps_operator_settings_and_repairs_modes(
        self, root: Path, releases: Releases
    ) -> None:
        """agent.yaml is never overwritten; a loosened mode is put back."""
        ok(install(root, releases))
        settings = root / "etc/logpulse-agent/agent.yaml"
        settings.write_text("api_url: https://api.example\n")
        settings.chmod(0o666)
        ok(install(root, releases))
        assert settings.read_text() == "api_url: https://api.example\n"
        assert stat.S_IMODE(settings.stat().st_mode) == 0o640


class TestEnrolment:
    def test_enrols_as_the_agent_user_when_given_url_and_token(
        self, root: Path, releases: Releases
    ) -> None:
        """LOGPULSE_API_URL + LOGPULSE_ENROL_TOKEN: enrol runs as logpulse; the token stays
        out of the output and the command line."""
        token = "EBT_installer_test_secret"
        done = ok(
            install(
                root,
                releases,
                env={"LOGPULSE_API_URL": "https://api.example", "LOGPULSE_ENROL_TOKEN": token},
            )
        )
        uid, gid = passwd_ids(root, "logpulse")
        calls = (root / "var/lib/logpulse-agent/fake-agent.calls").read_text().splitlines()
        assert len(calls) == 1
        assert calls[0].startswith(f"{uid} --api-url https://api.example --config ")
        assert token not in calls[0]
        assert token not in done.stdout + done.stderr
        assert mode_of(root / "etc/logpulse-agent/agent-token") == (0o600, uid, gid)
        assert "enrolled: agent id agent-1" in done.stdout

    def test_an_enrolled_host_is_restarted_not_enrolled_again(
        self, root: Path, releases: Releases
    ) -> None:
        """The upgrade path: an enrolled host keeps its identity and gets a restart."""
        env = {"LOGPULSE_API_URL": "https://api.example", "LOGPULSE_ENROL_TOKEN": "EBT_x"}
        ok(install(root, releases, version="0.1.0", env=env))
        done = ok(install(root, releases, env=env))
        calls = (root / "var/lib/logpulse-agent/fake-agent.calls").read_text().splitlines()
        assert len(calls) == 1
        assert "systemctl restart logpulse-agent" in done.stdout

    def test_a_provisioned_bootstrap_token_needs_no_enrol_command(
        self, root: Path, releases: Releases
    ) -> None:
        """bootstrap-token + api_url in agent.yaml: the agent enrols itself once started; the
        token file gets root:logpulse 0640."""
        etc = root / "etc/logpulse-agent"
        etc.mkdir(parents=True)
        (etc / "agent.yaml").write_text("api_url: https://api.example\n")
        (etc / "bootstrap-token").write_text("EBT_provisioned\n")
        (etc / "bootstrap-token").chmod(0o600)
        done = ok(install(root, releases))
        assert "the agent enrols itself when it starts" in done.stdout
        _, gid = passwd_ids(root, "logpulse")
        assert mode_of(etc / "bootstrap-token") == (0o640, 0, gid)
        assert not (root / "var/lib/logpulse-agent/fake-agent.calls").exists()


def tools_without(tmp_path: Path, missing: set[str]) -> Path:
    """A PATH directory with the usual tools linked in, except ``missing``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = Path(directory) / name
            link = bin_dir / name
            if name in missing or link.exists() or link.is_symlink():
                continue
            if os.access(target, os.X_OK) and not target.is_dir():
                link.symlink_to(target)
    return bin_dir


FAILURES = {
    "not root": "must run as root",
    "no downloader": "curl is required",
    "only wget": "curl is required (wget is not used: it follows redirects from https to http)",
    "unsupported arch": "unsupported architecture 'sparc64'",
    "HTTP 404": "HTTP 404",
    "server down": "cannot download",
    "checksum mismatch": "checksum mismatch",
    "not a release": "is not a logpulse-agent release",
    "shell in the version": "is not a version",
    "plain http off loopback": "plain http",
    "plain http disguised as loopback": "plain http",
}


class TestFailuresChangeNothing:
    @pytest.mark.parametrize("case", sorted(FAILURES))
    def test_fails_with_one_clear_line_and_an_untouched_tree(
        self, case: str, root: Path, releases: Releases, tmp_path: Path
    ) -> None:
        """Each failure: non-zero exit, one 'error:' line naming the cause, nothing changed."""
        ok(install(root, releases, version="0.1.0"))
        before = snapshot(root)
        kwargs: dict[str, object] = {}
        if case == "not root":
            kwargs["argv_prefix"] = (
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            )
        elif case == "no downloader":
            kwargs["path"] = str(tools_without(tmp_path, {"curl", "wget"}))
        elif case == "only wget":
            # wget cannot be held to https on redirects nor to a size: refused, not used.
            kwargs["path"] = str(tools_without(tmp_path, {"curl"}))
        elif case == "unsupported arch":
            kwargs["env"] = {"LOGPULSE_ARCH": "sparc64"}
        elif case == "HTTP 404":
            kwargs["version"] = "v9.9.9"
        elif case == "server down":
            kwargs["env"] = {"LOGPULSE_DOWNLOAD_BASE": "http://127.0.0.1:9/releases"}
        elif case == "checksum mismatch":
            kwargs["version"] = "v0.9.0"
        elif case == "not a release":
            kwargs["version"] = "v0.8.0"
        elif case == "shell in the version":
            kwargs["version"] = "1.2.3; touch /tmp/logpulse-pwned"
        elif case == "plain http off loopback":
            kwargs["env"] = {"LOGPULSE_DOWNLOAD_BASE": "http://releases.example/releases"}
        elif case == "plain http disguised as loopback":
            kwargs["env"] = {"LOGPULSE_DOWNLOAD_BASE": "http://127.0.0.1@releases.example/r"}
        done = install(root, releases, **kwargs)  # type: ignore[arg-type]
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, done.stderr
        assert FAILURES[case] in errors[0]
        assert snapshot(root) == before
        assert not Path("/tmp/logpulse-pwned").exists()

    @pytest.mark.parametrize("fraction", [0.3, 0.6, 0.8, 0.95, 0.999])
    def test_a_download_cut_short_runs_nothing(
        self, fraction: float, root: Path, releases: Releases
    ) -> None:
        """`curl | sh` with the connection dropped: sh gets a prefix of the script, fails to
        parse it and changes nothing (upgrading 0.1.0 to the latest here)."""
        ok(install(root, releases, version="0.1.0"))
        before = snapshot(root)
        lines = INSTALL_SH.read_text().splitlines(keepends=True)
        prefix = "".join(lines[: int(len(lines) * fraction)])
        done = subprocess.run(
            ["sh"],
            input=prefix,
            env={
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "LOGPULSE_ROOT": str(root),
                "LOGPULSE_DOWNLOAD_BASE": releases.base,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0, done.stdout
        assert done.stdout == ""
        assert snapshot(root) == before

    @pytest.mark.parametrize("version", ["v0.9.0", "v0.8.0"], ids=["bad checksum", "not a release"])
    def test_a_fresh_root_stays_empty_on_failure(
        self, root: Path, releases: Releases, version: str
    ) -> None:
        """Nothing is created before the download is verified, and what was made to unpack
        and try the release is removed again when it turns out not to be one."""
        before = snapshot(root)
        assert install(root, releases, version=version).returncode != 0
        assert snapshot(root) == before


class TestUnitsAndScripts:
    def test_systemd_analyze_verify_passes_on_the_installed_units(
        self, root: Path, releases: Releases
    ) -> None:
        """`systemd-analyze verify` finds nothing to say about any unit, as installed."""
        analyze = shutil.which("systemd-analyze")
        system_units = Path("/usr/lib/systemd/system")
        if analyze is None or not (system_units / "sysinit.target").exists():
            pytest.skip("systemd-analyze (apt-get install systemd) is not installed")
        ok(install(root, releases))
        # The units refer to targets and programs of a whole system: lend it this host's.
        shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
        (root / "bin").mkdir(exist_ok=True)
        shutil.copy("/bin/sh", root / "bin/sh")
        units = [f"/etc/systemd/system/{name}" for name in UNIT_NAMES]
        done = subprocess.run(
            [analyze, "verify", "--man=no", f"--root={root}", *units],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (done.stdout + done.stderr).strip() == ""

    @pytest.mark.parametrize(
        "script",
        ["install.sh", "systemd/logpulse-agent-upgrade", "systemd/logpulse-agent-probation"],
    )
    def test_shell_scripts_are_shellcheck_clean_posix_sh(self, script: str) -> None:
        """POSIX sh, no shellcheck finding at any severity."""
        shellcheck = shutil.which("shellcheck")
        if shellcheck is None:
            pytest.skip("shellcheck (apt-get install shellcheck) is not installed")
        done = subprocess.run(
            [shellcheck, "-s", "sh", str(REPO / script)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout
