"""A bounded DuckDB extract of a PostgreSQL or Spark warehouse, with closed foreign keys: what the checks run on.

Each relation outside the system schemas and the tool's scratch schemas (in the dbt target's own schema: its tables
only) is copied into a DuckDB file named as the warehouse's database (PostgreSQL: the database; Spark:
``spark_catalog``), schema for schema, so the sources the project declares (``database``/``schema``/``table``) resolve
the same in the extract. A table of at most ``max_rows`` rows is copied whole; a larger one as a sample
(``TABLESAMPLE``, sized from the row estimate) limited to ``max_rows`` rows and, when it has a timestamp, to the
``window_days`` before its newest sampled time. Foreign keys (declared constraints, and columns whose names point at
another table's key) are then closed: every child value missing from its parent in the extract is fetched from the
parent by key, repeated until nothing is missing.

The algorithm is one; what differs per engine is a small :class:`Reader` (the queries and how rows travel):
:class:`PostgresReader` here (CSV through ``COPY ... TO STDOUT``: DuckDB's postgres extension would be downloaded at
first use), ``SparkReader`` in :mod:`tools.spark` (Arrow). Secrets stay in memory; errors name the profile and target.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from pathlib import Path
from typing import Protocol

import duckdb
from sqlglot import exp

from dataeng_crew.contracts import ExtractedRelation, ExtractSummary, WarehouseTarget
from dataeng_crew.errors import WarehouseError
from dataeng_crew.tools.warehouse import named_foreign_keys, profile_table, quote_ident

DEFAULT_MAX_ROWS = 100_000
DEFAULT_WINDOW_DAYS = 365
SCRATCH_PREFIX = "dataeng_crew_"
SYSTEM = ("pg_catalog", "information_schema", "pg_toast")
LOOKUP_BATCH = 5_000
TIME_TYPES = ("timestamp", "date")
ENGINE_NAMES = {"postgres": "PostgreSQL", "spark": "Spark"}
PG_TO_DUCKDB = {"numeric": "DECIMAL(38,10)", "text": "VARCHAR", "json": "VARCHAR", "jsonb": "VARCHAR",
                "uuid": "UUID", "bytea": "BLOB", "money": "DECIMAL(18,2)"}


def duck_rel(duck: duckdb.DuckDBPyConnection, *parts: str) -> str:
    """``catalog.schema[.table]`` in the extract, fully qualified: a schema named as the database (``rides.rides``)
    would be ambiguous otherwise."""
    catalog = duck.execute("select current_database()").fetchone()[0]
    return ".".join(quote_ident(p) for p in (catalog, *parts))


def pg_open(target: WarehouseTarget, dbname: str | None = None):  # noqa: ANN201 - psycopg2 connection
    """An autocommit psycopg2 connection to the target's database.

    Raises:
        WarehouseError: Naming the profile and target (never the password or a DSN).
    """
    import psycopg2

    try:
        con = psycopg2.connect(host=target.host, port=target.port, user=target.user,
                               password=target.password.get_secret_value() or None,
                               dbname=dbname or target.dbname, connect_timeout=10)
    except psycopg2.Error as exc:
        reason = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, target)
        raise WarehouseError(f"cannot connect to PostgreSQL ({target.label}): {reason}") from None
    con.autocommit = True
    return con


def scrub(text: str, target: WarehouseTarget) -> str:
    """``text`` without the target's password (a driver may echo a DSN)."""
    secret = target.password.get_secret_value()
    return text.replace(secret, "**********") if len(secret) >= 4 else text  # a 1-3 character one tells nothing


def duckdb_type(pg_type: str) -> str:
    """The DuckDB type a PostgreSQL ``format_type()`` spelling is copied as (unknown types travel as text)."""
    low = pg_type.lower()
    if low.startswith(("character", "varchar", "char", "text", "citext", "name")) and not low.endswith("[]"):
        return "VARCHAR"
    if low in PG_TO_DUCKDB:
        return PG_TO_DUCKDB[low]
    if low.endswith("[]") or low.startswith(("user-defined", "interval")):
        return "VARCHAR"
    try:
        return exp.DataType.build(low, dialect="postgres").sql(dialect="duckdb")
    except Exception:  # noqa: BLE001 - sqlglot raises several kinds on an unknown type
        return "VARCHAR"


