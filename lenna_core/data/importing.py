"""``lenna import``: latencies measured elsewhere, read from CSV or Parquet, stored as
measurements on imported targets so every other command uses them like LENNA's own.

Each row (long format) or each numeric cell (wide format) is one latency of an architecture
on a target. Rows with a bad latency, spec or target are skipped and counted; of an
isomorphism class (sources with ``canonical_spec``) only the first spec's rows are kept;
exact duplicates keep their median; degenerate rows, under 1% of their target's median, are
dropped. Rows are committed 500 at a time, so that campaigns writing the same store are
not locked out; an interrupted import keeps whole chunks and a re-run adds the rest.
"""

from __future__ import annotations

import difflib
import gc
import hashlib
import json
import math
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import attrs

from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional, source_workload
from lenna_core.progress import progress_bar
from lenna_core.records import Measurement, Target, Workload

UNITS = {"ms": 1e6, "us": 1e3, "s": 1e9}
PROTOCOL = "imported"
DEGENERATE = 0.01
"""A latency under this share of its target's median is degenerate (e.g. constant-folded)."""
CHUNK = 500
"""Architectures built per progress step."""
BAD = {"latency": "a bad latency (non-numeric, NaN, zero or negative)",
       "spec": "an unknown or unparseable spec",
       "target": "an empty target column"}
DROPS = ("isomorphic", "duplicates", "degenerate")


@attrs.frozen
class ImportOptions:
    """How to read the file: the options of ``lenna import``."""

    arch_col: str
    target_cols: tuple[str, ...] = ()
    latency_col: str | None = None
    wide: bool = False
    ignore_cols: tuple[str, ...] = ()
    arch_map: Path | None = None
    unit: str = "ms"
    where: tuple[str, ...] = ()
    batch_size: int = 1


@attrs.frozen
class Entry:
    """One latency of the file: its row (1-based), architecture value, target name and the
    latency as written."""

    row: int
    arch: Any
    target: str
    latency: Any


@attrs.define
class Tally:
    """Where each latency of the file went: kept or dropped per target, or skipped as bad."""

    kept: Counter = attrs.Factory(Counter)
    dropped: dict[str, Counter] = attrs.Factory(lambda: defaultdict(Counter))
    bad: Counter = attrs.Factory(Counter)
    examples: dict[str, str] = attrs.Factory(dict)

    def skip(self, reason: str, row: int, detail: str, n: int = 1) -> None:
        self.bad[reason] += n
        self.examples.setdefault(reason, f"row {row}: {detail}")

    def drop(self, reason: str, target: str, n: int = 1) -> None:
        self.dropped[reason][target] += n

    def warnings(self) -> list[str]:
        return [f"skipped {n:,} row{'s' if n > 1 else ''} with {BAD[reason]}, e.g. "
                f"{self.examples[reason]}" for reason, n in self.bad.items()]

    def nothing_usable(self, path: Path) -> LennaError:
        causes = "; ".join(f"{n:,} with {BAD[r]}, e.g. {self.examples[r]}"
                           for r, n in self.bad.items())
        return LennaError(f"no usable row in {path.name}: {causes or 'it has no rows'}")


