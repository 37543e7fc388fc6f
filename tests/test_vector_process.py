"""Recognising our own Vector among the host's processes (pure identity rules, pid file)."""

from __future__ import annotations

from pathlib import Path

from logpulse_agent.vector.process import (
    PidRecord,
    ProcessInfo,
    has_config_args,
    is_our_vector,
    read_pid_file,
    remove_pid_file,
    vector_args,
)

PATHS = [Path("/var/lib/lp/vector-global.yaml"), Path("/var/lib/lp/vector.yaml")]
PID_FILE = Path("/var/lib/lp/vector.pid")
OURS = tuple(vector_args("/opt/lp/vector/bin/vector", PATHS))


def info(cmdline: tuple[str, ...] = OURS, **fields: object) -> ProcessInfo:
    values: dict[str, object] = {"pid": 4242, "exe": None, "create_time": 100.0, "marker": None}
    values.update(fields)
    return ProcessInfo(cmdline=cmdline, **values)  # type: ignore[arg-type]


def ours(candidate: ProcessInfo, record: PidRecord | None = None) -> bool:
    return is_our_vector(
        candidate,
        config_paths=PATHS,
        pid_path=PID_FILE,
        record=record,
        binaries={"/opt/lp/vector/bin/vector"},
    )


class TestConfigArgs:
    def test_every_config_path_must_be_passed_with_config_yaml(self) -> None:
        """All our --config-yaml pairs must be present, in either spelling."""
        assert has_config_args(OURS, PATHS)
        assert has_config_args(("vector", *(f"--config-yaml={p}" for p in PATHS)), PATHS)
        assert not has_config_args(OURS[:3], PATHS)
        assert not has_config_args(("vector", "-c", str(PATHS[0]), "-c", str(PATHS[1])), PATHS)
        assert not has_config_args(OURS, [])


class TestIdentity:
    def test_our_binary_on_our_paths_is_ours(self) -> None:
        """Same binary (argv[0] or exe) and our config paths: ours."""
        assert ours(info())
        assert ours(info(("vector", *OURS[1:]), exe="/opt/lp/vector/bin/vector"))

    def test_the_recorded_process_is_ours_whatever_its_binary(self) -> None:
        """The pid file's pid with the same start time is ours (e.g. a wrapper script)."""
        wrapped = ("/usr/bin/python3", "/x/vector.py", *OURS[1:])
        assert ours(info(wrapped), PidRecord(4242, 100.0))
        assert ours(info(wrapped, marker=str(PID_FILE)))

    def test_a_recycled_pid_is_not_ours(self) -> None:
        """Same pid, different start time or other command line: never ours."""
        wrapped = ("/usr/bin/python3", "/x/vector.py", *OURS[1:])
        assert not ours(info(wrapped, create_time=999.0), PidRecord(4242, 100.0))
        assert not ours(info(("sleep", "60")), PidRecord(4242, 100.0))

    def test_our_paths_alone_are_not_enough(self) -> None:
        """Another program given our paths, without record, marker or binary, is not ours."""
        assert not ours(info(("/usr/bin/python3", *OURS[1:])))
        assert not ours(info(("/usr/bin/python3", *OURS[1:]), marker="/other/vector.pid"))


class TestPidFile:
    def test_reads_json_records_and_plain_pids(self, tmp_path: Path) -> None:
        """Both the JSON record and a bare pid are understood; junk is ignored."""
        path = tmp_path / "vector.pid"
        path.write_text('{"pid": 12, "create_time": 1.5}')
        assert read_pid_file(path) == PidRecord(12, 1.5)
        path.write_text("34\n")
        assert read_pid_file(path) == PidRecord(34)
        for junk in ("", "x", "-1", "true", '{"pid": "1"}'):
            path.write_text(junk)
            assert read_pid_file(path) is None
        assert read_pid_file(tmp_path / "missing") is None

    def test_is_removed_only_for_the_pid_it_names(self, tmp_path: Path) -> None:
        """A newer Vector's pid file is not removed by an older one's exit."""
        path = tmp_path / "vector.pid"
        path.write_text('{"pid": 12, "create_time": null}')
        remove_pid_file(path, 11)
        assert path.exists()
        remove_pid_file(path, 12)
        assert not path.exists()
