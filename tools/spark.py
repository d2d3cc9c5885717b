"""Spark as the user's warehouse (a dbt-spark target): the extract's reader and the scratch schema's queries.

The ``session`` method runs Spark in this process (pyspark): ``SparkSession.builder.enableHiveSupport()`` with the
profile's ``server_side_parameters`` and ``getOrCreate()``, exactly as dbt-spark's session method opens it, so the
extract, the scratch build (dbt-spark, in-process) and the scratch schema's drop all see one catalog; the session is
the process's and is never stopped here. ``thrift`` and ``http`` (a cluster) go through dbt-spark's own connection code
(PyHive: ``pip install "dbt-spark[PyHive]"``), so their settings mean what they mean to dbt.

Spark has no block sampling and no declared foreign keys: a large table is read as ``TABLESAMPLE (p PERCENT)
REPEATABLE (42)`` with a ``LIMIT`` (Spark stops scanning once the limit is met), the row estimate comes from the
catalog's statistics (``ANALYZE TABLE ... COMPUTE STATISTICS``) when it has them, and foreign keys are the
name-based candidate keys. Rows travel as Arrow (``DataFrame.toArrow()``), registered in DuckDB and cast to the
column types.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import duckdb
from sqlglot import exp

from dataeng_crew.contracts import WarehouseTarget
from dataeng_crew.errors import WarehouseError
from dataeng_crew.tools.extract import (LOOKUP_BATCH, SCRATCH_PREFIX, FkPair, sample_percent, scrub,
                                        write_rows)
from dataeng_crew.tools.warehouse import quote_ident

CATALOG = "spark_catalog"  # Spark's session catalog: the extract's DuckDB catalog is named after it
SPARK_TO_DUCKDB = {"string": "VARCHAR", "boolean": "BOOLEAN", "tinyint": "TINYINT", "byte": "TINYINT",
                   "smallint": "SMALLINT", "short": "SMALLINT", "int": "INTEGER", "integer": "INTEGER",
                   "bigint": "BIGINT", "long": "BIGINT", "float": "FLOAT", "real": "FLOAT", "double": "DOUBLE",
                   "date": "DATE", "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP", "timestamp_ltz": "TIMESTAMP",
                   "binary": "BLOB"}
DECIMAL = re.compile(r"^(?:decimal|numeric|dec)\((\d+),\s*(\d+)\)$")
STATS_ROWS = re.compile(r"(\d+) rows")
ROWS_VIEW = "_dataeng_crew_spark_rows"


def spark_ident(name: str) -> str:
    """Quote an identifier for Spark SQL (backticks, embedded ones doubled)."""
    return "`" + name.replace("`", "``") + "`"


def spark_rel(schema: str, table: str) -> str:
    """``schema.table`` quoted for Spark SQL."""
    return f"{spark_ident(schema)}.{spark_ident(table)}"


def duckdb_type(spark_type: str) -> str:
    """The DuckDB type a Spark column type (``DESCRIBE TABLE`` spelling) is copied as; nested, interval and unknown
    types travel as text."""
    low = spark_type.strip().lower()
    if low in SPARK_TO_DUCKDB:
        return SPARK_TO_DUCKDB[low]
    if low.startswith(("varchar", "char")):
        return "VARCHAR"
    match = DECIMAL.match(low)
    if match:
        return f"DECIMAL({min(int(match.group(1)), 38)}, {match.group(2)})"
    if low in ("decimal", "numeric", "dec"):
        return "DECIMAL(10, 0)"  # Spark's default precision
    return "VARCHAR"


def select_list(columns: list[tuple[str, str]]) -> str:
    """The columns as Spark hands them to DuckDB: nested/interval types as strings, a session-zoned ``timestamp``
    as the wall-clock time Spark shows (``timestamp_ntz``)."""
    out = []
    for col, typ in columns:
        low, name = typ.strip().lower(), spark_ident(col)
        if duckdb_type(typ) == "VARCHAR" and not low.startswith(("string", "varchar", "char")):
            out.append(f"cast({name} as string) as {name}")
        elif low in ("timestamp", "timestamp_ltz"):
            out.append(f"cast({name} as timestamp_ntz) as {name}")
        else:
            out.append(name)
    return ", ".join(out)


def literal(value: Any) -> str:
    """A Spark SQL literal of a key value read from DuckDB."""
    return exp.convert(value).sql(dialect="spark")


def local_session(target: WarehouseTarget):  # noqa: ANN201 - pyspark.sql.SparkSession
    """The process's Spark session, opened as dbt-spark's ``session`` method opens it (Hive catalog, the profile's
    ``server_side_parameters``, ``getOrCreate``): an existing session is reused.

    Raises:
        WarehouseError: When pyspark is missing or Spark cannot start (naming the target; Java 17 is needed).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WarehouseError(f"Spark ({target.label}) uses method: session, which needs pyspark: "
                             "pip install 'dbt-spark[session]'") from None
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in (target.options.get("server_side_parameters") or {}).items():
        builder = builder.config(str(key), str(value))
    try:
        return builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - pyspark raises several kinds when the JVM cannot start
        reason = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, target)
        raise WarehouseError(f"cannot start a local Spark session ({target.label}): {reason[:300]} "
                             "(Spark needs Java 17: install a JRE, e.g. Debian's openjdk-17-jre-headless)") from None


