"""kill -9 of ``lenna run`` and of its worker at random moments, each followed by a resume.

Trials alternate: the even ones kill the main ``lenna run`` process, the odd ones its backend
worker, at a random moment between ``--min-delay`` and ``--max-delay`` seconds after the
start. Every trial samples new architectures (``--seed`` = trial number) into one store, and
is followed by a resume run of the same command with ``--retry-failed``, which must finish.
Checked after each trial and at the end:

- no row lost: every (workload, target, protocol) label stored right after a kill or a resume
  is still stored at the end;
- no duplicate (workload, target, protocol) rows, and ``PRAGMA integrity_check`` is ok;
- no orphan: no process started by the trial (found by an environment marker) is left once
  its runs are over; how long a worker outlived its killed parent;
- no traceback on any run's stderr (a worker whose parent died prints nothing);
- the failures stored right after worker kills are all of kind ``killed`` (never ``oom``
  unless the kernel killed it), and no ``failed`` label is left after the resumes.

Prints JSON; exits 1 when a check fails. The full run (about 10 minutes on 2 cores):
``python bench/kill.py --trials 20``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

MARKER = "LENNA_KILL_BENCH"
"""Environment variable whose value marks every process a trial starts."""
GRACE_SECONDS = 5.0
"""How long the processes of a finished trial may take to go."""


def lenna(*args: str) -> list[str]:
    return [sys.executable, "-m", "lenna_core", *args]


def run_args(args: argparse.Namespace, work: Path, seed: int) -> list[str]:
    return ["run", "--source", "resnet-family", "-O", "input_size=32", "--n", str(args.n),
            "--passes", "1", "--budget", "0.3", "--repeats", "1", "--keep-contended",
            "--seed", str(seed), "--db", str(work / "labels.db"),
            "--out", str(work / f"out-{seed}")]


def stat_of(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid, or None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    found = stat_of(pid)
    return found is not None and found[0] != "Z"


def marked(token: str) -> dict[int, str]:
    """Live processes carrying this run's marker, with their command lines."""
    needle = f"{MARKER}={token}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry)):
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def worker_of(pid: int) -> int | None:
    """The backend worker of ``lenna run`` process ``pid`` (a spawned multiprocessing child)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        found = stat_of(int(entry))
        if found is None or found[1] != pid or found[0] == "Z":
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            return int(entry)
    return None


def labels(db: Path) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    """Every stored label: (workload, target, protocol) → (status, error)."""
    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=60) as conn:
        rows = conn.execute("SELECT workload_id, target_id, protocol, status, error "
                            "FROM measurements").fetchall()
    return {(w, t, p): (status, error) for w, t, p, status, error in rows}


def store_health(db: Path) -> tuple[str, int]:
    """``PRAGMA integrity_check``'s answer and the number of duplicated label keys."""
    with sqlite3.connect(db, timeout=60) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        duplicates = conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM measurements GROUP BY workload_id, target_id,"
            " protocol HAVING COUNT(*) > 1)").fetchone()[0]
    return integrity, duplicates


def kind(error: str | None) -> str:
    """The kind word that starts a failure reason (``other`` for a backend's own error)."""
    word = (error or "").split(":", 1)[0]
    return word if word in ("timeout", "oom", "killed", "crash", "exit") else "other"


