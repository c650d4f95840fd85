"""The measurement store: SQLAlchemy Core over SQLite by default, any SQLAlchemy URL later.

Every write is its own transaction, so a measurement is committed as soon as it is taken;
:meth:`Store.add_measurements` adds many at once, all or none. The passes of a label still
being taken are kept in ``passes`` until the label is final; then the label and the removal of
its passes are one transaction.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from lenna_core.errors import StoreError
from lenna_core.ir.graph import Graph
from lenna_core.records import Architecture, Measurement, Target, Workload

SCHEMA_VERSION = "4"

metadata = sa.MetaData()

meta_table = sa.Table(
    "lenna_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
architectures = sa.Table(
    "architectures", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("graph", sa.Text, nullable=False),
    sa.Column("params", sa.Text),
)
workloads = sa.Table(
    "workloads", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("arch_id", sa.String(32), sa.ForeignKey("architectures.id"), nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("optimizer", sa.String(32)),
    sa.Column("dtype", sa.String(16), nullable=False),
)
targets = sa.Table(
    "targets", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("backend", sa.String(128), nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
)
measurements = sa.Table(
    "measurements", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workload_id", sa.String(32), sa.ForeignKey("workloads.id"), nullable=False),
    sa.Column("target_id", sa.String(32), sa.ForeignKey("targets.id"), nullable=False),
    sa.Column("protocol", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("samples_ns", sa.Text, nullable=False),
    sa.Column("median_ns", sa.Float),
    sa.Column("p10_ns", sa.Float),
    sa.Column("p90_ns", sa.Float),
    sa.Column("iqr_ns", sa.Float),
    sa.Column("cv", sa.Float),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("stop_reason", sa.String(64)),
    sa.Column("reference_samples_ns", sa.Text),
    sa.Column("reference_median_ns", sa.Float),
    sa.Column("ratio", sa.Float),
    sa.Column("expected_ns", sa.Float),
    sa.Column("peak_memory_bytes", sa.BigInteger),
    sa.Column("device_memory_bytes", sa.BigInteger),
    sa.Column("op_profile", sa.Text),
    sa.Column("seconds", sa.Float),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("wait_ns", sa.Text),
    sa.Column("reference_wait_ns", sa.Text),
    sa.Column("sample_pass", sa.Text),
    sa.Column("clean_runs", sa.Integer),
    sa.Column("passes", sa.Integer),
    sa.Column("contention", sa.Float),
    sa.Column("others_cpu", sa.Float),
    sa.UniqueConstraint("workload_id", "target_id", "protocol", name="uq_measurement"),
)
passes = sa.Table(
    "passes", metadata,
    sa.Column("workload_id", sa.String(32), sa.ForeignKey("workloads.id"), primary_key=True),
    sa.Column("target_id", sa.String(32), sa.ForeignKey("targets.id"), primary_key=True),
    sa.Column("protocol", sa.String(256), primary_key=True),
    sa.Column("pass_index", sa.Integer, primary_key=True),
    sa.Column("measurement", sa.Text, nullable=False),
)
features = sa.Table(
    "features", metadata,
    sa.Column("workload_id", sa.String(32), sa.ForeignKey("workloads.id"), primary_key=True),
    sa.Column("featurizer", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("values", sa.Text, nullable=False),
)


def database_url(db: str) -> str:
    """A path becomes a SQLite URL; anything with ``://`` is taken as an SQLAlchemy URL."""
    return db if "://" in db else f"sqlite:///{Path(db).expanduser()}"