FkPair = tuple[str, str, str, str, str, str]  # child schema, table, column, parent schema, table, key


class Reader(Protocol):
    """What the extract needs from one engine: its relations, bounded queries in its dialect, rows into DuckDB."""

    database: str  # the extract's DuckDB catalog: sources pin it
    errors: tuple[type[BaseException], ...]  # the driver's errors (reported naming the target)

    def relations(self, dbt_schema: str | None) -> list[tuple[str, str]]:
        """``(schema, table)`` of every relation to extract."""

    def columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """``(column, engine type)`` in order."""

    def duckdb_type(self, engine_type: str) -> str:
        """The DuckDB type a column of ``engine_type`` is copied as."""

    def estimate_rows(self, schema: str, table: str, cap: int) -> tuple[int, bool]:
        """Rows, never counting more than ``cap + 1``: ``(rows, exact)``."""

    def whole_query(self, schema: str, table: str, columns: list[tuple[str, str]]) -> str:
        """Every row."""

    def bounded_query(self, schema: str, table: str, columns: list[tuple[str, str]], estimate: int, max_rows: int,
                      tcol: str | None, window_days: int | None) -> str:
        """A sample of at most ``max_rows`` rows, within the window before the sample's newest ``tcol``."""

    def copy_into(self, duck: duckdb.DuckDBPyConnection, query: str, schema: str, table: str,
                  columns: list[tuple[str, str]], create: bool) -> int:
        """The rows of ``query`` into ``schema.table`` of the extract (created first when ``create``)."""

    def declared_foreign_keys(self) -> list[FkPair]:
        """Single-column foreign key constraints the engine declares."""

    def parent_queries(self, fk: FkPair, columns: list[tuple[str, str]], values: list) -> list[str] | None:
        """Queries for the parent rows keyed by ``values``; None when the parent lacks over 1 % of them."""

    def close(self) -> None:
        """Release the connection."""


