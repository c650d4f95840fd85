"""What the commands share: option types, option parsers, and the registry and store."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from lenna_core import limits
from lenna_core.errors import LennaError
from lenna_core.limits import Bound


def bounded(bound: Bound, text: str, *param_decls: str) -> Any:
    """A typer option checked against ``bound`` as it is parsed (a one-line LennaError naming
    the range, before any work starts); its help ends with the range."""
    return typer.Option(*param_decls, help=f"{text} Must be {bound.describe()}.",
                        callback=bound.check)


DbOption = Annotated[str, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")]
SourceName = Annotated[str, typer.Option("--source", help="Architecture source plugin.")]
SourceOptions = Annotated[list[str] | None, typer.Option(
    "--source-option", "-O", help="Source option key=value (repeatable), e.g. input_size=64.")]
ArchOption = Annotated[str | None, typer.Option(
    "--arch", help="A JSON spec, a JSON file, or an architecture id stored in --db.")]
SeedOption = Annotated[int | None, bounded(
    limits.SEED, "Sample the architecture with this seed.", "--seed")]
ModelOption = Annotated[str | None, typer.Option(
    "--model", help="Shorthand for the spec {\"model\": NAME}.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ThreadsOption = Annotated[str, typer.Option(
    help="Intra-op threads: a count, or auto for the backend's default (all cores). One "
         "thread gives labels that hold on a machine whose cores are shared.")]
ProtocolOption = Annotated[str, typer.Option(
    help="Stopping rule: adaptive[:CI] (CI half-width, default 0.01), fixed:N or lenna.")]
BudgetOption = Annotated[float, bounded(
    limits.BUDGET, "Time budget per label, seconds, shared by its passes (a pass whose "
                   "runs are spoiled by other processes may take twice its share).")]
PassesOption = Annotated[int, bounded(
    limits.PASSES, "Passes per label, spread over the campaign (another pass, up to 5, "
                   "when they disagree or one is spoiled).")]
TimeoutOption = Annotated[float, bounded(
    limits.TIMEOUT, "Seconds one measurement may take before it is recorded as failed.")]


def names(text: str | None) -> tuple[str, ...]:
    """The items of a comma list, stripped, empty ones dropped."""
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


def registry():
    """The plugins found, loaded once per command."""
    from lenna_core.plugins.registry import make_registry

    return make_registry()


def store(db: str, *, create: bool = True):
    """The store at ``db``, opened on first use."""
    from lenna_core.data.store import Store

    return Store(db, create=create)


def read_json(path: Path) -> Any:
    """The JSON in the file ``path``; a LennaError when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise LennaError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise LennaError(f"{path} is not valid JSON: {exc}") from None


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings to a dict; values are read as JSON when they parse."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LennaError(f"option {pair!r} must look like key=value")
        try:
            options[key] = json.loads(value)
        except (ValueError, RecursionError):  # not JSON: the text itself
            options[key] = value
    return options


def parse_threads(text: str) -> int | None:
    """``"4"`` to 4, ``"auto"`` to None (the backend's own default)."""
    if text.strip().lower() == "auto":
        return None
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if not limits.THREADS.contains(threads):
        raise LennaError(f"--threads must be a count from 1 to {limits.THREADS.high} (this "
                         f"host has {os.cpu_count() or 1} CPUs) or auto, got {text!r}")
    return threads


def parse_cpus(text: str | None) -> tuple[int, ...] | None:
    """``"0,1"`` to ``(0, 1)``, checked against the CPUs this process may use."""
    if text is None:
        return None
    try:
        cpus = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise LennaError(f"--cpus must be a comma-separated list of CPU numbers, got {text!r}"
                         ) from None
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if not cpus or (allowed is not None and not set(cpus) <= allowed):
        raise LennaError(f"--cpus {text}: usable CPUs are {sorted(allowed or [])}")
    return cpus


def resolve_arch(source: Any, text: str, db: str):
    """The architecture ``--arch`` names: a JSON spec of ``source``, a JSON file (an
    architecture, a graph or a spec) or an architecture id stored in ``db``."""
    from lenna_core.plugins.calls import plugin_call
    from lenna_core.records import Architecture

    text = text.strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise LennaError(f"--arch is not valid JSON: {exc}") from None
        with plugin_call(source, "from_spec"):
            return source.from_spec(spec)
    path = Path(text)
    if path.exists() and not path.is_file():
        raise LennaError(f"--arch {text} is not a file")
    if path.is_file():
        data = read_json(path)
        if isinstance(data, dict) and "graph" in data:
            return Architecture.from_dict(data)
        with plugin_call(source, "from_spec"):
            return source.from_spec(data)
    stored = store(db, create=False).architecture(text)
    if stored is None:
        raise LennaError(f"--arch {text!r} is neither a JSON spec, a file nor an architecture "
                         f"id stored in {db}")
    return stored
