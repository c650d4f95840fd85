"""Out-of-memory kills: whether the kernel's OOM killer killed a process.

A process killed by SIGKILL may have been killed by the kernel for lack of memory or by
someone else; only the kernel's own records tell which. Two are read:

- the kernel log (``/dev/kmsg``), which names the victim: ``Killed process PID (name)``;
- the OOM kill count of the process's memory cgroup (``oom_kill`` in ``memory.events`` under
  cgroup v2, in ``memory.oom_control`` under v1), which the kernel raises before it sends
  the signal.

Both are read from just before the process's risky stretch (:class:`OomWatch`), so older
records of a reused pid or earlier kills do not count.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

KERNEL_LOG = Path("/dev/kmsg")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
LOG_SETTLE_SECONDS = 0.2
"""The kernel logs a kill just after it sends the signal: read the log again after this."""


def _open_log_at_end() -> int | None:
    """A descriptor of the kernel log placed after its last record, or None if unreadable."""
    try:
        fd = os.open(KERNEL_LOG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        os.close(fd)
        return None
    return fd


def _oom_count_file(pid: int) -> Path | None:
    """The file holding the OOM kill count of ``pid``'s memory cgroup, if readable."""
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        relative = path.lstrip("/")
        if controllers == "":  # cgroup v2, mounted alone or beside v1 as "unified"
            candidates += [CGROUP_ROOT / relative / "memory.events",
                           CGROUP_ROOT / "unified" / relative / "memory.events"]
        elif "memory" in controllers.split(","):
            candidates.append(CGROUP_ROOT / "memory" / relative / "memory.oom_control")
    return next((file for file in candidates if _oom_kills(file) is not None), None)


def _oom_kills(path: Path | None) -> int | None:
    """The ``oom_kill`` count in a cgroup file, or None if unreadable."""
    if path is None:
        return None
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


class OomWatch:
    """Watches one live process from now on; once it has died, :meth:`verdict` says whether
    the OOM killer killed it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._log = _open_log_at_end()
        self._count_file = _oom_count_file(pid)
        self._count_before = _oom_kills(self._count_file)

    def _logged_kill(self) -> bool | None:
        """Whether the log since the watch began names the process as killed; None when the
        log is unreadable or lost records meanwhile."""
        if self._log is None:
            return None
        victim = re.compile(rf"Killed process {self.pid} \(")
        complete = True
        while True:
            try:
                record = os.read(self._log, 8192)
            except BlockingIOError:
                return False if complete else None
            except BrokenPipeError:  # records were overwritten before we read them
                complete = False
                continue
            except OSError:
                return None
            if not record:
                return False if complete else None
            if victim.search(record.decode("utf-8", "replace")):
                return True

    def verdict(self) -> str | None:
        """After the process died by SIGKILL: the evidence of an OOM kill (``"kernel log"``
        or ``"cgroup memory events"``), ``""`` when the records are readable and show none,
        or None when none of them is readable."""
        try:
            logged = self._logged_kill()
            after = _oom_kills(self._count_file)
            counted = (None if after is None or self._count_before is None
                       else after > self._count_before)
            if logged is False and counted is not False:
                time.sleep(LOG_SETTLE_SECONDS)
                logged = self._logged_kill()
            if logged:
                return "kernel log"
            if counted and logged is None:
                return "cgroup memory events"
            return None if logged is None and counted is None else ""
        finally:
            self.close()

    def close(self) -> None:
        if self._log is not None:
            os.close(self._log)
            self._log = None