class Store:
    """Architectures, workloads, targets, measurements and features in one database."""

    def __init__(self, db: str, *, create: bool = True) -> None:
        self.db = db
        url = database_url(db)
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                if not create:
                    raise StoreError(
                        f"database {db} does not exist; run 'lenna run --db {db}' first")
                if not path.parent.is_dir():
                    raise StoreError(f"cannot create database {db}: directory {path.parent} "
                                     "does not exist")
            elif path.is_dir():
                raise StoreError(f"--db {db} is a directory; give a database file")
        self._url = url
        self._create = create
        self._engine: sa.Engine | None = None

    def open(self) -> Store:
        """Open the database now rather than on first use, so that what is wrong with it is
        said before any work starts."""
        _ = self.engine
        return self

    @property
    def engine(self) -> sa.Engine:
        """The database, opened (and, for a new one, created) on first use, so that a command
        that fails before it stores anything leaves no database behind."""
        if self._engine is None:
            try:
                engine = sa.create_engine(self._url)
                self._check_or_create(engine, self._create)
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot use database {self.db}: {_short(exc)}") from None
            self._engine = engine
        return self._engine

    def _check_or_create(self, engine: sa.Engine, create: bool) -> None:
        names = set(sa.inspect(engine).get_table_names())
        if names and meta_table.name not in names:
            raise StoreError(
                f"{self.db} is not a LENNA database (it has tables {', '.join(sorted(names))}); "
                "give another --db"
            )
        if not names and not create:
            raise StoreError(f"{self.db} is an empty database; nothing has been measured yet")
        metadata.create_all(engine)
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            if row is None:
                conn.execute(meta_table.insert().values(key="schema_version",
                                                        value=SCHEMA_VERSION))
            elif int(row[0]) > int(SCHEMA_VERSION):
                raise StoreError(
                    f"{self.db} has schema version {row[0]}, newer than this LENNA's "
                    f"{SCHEMA_VERSION}; upgrade LENNA"
                )
            elif row[0] != SCHEMA_VERSION:
                _add_missing_columns(conn)
                conn.execute(meta_table.update().where(meta_table.c.key == "schema_version")
                             .values(value=SCHEMA_VERSION))

    def _write(self, statement: Any) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(statement)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to database {self.db}: {_short(exc)}") from None

    def _exists(self, table: sa.Table, **keys: Any) -> bool:
        condition = sa.and_(*(table.c[k] == v for k, v in keys.items()))
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.literal(1)).where(condition)).first() is not None

    def add_workload(self, workload: Workload) -> None:
        """Store the workload and its architecture unless already there."""
        arch = workload.architecture
        if not self._exists(architectures, id=arch.id):
            self._write(architectures.insert().values(**_architecture_row(arch)))
        if not self._exists(workloads, id=workload.id):
            self._write(workloads.insert().values(**_workload_row(workload)))

    def add_target(self, target: Target) -> None:
        if not self._exists(targets, id=target.id):
            self._write(targets.insert().values(**_target_row(target)))

    def get_measurement(self, workload: Workload, target: Target,
                        protocol: str) -> Measurement | None:
        """The stored measurement of this workload on this target under this protocol."""
        m = measurements.c
        query = sa.select(measurements).where(
            m.workload_id == workload.id, m.target_id == target.id, m.protocol == protocol)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else measurement_from_row(row)

    def add_measurements(self, items: Iterable[tuple[Workload, Target, str, Measurement]]
                         ) -> int:
        """Add many measurements in one transaction: all of them or, on an error or an
        interrupt while ``items`` is consumed, none.

        Architectures, workloads and targets are added as needed. A measurement already
        stored for its workload, target and protocol (or given twice) is kept as it is and
        not counted. Returns the number added.
        """
        added = 0
        try:
            with self.engine.begin() as conn:
                for chunk in _chunks(items, 500):
                    added += _add_chunk(conn, chunk)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to database {self.db}: {_short(exc)}") from None
        return added

    def add_pass(self, workload: Workload, target: Target, protocol: str, index: int,
                 measurement: Measurement) -> None:
        """Commit one pass of a label still being taken."""
        self.add_workload(workload)
        self._write(passes.insert().values(
            workload_id=workload.id, target_id=target.id, protocol=protocol, pass_index=index,
            measurement=json.dumps(_pass_data(measurement))))

    def pending_passes(self, target: Target, protocol: str) -> dict[str, list[Measurement]]:
        """The passes taken so far of every unfinished label on the target, by workload id."""
        p = passes.c
        query = (sa.select(p.workload_id, p.measurement)
                 .where(p.target_id == target.id, p.protocol == protocol)
                 .order_by(p.workload_id, p.pass_index))
        found: dict[str, list[Measurement]] = {}
        with self.engine.connect() as conn:
            for workload_id, data in conn.execute(query):
                found.setdefault(workload_id, []).append(_from_pass_data(json.loads(data)))
        return found

    def finish_label(self, workload: Workload, target: Target, protocol: str,
                     measurement: Measurement) -> None:
        """Commit a final label and drop its passes, in one transaction."""
        self.add_workload(workload)
        self.add_target(target)
        p = passes.c
        try:
            with self.engine.begin() as conn:
                conn.execute(measurements.insert().values(
                    **_measurement_row(workload, target, protocol, measurement)))
                conn.execute(passes.delete().where(
                    p.workload_id == workload.id, p.target_id == target.id,
                    p.protocol == protocol))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to database {self.db}: {_short(exc)}") from None

    def reference_baseline(self, target: Target, protocol: str) -> float | None:
        """Median of the reference medians of every compensated measurement on the target.

        Compensated latencies are ratios to the interleaved reference times this baseline:
        the reference's typical speed over the whole campaign.
        """
        m = measurements.c
        query = sa.select(m.reference_median_ns).where(
            m.target_id == target.id, m.protocol == protocol,
            m.reference_median_ns.is_not(None))
        with self.engine.connect() as conn:
            values = [row[0] for row in conn.execute(query)]
        return float(statistics.median(values)) if values else None

    def get_features(self, workload: Workload, featurizer: str,
                     version: str) -> dict[str, float] | None:
        f = features.c
        query = sa.select(f["values"]).where(
            f.workload_id == workload.id, f.featurizer == featurizer, f.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else json.loads(row[0])

    def add_features(self, workload: Workload, featurizer: str, version: str,
                     values: dict[str, float]) -> None:
        self.add_workload(workload)
        self._write(features.insert().values(workload_id=workload.id, featurizer=featurizer,
                                             version=version, values=json.dumps(values)))

    def measurement_rows(self, source: str | None = None,
                         target_ids: Sequence[str] | None = None, *,
                         status: str | None = None, graphs: bool = False
                         ) -> Iterator[dict[str, Any]]:
        """One dict per stored measurement, in the order stored: its columns (its id as
        ``measurement_id``) with its workload's, architecture's and target's, and the
        architecture's ``graph`` and ``params`` when ``graphs``. Only the measurements of
        ``source``'s workloads, on ``target_ids``, with ``status``, where those are given.
        :func:`measurement_from_row` and :func:`architecture_from_row` read a row."""
        w, a, t, m = workloads.c, architectures.c, targets.c, measurements.c
        own = (c for c in measurements.c if c.name not in ("id", "workload_id", "target_id"))
        query = (
            sa.select(m.id.label("measurement_id"), a.id.label("arch_id"), a.source, a.spec,
                      *((a.graph, a.params) if graphs else ()), w.id.label("workload_id"),
                      w.batch_size, w.mode, w.optimizer, w.dtype, t.id.label("target_id"),
                      t.backend, *own)
            .select_from(measurements.join(workloads, m.workload_id == w.id)
                         .join(architectures, w.arch_id == a.id)
                         .join(targets, m.target_id == t.id))
            .order_by(m.id)
        )
        if source is not None:
            query = query.where(a.source == source)
        if target_ids is not None:
            query = query.where(m.target_id.in_(list(target_ids)))
        if status is not None:
            query = query.where(m.status == status)
        with self.engine.connect() as conn:
            yield from (dict(row) for row in conn.execute(query).mappings())

    def architecture(self, arch_id: str) -> Architecture | None:
        """A stored architecture by id (or None)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(architectures).where(architectures.c.id == arch_id)
                               ).mappings().first()
        return None if row is None else architecture_from_row(row)

    def targets(self) -> list[Target]:
        """Every stored target with its fingerprint (an import's records its origin file)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(targets.c.backend, targets.c.fingerprint)).all()
        return [Target(backend, json.loads(fingerprint)) for backend, fingerprint in rows]

    def feature_rows(self) -> list[dict[str, Any]]:
        """Every stored feature vector: workload id, featurizer, version and values."""
        with self.engine.connect() as conn:
            return [
                {"workload_id": r.workload_id, "featurizer": r.featurizer,
                 "version": r.version, "values": json.loads(r[3])}
                for r in conn.execute(sa.select(features))
            ]


def _architecture_row(arch: Architecture) -> dict[str, Any]:
    return {"id": arch.id, "source": arch.source,
            "spec": json.dumps(dict(arch.spec), sort_keys=True), "graph": arch.graph.to_json(),
            "params": None if arch.params is None else json.dumps(arch.params)}


def _workload_row(workload: Workload) -> dict[str, Any]:
    return {"id": workload.id, "arch_id": workload.architecture.id, **workload.settings()}


def _target_row(target: Target) -> dict[str, Any]:
    return {"id": target.id, "backend": target.name,
            "fingerprint": json.dumps(dict(target.fingerprint), sort_keys=True)}


def _measurement_row(workload: Workload, target: Target, protocol: str,
                     measurement: Measurement) -> dict[str, Any]:
    return {
        "workload_id": workload.id, "target_id": target.id, "protocol": protocol,
        "status": measurement.status, "error": measurement.error,
        "samples_ns": json.dumps(list(measurement.samples_ns)),
        "median_ns": measurement.median_ns, "p10_ns": measurement.p10_ns,
        "p90_ns": measurement.p90_ns, "iqr_ns": measurement.iqr_ns, "cv": measurement.cv,
        "runs": measurement.runs, "stop_reason": measurement.stop_reason,
        "reference_samples_ns": json.dumps(list(measurement.reference_samples_ns)),
        "reference_median_ns": measurement.reference_median_ns, "ratio": measurement.ratio,
        "expected_ns": measurement.expected_ns,
        "peak_memory_bytes": measurement.peak_memory_bytes,
        "device_memory_bytes": measurement.device_memory_bytes,
        "op_profile": None if measurement.op_profile is None
        else json.dumps(dict(measurement.op_profile)),
        "seconds": measurement.seconds, "timestamp": measurement.timestamp,
        "wait_ns": json.dumps(list(measurement.wait_ns)),
        "reference_wait_ns": json.dumps(list(measurement.reference_wait_ns)),
        "sample_pass": json.dumps(list(measurement.sample_pass)),
        "clean_runs": measurement.clean_runs, "passes": measurement.passes,
        "contention": measurement.contention, "others_cpu": measurement.others_cpu,
    }


def _pass_data(measurement: Measurement) -> dict[str, Any]:
    """A pass as JSON: its fields, with tuples as lists."""
    return attrs.asdict(measurement, recurse=False,
                        value_serializer=lambda _, __, v: list(v) if isinstance(v, tuple) else v)


def _from_pass_data(data: dict[str, Any]) -> Measurement:
    """The pass :func:`_pass_data` wrote (fields this version does not know are dropped)."""
    known = {field.name for field in attrs.fields(Measurement)}
    values = {key: value for key, value in data.items() if key in known}
    for key in ("samples_ns", "reference_samples_ns", "wait_ns", "reference_wait_ns",
                "sample_pass"):
        values[key] = tuple(values.get(key) or ())
    return Measurement(**values)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _stored(conn: sa.Connection, column: sa.Column, values: Iterable[str]) -> set[str]:
    """Which of ``values`` the column already holds."""
    return set(conn.execute(sa.select(column).where(column.in_(set(values)))).scalars())


def _add_chunk(conn: sa.Connection, chunk: list[tuple[Workload, Target, str, Measurement]]
               ) -> int:
    """Insert what is missing of a chunk of (workload, target, protocol, measurement)."""
    archs = {w.architecture.id: w.architecture for w, _, _, _ in chunk}
    loads = {w.id: w for w, _, _, _ in chunk}
    places = {t.id: t for _, t, _, _ in chunk}
    for table, items, row in ((architectures, archs, _architecture_row),
                              (workloads, loads, _workload_row), (targets, places, _target_row)):
        new = set(items) - _stored(conn, table.c.id, items)
        if new:
            conn.execute(table.insert(), [row(items[key]) for key in new])
    m = measurements.c
    present = {tuple(row) for row in conn.execute(
        sa.select(m.workload_id, m.target_id, m.protocol).where(m.workload_id.in_(set(loads))))}
    rows = {}
    for workload, target, protocol, measurement in chunk:
        key = (workload.id, target.id, protocol)
        if key not in present and key not in rows:
            rows[key] = _measurement_row(workload, target, protocol, measurement)
    if rows:
        conn.execute(measurements.insert(), list(rows.values()))
    return len(rows)


def _add_missing_columns(conn: sa.Connection) -> None:
    """Upgrade an older store in place: every column added since is nullable."""
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(
                    f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def architecture_from_row(row: Mapping[str, Any]) -> Architecture:
    """The architecture in a row with its ``source``, ``spec``, ``graph`` and ``params``."""
    return Architecture(row["source"], json.loads(row["spec"]), Graph.from_json(row["graph"]),
                        None if row["params"] is None else json.loads(row["params"]))


def measurement_from_row(row: Mapping[str, Any]) -> Measurement:
    """The measurement in a row with the measurements table's columns."""
    return Measurement(
        status=row["status"], samples_ns=tuple(json.loads(row["samples_ns"])),
        median_ns=row["median_ns"], p10_ns=row["p10_ns"], p90_ns=row["p90_ns"],
        iqr_ns=row["iqr_ns"], cv=row["cv"], runs=row["runs"], stop_reason=row["stop_reason"],
        reference_samples_ns=tuple(json.loads(row["reference_samples_ns"] or "[]")),
        reference_median_ns=row["reference_median_ns"], ratio=row["ratio"],
        expected_ns=row["expected_ns"],
        peak_memory_bytes=row["peak_memory_bytes"],
        device_memory_bytes=row["device_memory_bytes"],
        op_profile=None if row["op_profile"] is None else json.loads(row["op_profile"]),
        seconds=row["seconds"], error=row["error"], timestamp=row["timestamp"],
        wait_ns=tuple(json.loads(row["wait_ns"] or "[]")),
        reference_wait_ns=tuple(json.loads(row["reference_wait_ns"] or "[]")),
        sample_pass=tuple(json.loads(row["sample_pass"] or "[]")),
        clean_runs=row["clean_runs"], passes=row["passes"] or 1,
        contention=row["contention"], others_cpu=row["others_cpu"],
    )


def _short(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]