def list_relations(pg, dbt_schema: str | None) -> list[tuple[str, str]]:  # noqa: ANN001
    """``(schema, table)`` of every table, view and materialized view outside the system and scratch schemas.

    In the dbt target's own schema only tables are listed (raw data may live there; its views are dbt models the
    sandbox builds itself).
    """
    with pg.cursor() as cur:
        cur.execute("select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "where c.relkind in ('r', 'v', 'm', 'p') and not c.relispartition order by 1, 2")
        rows = cur.fetchall()
    own = (dbt_schema or "").lower()
    return [(s, t) for s, t, kind in rows if s not in SYSTEM and not s.startswith(("pg_temp", "pg_toast", SCRATCH_PREFIX))
            and not (s.lower() == own and kind in ("v", "m"))]


def pg_columns(pg, schema: str, table: str) -> list[tuple[str, str]]:  # noqa: ANN001
    """``(column, PostgreSQL type)`` in ordinal order."""
    with pg.cursor() as cur:
        cur.execute("select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
                    "where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
                    (f"{quote_ident(schema)}.{quote_ident(table)}",))
        return cur.fetchall()


def estimate_rows(pg, schema: str, table: str, cap: int) -> tuple[int, bool]:  # noqa: ANN001
    """Rows of a relation, never counting more than ``cap + 1``: ``(rows, exact)``.

    A count capped at ``cap + 1`` rows is exact for a small table; a larger one is estimated from the catalog
    (``pg_class.reltuples``, kept by ANALYZE/autovacuum), or reported as ``cap + 1`` when never analyzed.
    """
    rel = f"{quote_ident(schema)}.{quote_ident(table)}"
    with pg.cursor() as cur:
        cur.execute(f"select count(*) from (select 1 from {rel} limit %s) as capped", (cap + 1,))
        capped = cur.fetchone()[0]
        if capped <= cap:
            return capped, True
        cur.execute("select reltuples::bigint from pg_class where oid = %s::regclass", (rel,))
        estimate = cur.fetchone()[0]
    return max(int(estimate or 0), cap + 1), False


def time_column(columns: list[tuple[str, str]]) -> str | None:
    """The table's event time: the first timestamp/date column (a ``created``/``updated`` one only when alone).

    PostgreSQL's ``timestamp ...``/``date`` and Spark's ``timestamp``/``timestamp_ntz``/``date`` alike."""
    times = [c for c, t in columns if t.lower().startswith(TIME_TYPES)]
    events = [c for c in times if not re.search(r"(updated|modified|loaded|synced|deleted)", c.lower())]
    return (events or times or [None])[0]


def sample_percent(estimate: int, max_rows: int) -> float:
    """The sample's percentage: three times the rows wanted (the window and the limit cut it down), at most 100."""
    return min(100.0, 100.0 * 3 * max_rows / max(estimate, 1))


def _select_list(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"{quote_ident(c)}::text as {quote_ident(c)}"
                     if duckdb_type(t) == "VARCHAR" and not t.lower().startswith(("character", "text")) else quote_ident(c)
                     for c, t in columns)


def _sample_sql(pg, rel: str, select: str, estimate: int, max_rows: int, tcol: str | None,  # noqa: ANN001
                window_days: int | None) -> str:
    """The bounded query of a table larger than ``max_rows``: a block sample, windowed, limited."""
    sample = f"{rel} tablesample system ({sample_percent(estimate, max_rows):.6f}) repeatable (42)"
    where = ""
    if tcol and window_days:
        with pg.cursor() as cur:
            cur.execute(f"select max({quote_ident(tcol)}) from {sample}")
            newest = cur.fetchone()[0]
            if newest is not None:
                start = newest - dt.timedelta(days=window_days)
                where = cur.mogrify(f" where {quote_ident(tcol)} > %s", (start,)).decode()
    return f"select {select} from {sample}{where} limit {int(max_rows)}"


def _copy_into(pg, duck: duckdb.DuckDBPyConnection, query: str, schema: str, table: str,  # noqa: ANN001
               columns: list[tuple[str, str]], create: bool) -> int:
    """Rows of ``query`` (PostgreSQL) into ``schema.table`` of the extract (created first when ``create``)."""
    types = {c: duckdb_type(t) for c, t in columns}
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-extract-") as tmp:
        csv = Path(tmp) / "rows.csv"
        with csv.open("w") as fh, pg.cursor() as cur:
            cur.copy_expert(f"copy ({query}) to stdout with (format csv, header true)", fh)
        spec = "{" + ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}': '{t}'" for c, t in types.items()) + "}"
        read = (f"read_csv('{csv}', header = true, auto_detect = false, columns = {spec}, quote = '\"', "
                "escape = '\"', allow_quoted_nulls = false)")
        return write_rows(duck, read, schema, table, create)


def write_rows(duck: duckdb.DuckDBPyConnection, rows_sql: str, schema: str, table: str, create: bool) -> int:
    """``select * from <rows_sql>`` into ``schema.table`` of the extract (created first when ``create``); rows added."""
    target = duck_rel(duck, schema, table)
    if create:
        duck.execute(f"create schema if not exists {duck_rel(duck, schema)}")
        duck.execute(f"create table {target} as select * from {rows_sql}")
    else:
        duck.execute(f"insert into {target} select * from {rows_sql}")
    return duck.execute(f"select count(*) from {rows_sql}").fetchall()[0][0]  # consumed: the connection is free


def _is_view(pg, rel: str) -> bool:  # noqa: ANN001
    with pg.cursor() as cur:
        cur.execute("select relkind from pg_class where oid = %s::regclass", (rel,))
        return cur.fetchone()[0] == "v"


def declared_foreign_keys(pg) -> list[FkPair]:  # noqa: ANN001
    """Single-column foreign key constraints: ``(schema, table, column, ref_schema, ref_table, ref_column)``."""
    with pg.cursor() as cur:
        cur.execute("""
            select cn.nspname, c.relname, a.attname, pn.nspname, p.relname, pa.attname
            from pg_constraint k
            join pg_class c on c.oid = k.conrelid join pg_namespace cn on cn.oid = c.relnamespace
            join pg_class p on p.oid = k.confrelid join pg_namespace pn on pn.oid = p.relnamespace
            join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
            join pg_attribute pa on pa.attrelid = k.confrelid and pa.attnum = k.confkey[1]
            where k.contype = 'f' and array_length(k.conkey, 1) = 1""")
        return cur.fetchall()


