"""Shared pieces of the system tests: release bundles, a release server, install roots.

A *fake* bundle is a real release layout (``packaging/build_release.py``'s ``stage`` and
``pack``, so the units and the upgrade helper are the repository's own) whose
``logpulse-agent`` is a small shell script: it prints its version, and ``enrol`` writes an
agent token and identity the way the real command does.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import stat
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO / "install.sh"
UNIT_NAMES = (
    "logpulse-agent.service",
    "logpulse-agent-upgrade.service",
    "logpulse-agent-upgrade.path",
    "logpulse-agent-probation.service",
    "logpulse-agent-probation.timer",
)

FAKE_AGENT = """#!/bin/sh
# A stand-in logpulse-agent {version} for installer tests.
case "$1" in
    --version) echo "logpulse-agent {version}" ;;
    enrol)
        shift
        args="$*"
        while [ $# -gt 0 ]; do
            case $1 in
                --config-dir) config_dir=$2; shift ;;
                --state-dir) state_dir=$2; shift ;;
                --api-url) api_url=$2; shift ;;
            esac
            shift
        done
        [ -n "${{LOGPULSE_ENROL_TOKEN:-}}" ] || {{ echo "enrol: no token" >&2; exit 2; }}
        umask 077
        printf 'AGT_fake_agent_token\\n' > "$config_dir/agent-token"
        printf '{{"agentId": "agent-1", "groupId": "group-1", "apiUrl": "%s"}}\\n' "$api_url" \\
            > "$state_dir/identity.json"
        printf '%s %s\\n' "$(id -u)" "$args" >> "$state_dir/fake-agent.calls"
        echo "enrolled: agent id agent-1 in group group-1"
        ;;
    *) echo "fake logpulse-agent {version}: $*" ;;
esac
"""


@functools.cache
def build_release() -> ModuleType:
    """``packaging/build_release.py`` as a module."""
    path = REPO / "packaging" / "build_release.py"
    spec = importlib.util.spec_from_file_location("build_release", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_agent_dir(parent: Path, version: str) -> Path:
    directory = parent / f"fake-agent-{version}"
    directory.mkdir(parents=True)
    script = directory / "logpulse-agent"
    script.write_text(FAKE_AGENT.format(version=version))
    script.chmod(0o755)
    return directory


def publish_fake(
    out: Path,
    version: str,
    arch: str,
    work: Path,
    latest: bool = False,
    edit_unit: Callable[[str], str] | None = None,
) -> Path:
    """A fake release of ``version`` for ``arch`` under ``out`` (the download base);
    ``edit_unit`` rewrites the text of its ``logpulse-agent.service``."""
    br = build_release()
    work.mkdir(parents=True, exist_ok=True)
    vector = work / "vector"
    vector.write_text('#!/bin/sh\necho "vector 0.57.0 (stand-in)"\n')
    vector.chmod(0o755)
    staged = br.stage(fake_agent_dir(work, version), version, work / f"stage-{version}", vector)
    if edit_unit is not None:
        unit = staged / "systemd" / "logpulse-agent.service"
        unit.write_text(edit_unit(unit.read_text()))
    tarball: Path = br.pack(staged, version, arch, out, latest=latest)
    return tarball


class ReleaseServer:
    """Serves a directory over HTTP on 127.0.0.1 and records the paths asked for."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

            def do_GET(self) -> None:
                requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[ReleaseServer]:
    server = ReleaseServer(directory)
    try:
        yield server
    finally:
        server.close()


def world_traversable_dir(prefix: str) -> Path:
    """A fresh directory under /tmp that other users (the agent user, nobody) can enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def make_rootfs(root: Path) -> None:
    """The few files of a root file system the installer uses: passwd and friends."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nadm:x:4:\nsystemd-journal:x:101:\n")
    for name in ("shadow", "gshadow"):
        (etc / name).write_text("")
        (etc / name).chmod(0o600)


def passwd_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise KeyError(user)


def snapshot(root: Path) -> dict[str, tuple[str, int, int, str | None]]:
    """Every path under ``root``: mode string, owner, group, and link target or content hash."""
    found: dict[str, tuple[str, int, int, str | None]] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory) / name
            st = path.lstat()
            extra: str | None = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(root))] = (
                stat.filemode(st.st_mode),
                st.st_uid,
                st.st_gid,
                extra,
            )
    return found


PATCHED_AGENT = """#!/bin/sh
# A test release: the real {version} build, misbehaving on purpose when it runs as the daemon.
here=$(dirname "$(readlink -f "$0")")
if [ "${{1:-}}" = run ]; then
{misbehave}
fi
exec "$here/logpulse-agent.real" "$@"
"""


def publish_patched(real: Path, version: str, out: Path, work: Path, misbehave: str) -> Path:
    """The real release ``version`` of the download base ``real``, republished under the base
    ``out`` with its executable wrapped: ``logpulse-agent run`` first runs the shell snippet
    ``misbehave`` (the production code stays as it is; only this copy misbehaves)."""
    br = build_release()
    arch = br.host_arch()
    name = f"logpulse-agent-{version}-linux-{arch}.tar.gz"
    work.mkdir(parents=True, exist_ok=True)
    with tarfile.open(real / f"v{version}" / name) as tar:
        tar.extractall(work, filter="tar")
    staged = work / f"logpulse-agent-{version}"
    (staged / "logpulse-agent").rename(staged / "logpulse-agent.real")
    wrapper = staged / "logpulse-agent"
    wrapper.write_text(PATCHED_AGENT.format(version=version, misbehave=misbehave))
    wrapper.chmod(0o755)
    tarball: Path = br.pack(staged, version, arch, out, latest=False)
    return tarball
