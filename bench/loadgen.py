"""CPU load generators for benchmarks that measure under contention.

``steady`` keeps one core busy all the time with a tight pure-Python loop; ``intermittent``
is busy for ``--duty`` of every ``--period`` seconds (120 ms of every 200 ms by default:
60% of one core), the periods aligned to the wall clock so that the duty cycle holds however
long a busy slice overruns. Both run until killed. ``load(kind, processes)`` starts them as
child processes from Python and stops them on exit, on Ctrl-C, on an exception and on a
SIGTERM to the parent; ``kind="quiet"`` starts nothing.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

KINDS = ("quiet", "steady", "intermittent")
GRACE_SECONDS = 2.0
_children: set[subprocess.Popen] = set()
_lock = threading.RLock()  # re-entrant: the signal handler may interrupt a holder
_cleanup_installed = False


def _parent_gone(parent: int | None) -> bool:
    return parent is not None and os.getppid() != parent


def busy_steady(parent: int | None = None) -> None:
    """Spin until killed (or until ``parent`` is no longer this process's parent)."""
    x = 0
    while not _parent_gone(parent):
        for _ in range(200_000):  # about 5-10 ms of pure-Python work between checks
            x += 1
        x = 0


def busy_intermittent(duty: float = 0.6, period: float = 0.2, parent: int | None = None) -> None:
    """Spin for ``duty * period`` seconds at the start of every wall-clock ``period``, sleep
    for the rest, until killed (or until ``parent`` is gone)."""
    x = 0
    while not _parent_gone(parent):
        start = math.floor(time.time() / period) * period
        busy_until = start + duty * period
        while time.time() < busy_until:
            for _ in range(1_000):
                x += 1
        x = 0
        rest = start + period - time.time()
        if rest > 0:
            time.sleep(rest)


def _stop(children: list[subprocess.Popen], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM, wait up to ``grace`` seconds in all, then SIGKILL; reap every child."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(OSError):
                child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
    with _lock:
        _children.difference_update(children)


def stop_all() -> None:
    """Stop every generator this process started that is still running."""
    with _lock:
        children = list(_children)
    if children:
        _stop(children, grace=0.5)


def _on_signal(signum: int, frame: object) -> None:
    stop_all()
    # unwind the parent too (its context managers and finally blocks run)
    raise SystemExit(128 + signum)


def _install_cleanup() -> None:
    """Once per process: stop every live child at exit and on SIGTERM/SIGHUP, unless the
    program handles those signals itself."""
    global _cleanup_installed
    if _cleanup_installed:
        return
    _cleanup_installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_signal)


def command(kind: str, duty: float = 0.6, period: float = 0.2,
            parent: int | None = None) -> list[str]:
    """The command line of one generator process."""
    cmd = [sys.executable, os.path.abspath(__file__), kind]
    if kind == "intermittent":
        cmd += ["--duty", repr(duty), "--period", repr(period)]
    if parent is not None:
        cmd += ["--watch-parent", str(parent)]
    return cmd


@contextlib.contextmanager
def load(kind: str, processes: int = 1, *, duty: float = 0.6,
         period: float = 0.2) -> Iterator[list[subprocess.Popen]]:
    """Run ``processes`` generators of ``kind`` ("quiet", "steady" or "intermittent") as
    child processes for the duration of the block; yields them (none for "quiet")."""
    if kind not in KINDS:
        raise ValueError(f"unknown load {kind!r}; use one of {', '.join(KINDS)}")
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if kind == "quiet":
        yield []
        return
    _install_cleanup()
    children: list[subprocess.Popen] = []
    try:
        for _ in range(processes):
            child = subprocess.Popen(
                command(kind, duty, period, parent=os.getpid()),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=False)
            with _lock:
                _children.add(child)
            children.append(child)
        for child in children:  # wait until every generator is running
            ready = child.stdout.readline()
            child.stdout.close()
            if not ready:
                raise RuntimeError(f"load generator exited with status {child.wait()}")
        yield children
    finally:
        _stop(children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("steady", "intermittent"))
    parser.add_argument("--processes", type=int, default=1,
                        help="generator processes (default 1)")
    parser.add_argument("--duty", type=float, default=0.6,
                        help="intermittent: busy share of each period (default 0.6)")
    parser.add_argument("--period", type=float, default=0.2,
                        help="intermittent: period in seconds (default 0.2)")
    parser.add_argument("--watch-parent", type=int, metavar="PID",
                        help="exit when PID is no longer this process's parent")
    args = parser.parse_args()
    if not 0 < args.duty <= 1 or args.period <= 0:
        parser.error("need 0 < --duty <= 1 and --period > 0")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    try:
        if args.processes > 1:
            with load(args.kind, args.processes, duty=args.duty, period=args.period):
                print(f"{args.processes} {args.kind} generators running; Ctrl-C stops them",
                      file=sys.stderr)
                while True:
                    time.sleep(3600)
        if args.watch_parent is not None:  # started by load(), which waits for this line
            print("ready", flush=True)
        if args.kind == "steady":
            busy_steady(args.watch_parent)
        else:
            busy_intermittent(args.duty, args.period, args.watch_parent)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
