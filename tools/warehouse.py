"""Warehouse tools: open a DuckDB warehouse safely, introspect it and profile its tables.

Pure functions over a DuckDB connection; the CrewAI wrappers live in ``tools/crewai_tools.py``.
Profiling is bounded: tables above ``sample_rows`` are profiled on a repeatable sample.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from dataeng_crew.contracts import ColumnProfile, ForeignKey, TableProfile, WarehouseProfile
from dataeng_crew.errors import WarehouseError
from dataeng_crew.tools.prompt_safety import clean_text

SYSTEM_SCHEMAS = {"information_schema", "pg_catalog"}
FILE_SUFFIXES = {".csv": "read_csv_auto", ".tsv": "read_csv_auto", ".parquet": "read_parquet",
                 ".json": "read_json_auto", ".ndjson": "read_json_auto", ".jsonl": "read_json_auto"}
LOW_CARDINALITY = 25
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y %H:%M", "%m/%d/%Y",
)
TEMPORAL_TEXT = re.compile(r"^\d{1,4}[-/]\d{1,2}[-/]\d{1,4}")
SAMPLE_TEXT_CHARS = 60
DEFAULT_SAMPLE_ROWS = 200_000


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB, escaping embedded double quotes."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def open_readonly(path: Path, memory_limit: str = "2GB", threads: int = 2) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a DuckDB file read-only with external access and extension autoloading disabled.

    Args:
        path: The DuckDB file.
        memory_limit: DuckDB memory limit for the connection.
        threads: DuckDB worker threads.

    Yields:
        A locked-down connection (configuration cannot be changed from SQL).

    Raises:
        WarehouseError: When the file is missing or is not a DuckDB database.
    """
    path = Path(path)
    if not path.is_file():
        raise WarehouseError(f"warehouse file not found: {path}")
    if path.stat().st_size == 0:
        raise WarehouseError(f"cannot open {path} as a DuckDB database: the file is empty (0 bytes)")
    config = {
        "enable_external_access": False,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "memory_limit": memory_limit,
        "threads": threads,
    }
    try:
        con = duckdb.connect(str(path), read_only=True, config=config)
        con.execute("set lock_configuration = true")
    except duckdb.Error as exc:
        raise WarehouseError(explain_open_error(path, exc)) from None
    try:
        yield con
    finally:
        con.close()