def import_file(path: Path, source: Any, options: ImportOptions, store: Store
                ) -> dict[str, Any]:
    """Import ``path`` into ``store`` as architectures of ``source``; return the summary.
    An error or interrupt keeps the chunks committed before it; a re-run adds the rest."""
    start = time.monotonic()
    _check_options(options)
    frame = _read(path)
    rows_in_file = len(frame)
    frame = _select(frame, options.where, path)
    fingerprint = {"imported": True, "origin": path.name, "sha256": _sha256(path)}
    factor = UNITS[options.unit]
    tally = Tally()
    if options.wide:
        targets, entries = _wide(frame, options, path, fingerprint)
    else:
        targets, entries = _long(frame, options, path, fingerprint, tally)
    spec_of = _SpecReader(source, None if options.arch_map is None else _arch_map(
        options.arch_map))
    usable = []
    for entry in entries:
        latency = _number(entry.latency) * factor
        if not (math.isfinite(latency) and latency > 0):
            tally.skip("latency", entry.row, repr(entry.latency)[:60])
        elif isinstance(key := spec_of(entry.arch), LennaError):
            tally.skip("spec", entry.row, str(key))
        else:
            usable.append((key, attrs.evolve(entry, latency=latency)))
    groups = _groups(_representatives(usable, spec_of, tally))
    if not groups:
        raise tally.nothing_usable(path)
    medians = _target_medians(groups)
    steps = math.ceil(len(groups) / CHUNK)
    bar = (progress_bar(steps, f"importing {path.name}") if steps > 1
           else nullcontext(lambda status: None))
    with bar as advance, _collect_per_chunk():
        items = _items(groups, source, options, targets, medians, tally, advance)
        added = store.add_measurements(_checked(items, tally, path))
    kept = sum(tally.kept.values())
    return {
        "file": str(path), "origin": path.name, "sha256": fingerprint["sha256"],
        "source": source.name, "db": store.db, "format": "wide" if options.wide else "long",
        "rows_in_file": rows_in_file, "rows": len(frame), "where": list(options.where),
        "latencies": len(entries) + tally.bad["target"], "kept": kept, "new": added,
        "already_stored": kept - added,
        "dropped": {r: sum(tally.dropped[r].values()) for r in DROPS},
        "skipped": {f"bad_{r}": tally.bad[r] for r in BAD},
        "targets": {t: {"kept": tally.kept[t], **{r: tally.dropped[r][t] for r in DROPS}}
                    for t in sorted(targets) if tally.kept[t] or any(
                        tally.dropped[r][t] for r in DROPS)},
        "degenerate_threshold": f"< {DEGENERATE:.0%} of the target's median",
        "degenerate_example": tally.examples.get("degenerate"),
        "warnings": tally.warnings(), "seconds": round(time.monotonic() - start, 2),
    }


def summary_text(summary: Mapping[str, Any]) -> str:
    """The summary of :func:`import_file` as a few lines for people."""
    where = f" (--where {' '.join(summary['where'])})" if summary["where"] else ""
    lines = [f"read {summary['latencies']:,} latencies from {summary['rows']:,} of "
             f"{summary['rows_in_file']:,} rows of {summary['origin']}{where}",
             f"{'target':32s} {'kept':>7s} {'isomorphic':>10s} {'duplicates':>10s} "
             f"{'degenerate':>10s}"]
    for name, row in summary["targets"].items():
        lines.append(f"{name:32s} {row['kept']:7,d} {row['isomorphic']:10,d} "
                     f"{row['duplicates']:10,d} {row['degenerate']:10,d}")
    dropped, skipped = summary["dropped"], summary["skipped"]
    lines.append(f"dropped {dropped['isomorphic']:,} isomorphic copies (one row per class and "
                 f"target kept), {dropped['duplicates']:,} exact duplicates (median kept), "
                 f"{dropped['degenerate']:,} degenerate ({summary['degenerate_threshold']}"
                 + (f", e.g. {summary['degenerate_example']}" if dropped["degenerate"] else "")
                 + f"); skipped {sum(skipped.values()):,} bad rows")
    lines.append(f"stored {summary['kept']:,} measurements as {summary['source']} "
                 f"architectures in {summary['db']}: {summary['new']:,} new, "
                 f"{summary['already_stored']:,} already stored ({summary['seconds']:.1f} s)")
    return "\n".join(lines)


