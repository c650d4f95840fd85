"""The measurement store: SQLAlchemy Core over SQLite by default, any SQLAlchemy URL later.

Every write is its own transaction, so a measurement is committed as soon as it is taken;
:meth:`Store.add_measurements` adds many at once, in transactions of ``CHUNK`` rows. The
passes of a label still being taken are kept in ``passes`` until the label is final; then the
label and the removal of its passes are one transaction.

Many processes may write one store at once. Every insert is idempotent (a row already there is
kept, never a conflict), the schema is created under the write lock, a write transaction takes
the lock when it begins (SQLite's ``BEGIN IMMEDIATE``) and waits up to ``BUSY_TIMEOUT`` for
it, and a campaign claims the labels it is taking (``claims``) so that two campaigns never take
the same label. Rows are checked as they are read: a damaged one is a :class:`StoreError` that
names it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from lenna_core.errors import LennaError, StoreError, first_line
from lenna_core.ir.graph import Graph
from lenna_core.records import Architecture, Measurement, Target, Workload

SCHEMA_VERSION = "5"
BUSY_TIMEOUT = 120.0
"""Seconds a write waits for another process's write lock (a transaction holds it for well
under a second: imports commit every ``CHUNK`` rows)."""
CHUNK = 500
"""Measurements written per transaction by :meth:`Store.add_measurements`."""
STATUSES = ("ok", "contended", "failed")
DRIVERS = {"sqlite": "", "postgresql": "psycopg[binary]"}
"""The databases a store may live in, with the package that provides each one's driver."""

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
claims = sa.Table(
    "claims", metadata,
    sa.Column("workload_id", sa.String(32), primary_key=True),
    sa.Column("target_id", sa.String(32), primary_key=True),
    sa.Column("protocol", sa.String(256), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
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
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise StoreError(f"--db {db} is neither a file nor a database URL") from None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                              ":memory:"):
            path = Path(parsed.database)
            if not path.exists():
                if not create:
                    raise StoreError(
                        f"database {db} does not exist; run 'lenna run --db {db}' first")
                if not path.parent.is_dir():
                    raise StoreError(f"cannot create database {db}: directory {path.parent} "
                                     "does not exist")
            elif path.is_dir():
                raise StoreError(f"--db {db} is a directory; give a database file")
        self._url = parsed
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
            engine = self._engine = _create_engine(self.db, self._url)
            try:
                self._check_or_create(self._create)
            except BaseException:
                self._engine = None
                engine.dispose()
                raise
        return self._engine

    def _check_or_create(self, create: bool) -> None:
        """Check that the database is a LENNA store and create or upgrade its tables, all
        under the write lock, so that processes opening a new store at once do not collide."""
        with self.transaction() as conn:
            if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE does this there
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(5365666)"))
            names = set(sa.inspect(conn).get_table_names())
            if names and meta_table.name not in names:
                raise StoreError(
                    f"{self.db} is not a LENNA database (it has tables "
                    f"{', '.join(sorted(names))}); give another --db")
            if not names and not create:
                raise StoreError(f"{self.db} is an empty database; nothing has been measured "
                                 "yet")
            metadata.create_all(conn)
            row = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            if row is None:
                conn.execute(meta_table.insert().values(key="schema_version",
                                                        value=SCHEMA_VERSION))
            elif not row[0].isdigit():
                raise StoreError(f"{self.db} has a damaged schema version {row[0]!r}")
            elif int(row[0]) > int(SCHEMA_VERSION):
                raise StoreError(
                    f"{self.db} has schema version {row[0]}, newer than this LENNA's "
                    f"{SCHEMA_VERSION}; upgrade LENNA"
                )
            elif row[0] != SCHEMA_VERSION:
                _add_missing_columns(conn)
                conn.execute(meta_table.update().where(meta_table.c.key == "schema_version")
                             .values(value=SCHEMA_VERSION))

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction holding the write lock from its start, committed at the end."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(lenna_write=True)
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to database {self.db}: {_short(exc)}") from None

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read-only connection; a database error is a StoreError that says what to do."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read database {self.db}: {_short(exc)}; 'lenna db check "
                             f"--db {self.db}' scans it") from None

    def add_workload(self, workload: Workload) -> None:
        """Store the workload and its architecture unless already there."""
        with self.transaction() as conn:
            _add_workload(conn, workload)

    def add_target(self, target: Target) -> None:
        """Store the target unless already there."""
        with self.transaction() as conn:
            _insert_new(conn, targets, [_target_row(target)])

    def get_measurement(self, workload: Workload, target: Target,
                        protocol: str) -> Measurement | None:
        """The stored measurement of this workload on this target under this protocol."""
        m = measurements.c
        query = sa.select(measurements).where(
            m.workload_id == workload.id, m.target_id == target.id, m.protocol == protocol)
        with self.reading() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else measurement_from_row(row)

    def add_measurements(self, items: Iterable[tuple[Workload, Target, str, Measurement]]
                         ) -> int:
        """Add many measurements, committed ``CHUNK`` at a time so that other writers are not
        locked out: an error or an interrupt while ``items`` is consumed keeps the chunks
        committed before it and nothing of the chunk being gathered.

        Architectures, workloads and targets are added as needed. A measurement already
        stored for its workload, target and protocol (or given twice) is kept as it is and
        not counted. Returns the number added.
        """
        added = 0
        for chunk in _chunks(items, CHUNK):
            with self.transaction() as conn:
                added += _add_chunk(conn, chunk)
        return added

    def add_pass(self, workload: Workload, target: Target, protocol: str, index: int,
                 measurement: Measurement) -> None:
        """Commit one pass of a label still being taken."""
        with self.transaction() as conn:
            _add_workload(conn, workload)
            _insert_new(conn, passes, [{
                "workload_id": workload.id, "target_id": target.id, "protocol": protocol,
                "pass_index": index, "measurement": json.dumps(_pass_data(measurement))}])

    def pending_passes(self, target: Target, protocol: str,
                       workload_ids: Iterable[str] | None = None
                       ) -> dict[str, list[Measurement]]:
        """The passes taken so far of every unfinished label on the target (of
        ``workload_ids`` where given), by workload id."""
        p = passes.c
        query = (sa.select(p.workload_id, p.pass_index, p.measurement)
                 .where(p.target_id == target.id, p.protocol == protocol)
                 .order_by(p.workload_id, p.pass_index))
        if workload_ids is not None:
            query = query.where(p.workload_id.in_(list(workload_ids)))
        found: dict[str, list[Measurement]] = {}
        with self.reading() as conn:
            for workload_id, index, data in conn.execute(query):
                found.setdefault(workload_id, []).append(pass_from_row(
                    {"workload_id": workload_id, "pass_index": index, "measurement": data}))
        return found

    def finish_label(self, workload: Workload, target: Target, protocol: str,
                     measurement: Measurement) -> None:
        """Commit a final label in one transaction: it replaces a stored failure (a label
        already stored otherwise is kept), and its passes and claim are dropped."""
        key = {"workload_id": workload.id, "target_id": target.id, "protocol": protocol}
        with self.transaction() as conn:
            _add_workload(conn, workload)
            _insert_new(conn, targets, [_target_row(target)])
            conn.execute(measurements.delete().where(
                matches(measurements, key), measurements.c.status == "failed"))
            _insert_new(conn, measurements,
                        [_measurement_row(workload, target, protocol, measurement)])
            conn.execute(passes.delete().where(matches(passes, key)))
            conn.execute(claims.delete().where(matches(claims, key)))

    def claim(self, workload_ids: Sequence[str], target: Target, protocol: str, owner: str,
              ttl: float) -> set[str]:
        """Claim the labels of ``workload_ids`` on the target for ``owner`` for ``ttl``
        seconds; return those it holds now. A label stored already (but for a failure) is not
        claimed; one claimed by another owner is taken over when that claim has expired or its
        owner is a process on this host that has ended."""
        now = time.time()
        c, m = claims.c, measurements.c
        with self.transaction() as conn:
            done = set(conn.execute(sa.select(m.workload_id).where(
                m.target_id == target.id, m.protocol == protocol, m.status != "failed",
                m.workload_id.in_(list(workload_ids)))).scalars())
            free = [w for w in workload_ids if w not in done]
            mine = sa.and_(c.target_id == target.id, c.protocol == protocol,
                           c.workload_id.in_(free))
            _insert_new(conn, claims, [
                {"workload_id": w, "target_id": target.id, "protocol": protocol,
                 "owner": owner, "expires": now + ttl} for w in free])
            held = conn.execute(sa.select(c.workload_id, c.owner, c.expires).where(mine)).all()
            for workload_id, holder, expires in held:
                if holder != owner and (expires < now or not owner_alive(holder)):
                    conn.execute(claims.update()  # only if no one took it over meanwhile
                                 .where(mine, c.workload_id == workload_id, c.owner == holder)
                                 .values(owner=owner, expires=now + ttl))
            return set(conn.execute(sa.select(c.workload_id).where(mine, c.owner == owner))
                       .scalars())

    def renew_claims(self, owner: str, ttl: float) -> None:
        """Extend every claim of ``owner`` by ``ttl`` seconds from now."""
        with self.transaction() as conn:
            conn.execute(claims.update().where(claims.c.owner == owner)
                         .values(expires=time.time() + ttl))

    def release_claims(self, owner: str) -> None:
        """Drop every claim of ``owner``."""
        with self.transaction() as conn:
            conn.execute(claims.delete().where(claims.c.owner == owner))

    def reference_baseline(self, target: Target, protocol: str) -> float | None:
        """Median of the reference medians of every compensated measurement on the target.

        Compensated latencies are ratios to the interleaved reference times this baseline:
        the reference's typical speed over the whole campaign.
        """
        m = measurements.c
        query = sa.select(m.reference_median_ns).where(
            m.target_id == target.id, m.protocol == protocol,
            m.reference_median_ns.is_not(None))
        with self.reading() as conn:
            values = [row[0] for row in conn.execute(query)]
        return float(statistics.median(values)) if values else None

    def get_features(self, workload: Workload, featurizer: str,
                     version: str) -> dict[str, float] | None:
        """The stored feature values of a workload by one featurizer version, if any."""
        f = features.c
        query = sa.select(f["values"]).where(
            f.workload_id == workload.id, f.featurizer == featurizer, f.version == version)
        with self.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return features_from_row({"workload_id": workload.id, "featurizer": featurizer,
                                  "values": row[0]})

    def add_features(self, workload: Workload, featurizer: str, version: str,
                     values: dict[str, float]) -> None:
        """Store a workload's feature values (kept as they are when already stored)."""
        with self.transaction() as conn:
            _add_workload(conn, workload)
            _insert_new(conn, features, [{
                "workload_id": workload.id, "featurizer": featurizer, "version": version,
                "values": json.dumps(values)}])

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
        with self.reading() as conn:
            yield from (dict(row) for row in conn.execute(query).mappings())

    def architecture(self, arch_id: str) -> Architecture | None:
        """A stored architecture by id (or None)."""
        with self.reading() as conn:
            row = conn.execute(sa.select(architectures).where(architectures.c.id == arch_id)
                               ).mappings().first()
        return None if row is None else architecture_from_row(row)

    def targets(self) -> list[Target]:
        """Every stored target with its fingerprint (an import's records its origin file)."""
        with self.reading() as conn:
            rows = conn.execute(sa.select(targets.c.id, targets.c.backend,
                                          targets.c.fingerprint)).all()
        return [target_from_row(row._mapping) for row in rows]

    def feature_rows(self) -> list[dict[str, Any]]:
        """Every stored feature vector: workload id, featurizer, version and values."""
        with self.reading() as conn:
            return [{"workload_id": r["workload_id"], "featurizer": r["featurizer"],
                     "version": r["version"], "values": features_from_row(r)}
                    for r in conn.execute(sa.select(features)).mappings()]