def explain_open_error(path: Path, exc: BaseException) -> str:
    """Why a DuckDB file could not be opened, in a sentence that names it."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "lock" in text.lower():
        return (f"cannot open {path}: it is locked by another process writing to it ({text}); close that "
                "process (a dbt run, a DuckDB shell), then run again")
    return f"cannot open {path} as a DuckDB database (corrupt, or not a DuckDB file): {text}"


def check_csv(file: Path) -> str:
    """Read a CSV/TSV strictly: every row has as many fields as the header.

    Args:
        file: The data file.

    Returns:
        Its delimiter.

    Raises:
        WarehouseError: When the file is empty, not UTF-8, or a row has another number of fields
            (the message names the file and the line).
    """
    import csv

    try:
        with open(file, encoding="utf-8-sig", newline="") as fh:
            head = fh.read(65536)
            if not head.strip():
                raise WarehouseError(f"{file}: the file is empty")
            if file.suffix.lower() == ".tsv":
                delimiter = "\t"
            else:
                try:
                    delimiter = csv.Sniffer().sniff(head.split("\n", 1)[0] + "\n", delimiters=",;\t|").delimiter
                except csv.Error:
                    delimiter = ","
            fh.seek(0)
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            width = None
            for row in reader:
                if not row:  # blank line
                    continue
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    raise WarehouseError(f"{file} line {reader.line_num}: {len(row)} field(s) where the header has "
                                         f"{width}; fix the file (every row needs {width} fields) and load it again")
    except UnicodeDecodeError as exc:
        raise WarehouseError(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8 and load it again") from None
    except csv.Error as exc:
        raise WarehouseError(f"{file} line {reader.line_num}: not valid CSV ({exc})") from None
    return delimiter


def load_folder(folder: Path, target: Path) -> Path:
    """Load every CSV/TSV/Parquet/JSON file of ``folder`` into a DuckDB file, one table each.

    Tables go to a schema ``raw_<folder>`` (snake_case). The file is rebuilt from scratch
    and replaced atomically.

    Args:
        folder: Folder holding the data files.
        target: DuckDB file to write.

    Returns:
        The DuckDB file.

    Raises:
        WarehouseError: When the folder has no readable data file, or a file is ragged, empty or unreadable
            (the message names the file and, for CSV, the line).
    """
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FILE_SUFFIXES and p.is_file())
    if not files:
        raise WarehouseError(f"no CSV, Parquet or JSON files in {folder}")
    # raw_<folder>: a schema named like the database (the file stem) would make names ambiguous
    schema = "raw_" + (snake_case(Path(folder).resolve().name).removeprefix("raw_") or "data")
    delimiters = {f: check_csv(f) for f in files if f.suffix.lower() in {".csv", ".tsv"}}
    tables: dict[str, Path] = {}
    for file in files:
        table = snake_case(file.stem) or "table"
        if table in tables:
            raise WarehouseError(f"{tables[table].name} and {file.name} in {folder} would both load as table {table}; "
                                 "rename one of them")
        tables[table] = file
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute(f"create schema {quote_ident(schema)}")
            for table, file in tables.items():
                reader = FILE_SUFFIXES[file.suffix.lower()]
                options = ""
                if file in delimiters:  # the checked delimiter, and DuckDB's own strict reading behind it
                    options = f", delim = {sql_string(delimiters[file])}, strict_mode = true, null_padding = false"
                try:
                    con.execute(f"create table {quote_ident(schema)}.{quote_ident(table)} as "
                                f"select * from {reader}(?{options})", [str(file.resolve())])
                except duckdb.Error as exc:
                    raise WarehouseError(f"cannot load {file}: {str(exc).splitlines()[0]}") from None
            con.execute("checkpoint")
        finally:
            con.close()
        tmp.replace(target)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot load {folder}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return target


TRANSLITERATE = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
                               "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH"})


def snake_case(name: str) -> str:
    """Turn any identifier into lower snake_case ASCII (``OrderID`` → ``order_id``, ``Größe`` → ``grosse``)."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name.translate(TRANSLITERATE)).encode("ascii", "ignore").decode()
    if not re.search(r"[A-Za-z0-9]", ascii_name):  # nothing to spell in ASCII (東京): a stable made-up name
        import hashlib

        return f"col_{hashlib.sha1(name.encode()).hexdigest()[:8]}" if name.strip() else ""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", ascii_name.strip())
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if name and name[0].isdigit():
        name = f"_{name}"
    return name


def list_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """List ``(database, schema, table)`` of every user table and view in the current database."""
    rows = con.execute(
        """
        select table_catalog, table_schema, table_name
        from information_schema.tables
        where table_catalog = current_database()
        order by table_schema, table_name
        """
    ).fetchall()
    return [(d, s, t) for d, s, t in rows if s.lower() not in SYSTEM_SCHEMAS]


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """Return ``(column, type)`` pairs of a table in ordinal order."""
    return con.execute(
        """
        select column_name, data_type from information_schema.columns
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        order by ordinal_position
        """,
        [schema, table],
    ).fetchall()


def _text(value: object) -> str:
    """Values leave the warehouse cleaned and capped: they may reach prompts, reports and PRs."""
    return clean_text(value, SAMPLE_TEXT_CHARS)