def dbt_spark_connection(target: WarehouseTarget):  # noqa: ANN201 - dbt-spark's connection wrapper
    """An open dbt-spark connection (``thrift``/``http``) to the target, its settings read as dbt reads them.

    Raises:
        WarehouseError: When it cannot be opened (naming the profile and target, never the token).
    """
    from dbt.adapters.contracts.connection import Connection, ConnectionState
    from dbt_common.exceptions import DbtBaseException

    try:
        from dbt.adapters.spark.connections import SparkConnectionManager, SparkCredentials

        secret = target.password.get_secret_value() or None
        creds = SparkCredentials(method=target.method, host=target.host, port=target.port or 443,
                                 schema=target.schema_ or "default", user=target.user,
                                 token=secret if target.method == "http" else None,
                                 password=secret if target.method == "thrift" else None,
                                 **{k: v for k, v in target.options.items() if k != "driver"})
        conn = Connection(type="spark", name="dataeng-crew", credentials=creds, state=ConnectionState.INIT)
        return SparkConnectionManager.open(conn).handle
    except (DbtBaseException, OSError, TypeError, ImportError) as exc:
        reason = scrub(str(exc).strip().replace("\n", " "), target)
        raise WarehouseError(f"cannot connect to Spark ({target.label}): {reason[:300]}") from None