class PostgresReader:
    """The extract's reader of a PostgreSQL database (psycopg2; rows travel as CSV)."""

    def __init__(self, target: WarehouseTarget) -> None:
        import psycopg2

        self.database = target.dbname or "postgres"
        self.errors = (psycopg2.Error,)
        self.pg = pg_open(target)

    def relations(self, dbt_schema: str | None) -> list[tuple[str, str]]:
        """See :func:`list_relations`."""
        return list_relations(self.pg, dbt_schema)

    def columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """See :func:`pg_columns`."""
        return pg_columns(self.pg, schema, table)

    def duckdb_type(self, engine_type: str) -> str:
        """See :func:`duckdb_type`."""
        return duckdb_type(engine_type)

    def estimate_rows(self, schema: str, table: str, cap: int) -> tuple[int, bool]:
        """See :func:`estimate_rows`."""
        return estimate_rows(self.pg, schema, table, cap)

    def whole_query(self, schema: str, table: str, columns: list[tuple[str, str]]) -> str:
        """Every row, types PostgreSQL cannot hand to DuckDB as text."""
        return f"select {_select_list(columns)} from {quote_ident(schema)}.{quote_ident(table)}"

    def bounded_query(self, schema: str, table: str, columns: list[tuple[str, str]], estimate: int, max_rows: int,
                      tcol: str | None, window_days: int | None) -> str:
        """A block sample, windowed, limited; a view (no TABLESAMPLE) its first rows, bounded (a window would read
        it whole)."""
        rel = f"{quote_ident(schema)}.{quote_ident(table)}"
        if _is_view(self.pg, rel):
            return f"select {_select_list(columns)} from {rel} limit {int(max_rows)}"
        return _sample_sql(self.pg, rel, _select_list(columns), estimate, max_rows, tcol, window_days)

    def copy_into(self, duck: duckdb.DuckDBPyConnection, query: str, schema: str, table: str,
                  columns: list[tuple[str, str]], create: bool) -> int:
        """See :func:`_copy_into`."""
        return _copy_into(self.pg, duck, query, schema, table, columns, create)

    def declared_foreign_keys(self) -> list[FkPair]:
        """See :func:`declared_foreign_keys`."""
        return declared_foreign_keys(self.pg)

    def parent_queries(self, fk: FkPair, columns: list[tuple[str, str]], values: list) -> list[str] | None:
        """``= any(array)`` lookups in batches, typed as the key (its index serves them)."""
        rel = f"{quote_ident(fk[3])}.{quote_ident(fk[4])}"
        where = f"where {quote_ident(fk[5])} = any(%s::{dict(columns)[fk[5]]}[])"
        batches = [[str(v) for v in values[i:i + LOOKUP_BATCH]] for i in range(0, len(values), LOOKUP_BATCH)]
        with self.pg.cursor() as cur:
            found = 0
            for batch in batches:
                cur.execute(f"select count(distinct {quote_ident(fk[5])}) from {rel} {where}", (batch,))
                found += cur.fetchone()[0]
            if found < 0.99 * len(values):
                return None
            return [cur.mogrify(f"select {_select_list(columns)} from {rel} {where}", (b,)).decode() for b in batches]

    def close(self) -> None:
        """Close the connection."""
        self.pg.close()


def open_reader(target: WarehouseTarget) -> Reader:
    """The reader of the target's engine (connected).

    Raises:
        WarehouseError: For an engine the extract does not read, or one that cannot be reached (naming the target).
    """
    if target.type == "postgres":
        return PostgresReader(target)
    if target.type == "spark":
        from dataeng_crew.tools.spark import SparkReader

        return SparkReader(target)
    raise WarehouseError(f"the extract reads PostgreSQL and Spark targets; {target.label} is {target.type!r}")