def _create_engine(db: str, url: sa.URL) -> sa.Engine:
    """An engine whose write transactions wait for the lock rather than fail; a URL whose
    driver is not installed is a StoreError naming the package to install."""
    dialect = url.get_backend_name()
    if dialect not in DRIVERS:
        raise StoreError(f"database {db}: {dialect} databases are not supported; give a SQLite "
                         "file or a postgresql:// URL")
    sqlite = dialect == "sqlite"
    try:
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT} if sqlite else {})
    except ImportError:
        raise StoreError(f"database {db} needs the {dialect} driver, which is not installed: "
                         f"pip install '{DRIVERS[dialect]}'") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot use database {db}: {_short(exc)}") from None
    if sqlite:
        @sa.event.listens_for(engine, "connect")
        def _driver_transactions_off(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's events below begin them

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get("lenna_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
    return engine


def owner_name() -> str:
    """A claim owner unique to this process: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_alive(owner: str) -> bool:
    """False only when ``owner`` is a process on this host that has ended."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def matches(table: sa.Table, key: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """The condition selecting the rows of ``table`` whose columns have ``key``'s values."""
    return sa.and_(*(table.c[name] == value for name, value in key.items()))


def _insert_new(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose key is not stored yet (nor racing in from another writer);
    return how many were inserted."""
    if not rows:
        return 0
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    result = conn.execute(insert(table).on_conflict_do_nothing(), rows)
    return max(result.rowcount, 0)


def _add_workload(conn: sa.Connection, workload: Workload) -> None:
    _insert_new(conn, architectures, [_architecture_row(workload.architecture)])
    _insert_new(conn, workloads, [_workload_row(workload)])


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


def _add_chunk(conn: sa.Connection, chunk: list[tuple[Workload, Target, str, Measurement]]
               ) -> int:
    """Insert what is missing of a chunk of (workload, target, protocol, measurement)."""
    archs = {w.architecture.id: w.architecture for w, _, _, _ in chunk}
    loads = {w.id: w for w, _, _, _ in chunk}
    places = {t.id: t for _, t, _, _ in chunk}
    _insert_new(conn, architectures, [_architecture_row(a) for a in archs.values()])
    _insert_new(conn, workloads, [_workload_row(w) for w in loads.values()])
    _insert_new(conn, targets, [_target_row(t) for t in places.values()])
    rows = {}
    for workload, target, protocol, measurement in chunk:
        rows.setdefault((workload.id, target.id, protocol),
                        _measurement_row(workload, target, protocol, measurement))
    return _insert_new(conn, measurements, list(rows.values()))


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
    """The architecture in a row with its id (``arch_id`` or ``id``), ``source``, ``spec``,
    ``graph`` and ``params``; a damaged row, or one whose graph no longer hashes to its id, is
    a StoreError naming it."""
    stored_id = row.get("arch_id", row.get("id"))
    where = f"stored architecture {stored_id}"
    spec = spec_from_row(row)
    params = None if row["params"] is None else _json_cell(row, "params", object, where)
    try:
        arch = Architecture(row["source"], spec, Graph.from_json(row["graph"]), params)
    except (LennaError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DamagedRow(where, f"its graph cannot be read ({first_line(exc)})") from None
    if arch.id != stored_id:
        raise DamagedRow(where, f"its graph and params hash to {arch.id}, not to its id")
    return arch


def spec_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The spec in a row with an architecture's ``spec`` and id (``arch_id`` or ``id``)."""
    return _json_cell(row, "spec", dict, f"stored architecture {row.get('arch_id', row.get('id'))}")


def target_from_row(row: Mapping[str, Any]) -> Target:
    """The target in a row of the targets table; a damaged row is a StoreError naming it."""
    where = f"stored target {row['id']}"
    target = Target(row["backend"], _json_cell(row, "fingerprint", dict, where))
    if target.id != row["id"]:
        raise DamagedRow(where, f"its name and fingerprint hash to {target.id}, not to its id")
    return target


_SERIES = ("samples_ns", "reference_samples_ns", "wait_ns", "reference_wait_ns", "sample_pass")
_COUNTS = ("runs", "clean_runs", "passes", "peak_memory_bytes", "device_memory_bytes")
_NUMBERS = ("median_ns", "p10_ns", "p90_ns", "iqr_ns", "cv", "reference_median_ns", "ratio",
            "expected_ns", "seconds", "timestamp", "contention", "others_cpu")


def measurement_from_row(row: Mapping[str, Any]) -> Measurement:
    """The measurement in a row with the measurements table's columns; a damaged row is a
    StoreError naming it."""
    where = f"stored measurement {row.get('measurement_id', row.get('id'))}"
    if row["status"] not in STATUSES:
        raise DamagedRow(where, f"unknown status {row['status']!r}")
    series = {}
    for column in _SERIES:
        values = [] if row[column] is None else _json_cell(row, column, list, where)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise DamagedRow(where, f"{column} holds a value that is not a number")
        series[column] = tuple(values)
    for column in _COUNTS:
        value = row[column]
        if not (value is None and column != "runs"
                or isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise DamagedRow(where, f"{column} is {value!r}, not a count")
    for column in _NUMBERS:
        value = row[column]
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            raise DamagedRow(where, f"{column} is {value!r}, not a finite number")
    op_profile = None if row["op_profile"] is None else _json_cell(row, "op_profile", dict,
                                                                    where)
    return Measurement(
        status=row["status"], median_ns=row["median_ns"], p10_ns=row["p10_ns"],
        p90_ns=row["p90_ns"], iqr_ns=row["iqr_ns"], cv=row["cv"], runs=row["runs"],
        stop_reason=row["stop_reason"], reference_median_ns=row["reference_median_ns"],
        ratio=row["ratio"], expected_ns=row["expected_ns"],
        peak_memory_bytes=row["peak_memory_bytes"],
        device_memory_bytes=row["device_memory_bytes"], op_profile=op_profile,
        seconds=row["seconds"], error=row["error"], timestamp=row["timestamp"],
        clean_runs=row["clean_runs"], passes=row["passes"] or 1,
        contention=row["contention"], others_cpu=row["others_cpu"], **series,
    )


def _json_cell(row: Mapping[str, Any], column: str, kind: type, where: str) -> Any:
    """The JSON value of a cell, which must be a ``kind``."""
    try:
        value = json.loads(row[column])
    except (TypeError, ValueError):
        raise DamagedRow(where, f"{column} is not valid JSON") from None
    if not isinstance(value, kind):
        raise DamagedRow(where, f"{column} is not a JSON {'object' if kind is dict else 'list'}")
    return value


def features_from_row(row: Mapping[str, Any]) -> dict[str, float]:
    """The feature values in a row of the features table; a damaged row is a StoreError."""
    where = f"stored features of workload {row['workload_id']} by {row['featurizer']}"
    values = _json_cell(row, "values", dict, where)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()):
        raise DamagedRow(where, "a value is not a number")
    return values


def pass_from_row(row: Mapping[str, Any]) -> Measurement:
    """The pass in a row of the passes table; a damaged row is a StoreError naming it."""
    where = f"stored pass {row['pass_index']} of workload {row['workload_id']}"
    value = _json_cell(row, "measurement", dict, where)
    try:
        return _from_pass_data(value)
    except (TypeError, ValueError, LennaError) as exc:
        raise DamagedRow(where, first_line(exc)) from None


class DamagedRow(StoreError):
    """A stored row that cannot be read: ``where`` names it and ``problem`` says why."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where} is damaged: {problem}; 'lenna db check' lists every "
                         "damaged row")
        self.where, self.problem = where, problem


def _short(exc: Exception) -> str:
    return first_line(getattr(exc, "orig", None) or exc)