class SparkReader:
    """The extract's reader of a Spark warehouse (see :class:`tools.extract.Reader`), also the scratch schema's
    queries. Opened on the process's session (``method: session``) or through dbt-spark (``thrift``/``http``)."""

    def __init__(self, target: WarehouseTarget) -> None:
        self.target = target
        self.database = CATALOG
        self.session = local_session(target) if target.method == "session" else None
        self.handle = None if self.session is not None else dbt_spark_connection(target)
        self.errors = self._errors()

    def _errors(self) -> tuple[type[BaseException], ...]:
        if self.session is not None:
            from py4j.protocol import Py4JError
            from pyspark.errors import PySparkException

            return (PySparkException, Py4JError)
        from dbt_common.exceptions import DbtBaseException

        return (DbtBaseException, OSError)

    # -- queries -------------------------------------------------------------------------------------------------
    def rows(self, sql: str) -> list[tuple]:
        """The rows of one query, as Python values."""
        if self.session is not None:
            return [tuple(r) for r in self.session.sql(sql).collect()]
        self.handle.execute(sql)
        return [tuple(r) for r in self.handle.fetchall() or []]

    def execute(self, sql: str) -> None:
        """Run one statement."""
        if self.session is not None:
            self.session.sql(sql).collect()
        else:
            self.handle.execute(sql)

    def arrow(self, sql: str):  # noqa: ANN201 - pyarrow.Table
        """The result of one query as an Arrow table (Spark's own Arrow path on a session)."""
        import pyarrow as pa

        if self.session is not None:
            return self.session.sql(sql).toArrow()
        self.handle.execute(sql)
        rows = self.handle.fetchall() or []
        names = [d[0] for d in self.handle.description]
        return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})

    def databases(self) -> list[str]:
        """The catalog's databases (schemas)."""
        return [str(r[0]) for r in self.rows("show databases")]

    # -- the extract's reader ------------------------------------------------------------------------------------
    def relations(self, dbt_schema: str | None) -> list[tuple[str, str]]:
        """Tables and views of every database but the tool's scratch ones; in dbt's own schema, tables only (its
        views are dbt models the sandbox builds itself)."""
        own = (dbt_schema or "").lower()
        out = []
        for db in sorted(self.databases()):
            if db.lower().startswith(SCRATCH_PREFIX) or db.lower() == "global_temp":
                continue
            tables = [str(r[1]) for r in self.rows(f"show tables in {spark_ident(db)}") if not r[-1]]
            views = {str(r[1]) for r in self.rows(f"show views in {spark_ident(db)}")} if db.lower() == own else set()
            out += [(db, t) for t in sorted(tables) if t not in views]
        return out

    def columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """``(column, Spark type)`` from ``DESCRIBE TABLE`` (its partition section left out)."""
        out = []
        for name, typ, *_ in self.rows(f"describe table {spark_rel(schema, table)}"):
            if not name or str(name).startswith("#"):
                break
            out.append((str(name), str(typ)))
        return out

    def duckdb_type(self, engine_type: str) -> str:
        """See :func:`duckdb_type`."""
        return duckdb_type(engine_type)

    def estimate_rows(self, schema: str, table: str, cap: int) -> tuple[int, bool]:
        """A count capped at ``cap + 1`` rows (exact for a small table); a larger one's rows from the catalog's
        statistics, else a count (answered from file footers on columnar formats)."""
        rel = spark_rel(schema, table)
        capped = self.rows(f"select count(*) from (select 1 from {rel} limit {int(cap) + 1}) as capped")[0][0]
        if capped <= cap:
            return int(capped), True
        stats = [str(r[1]) for r in self.rows(f"describe table extended {rel}") if str(r[0]) == "Statistics"]
        found = STATS_ROWS.search(stats[0]) if stats else None
        rows = int(found.group(1)) if found and int(found.group(1)) > 0 else \
            int(self.rows(f"select count(*) from {rel}")[0][0])
        return max(rows, cap + 1), False

    def whole_query(self, schema: str, table: str, columns: list[tuple[str, str]]) -> str:
        """Every row."""
        return f"select {select_list(columns)} from {spark_rel(schema, table)}"

    def bounded_query(self, schema: str, table: str, columns: list[tuple[str, str]], estimate: int, max_rows: int,
                      tcol: str | None, window_days: int | None) -> str:
        """``TABLESAMPLE`` sized for three times the sample, the window before the sample's newest time, ``LIMIT``."""
        sample = (f"{spark_rel(schema, table)} tablesample ({sample_percent(estimate, max_rows):.6f} percent) "
                  "repeatable (42)")
        where = ""
        if tcol and window_days:
            newest = self.rows(f"select cast(max({spark_ident(tcol)}) as string) from {sample}")[0][0]
            if newest:
                start = dt.datetime.fromisoformat(str(newest)) - dt.timedelta(days=window_days)
                typ = dict(columns)[tcol].strip().lower()
                bound = f"date'{start.date().isoformat()}'" if typ == "date" else \
                    f"cast('{start.isoformat(sep=' ')}' as {typ})"
                where = f" where {spark_ident(tcol)} > {bound}"
        return f"select {select_list(columns)} from {sample}{where} limit {int(max_rows)}"

    def copy_into(self, duck: duckdb.DuckDBPyConnection, query: str, schema: str, table: str,
                  columns: list[tuple[str, str]], create: bool) -> int:
        """The rows of ``query`` as Arrow, into ``schema.table`` of the extract, each column cast to its type."""
        duck.register(ROWS_VIEW, self.arrow(query))
        try:
            casts = ", ".join(f"cast({quote_ident(c)} as {duckdb_type(t)}) as {quote_ident(c)}" for c, t in columns)
            return write_rows(duck, f"(select {casts} from {ROWS_VIEW})", schema, table, create)
        finally:
            duck.unregister(ROWS_VIEW)

    def declared_foreign_keys(self) -> list[FkPair]:
        """None: Spark declares no foreign keys (the name-based candidate keys are used)."""
        return []

    def parent_queries(self, fk: FkPair, columns: list[tuple[str, str]], values: list) -> list[str] | None:
        """``in (...)`` lookups in batches; None when the parent lacks over 1 % of ``values``."""
        rel, key = spark_rel(fk[3], fk[4]), spark_ident(fk[5])
        batches = [", ".join(literal(v) for v in values[i:i + LOOKUP_BATCH])
                   for i in range(0, len(values), LOOKUP_BATCH)]
        found = sum(int(self.rows(f"select count(distinct {key}) from {rel} where {key} in ({b})")[0][0])
                    for b in batches)
        if found < 0.99 * len(values):
            return None
        return [f"select {select_list(columns)} from {rel} where {key} in ({b})" for b in batches]

    def close(self) -> None:
        """Close a cluster connection; a local session stays (it is the process's, dbt-spark reuses it)."""
        if self.handle is not None:
            self.handle.close()