def extract_table(reader: Reader, duck: duckdb.DuckDBPyConnection, schema: str, table: str, max_rows: int,
                  window_days: int | None) -> ExtractedRelation:
    """One relation into the extract: whole when small, else a bounded, windowed sample."""
    columns = reader.columns(schema, table)
    rows, exact = reader.estimate_rows(schema, table, max_rows)
    tcol = time_column(columns)
    query = reader.whole_query(schema, table, columns) if exact else \
        reader.bounded_query(schema, table, columns, rows, max_rows, tcol, window_days)
    copied = reader.copy_into(duck, query, schema, table, columns, create=True)
    return ExtractedRelation(relation=f"{schema}.{table}", rows=copied, source_rows=rows, sampled=not exact,
                             time_column=tcol)


def candidate_keys(reader: Reader, duck: duckdb.DuckDBPyConnection, database: str,
                   relations: list[tuple[str, str]]) -> list[FkPair]:
    """Declared foreign key constraints, then columns whose names point at another extracted table's key."""
    wanted = set(relations)
    pairs = [fk for fk in reader.declared_foreign_keys() if fk[:2] in wanted and fk[3:5] in wanted]
    profiles = [profile_table(duck, database, s, t, 20_000) for s, t in relations]
    taken = {fk[:3] for fk in pairs}
    pairs += [(c.schema_name, c.name, col, p.schema_name, p.name, key)
              for c, col, p, key in named_foreign_keys(profiles) if (c.schema_name, c.name, col) not in taken]
    return pairs


def _missing(duck: duckdb.DuckDBPyConnection, fk: FkPair) -> list | None:
    """Distinct child values the extract's parent lacks (None: the two columns cannot be compared: no key)."""
    child = duck_rel(duck, fk[0], fk[1])
    parent = duck_rel(duck, fk[3], fk[4])
    col, key = quote_ident(fk[2]), quote_ident(fk[5])
    try:
        return [r[0] for r in duck.execute(
            f"select distinct c.{col} from {child} as c where c.{col} is not null and not exists "
            f"(select 1 from {parent} as p where p.{key} = c.{col})").fetchall()]
    except duckdb.Error:
        return None


def close_foreign_keys(reader: Reader, duck: duckdb.DuckDBPyConnection, pairs: list[FkPair],
                       sampled: set[tuple[str, str]], max_rounds: int = 6) -> tuple[list[str], dict[str, int]]:
    """Fetch, by key, every parent row a child row of the extract points at, until nothing is missing.

    A pair found by names alone is a foreign key only when the parent holds at least 99 % of the missing values
    (checked in the warehouse by key before anything is copied); each child column keeps its first such parent.

    Returns:
        The foreign keys closed (``schema.child.col -> schema.parent.key``) and parent rows added per relation.
    """
    added: dict[str, int] = {}
    chosen: dict[tuple[str, str, str], FkPair] = {}
    refused: set[FkPair] = set()
    for _ in range(max_rounds):
        grew = False
        for fk in pairs:
            if fk in refused or chosen.get(fk[:3], fk) != fk:
                continue
            missing = _missing(duck, fk)
            if missing is None:
                refused.add(fk)
                continue
            if missing and fk[3:5] in sampled and not _fetch_parents(reader, duck, fk, missing, added):
                refused.add(fk)
                continue
            if not missing or fk[3:5] in sampled:
                chosen.setdefault(fk[:3], fk)
                grew = grew or bool(missing)
            elif fk[:3] not in chosen:
                refused.add(fk)  # the whole parent lacks them: not this column's parent
        if not grew:
            break
    return sorted(_fk_label(fk) for fk in chosen.values()), added


def _fk_label(fk: FkPair) -> str:
    return f"{fk[0]}.{fk[1]}.{fk[2]} -> {fk[3]}.{fk[4]}.{fk[5]}"


def _fetch_parents(reader: Reader, duck: duckdb.DuckDBPyConnection, fk: FkPair, values: list,
                   added: dict[str, int]) -> bool:
    """Copy the parent rows keyed by ``values``; False (nothing copied) when the parent lacks over 1 % of them."""
    columns = reader.columns(fk[3], fk[4])
    queries = reader.parent_queries(fk, columns, values)
    if queries is None:
        return False
    label = f"{fk[3]}.{fk[4]}"
    for query in queries:
        added[label] = added.get(label, 0) + reader.copy_into(duck, query, fk[3], fk[4], columns, create=False)
    return True