def _check_options(options: ImportOptions) -> None:
    if options.unit not in UNITS:
        raise LennaError(f"unknown --unit {options.unit!r}; use one of {', '.join(UNITS)}")
    if options.batch_size < 1:
        raise LennaError(f"--batch-size must be at least 1, got {options.batch_size}")
    if options.wide:
        if options.latency_col is not None or options.target_cols:
            raise LennaError("--wide takes no --latency-col or --target-cols: every numeric "
                             "column is a target named by its header")
    elif options.latency_col is None or not options.target_cols:
        raise LennaError("give --target-cols and --latency-col (long format), or --wide")
    elif options.ignore_cols:
        raise LennaError("--ignore-cols applies only with --wide")


def _read(path: Path) -> Any:
    """The file as a DataFrame with string column names and the row numbers as index."""
    import pandas as pd
    from pyarrow import ArrowException

    kind = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(path.suffix.lower())
    if kind is None:
        raise LennaError(f"cannot import {path.name}: unknown extension "
                         f"{path.suffix or '(none)'}; give a .csv or .parquet file")
    if not path.is_file():
        raise LennaError(f"cannot read {path}: no such file")
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except (OSError, ValueError, ArrowException) as exc:
        raise LennaError(f"cannot read {path} as {kind}: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c) for c in frame.columns]
    frame.index = range(1, len(frame) + 1)
    return frame


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_columns(frame: Any, names: Any, path: Path, option: str) -> None:
    """LennaError naming the missing columns, a close match and the available ones."""
    columns = list(frame.columns)
    missing = [str(n) for n in names if n not in columns]
    if missing:
        close = difflib.get_close_matches(missing[0], columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LennaError(f"{option}: no column {', '.join(map(repr, missing))} in {path.name}"
                         f"{hint}; columns are {', '.join(columns)}")


def _text(value: Any) -> str:
    """A cell as text; whole floats lose their ``.0`` (1.0 and 1 both read ``1``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def _select(frame: Any, where: tuple[str, ...], path: Path) -> Any:
    """The rows matching every ``--where`` column (any of its values when repeated)."""
    wanted: dict[str, list[str]] = {}
    for item in where:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise LennaError(f"--where {item!r} must look like COL=VALUE")
        wanted.setdefault(column.strip(), []).append(value.strip())
    _check_columns(frame, wanted, path, "--where")
    for column, values in wanted.items():
        texts = frame[column].map(_text)
        if not texts.isin(values).any():
            seen = sorted(set(texts))
            shown = ", ".join(seen[:10]) + (", ..." if len(seen) > 10 else "")
            raise LennaError(f"no row of {path.name} has {column} = "
                             f"{' or '.join(values)}; its values are {shown}")
        frame = frame[texts.isin(values)]
    return frame


def _long(frame: Any, options: ImportOptions, path: Path, fingerprint: dict[str, Any],
          tally: Tally) -> tuple[dict[str, Target], list[Entry]]:
    """One entry per row: the target is the ``--target-cols`` values joined with ``/``."""
    _check_columns(frame, [options.arch_col], path, "--arch-col")
    _check_columns(frame, options.target_cols, path, "--target-cols")
    _check_columns(frame, [options.latency_col], path, "--latency-col")
    columns = [options.arch_col, *options.target_cols, options.latency_col]
    targets: dict[str, Target] = {}
    entries: list[Entry] = []
    values = zip(frame.index, *(frame[c].tolist() for c in columns), strict=True)
    for row, arch, *parts, latency in values:
        empty = [c for c, v in zip(options.target_cols, parts, strict=True) if _empty(v)]
        if empty:
            tally.skip("target", row, f"{empty[0]} is empty")
            continue
        texts = [_text(v) for v in parts]
        name = "/".join(texts)
        if name not in targets:
            targets[name] = Target(name, {**dict(zip(options.target_cols, texts, strict=True)),
                                          **fingerprint})
        entries.append(Entry(row, arch, name, latency))
    return targets, entries


def _wide(frame: Any, options: ImportOptions, path: Path,
          fingerprint: dict[str, Any]) -> tuple[dict[str, Target], list[Entry]]:
    """One entry per numeric cell: the target is the column's header."""
    _check_columns(frame, [options.arch_col], path, "--arch-col")
    _check_columns(frame, options.ignore_cols, path, "--ignore-cols")
    where = {item.partition("=")[0].strip() for item in options.where}
    skip = {options.arch_col, *options.ignore_cols, *where}
    columns = [c for c in frame.columns if c not in skip and _numeric(frame[c])]
    if not columns:
        raise LennaError(f"--wide: {path.name} has no numeric column besides "
                         f"{', '.join(sorted(skip))}; columns are {', '.join(frame.columns)}")
    targets = {c: Target(c, {"column": c, **fingerprint}) for c in columns}
    archs = frame[options.arch_col].tolist()
    entries = [Entry(row, arch, column, latency)
               for column in columns
               for row, arch, latency in zip(frame.index, archs, frame[column].tolist(),
                                             strict=True)]
    return targets, entries


def _numeric(series: Any) -> bool:
    """A column of numbers (bar a few bad cells), not of booleans."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    values = series.dropna()
    return len(values) > 0 and values.map(_number).notna().mean() > 0.5


def _number(value: Any) -> float:
    """A cell as a float, NaN when it is none (an integer past a float's range included)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _arch_map(path: Path) -> dict[str, str]:
    """``--arch-map``: a CSV whose first two columns are an index and a spec."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise LennaError(f"cannot read --arch-map {path}: {str(exc).splitlines()[0]}") from None
    if frame.shape[1] < 2:
        raise LennaError(f"--arch-map {path.name} needs two columns, an index and a spec; "
                         f"it has {', '.join(frame.columns) or 'none'}")
    return dict(zip(frame.iloc[:, 0].str.strip(), frame.iloc[:, 1], strict=True))


class _SpecReader:
    """A file's architecture values as spec keys (canonical JSON), cached by value; a value
    that is no spec gives the LennaError saying why."""

    def __init__(self, source: Any, arch_map: dict[str, str] | None) -> None:
        self.source = source
        self.arch_map = arch_map
        self.keys: dict[Any, str | LennaError] = {}
        self.canonical: dict[str, str] = {}

    def __call__(self, value: Any) -> str | LennaError:
        if not isinstance(value, Hashable):  # a Parquet cell that holds a list or a struct
            return LennaError(f"{_text(value)[:60]!r} is a {type(value).__name__}, not a spec")
        if value not in self.keys:
            try:
                self.keys[value] = json.dumps(self._spec(value), sort_keys=True)
            except LennaError as exc:
                self.keys[value] = exc
        return self.keys[value]

    def _spec(self, value: Any) -> dict[str, Any]:
        if _empty(value):
            raise LennaError("no architecture")
        if self.arch_map is not None:
            if _text(value) not in self.arch_map:
                raise LennaError(f"index {_text(value)!r} is not in --arch-map")
            value = self.arch_map[_text(value)]
        if not isinstance(value, str):
            raise LennaError(f"{value!r} is an index; give --arch-map FILE.csv")
        text = value.strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                raise LennaError(f"spec {text[:60]!r} is not valid JSON: {exc}") from None
        field = optional(self.source, "spec_field")
        if field is None:
            raise LennaError(f"source {self.source.name} reads no plain string as a spec "
                             f"(give JSON objects): {text[:60]!r}")
        return {field: text}

    def canonical_key(self, key: str) -> str:
        """The spec key of the representative of ``key``'s isomorphism class."""
        if key not in self.canonical:
            spec = self.source.canonical_spec(json.loads(key))
            self.canonical[key] = json.dumps(spec, sort_keys=True)
        return self.canonical[key]


def _representatives(usable: list[tuple[str, Entry]], spec_of: _SpecReader,
                     tally: Tally) -> list[tuple[str, Entry]]:
    """Of each isomorphism class on each target, the rows of the class's first spec in the
    file (the network that was measured, where copies repeat its latency, as in
    HW-NAS-Bench-360); all rows when the source has no ``canonical_spec``."""
    if optional(spec_of.source, "canonical_spec") is None:
        return usable
    valid, chosen = [], {}
    for key, entry in usable:
        with plugin_call(spec_of.source, "canonical_spec"):  # a LennaError: a bad spec
            try:
                canonical = spec_of.canonical_key(key)
            except LennaError as exc:
                tally.skip("spec", entry.row, str(exc))
                continue
        valid.append((key, canonical, entry))
        slot = (entry.target, canonical)
        chosen.setdefault(slot, key)
    kept = []
    for key, canonical, entry in valid:
        if chosen[(entry.target, canonical)] == key:
            kept.append((key, entry))
        else:
            tally.drop("isomorphic", entry.target)
    return kept


def _groups(usable: list[tuple[str, Entry]]) -> dict[str, dict[str, list[Entry]]]:
    """Spec key -> target -> its entries, in the file's order."""
    groups: dict[str, dict[str, list[Entry]]] = {}
    for key, entry in usable:
        groups.setdefault(key, {}).setdefault(entry.target, []).append(entry)
    return groups


def _median(entries: list[Entry]) -> float:
    return statistics.median(e.latency for e in entries)


def _target_medians(groups: dict[str, dict[str, list[Entry]]]) -> dict[str, float]:
    """Each target's median latency over its distinct architectures."""
    latencies: dict[str, list[float]] = defaultdict(list)
    for by_target in groups.values():
        for target, entries in by_target.items():
            latencies[target].append(_median(entries))
    return {target: statistics.median(values) for target, values in latencies.items()}


def _items(groups: dict[str, dict[str, list[Entry]]], source: Any, options: ImportOptions,
           targets: dict[str, Target], medians: dict[str, float], tally: Tally,
           advance: Callable[[str], None]) -> Iterator[tuple[Workload, Target, str, Measurement]]:
    """Build each spec's architecture once and yield one measurement per target."""
    factor = UNITS[options.unit]
    seen: set[tuple[str, str]] = set()
    for built, (key, by_target) in enumerate(groups.items(), start=1):
        if built % CHUNK == 0 or built == len(groups):
            advance(f"{built:,} architectures")
            gc.collect()
        with plugin_call(source, "from_spec"):  # a LennaError: a bad spec
            try:
                arch = source.from_spec(json.loads(key))
            except LennaError as exc:
                first = min(e.row for entries in by_target.values() for e in entries)
                tally.skip("spec", first, str(exc), sum(map(len, by_target.values())))
                continue
        workload = source_workload(source, arch, batch_size=options.batch_size)
        for target, entries in by_target.items():
            if (workload.id, target) in seen:
                tally.drop("duplicates", target, len(entries))
                continue
            seen.add((workload.id, target))
            tally.drop("duplicates", target, len(entries) - 1)
            latency = _median(entries)
            if latency < DEGENERATE * medians[target]:
                tally.drop("degenerate", target)
                tally.examples.setdefault("degenerate", (
                    f"row {entries[0].row} on {target}: {latency / factor:.4g} {options.unit} "
                    f"against a median of {medians[target] / factor:.4g} {options.unit}"))
                continue
            tally.kept[target] += 1
            yield (workload, targets[target], PROTOCOL,
                   Measurement.from_samples([round(latency)], PROTOCOL))


@contextmanager
def _collect_per_chunk() -> Iterator[None]:
    """Collect garbage once per chunk, not whenever objects pile up: building graphs makes
    so many that automatic collections, each rescanning the file's rows, take a quarter of
    the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _checked(items: Iterator[Any], tally: Tally, path: Path) -> Iterator[Any]:
    """Pass ``items`` on; fail (so the store rolls back) if none was usable."""
    yield from items
    if not tally.kept:
        raise tally.nothing_usable(path)
