"""Warehouse tools: open a DuckDB warehouse safely, introspect it and profile its tables.

Pure functions over a DuckDB connection; the CrewAI wrappers live in ``tools/crewai_tools.py``.
Profiling is bounded: tables above ``sample_rows`` are profiled on a repeatable sample.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import sqlglot
from sqlglot import exp

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


ATTACH_SUFFIX = ".attach.json"  # beside a sandbox's DuckDB file: the warehouse it reads, attached read-only


def attachments(path: Path) -> list[dict[str, str]]:
    """The databases a sandbox's DuckDB file reads through its views (``[{"path", "alias"}]``; none for others)."""
    sidecar = Path(str(path) + ATTACH_SUFFIX)
    return json.loads(sidecar.read_text()) if sidecar.is_file() else []


def attach_sql(db: dict[str, str]) -> str:
    """``ATTACH`` of one of :func:`attachments`, read-only, under its alias."""
    return f"attach if not exists '{db['path'].replace(chr(39), chr(39) * 2)}' as {quote_ident(db['alias'])} (read_only)"


def connect(path: Path, read_only: bool = True, memory_limit: str = "1GB", threads: int = 2
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with external access and extension loading off, its configuration locked.

    A sandbox's file reads the user's warehouse through views over it: that warehouse is attached read-only
    first, then external access is switched off (one way: it cannot be switched on again from SQL).

    Raises:
        duckdb.Error: When the file cannot be opened.
    """
    attached = attachments(path)
    config = {"autoload_known_extensions": False, "autoinstall_known_extensions": False,
              "memory_limit": memory_limit, "threads": threads}
    con = duckdb.connect(str(path), read_only=read_only,
                         config=config if attached else {**config, "enable_external_access": False})
    try:
        for db in attached:
            con.execute(attach_sql(db))
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_readonly(path: Path, memory_limit: str = "1GB", threads: int = 2) -> Iterator[duckdb.DuckDBPyConnection]:
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
    refuse_unopenable(path)
    try:
        con = connect(path, True, memory_limit, threads)
    except duckdb.Error as exc:
        raise WarehouseError(explain_open_error(path, exc)) from None
    try:
        yield con
    finally:
        con.close()


def refuse_unopenable(path: Path) -> None:
    """Refuse a warehouse file that is missing or empty, naming it.

    Raises:
        WarehouseError: Saying which.
    """
    if not path.is_file():
        raise WarehouseError(f"warehouse file not found: {path}")
    if path.stat().st_size == 0:
        raise WarehouseError(f"cannot open {path} as a DuckDB database: the file is empty (0 bytes)")


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


def model_schema(con: duckdb.DuckDBPyConnection, table: str, catalog: str | None = None,
                 preferred: str = "main") -> str:
    """The schema a built model lives in: ``preferred`` when it is there, else the one schema that has it.

    A project with custom schemas (``+schema: mart``) builds models into ``main_mart`` and the like.
    """
    rows = con.execute("select distinct schema_name from duckdb_tables() where table_name = ?"
                       + (" and database_name = ?" if catalog else ""),
                       [table, catalog] if catalog else [table]).fetchall()
    rows += con.execute("select distinct schema_name from duckdb_views() where view_name = ?"
                        + (" and database_name = ?" if catalog else ""),
                        [table, catalog] if catalog else [table]).fetchall()
    schemas = sorted({str(r[0]) for r in rows})
    if preferred in schemas or len(schemas) != 1:
        return preferred
    return schemas[0]


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


def pass_through_base(con: duckdb.DuckDBPyConnection, database: str, schema: str, table: str) -> str | None:
    """The table a view reads when the view is nothing but ``select * from`` that table (a sandbox's view over the
    attached warehouse), catalog-qualified; None for a table or any other view.

    A block sample of a view reads every row and then samples; of the table, DuckDB reads only the sampled blocks.
    """
    row = con.execute("select sql from duckdb_views() where database_name = ? and schema_name = ? and view_name = ?",
                      [database, schema, table]).fetchone()
    if row is None:
        return None
    try:
        view = sqlglot.parse_one(row[0], read="duckdb")
    except sqlglot.errors.ParseError:
        return None
    query = view.expression if isinstance(view, exp.Create) else None
    if not isinstance(query, exp.Select) or not query.is_star or len(query.expressions) != 1 or any(
            value for key, value in query.args.items() if key not in ("expressions", "from_", "from")):
        return None  # only ``select *`` and one relation: no filter, join, sample, exclude, cte …
    source = query.args.get("from_") or query.args.get("from")
    base = source.this if source is not None else None
    if not isinstance(base, exp.Table) or not isinstance(base.this, exp.Identifier) or base.args.get("sample"):
        return None
    parts = [base.catalog or database, base.db or schema, base.name]
    return ".".join(quote_ident(p) for p in parts)


SYSTEM_SAMPLE_ABOVE = 20  # tables over 20 × the sample are sampled by blocks first: the cost follows the sample


def profile_table(
    con: duckdb.DuckDBPyConnection,
    database: str,
    schema: str,
    table: str,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> TableProfile:
    """Profile one table: row count, per-column nulls, distincts, min/max, samples, candidate keys.

    Tables larger than ``sample_rows`` are profiled on a repeatable reservoir sample, so time and
    memory stay bounded; above ``SYSTEM_SAMPLE_ABOVE`` × that, on a sample of whole blocks (DuckDB reads only
    those), so a table's size costs little. The row count is always exact.

    Args:
        con: Connection to the warehouse.
        database: Database (catalog) name.
        schema: Schema name.
        table: Table name.
        sample_rows: Maximum rows to profile.

    Returns:
        The table profile.
    """
    # catalog-qualified: a schema named as its database (``rides.rides``) is ambiguous with two parts
    relation = pass_through_base(con, database, schema, table) or \
        f"{quote_ident(database)}.{quote_ident(schema)}.{quote_ident(table)}"
    columns = table_columns(con, schema, table)
    row_count = con.execute(f"select count(*) from {relation}").fetchone()[0]
    sampled = row_count > sample_rows
    if row_count > SYSTEM_SAMPLE_ABOVE * sample_rows:  # a reservoir reads every row: sample whole blocks instead
        # ≈ sample_rows; no LIMIT (it stops DuckDB from skipping the other blocks)
        source = f"(select * from {relation} using sample {100.0 * sample_rows / row_count:.6f}% (system, 42))"
    elif sampled:
        source = f"(select * from {relation} using sample reservoir({sample_rows} rows) repeatable (42))"
    else:
        source = relation
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


FORMAT_PROBE_ROWS = 10_000  # formats are first tried on this many values; only those that parse one are counted


def _timestamp_formats(con: duckdb.DuckDBPyConnection, col: str, non_null: int) -> tuple[list[str], int]:
    """Greedy cover of a text column by strptime formats: most rows first, until every row parses.

    The formats that parse a value of the first ``FORMAT_PROBE_ROWS`` are counted first; every other format
    only on the rows those leave unparsed (usually none): the cover is the same, at a fraction of the cost.
    """
    probe = con.execute(
        "select " + ", ".join(f"count(try_strptime(v, '{fmt}'))" for fmt in TIMESTAMP_FORMATS)
        + f" from (select {col} as v from __profile where {col} is not null limit {FORMAT_PROBE_ROWS})").fetchone()
    likely = [fmt for fmt, n in zip(TIMESTAMP_FORMATS, probe) if n]
    chosen: list[str] = []
    remaining = non_null
    for formats in (likely, [f for f in TIMESTAMP_FORMATS if f not in likely]):
        while remaining and formats:
            parsed_by = " or ".join(f"try_strptime({col}, '{f}') is not null" for f in chosen) or "false"
            counts = con.execute(
                "select " + ", ".join(f"count(*) filter (where try_strptime({col}, '{fmt}') is not null)"
                                      for fmt in formats)
                + f" from __profile where {col} is not null and not ({parsed_by})").fetchone()
            best = max(range(len(formats)), key=lambda i: counts[i])
            if counts[best] == 0:
                break
            chosen.append(formats.pop(best))
            remaining -= counts[best]
    return chosen, remaining


KEY_SUFFIXES = ("_id", "_key", "_uuid", "_guid", "_code", "_no", "_nr", "_num", "_number", "id", "key")
KEY_NAMES = {"id", "key", "pk", "uuid", "guid", "code"}
NON_KEY_TYPES = {"DOUBLE", "FLOAT", "REAL", "BOOLEAN", "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIME"}
MAX_CODE_CHARS = 40
PREFIX = re.compile(r"^([a-z]{1,3})_")


def column_prefix(columns: list[str]) -> str:
    """The short prefix most columns of a table share (``l_`` in TPC-H's lineitem), or ``""``."""
    heads = [m.group(0) for c in columns if (m := PREFIX.match(snake_case(c)))]
    if len(columns) >= 2 and heads and len(set(heads)) == 1 and len(heads) >= 0.6 * len(columns):
        return heads[0]
    return ""


def bare_name(column: str, prefix: str = "") -> str:
    """snake_case name without the table's shared column prefix (``l_orderkey`` → ``orderkey``)."""
    name = snake_case(column)
    return name.removeprefix(prefix) if prefix and name != prefix.rstrip("_") else name


def key_stem(column: str, prefix: str = "") -> str:
    """What a key-like column names: ``o_orderkey`` → ``order``, ``CustomerId`` → ``customer``, ``faa`` → ``faa``."""
    name = bare_name(column, prefix)
    for suffix in KEY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + (1 if suffix[0] != "_" else 0):
            return name[: -len(suffix)].rstrip("_")
    return "" if name in KEY_NAMES else name


def _entity_words(table: str) -> set[str]:
    """Singular/plural forms of a table's name and of its last word (``chinook_invoice`` → invoice…)."""
    name = snake_case(table).removeprefix("raw_")
    out = set()
    for word in {name, name.split("_")[-1]}:
        out |= {word, word.rstrip("s"), word.removesuffix("es"), word.removesuffix("ies") + "y"}
    return {w for w in out if w}


def _names_entity(stem: str, table: str) -> bool:
    """True when a key stem names the table's entity, allowing abbreviations (``cust`` → customer)."""
    if not stem:
        return False
    words = _entity_words(table)
    return stem in words or any(len(stem) >= 3 and w.startswith(stem) for w in words) \
        or stem.replace("_", "") in {w.replace("_", "") for w in words}


def _is_id_like(column: str, table: str, prefix: str = "") -> bool:
    lowered = column.lower()
    plain = table.lower().removeprefix("raw_")
    singular = plain.rstrip("s")
    if lowered in {"id", f"{singular}_id", f"{plain}_id", f"{singular}id"}:
        return True
    name = bare_name(column, prefix)
    return name in KEY_NAMES or (name != key_stem(column, prefix) and _names_entity(key_stem(column, prefix), table))


def _key_like_name(column: str, prefix: str = "") -> bool:
    name = bare_name(column, prefix)
    return name in KEY_NAMES or name != key_stem(column, prefix)


def _keys(
    con: duckdb.DuckDBPyConnection, profiles: list[ColumnProfile], rows: int, table: str
) -> tuple[list[str], dict[str, int]]:
    """Exact uniqueness for columns that look like keys; duplicate counts for near-unique ids."""
    keys: list[str] = []
    dupes: dict[str, int] = {}
    if rows == 0:
        return keys, dupes
    prefix = column_prefix([p.name for p in profiles])
    for p in profiles:
        id_like = _is_id_like(p.name, table, prefix)
        nearly_unique = p.distinct_count >= 0.8 * rows
        if p.null_fraction > 0 or not (nearly_unique or id_like):
            continue
        if p.data_type.upper().split("(")[0] in NON_KEY_TYPES:
            continue
        distinct = con.execute(f"select count(distinct {quote_ident(p.name)}) from __profile").fetchone()[0]
        if distinct == rows:
            keys.append(p.name)
        elif id_like:
            dupes[p.name] = rows - distinct
    # id-like first, then key-like names, then by position
    order = [p.name for p in profiles]
    keys.sort(key=lambda k: (not _is_id_like(k, table, prefix), not _key_like_name(k, prefix), order.index(k)))
    return keys, dupes


def _code_like(col: ColumnProfile | None) -> bool:
    """Integer or short text values: what a key can be (not free text, floats, times)."""
    if col is None or col.data_type.upper().split("(")[0] in NON_KEY_TYPES:
        return False
    if col.data_type.upper() == "VARCHAR":
        return all(len(v) <= MAX_CODE_CHARS and " " not in v.strip() for v in col.sample_values)
    return True


def primary_key(table: TableProfile) -> str | None:
    """The table's primary key, whatever its name.

    Declared keys (the project's unique + not_null tests) win (an id-like one first); then a unique id-like
    column (``id``, ``order_id``, ``o_orderkey``, ``InvoiceId``), an id-like column with re-sync duplicates, a
    unique key-like name (``*_code``, ``*key``), and finally the first column when it is unique and code-like
    (``carrier``, ``faa``, ``tailnum``).
    """
    prefix = column_prefix([c.name for c in table.columns])
    if table.declared_keys:  # the project tests them unique + not_null
        return next((k for k in table.declared_keys if _is_id_like(k, table.name, prefix)), table.declared_keys[0])
    for name in table.candidate_keys + list(table.duplicate_key_rows):
        if _is_id_like(name, table.name, prefix):
            return name
    for name in table.candidate_keys:
        if _key_like_name(name, prefix) and _code_like(table.column(name)):
            return name
    first = table.columns[0].name if table.columns else None
    if first in table.candidate_keys and _code_like(table.column(first)):
        return first
    return None


ENTITY_SYNONYMS = {"user": ("customer", "client", "account"), "client": ("customer",), "buyer": ("customer",),
                   "shopper": ("customer",), "item": ("product",), "sku": ("product",)}


def _affinity(col: ColumnProfile, child: TableProfile, parent: TableProfile, parent_key: str) -> bool:
    """True when a child column's name points at the parent: same key stem or the parent's entity name."""
    stem = key_stem(col.name, column_prefix([c.name for c in child.columns]))
    parent_stem = key_stem(parent_key, column_prefix([c.name for c in parent.columns]))
    if stem and stem == parent_stem:
        return True
    role_played = stem.rsplit("_", 1)[-1] if "_" in stem else ""  # pickup_zone_id → zones, assigned_agent → agents
    return any(_names_entity(s, parent.name) and (s in (stem, role_played) or len(s) >= 4)
               for s in (stem, *ENTITY_SYNONYMS.get(stem, ()), *([role_played] if len(role_played) >= 3 else [])))


def _inclusion(con: duckdb.DuckDBPyConnection, child: TableProfile, column: str, parent: TableProfile,
               parent_key: str) -> tuple[int, int] | None:
    c_rel = ".".join(quote_ident(p) for p in (child.database, child.schema_name, child.name))
    p_rel = ".".join(quote_ident(p) for p in (parent.database, parent.schema_name, parent.name))
    try:
        return con.execute(
            f"""
            with child_values as (select distinct {quote_ident(column)} as v from {c_rel}
                                  where {quote_ident(column)} is not null),
                 parent_values as (select distinct {quote_ident(parent_key)} as v from {p_rel})
            select count(*), count(p.v) from child_values as c left join parent_values as p on c.v = p.v
            """
        ).fetchone()
    except duckdb.Error:
        return None  # incompatible types: not a foreign key


def find_foreign_keys(con: duckdb.DuckDBPyConnection, tables: list[TableProfile],
                      declared: list[ForeignKey] | None = None) -> list[ForeignKey]:
    """Find foreign keys by inclusion plus name affinity, across naming schemes.

    A child column is a foreign key to a parent's primary key when every distinct non-null value is
    found there (inclusion >= 99 %) and either its name points at the parent (``l_orderkey`` →
    ``o_orderkey``, ``CustomerId`` → ``customers``, ``customer`` → ``chinook_customer``, ``carrier`` →
    ``airlines.carrier``) or, for text codes, the values alone match (``origin`` → ``airports.faa``).
    Declared foreign keys (the project's relationships tests) win over inferred ones.

    Args:
        con: Connection to the warehouse.
        tables: Profiles of the tables to relate.
        declared: Foreign keys the project declares.

    Returns:
        Declared foreign keys, then inferred ones, with their inclusion (1.0 means every value was found).
    """
    found: list[ForeignKey] = list(declared or [])
    taken = {(fk.table, fk.column) for fk in found}
    keyed = [(t, k) for t in tables if (k := primary_key(t))]
    for child in tables:
        own_key = primary_key(child)
        for col in child.columns:
            if (child.name, col.name) in taken or col.name == own_key or not _code_like(col):
                continue
            by_name = [(p, k) for p, k in keyed if p is not child and _affinity(col, child, p, k)]
            by_value = [] if by_name or col.data_type.upper() != "VARCHAR" or col.distinct_count < 2 else [
                (p, k) for p, k in keyed if p is not child and (p.column(k) or col).data_type.upper() == "VARCHAR"
                and p.row_count > 1 and not _same_values(col, p.column(k))]
            best: tuple[tuple[float, bool], ForeignKey] | None = None
            for parent, parent_key in by_name + by_value:
                counts = _inclusion(con, child, col.name, parent, parent_key)
                if not counts or not counts[0] or counts[1] / counts[0] < 0.99:
                    continue
                fk = ForeignKey(table=child.name, column=col.name, ref_table=parent.name, ref_column=parent_key,
                                inclusion=round(counts[1] / counts[0], 4))
                rank = (fk.inclusion, _exact_affinity(col, child, parent, parent_key))
                if best is None or rank > best[0]:
                    best = (rank, fk)
            if best is not None:
                found.append(best[1])
    return found


def named_foreign_keys(tables: list[TableProfile]) -> list[tuple[TableProfile, str, TableProfile, str]]:
    """``(child, column, parent, parent_key)`` pairs whose names alone point a child column at a parent's key.

    No inclusion check: for an extract of a large warehouse (tools/extract.py), where the child's sampled values
    are looked up in the whole parent table to close the foreign key.
    """
    keyed = [(t, k) for t in tables if (k := primary_key(t))]
    pairs = []
    for child in tables:
        own_key = primary_key(child)
        for col in child.columns:
            if col.name == own_key or not _code_like(col):
                continue
            named = [(p, k) for p, k in keyed if p is not child and _affinity(col, child, p, k)]
            exact = [(p, k) for p, k in named if _exact_affinity(col, child, p, k)]
            pairs += [(child, col.name, p, k) for p, k in exact or named]
    return pairs

def _exact_affinity(col: ColumnProfile, child: TableProfile, parent: TableProfile, parent_key: str) -> bool:
    """Same key stem or exactly the parent's entity word (not an abbreviation or a longer name)."""
    stem = key_stem(col.name, column_prefix([c.name for c in child.columns]))
    return bool(stem) and (stem == key_stem(parent_key, column_prefix([c.name for c in parent.columns]))
                           or stem in _entity_words(parent.name))


def _same_values(col: ColumnProfile, other: ColumnProfile | None) -> bool:
    """Two low-cardinality columns with the same value list are the same category, not a key and its use."""
    return bool(other and col.top_values and sorted(col.top_values) == sorted(other.top_values))


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
