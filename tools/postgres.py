"""PostgreSQL as a second real engine: copy raw tables from DuckDB, and a dbt-postgres profile.

The generated project pins each source's ``database:`` to the DuckDB catalog (the file stem), and
dbt-postgres cannot read across databases, so the raw tables are copied into a Postgres database of
that same name, schema for schema. Rows travel as CSV through ``COPY ... FROM STDIN`` (psycopg2), so
nothing needs DuckDB's postgres extension (which would be downloaded at first use).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml
from sqlglot import exp

from dataeng_crew.errors import WarehouseError

SYSTEM_SCHEMAS = {"information_schema", "pg_catalog"}
# DuckDB types Postgres spells differently (or lacks); everything else goes through sqlglot.
PG_TYPES = {"HUGEINT": "NUMERIC(39,0)", "UBIGINT": "NUMERIC(20,0)", "UINTEGER": "BIGINT", "USMALLINT": "INTEGER",
            "UTINYINT": "SMALLINT", "TINYINT": "SMALLINT", "TIMESTAMP_S": "TIMESTAMP", "TIMESTAMP_MS": "TIMESTAMP",
            "TIMESTAMP_NS": "TIMESTAMP", "UUID": "UUID", "JSON": "JSONB", "BLOB": "BYTEA"}
NESTED = ("[]", "STRUCT", "MAP", "UNION", "[")


@dataclass(frozen=True)
class PgConnection:
    """Where a Postgres server listens (trust or password auth)."""

    host: str
    port: int
    user: str = "postgres"
    password: str = ""

    def connect(self, dbname: str = "postgres"):  # noqa: ANN201 - psycopg2 connection
        """An autocommit psycopg2 connection to ``dbname``."""
        import psycopg2

        con = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password or None,
                               dbname=dbname, connect_timeout=10)
        con.autocommit = True
        return con


def pg_type(duckdb_type: str) -> str:
    """The Postgres column type for a DuckDB type (nested types travel as text).

    Args:
        duckdb_type: As DuckDB's ``information_schema.columns.data_type`` spells it.
    """
    upper = duckdb_type.upper()
    if upper in PG_TYPES:
        return PG_TYPES[upper]
    if any(marker in upper for marker in NESTED):
        return "TEXT"
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="postgres")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_database(conn: PgConnection, dbname: str) -> None:
    """Create ``dbname`` on the server unless it exists."""
    con = conn.connect()
    try:
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (dbname,))
            if cur.fetchone() is None:
                cur.execute(f"create database {_ident(dbname)}")
    finally:
        con.close()


def ensure_roles(conn: PgConnection, roles: list[str]) -> None:
    """Create the (NOLOGIN) roles dbt ``grants`` name, unless they exist: grants fail on unknown roles."""
    con = conn.connect()
    try:
        with con.cursor() as cur:
            for role in roles:
                cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(f"create role {_ident(role)} nologin")
    finally:
        con.close()


def copy_tables(duckdb_file: Path, conn: PgConnection, dbname: str | None = None,
                tables: list[str] | None = None) -> dict[str, int]:
    """Copy raw tables from a DuckDB file into Postgres (same schema and table names, replaced).

    Args:
        duckdb_file: The warehouse (opened read-only).
        conn: The Postgres server.
        dbname: Target database (default: the DuckDB catalog name, which the sources pin); created if missing.
        tables: Table names to copy (default: every table outside the system schemas).

    Returns:
        ``{"schema.table": rows copied}``, each checked against DuckDB's row count.

    Raises:
        WarehouseError: When the DuckDB file cannot be read or a row count differs after the copy.
    """
    duckdb_file = Path(duckdb_file)
    try:
        src = duckdb.connect(str(duckdb_file), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot open {duckdb_file}: {exc}") from exc
    dbname = dbname or duckdb_file.stem
    ensure_database(conn, dbname)
    pg = conn.connect(dbname)
    copied: dict[str, int] = {}
    try:
        catalog = src.execute("select current_database()").fetchone()[0]
        listed = src.execute("select table_schema, table_name from information_schema.tables where table_catalog = ? "
                             "and table_type = 'BASE TABLE' order by 1, 2", [catalog]).fetchall()
        wanted = {t.lower() for t in tables} if tables else None
        for schema, table in listed:
            if schema.lower() in SYSTEM_SCHEMAS or (wanted is not None and table.lower() not in wanted):
                continue
            copied[f"{schema}.{table}"] = _copy_one(src, pg, schema, table)
    finally:
        src.close()
        pg.close()
    return copied


def _copy_one(src: duckdb.DuckDBPyConnection, pg, schema: str, table: str) -> int:  # noqa: ANN001
    columns = src.execute("select column_name, data_type from information_schema.columns where table_schema = ? "
                          "and table_name = ? order by ordinal_position", [schema, table]).fetchall()
    select = ", ".join(f"cast({_ident(c)} as varchar)" if pg_type(t) == "TEXT" and t.upper() != "VARCHAR"
                       else _ident(c) for c, t in columns)
    qualified = f"{_ident(schema)}.{_ident(table)}"
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-copy-") as tmp:
        csv = Path(tmp) / "rows.csv"
        src.execute(f"copy (select {select} from {qualified}) to '{csv}' (header, delimiter ',', quote '\"', "
                    "escape '\"', nullstr '', force_quote *)")
        with pg.cursor() as cur:
            cur.execute(f"create schema if not exists {_ident(schema)}")
            cur.execute(f"drop table if exists {qualified}")
            cur.execute(f"create table {qualified} (" + ", ".join(f"{_ident(c)} {pg_type(t)}" for c, t in columns) + ")")
            with csv.open() as fh:
                cur.copy_expert(f"copy {qualified} from stdin with (format csv, header true, null '')", fh)
            cur.execute(f"select count(*) from {qualified}")
            rows = cur.fetchone()[0]
    expected = src.execute(f"select count(*) from {qualified}").fetchone()[0]
    if rows != expected:
        raise WarehouseError(f"copying {schema}.{table} to Postgres gave {rows} rows, DuckDB has {expected}")
    return rows


def write_postgres_profile(folder: Path, profile_name: str, conn: PgConnection, dbname: str,
                           schema: str = "analytics", threads: int = 4) -> Path:
    """A ``profiles.yml`` in ``folder`` with one dbt-postgres target; returns the folder.

    The password is written only when the server needs one (trust auth in tests needs none).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump({profile_name: {"target": "postgres", "outputs": {"postgres": {
        "type": "postgres", "host": conn.host, "port": conn.port, "user": conn.user,
        "password": conn.password, "dbname": dbname, "schema": schema, "threads": threads,
    }}}}))
    return folder
