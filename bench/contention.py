"""Latency labels measured quiet and under CPU load, against a quiet campaign.

Runs the main job (``lenna run --n N --seed 0 --keep-contended``: the same N resnet-family
architectures every time) as a fresh process with a new database per campaign: twice on a
quiet machine and once under each load from ``bench/loadgen.py`` (``intermittent``: one
process busy 120 ms of every 200 ms; ``steady``: one process busy all the time), for each
thread setting (``default``: no ``--threads``, which is one thread; ``auto``: the backend's
own, one per core; or a count), quiet and loaded campaigns interleaved. Each campaign's labels
(``latency_ns``) are compared architecture by architecture with the first quiet campaign's of
the same thread setting. Prints one JSON
object: per (load, threads), the median |ln(label / quiet label)|, the share within ±10%,
Spearman's rank correlation, the share of timed runs discarded as contended, the labels
flagged contended and those off by more than 10% without the flag, and the cost per label.
Before and after each campaign, with no load, ``bench/host_speed.py`` times a fixed model in
a fresh process (``host_ms_before_after``); ``host_speed_ratio`` is how much slower the host
ran it around this campaign than around the quiet one: the host's own drift, which no
per-run signal sees.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
from host_speed import probe  # noqa: E402

LOADS = ("intermittent", "steady")
USABLE = ("ok", "contended")
TOLERANCE = 0.10
MIN_ARCHITECTURES = 5  # lenna run needs 5 successful measurements to fit an estimator
STOP_GRACE_SECONDS = 15.0


class Aborted(Exception):
    """A lenna command failed; the message is its stderr's last line."""