def _window(duck: duckdb.DuckDBPyConnection, rel: ExtractedRelation) -> ExtractedRelation:
    if not rel.time_column:
        return rel
    schema, table = rel.relation.split(".", 1)
    low, high = duck.execute(f"select min({quote_ident(rel.time_column)}), max({quote_ident(rel.time_column)}) "
                             f"from {duck_rel(duck, schema, table)}").fetchone()
    return rel.model_copy(update={"window_start": str(low) if low is not None else None,
                                  "window_end": str(high) if high is not None else None})


def extract_target(target: WarehouseTarget, out_dir: Path, max_rows: int = DEFAULT_MAX_ROWS,
                   window_days: int | None = DEFAULT_WINDOW_DAYS) -> ExtractSummary:
    """Extract the target's relations into ``out_dir/<database>.duckdb`` (replaced), foreign keys closed.

    Args:
        target: The project's dbt target (type postgres or spark).
        out_dir: Folder of the extract (the proposal's folder).
        max_rows: Sample size per relation (a smaller table is copied whole).
        window_days: Days kept before a sampled table's newest time (None: no window).

    Raises:
        WarehouseError: When the warehouse cannot be reached or read (naming the profile and target), or it holds
            no relation. Nothing is left half-written: the file is built under a temporary name.
    """
    started = time.perf_counter()
    engine = ENGINE_NAMES.get(target.type, target.type)
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = open_reader(target)
    database = reader.database
    final = out_dir / f"{database}.duckdb"
    tmp = out_dir / ".extract-tmp" / f"{database}.duckdb"  # same stem: the catalog is named as the database
    tmp.parent.mkdir(exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        relations = reader.relations(target.schema_)
        if not relations:
            raise WarehouseError(f"{engine} ({target.label}) holds no table")
        if any(s.lower() == database.lower() for s, _t in relations):
            raise WarehouseError(f"{engine} ({target.label}): schema {database!r} is named as its database; in the "
                                 f"DuckDB extract {database}.<table> would be ambiguous (catalog or schema). Not "
                                 "supported yet: rename the schema, or run on a database of another name")
        duck = duckdb.connect(str(tmp))
        try:
            summary = _extract_all(reader, duck, target, relations, max_rows, window_days)
        finally:
            duck.close()
    except reader.errors as exc:
        tmp.unlink(missing_ok=True)
        reason = scrub(str(exc).strip(), target)[:300]
        raise WarehouseError(f"cannot read {engine} ({target.label}): {reason}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    tmp.replace(final)
    return summary.model_copy(update={"db_file": str(final), "seconds": round(time.perf_counter() - started, 3)})


def _extract_all(reader: Reader, duck: duckdb.DuckDBPyConnection, target: WarehouseTarget,
                 relations: list[tuple[str, str]], max_rows: int, window_days: int | None) -> ExtractSummary:
    extracted = [extract_table(reader, duck, s, t, max_rows, window_days) for s, t in relations]
    database = duck.execute("select current_database()").fetchone()[0]
    sampled = {tuple(r.relation.split(".", 1)) for r in extracted if r.sampled}
    fks: list[str] = []
    added: dict[str, int] = {}
    if sampled:  # whole tables are closed already
        fks, added = close_foreign_keys(reader, duck, candidate_keys(reader, duck, database, relations), sampled)
    rows = {f"{s}.{t}": duck.execute(f"select count(*) from {duck_rel(duck, s, t)}").fetchone()[0]
            for s, t in relations}
    extracted = [_window(duck, r.model_copy(update={"rows": rows[r.relation],
                                                    "parents_added": added.get(r.relation, 0)})) for r in extracted]
    return ExtractSummary(target=target.label, database=reader.database, db_file="", max_rows=max_rows,
                          window_days=window_days if any(r.sampled and r.time_column for r in extracted) else None,
                          relations=extracted, foreign_keys=fks, engine=target.type)
