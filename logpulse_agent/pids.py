"""Whether a process still runs: one check for the daemon's pid, writers' temp files and the
detached installer."""

from __future__ import annotations

# psutil's create times are floats rounded by the kernel's clock ticks; a reused pid starts
# later than that by far more than a second.
CREATE_TIME_SLACK = 1.0


def pid_alive(pid: object, create_time: float | None = None) -> bool:
    """True while ``pid`` names a running process (a zombie does not count) and, when
    ``create_time`` is given, the one created then rather than a later process reusing the pid.

    A process of another user counts as running. Anything but a positive ``int`` is no pid.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    # Imported here: the settings and the record layer reach this module, and neither
    # `--version` nor Vector's secret backend (run at every config load) should pay for psutil.
    import psutil

    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > CREATE_TIME_SLACK:
            return False
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.AccessDenied:
        return True
    except psutil.Error:
        return False
