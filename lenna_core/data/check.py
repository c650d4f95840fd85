"""``lenna db check``: scan a store for damage, and drop what is damaged on request.

Every row is read the way the commands read it, so what the scan passes the commands can use;
an architecture's or target's id is checked against the content hash it was made from, and
SQLite's own ``integrity_check`` and ``foreign_key_check`` run first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from lenna_core.data.store import (
    DamagedRow,
    Store,
    architecture_from_row,
    architectures,
    features,
    features_from_row,
    matches,
    measurement_from_row,
    measurements,
    pass_from_row,
    passes,
    target_from_row,
    targets,
    workloads,
)
from lenna_core.errors import StoreError, first_line
from lenna_core.records import MODES


@attrs.frozen
class Damage:
    """One damaged row: its table, its key and what is wrong with it."""

    table: str
    key: Mapping[str, Any]
    problem: str

    def line(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in self.key.items())
        return f"{self.table} ({key}): {self.problem}"


@attrs.frozen
class CheckReport:
    """What a scan found: rows read per table, damaged rows, and problems of the file."""

    rows: Mapping[str, int]
    damage: tuple[Damage, ...]
    database: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.damage and not self.database

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": dict(self.rows), "database": list(self.database),
                "damaged": [{"table": d.table, "key": dict(d.key), "problem": d.problem}
                            for d in self.damage]}


def check_store(store: Store) -> CheckReport:
    """Read every row of the store as the commands would; report what cannot be read."""
    database = _database_problems(store)
    rows: dict[str, int] = {}
    damage: list[Damage] = []
    for table, read in _READERS.items():
        key = [c.name for c in table.primary_key.columns]
        rows[table.name] = 0
        with store.reading() as conn:
            for row in conn.execute(sa.select(table)).mappings():
                rows[table.name] += 1
                try:
                    read(row)
                except DamagedRow as exc:
                    damage.append(Damage(table.name, {k: row[k] for k in key}, exc.problem))
    return CheckReport(rows, tuple(damage), tuple(database))


def drop_damaged(store: Store, report: CheckReport) -> int:
    """Delete the damaged rows of ``report`` and the rows that depend on them, in one
    transaction; return how many rows went. A campaign that needs their labels measures
    them again."""
    deleted = 0
    with store.transaction() as conn:
        for damage in report.damage:
            for table, condition in _row_and_dependents(damage):
                deleted += conn.execute(table.delete().where(condition)).rowcount
    return deleted


def _row_and_dependents(damage: Damage) -> Iterator[tuple[sa.Table, sa.ColumnElement[bool]]]:
    """Conditions selecting a damaged row and every row that refers to it, children first."""
    key = damage.key
    if damage.table == architectures.name:
        loads = sa.select(workloads.c.id).where(workloads.c.arch_id == key["id"])
        for child in (measurements, passes, features):
            yield child, child.c.workload_id.in_(loads)
        yield workloads, workloads.c.arch_id == key["id"]
    elif damage.table == workloads.name:
        for child in (measurements, passes, features):
            yield child, child.c.workload_id == key["id"]
    elif damage.table == targets.name:
        for child in (measurements, passes):
            yield child, child.c.target_id == key["id"]
    table = next(t for t in _READERS if t.name == damage.table)
    yield table, matches(table, key)


def _database_problems(store: Store) -> list[str]:
    """SQLite's own checks of the file and of its foreign keys (other databases: none)."""
    if store.engine.dialect.name != "sqlite":
        return []
    problems = []
    try:
        with store.engine.connect() as conn:
            found = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if found != ["ok"]:
                problems += [f"integrity_check: {line}" for line in found[:20]]
            for table, rowid, parent, _ in conn.exec_driver_sql("PRAGMA foreign_key_check"):
                problems.append(f"{table} row {rowid} refers to a missing {parent} row")
    except SQLAlchemyError as exc:
        raise StoreError(f"{store.db} is damaged beyond reading: "
                         f"{first_line(getattr(exc, 'orig', None) or exc)}") from None
    return problems


def _workload(row: Mapping[str, Any]) -> None:
    where = f"stored workload {row['id']}"
    size = row["batch_size"]
    if not (isinstance(size, int) and size >= 1):
        raise DamagedRow(where, f"batch size {size!r} is not a positive count")
    if row["mode"] not in MODES:
        raise DamagedRow(where, f"unknown mode {row['mode']!r}")


_READERS: dict[sa.Table, Callable[[Mapping[str, Any]], Any]] = {
    architectures: architecture_from_row,
    workloads: _workload,
    targets: target_from_row,
    measurements: measurement_from_row,
    passes: pass_from_row,
    features: features_from_row,
}
"""How each table's rows are read, in an order where a row's parents come first."""
