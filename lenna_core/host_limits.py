"""The host's limits that a command can hit anywhere — open files, disk space, permissions,
memory — as the one line that says what happened and how to fix it."""

from __future__ import annotations

import errno
import resource
from collections.abc import Callable, Iterator

OUT_OF_MEMORY = ("out of memory; close other programs or ask for less (a smaller --batch-size, "
                 "--n or file), and run again")


def _place(error: OSError) -> str:
    return f" at {error.filename}" if error.filename else ""


def _open_files(error: OSError) -> str:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"too many open files (limit {soft}); raise it with 'ulimit -n 4096' and run again"


MESSAGES: dict[int, Callable[[OSError], str]] = {
    errno.EMFILE: _open_files,
    errno.ENFILE: lambda e: ("the system's table of open files is full; close other programs "
                             "(or raise fs.file-max) and run again"),
    errno.ENOSPC: lambda e: (f"no space left on device{_place(e)}; free some space or write to "
                             "another disk (--db, --out), and run again"),
    errno.EDQUOT: lambda e: (f"disk quota exceeded{_place(e)}; free some space or write to "
                             "another disk (--db, --out), and run again"),
    errno.EFBIG: lambda e: (f"file too large{_place(e)}; raise the limit with 'ulimit -f "
                            "unlimited' and run again"),
    errno.EACCES: lambda e: (f"permission denied{_place(e)}; fix its permissions or choose "
                             "another path"),
    errno.EPERM: lambda e: (f"operation not permitted{_place(e)}; fix its permissions or choose "
                            "another path"),
    errno.EROFS: lambda e: f"read-only file system{_place(e)}; choose a writable path",
    errno.ENOMEM: lambda e: OUT_OF_MEMORY,
}
"""One-line messages by ``errno``, for the OS errors that are the host's limits, not bugs."""
HOST_LIMITS = frozenset(MESSAGES)
"""The ``errno`` of the OS errors that are the host's limits: out of memory, disk space or open
files, a file-size limit, permissions, a read-only file system."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def host_limit_message(exc: BaseException) -> str | None:
    """The one-line message when ``exc``, or an error it came from, is one of the host's
    limits; None when it is something else."""
    for error in _chain(exc):
        if isinstance(error, MemoryError):
            return OUT_OF_MEMORY
        if isinstance(error, OSError) and error.errno in MESSAGES:
            return MESSAGES[error.errno](error)
    return None