def profile_table(
    con: duckdb.DuckDBPyConnection,
    database: str,
    schema: str,
    table: str,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> TableProfile:
    """Profile one table: row count, per-column nulls, distincts, min/max, samples, candidate keys.

    Tables larger than ``sample_rows`` are profiled on a repeatable reservoir sample, so time and
    memory stay bounded; the row count is always exact.

    Args:
        con: Connection to the warehouse.
        database: Database (catalog) name.
        schema: Schema name.
        table: Table name.
        sample_rows: Maximum rows to profile.

    Returns:
        The table profile.
    """
    relation = f"{quote_ident(schema)}.{quote_ident(table)}"
    columns = table_columns(con, schema, table)
    row_count = con.execute(f"select count(*) from {relation}").fetchone()[0]
    sampled = row_count > sample_rows
    source = f"(select * from {relation} using sample reservoir({sample_rows} rows) repeatable (42))" if sampled else relation
    con.execute(f"create or replace temp table __profile as select * from {source}")
    try:
        profiled_rows = con.execute("select count(*) from __profile").fetchone()[0]
        profiles = [_profile_column(con, name, dtype, profiled_rows) for name, dtype in columns]
        keys, dupes = _keys(con, profiles, profiled_rows, table)
    finally:
        con.execute("drop table if exists __profile")
    return TableProfile(
        database=database, schema_name=schema, name=table, row_count=row_count,
        profiled_rows=profiled_rows, sampled=sampled, columns=profiles, candidate_keys=keys,
        duplicate_key_rows=dupes,
    )


def _profile_column(con: duckdb.DuckDBPyConnection, name: str, dtype: str, rows: int) -> ColumnProfile:
    col = quote_ident(name)
    orderable = not dtype.upper().startswith(("STRUCT", "MAP", "LIST", "UNION")) and not dtype.endswith("[]")
    minmax = f"min({col})::varchar, max({col})::varchar" if orderable else "null, null"
    non_null, approx, lo, hi = con.execute(
        f"select count({col}), approx_count_distinct({col}), {minmax} from __profile"
    ).fetchone()
    top: list[str] = []
    if orderable and 0 < approx <= LOW_CARDINALITY:
        values = con.execute(
            f"select distinct {col}::varchar from __profile where {col} is not null order by 1 limit {LOW_CARDINALITY + 1}"
        ).fetchall()
        if len(values) <= LOW_CARDINALITY:
            top = [v for (v,) in values]
            approx = len(top)
    samples = con.execute(
        f"select distinct {col}::varchar from __profile where {col} is not null limit 5"
    ).fetchall()
    formats, unparsed = ([], 0)
    if dtype.upper() == "VARCHAR" and samples and all(TEMPORAL_TEXT.match(v) for (v,) in samples):
        formats, unparsed = _timestamp_formats(con, col, non_null)
    return ColumnProfile(
        name=name,
        timestamp_formats=formats,
        unparsed_timestamps=unparsed,
        data_type=dtype,
        null_fraction=round(1 - non_null / rows, 6) if rows else 0.0,
        distinct_count=int(approx or 0),
        min_value=None if lo is None else _text(lo),
        max_value=None if hi is None else _text(hi),
        sample_values=[_text(v) for (v,) in samples],
        top_values=top,
    )


def _timestamp_formats(con: duckdb.DuckDBPyConnection, col: str, non_null: int) -> tuple[list[str], int]:
    """Greedy cover of a text column by strptime formats: most rows first, until every row parses."""
    chosen: list[str] = []
    remaining = non_null
    parsed_by = "false"
    while remaining:
        counts = con.execute(
            "select " + ", ".join(
                f"count(*) filter (where try_strptime({col}, '{fmt}') is not null)" for fmt in TIMESTAMP_FORMATS
            ) + f" from __profile where {col} is not null and not ({parsed_by})"
        ).fetchone()
        best = max(range(len(TIMESTAMP_FORMATS)), key=lambda i: counts[i])
        if counts[best] == 0:
            break
        chosen.append(TIMESTAMP_FORMATS[best])
        remaining -= counts[best]
        parsed_by += f" or try_strptime({col}, '{TIMESTAMP_FORMATS[best]}') is not null"
    return chosen, remaining


def _is_id_like(column: str, table: str) -> bool:
    lowered = column.lower()
    table = table.lower().removeprefix("raw_")
    singular = table.rstrip("s")
    return lowered in {"id", f"{singular}_id", f"{table.lower()}_id", f"{singular}id"}


def _keys(
    con: duckdb.DuckDBPyConnection, profiles: list[ColumnProfile], rows: int, table: str
) -> tuple[list[str], dict[str, int]]:
    """Exact uniqueness for columns that look like keys; duplicate counts for near-unique ids."""
    keys: list[str] = []
    dupes: dict[str, int] = {}
    if rows == 0:
        return keys, dupes
    for p in profiles:
        nearly_unique = p.distinct_count >= 0.8 * rows
        if p.null_fraction > 0 or not (nearly_unique or _is_id_like(p.name, table)):
            continue
        if p.data_type.upper() in {"DOUBLE", "FLOAT", "REAL", "BOOLEAN"}:
            continue
        distinct = con.execute(f"select count(distinct {quote_ident(p.name)}) from __profile").fetchone()[0]
        if distinct == rows:
            keys.append(p.name)
        elif _is_id_like(p.name, table):
            dupes[p.name] = rows - distinct
    # id-like first, then by position
    keys.sort(key=lambda k: (not _is_id_like(k, table), [p.name for p in profiles].index(k)))
    return keys, dupes


def primary_key(table: TableProfile) -> str | None:
    """The table's primary key: a unique id-like column, or an id-like column with re-sync duplicates."""
    if table.declared_keys:  # the project tests it unique + not_null
        return table.declared_keys[0]
    for name in table.candidate_keys + list(table.duplicate_key_rows):
        if _is_id_like(name, table.name):
            return name
    return None


ENTITY_SYNONYMS = {"user": ("customer", "client", "account"), "client": ("customer",), "buyer": ("customer",),
                   "shopper": ("customer",), "item": ("product",), "sku": ("product",)}


def _parent_for(column: str, tables: list[TableProfile]) -> TableProfile | None:
    stem = column.lower().removesuffix("_id").removesuffix("id").rstrip("_")
    for candidate in (stem, *ENTITY_SYNONYMS.get(stem, ())):
        for t in tables:
            name = t.name.lower().removeprefix("raw_")
            if candidate and name in {candidate, f"{candidate}s", f"{candidate}es", candidate.removesuffix("y") + "ies"}:
                return t
    return None


def find_foreign_keys(con: duckdb.DuckDBPyConnection, tables: list[TableProfile]) -> list[ForeignKey]:
    """Find foreign keys: ``<parent>_id`` columns whose distinct values all exist in the parent key.

    Args:
        con: Connection to the warehouse.
        tables: Profiles of the tables to relate.

    Returns:
        Foreign keys with an inclusion of at least 99 % (1.0 means every value was found).
    """
    found: list[ForeignKey] = []
    for child in tables:
        for col in child.columns:
            if not col.name.lower().endswith("id") or _is_id_like(col.name, child.name):
                continue
            parent = _parent_for(col.name, tables)
            if parent is None or parent is child:
                continue
            parent_key = primary_key(parent)
            if parent_key is None:
                continue
            c_rel = f"{quote_ident(child.schema_name)}.{quote_ident(child.name)}"
            p_rel = f"{quote_ident(parent.schema_name)}.{quote_ident(parent.name)}"
            try:
                total, included = con.execute(
                    f"""
                    with child_values as (select distinct {quote_ident(col.name)} as v from {c_rel}
                                          where {quote_ident(col.name)} is not null),
                         parent_values as (select distinct {quote_ident(parent_key)} as v from {p_rel})
                    select count(*), count(p.v) from child_values as c left join parent_values as p on c.v = p.v
                    """
                ).fetchone()
            except duckdb.Error:
                continue  # incompatible types: not a foreign key
            if total and included / total >= 0.99:
                found.append(ForeignKey(table=child.name, column=col.name, ref_table=parent.name,
                                        ref_column=parent_key, inclusion=round(included / total, 4)))
    return found


def profile_warehouse(path: Path, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> WarehouseProfile:
    """Profile every table of a DuckDB warehouse and the foreign keys between them.

    Args:
        path: The DuckDB file (opened read-only, locked down).
        sample_rows: Maximum rows profiled per table.

    Returns:
        The warehouse profile.

    Raises:
        WarehouseError: When the file cannot be opened or holds no table.
    """
    with open_readonly(path) as con:
        try:
            tables = list_tables(con)
            database = con.execute("select current_database()").fetchone()[0]
        except duckdb.Error as exc:
            raise WarehouseError(explain_open_error(Path(path), exc)) from None
        if not tables:
            raise WarehouseError(f"{path} holds no tables")
        profiles = []
        for d, s, t in tables:
            try:
                profiles.append(profile_table(con, d, s, t, sample_rows))
            except duckdb.Error as exc:
                raise WarehouseError(f"cannot read table {s}.{t} in {path}: {str(exc).splitlines()[0]} (a view over a "
                                     "dropped table? fix or drop it, or point --warehouse at another file)") from None
        try:
            fks = find_foreign_keys(con, profiles)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot compare keys in {path}: {str(exc).splitlines()[0]}") from None
    return WarehouseProfile(path=str(Path(path).resolve()), database=database, tables=profiles, foreign_keys=fks)


def warehouse_schema(profile: WarehouseProfile) -> dict[str, dict[str, dict[str, dict[str, str]]]]:
    """The warehouse as a sqlglot schema mapping ``{db: {schema: {table: {column: type}}}}``."""
    schema: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    for t in profile.tables:
        schema.setdefault(t.database, {}).setdefault(t.schema_name, {})[t.name] = {
            c.name: c.data_type for c in t.columns
        }
    return schema