class Trial:
    """One killed run and its resume."""

    def __init__(self, args: argparse.Namespace, work: Path, env: dict[str, str],
                 seed: int, target: str) -> None:
        self.args, self.work, self.env, self.seed = args, work, env, seed
        self.target = target
        self.killed = False
        self.worker_outlived: float | None = None
        self.stderr: list[str] = []
        self.resume_code: int | None = None

    def run(self, delay: float) -> None:
        command = lenna(*run_args(self.args, self.work, self.seed))
        main = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(delay)
            if self.target == "main":
                self._kill_main(main)
            else:
                self._kill_worker(main)
        finally:
            if main.poll() is None:
                main.kill()
                main.wait()

    def _kill_main(self, main: subprocess.Popen[str]) -> None:
        worker = worker_of(main.pid)
        if main.poll() is not None:
            self.stderr.append(main.stderr.read())
            return
        main.kill()
        self.killed = True
        killed = time.monotonic()
        try:  # stderr ends once every process holding it, the worker too, is gone
            self.stderr.append(main.communicate(timeout=60)[1])
        except subprocess.TimeoutExpired:
            self.stderr.append("")
        while worker is not None and alive(worker) and time.monotonic() - killed < 60:
            time.sleep(0.01)
        if worker is not None:
            self.worker_outlived = time.monotonic() - killed

    def _kill_worker(self, main: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 5
        worker = worker_of(main.pid)
        while worker is None and main.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            worker = worker_of(main.pid)
        if worker is not None:
            os.kill(worker, signal.SIGKILL)
            self.killed = True
        self.stderr.append(main.communicate(timeout=600)[1])

    def resume(self) -> None:
        command = lenna(*run_args(self.args, self.work, self.seed), "--retry-failed")
        done = subprocess.run(command, env=self.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=1200)
        self.resume_code = done.returncode
        self.stderr.append(done.stderr)


def orphans_after(token: str) -> dict[int, str]:
    """The trial's processes still alive after the grace period (they are then killed)."""
    deadline = time.monotonic() + GRACE_SECONDS
    left = marked(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = marked(token)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20,
                        help="killed runs in all, alternately the main process and the worker")
    parser.add_argument("--n", type=int, default=6, help="architectures per campaign")
    parser.add_argument("--min-delay", type=float, default=1.0)
    parser.add_argument("--max-delay", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--work", type=Path, help="directory for the store (default: a temp)")
    args = parser.parse_args()
    if args.trials < 1 or args.n < 5 or not 0 <= args.min_delay <= args.max_delay:
        parser.error("need --trials >= 1, --n >= 5 and 0 <= --min-delay <= --max-delay")
    work = args.work or Path(tempfile.mkdtemp(prefix="lenna-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "labels.db"
    token = uuid.uuid4().hex
    env = {**os.environ, MARKER: token}
    moments = random.Random(args.seed)
    started = time.monotonic()
    seen: set[tuple[str, str, str]] = set()
    kinds_after_worker_kill: Counter[str] = Counter()
    outlived: list[float] = []
    counts = Counter()
    orphans: list[str] = []
    resume_codes: Counter[int] = Counter()
    tracebacks = 0
    for number in range(args.trials):
        target = "main" if number % 2 == 0 else "worker"
        trial = Trial(args, work, env, number, target)
        trial.run(moments.uniform(args.min_delay, args.max_delay))
        counts[f"{target}_killed" if trial.killed else f"{target}_not_running"] += 1
        after_kill = labels(db)
        seen |= after_kill.keys()
        if target == "worker" and trial.killed:
            kinds_after_worker_kill.update(kind(error) for status, error in after_kill.values()
                                           if status == "failed")
        if trial.worker_outlived is not None:
            outlived.append(trial.worker_outlived)
        trial.resume()
        resume_codes[trial.resume_code] += 1
        seen |= labels(db).keys()
        orphans += orphans_after(token).values()
        tracebacks += sum("Traceback" in text for text in trial.stderr)
    final = labels(db)
    integrity, duplicates = store_health(db)
    failed_left = Counter(kind(error) for status, error in final.values() if status == "failed")
    report = {
        "trials": args.trials,
        **{key: counts[key] for key in ("main_killed", "main_not_running", "worker_killed",
                                        "worker_not_running")},
        "labels_seen": len(seen),
        "labels_lost": len(seen - final.keys()),
        "duplicate_labels": duplicates,
        "integrity_check": integrity,
        "orphan_processes": len(orphans),
        "orphans": orphans,
        "worker_outlived_parent_max_s": round(max(outlived), 3) if outlived else None,
        "tracebacks": tracebacks,
        "failure_kinds_after_worker_kills": dict(kinds_after_worker_kill),
        "failed_labels_left": sum(failed_left.values()),
        "failed_kinds_left": dict(failed_left),
        "resume_exit_codes": {str(code): n for code, n in resume_codes.items()},
        "seconds": round(time.monotonic() - started, 1),
        "work": str(work),
    }
    report["ok"] = (report["labels_lost"] == 0 and duplicates == 0 and integrity == "ok"
                    and not orphans and tracebacks == 0 and report["failed_labels_left"] == 0
                    and set(kinds_after_worker_kill) <= {"killed"}
                    and set(resume_codes) == {0})
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