def progress(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def lenna(args: list[str], cwd: Path, log: Path) -> tuple[int, str, float]:
    """Run ``python -m lenna_core ARGS`` in a fresh process; return its exit status, its
    stderr and its wall time. Interrupted, it stops the command first (SIGTERM: lenna stops
    cleanly; SIGKILL after a grace)."""
    started = time.perf_counter()
    with open(log, "w") as err, open(log.with_suffix(".stdout"), "w") as out:
        child = subprocess.Popen([sys.executable, "-m", "lenna_core", *args], cwd=cwd,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            status = child.wait()
        except BaseException:
            with contextlib.suppress(OSError):
                child.terminate()
            try:
                child.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise
    return status, log.read_text(errors="replace"), time.perf_counter() - started


class Campaigns:
    def __init__(self, tmp: Path, n: int) -> None:
        self.tmp = tmp
        self.n = n

    def run(self, case: str, kind: str, threads: str) -> dict:
        db, out = self.tmp / f"{case}.db", self.tmp / case
        args = ["run", "--n", str(self.n), "--seed", "0", "--db", str(db), "--out", str(out),
                "--keep-contended"]
        if threads != "default":
            args += ["--threads", threads]
        before = probe()
        with loadgen.load(kind):
            status, stderr, seconds = lenna(args, self.tmp, self.tmp / f"{case}.log")
        after = probe()
        if status != 0:
            raise Aborted(f"lenna run failed ({case}, exit {status}): {last_line(stderr)}")
        csv = self.tmp / f"{case}.csv"
        exported, export_err, _ = lenna(["export", str(csv), "--format", "csv", "--db", str(db)],
                                        self.tmp, self.tmp / f"{case}.export.log")
        if exported != 0:
            raise Aborted(f"lenna export failed ({case}, exit {exported}): "
                          f"{last_line(export_err)}")
        return {"frame": pd.read_csv(csv), "summary": last_line(stderr),
                "campaign_seconds": seconds, "host_ms": (before, after)}


def _float(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a latency and status ok or contended, one per architecture."""
    keep = frame["latency_ns"].notna() & (frame["latency_ns"] > 0)
    keep &= frame["status"].isin(USABLE)
    return frame[keep].drop_duplicates("arch_id", keep="last").set_index("arch_id")


def compare(result: dict, quiet: dict, n: int) -> dict:
    frame, reference = result["frame"], quiet["frame"]
    case_rows, quiet_rows = usable(frame), usable(reference)
    common = case_rows.index.intersection(quiet_rows.index)
    everything = set(frame["arch_id"]) | set(reference["arch_id"])
    labels = case_rows.loc[common, "latency_ns"].to_numpy(float)
    quiet_labels = quiet_rows.loc[common, "latency_ns"].to_numpy(float)
    ratio = labels / quiet_labels
    off = np.abs(ratio - 1) > TOLERANCE
    flagged = (case_rows.loc[common, "status"] == "contended").to_numpy()
    spearman = None
    if len(common) >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            spearman = float(spearmanr(labels, quiet_labels)[0])
    host_speed = float(np.mean(result["host_ms"]) / np.mean(quiet["host_ms"]))
    total = float(frame["runs"].sum())
    discarded = 1 - float(frame["clean_runs"].sum()) / total if total > 0 else None
    contended = int((frame["status"] == "contended").sum())
    return {
        "median_abs_log_ratio": _float(float(np.median(np.abs(np.log(ratio))))
                                       if len(common) else None, 4),
        "within_10pct": _float(float(np.mean(~off)) if len(common) else None, 4),
        "spearman": _float(spearman, 4),
        "discarded_share": _float(discarded, 4),
        "contended": contended,
        "silently_wrong": int(np.sum(off & ~flagged)),
        "seconds_per_label": _float(float(frame["seconds"].sum()) / n, 3),
        "host_ms_before_after": [_float(ms, 3) for ms in result["host_ms"]],
        "host_speed_ratio": _float(host_speed, 4),
        "campaign_seconds": _float(result["campaign_seconds"], 1),
        "failed": len(everything) - len(common),
        "summary": result["summary"],
    }


def parse_threads(text: str) -> list[str]:
    settings = []
    for item in (part.strip() for part in text.split(",")):
        if item in ("default", "auto"):
            settings.append(item)
        elif item.isdigit() and int(item) > 0:
            settings.append(str(int(item)))
        else:
            raise argparse.ArgumentTypeError(
                f"thread setting {item!r}: use 'default', 'auto' or a positive integer")
    return settings


def parse_loads(text: str) -> list[str]:
    loads = [part.strip() for part in text.split(",") if part.strip()]
    for kind in loads:
        if kind not in LOADS:
            raise argparse.ArgumentTypeError(f"load {kind!r}: use {' or '.join(LOADS)}")
    if len(set(loads)) != len(loads):
        raise argparse.ArgumentTypeError("a load is given twice")
    return loads


def order(loads: list[str]) -> list[tuple[str, str]]:
    """(case, load) in run order: quiet, the first load, quiet again, the other loads."""
    cases = [("quiet", "quiet"), *((kind, kind) for kind in loads[:1]),
             ("quiet_again", "quiet"), *((kind, kind) for kind in loads[1:])]
    return cases


def _terminate(signum: int, frame: object) -> None:
    loadgen.stop_all()
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help="architectures per campaign (default 30)")
    parser.add_argument("--quick", action="store_true", help="12 architectures")
    parser.add_argument("--threads-settings", type=parse_threads,
                        default=["default", "auto"],
                        help="comma-separated: 'default' (no --threads: one thread), 'auto' "
                             "(the backend's own) or N for --threads N (default: default,auto)")
    parser.add_argument("--loads", type=parse_loads, default=list(LOADS),
                        help="comma-separated loads from bench/loadgen.py "
                             "(default: intermittent,steady)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (databases, CSVs, logs)")
    args = parser.parse_args()
    n = args.n if args.n is not None else (12 if args.quick else 30)
    if n < MIN_ARCHITECTURES:
        parser.error(f"--n must be at least {MIN_ARCHITECTURES}: lenna run fits an estimator")
    settings = args.threads_settings
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)

    uptime_before = Path("/proc/loadavg").read_text().strip() \
        if Path("/proc/loadavg").exists() else None
    tmp = Path(tempfile.mkdtemp(prefix="lenna-contention-"))
    if args.keep:
        progress(f"keeping {tmp}")
    campaigns = Campaigns(tmp, n)
    plan = [(threads, case, kind) for threads in settings for case, kind in order(args.loads)]
    started = time.perf_counter()
    results: dict[tuple[str, str], dict] = {}
    try:
        for index, (threads, case, kind) in enumerate(plan, 1):
            progress(f"case {index}/{len(plan)}: {case}, threads {threads} ... ", end="")
            case_started = time.perf_counter()
            results[threads, case] = campaigns.run(
                f"{case}-threads-{threads}", kind, threads)
            progress(f"{time.perf_counter() - case_started:.0f} s")
    except Aborted as exc:
        progress("failed")
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        progress("interrupted")
        raise SystemExit(130) from None
    except SystemExit:  # SIGTERM or SIGHUP
        progress("stopped")
        raise
    finally:
        loadgen.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    cases = []
    for threads in settings:
        quiet = results[threads, "quiet"]
        for case, load in (("quiet_again", "quiet"), *((kind, kind) for kind in args.loads)):
            cases.append({"load": load, "threads": threads,
                          **compare(results[threads, case], quiet, n)})
    print(json.dumps({"architectures": n, "quick": args.quick, "cases": cases,
                      "seconds": round(time.perf_counter() - started, 1),
                      "uptime_before": uptime_before}))


if __name__ == "__main__":
    main()
