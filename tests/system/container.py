"""A Debian bookworm container with systemd as PID 1, for the end-to-end tests.

    rootfs = cached_rootfs()                 # debootstrap once, kept in ROOTFS_CACHE
    with Container.boot(rootfs, workdir) as box:
        box.sh("systemctl is-active logpulse-agent")

The rootfs is built with ``debootstrap --variant=minbase`` (about 80 s) and cached outside the
repository; each test boots a private copy with ``systemd-nspawn --register=no --keep-unit -b``
(a few seconds) and runs commands in it with ``nsenter -t <its systemd> -a``. The container
shares the host's network, so it reaches servers on 127.0.0.1. python3 + PyYAML are in the
rootfs only for the Vector stand-in; the agent is the self-contained release bundle.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import psutil

from tests.live_server import terminate

ROOTFS_CACHE = Path(os.environ.get("LOGPULSE_TEST_ROOTFS_CACHE", "/var/cache/logpulse-test-rootfs"))
PACKAGES = "systemd,systemd-sysv,dbus,curl,ca-certificates,python3,python3-yaml"
APT_SOURCES = (Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*")))


def debian_mirror(
    environ: dict[str, str] | os._Environ[str] = os.environ, sources: Iterable[Path] = APT_SOURCES
) -> str:
    """The Debian archive debootstrap fetches from: ``LOGPULSE_TEST_DEBIAN_MIRROR``, else the
    first Debian archive this host's own apt is configured with (deb822 ``URIs:`` or one-line
    ``deb URL``), so the tests use the mirror the machine already trusts."""
    if environ.get("LOGPULSE_TEST_DEBIAN_MIRROR"):
        return environ["LOGPULSE_TEST_DEBIAN_MIRROR"]
    for path in sources:
        if path.suffix not in ("", ".list", ".sources") or not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split()
            if words[:1] not in (["URIs:"], ["deb"]):
                continue
            for url in words[1:]:  # past "[signed-by=…]" options of the one-line format
                if "://" in url and url.rstrip("/").endswith("/debian"):
                    return url
    raise RuntimeError(
        "no Debian archive found in this host's apt sources; set LOGPULSE_TEST_DEBIAN_MIRROR"
    )


PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def missing_tools() -> list[str]:
    return [t for t in ("systemd-nspawn", "debootstrap", "nsenter") if shutil.which(t) is None]


def ensure_tools() -> None:
    """Install systemd-container and debootstrap with apt-get when they are missing."""
    if not missing_tools():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "systemd-container", "debootstrap", "util-linux"],
        env=env,
        check=True,
        capture_output=True,
    )
    if missing_tools():
        raise RuntimeError(f"still missing after apt-get install: {missing_tools()}")


def cached_rootfs() -> Path:
    """The cached bookworm rootfs, built on first use (under a lock, so only once)."""
    ROOTFS_CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = ROOTFS_CACHE / "bookworm"
    marker = ROOTFS_CACHE / "bookworm.packages"
    with (ROOTFS_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rootfs.is_dir() and marker.exists() and marker.read_text().strip() == PACKAGES:
            return rootfs
        partial = ROOTFS_CACHE / "bookworm.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        done = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={PACKAGES}",
                "bookworm",
                str(partial),
                debian_mirror(),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        partial.rename(rootfs)
        marker.write_text(PACKAGES + "\n")
        return rootfs


def _nspawn(root: Path, console: Path) -> subprocess.Popen[bytes]:
    """Boot ``root`` with systemd-nspawn, its console appended to ``console``."""
    with console.open("ab") as out:
        return subprocess.Popen(
            [
                "systemd-nspawn",
                "--register=no",
                "--keep-unit",
                "--quiet",
                "--console=read-only",
                f"--machine=logpulse-e2e-{os.getpid()}",
                "-D",
                str(root),
                "-b",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class Container:
    """A booted container: :meth:`sh` runs a command inside, :meth:`stop` powers it off."""

    def __init__(self, root: Path, nspawn: subprocess.Popen[bytes], console: Path) -> None:
        self.root = root
        self.nspawn = nspawn
        self.console = console
        self.init_pid = self._find_init()

    @classmethod
    def boot(cls, rootfs: Path, workdir: Path) -> Container:
        """Copy ``rootfs`` into ``workdir/root`` and boot it; returns once boot finished."""
        root = workdir / "root"
        subprocess.run(["cp", "-a", "--reflink=auto", str(rootfs), str(root)], check=True)
        console = workdir / "console.log"
        nspawn = _nspawn(root, console)
        try:
            box = cls(root, nspawn, console)
            box.wait_booted()
        except BaseException:
            nspawn.kill()
            nspawn.wait(30)
            raise
        return box

    def reboot(self) -> None:
        """Power off cleanly and boot the same root again (what it wrote is kept)."""
        self.stop()
        self.nspawn = _nspawn(self.root, self.console)
        self.init_pid = self._find_init()
        self.wait_booted()

    def wait_booted(self, timeout: float = 180.0) -> None:
        """Wait until boot has finished (running or degraded). ``is-system-running --wait``
        alone returns at once while the container's bus is not up yet, and a test that starts
        then races early boot: systemd-tmpfiles empties /tmp under a running installer."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.sh("systemctl is-system-running --wait", check=False, timeout=timeout)
            if state.stdout.strip() in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the container did not finish booting: {state.stdout!r}")
            time.sleep(0.5)

    def _find_init(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(
                    f"systemd-nspawn exited with {self.nspawn.returncode}:\n"
                    + self.console.read_text(errors="replace")[-3000:]
                )
            try:
                for child in psutil.Process(self.nspawn.pid).children(recursive=True):
                    if child.name() == "systemd":
                        return child.pid
            except psutil.Error:
                pass
            time.sleep(0.1)
        raise RuntimeError("the container's systemd did not appear")

    def sh(
        self,
        script: str,
        *,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c script`` as root inside the container, with a clean environment."""
        environ = ["env", "-i", f"PATH={PATH}", "LANG=C.UTF-8"]
        environ += [f"{k}={v}" for k, v in (env or {}).items()]
        done = subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "--", *environ, "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"in the container, {script!r} exited {done.returncode}:\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done

    def stop(self) -> None:
        """Power off (SIGTERM to nspawn halts the container cleanly), SIGKILL if it hangs."""
        terminate(self.nspawn, 60, kill_wait=30)

    def __enter__(self) -> Container:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
