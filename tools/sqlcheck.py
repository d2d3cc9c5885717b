"""sqlglot checks of model SQL: Jinja allow-list, compile, parse, allow-list, qualify.

The model SQL an agent writes may use only ``ref()``, ``source()`` and ``config()`` Jinja, so it
is compiled here exactly (no dbt needed) and the *compiled* SQL is what sqlglot judges:
a single SELECT/WITH/UNION query, no DDL/DML/commands, no file-reading table functions, every
table known, every column qualified against the warehouse schema, and the output columns equal
to the columns the model documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify

from dataeng_crew.contracts import ModelSpec, SourceSpec, SqlIssue
from dataeng_crew.settings import PII_KEY_ENV

JINJA_EXPR = re.compile(r"\{\{(.*?)\}\}", re.S)
JINJA_STMT = re.compile(r"\{%(.*?)%\}", re.S)
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
ALLOWED_CALL = re.compile(
    r"""^\s*(ref|source|config)\(\s*(?:(['"])[\w\-. ]*\2\s*(?:,\s*(['"])[\w\-. ]*\3\s*)?|[\w\s='",\-\[\]{}:.]*)\)\s*$"""
)
PII_KEY_CALL = re.compile(rf"""^\s*env_var\(\s*(['"]){PII_KEY_ENV}\1\s*\)\s*$""")  # the masking key, nothing else
HOOK_ARGS = re.compile(r"(pre[_-]hook|post[_-]hook|sql_header)", re.I)
FILE_FUNCTIONS = {
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_json_objects", "read_ndjson", "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob",
    "glob", "sniff_csv", "parquet_metadata", "parquet_schema", "read_xlsx", "st_read", "iceberg_scan",
    "delta_scan", "sqlite_scan", "postgres_scan", "mysql_scan", "query_table", "query", "csv_scan",
}
FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = (
    exp.Command, exp.Create, exp.Drop, exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Alter,
    exp.Copy, exp.Set, exp.Pragma, exp.Use, exp.Attach, exp.Detach, exp.Install, exp.TruncateTable,
    exp.Transaction, exp.Commit, exp.Rollback, exp.LoadData,
)
QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
REF_RX = re.compile(r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")
SOURCE_RX = re.compile(r"""\{\{\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")


def dependencies(model: ModelSpec) -> tuple[list[str], list[tuple[str, str]]]:
    """Models (``ref``) and sources (``source``) a model's SQL reads."""
    return REF_RX.findall(model.sql), SOURCE_RX.findall(model.sql)

Schema = dict[str, dict[str, dict[str, dict[str, str]]]]


@dataclass
class Relations:
    """Where refs and sources resolve to: ``ref name → (db, schema, table)``, ``(src, table) → ...``."""

    models: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    sources: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)


INCREMENTAL_BLOCK = re.compile(r"\{%\s*if\s+is_incremental\(\)\s*%\}(.*?)\{%\s*endif\s*%\}", re.S)
THIS = re.compile(r"\{\{\s*this\s*\}\}")


def _incremental_blocks_ok(sql: str) -> tuple[str, bool]:
    """``sql`` without its ``{% if is_incremental() %} … {% endif %}`` blocks, and whether they are well formed.

    A block may hold SQL, ``{{ this }}`` and allow-listed calls only: no nested statements.
    """
    ok = all("{%" not in m.group(1) for m in INCREMENTAL_BLOCK.finditer(sql))
    return INCREMENTAL_BLOCK.sub(" ", sql), ok


def check_jinja(model: str, sql: str) -> list[SqlIssue]:
    """Refuse any Jinja other than ``{{ ref() }}``, ``{{ source() }}``, ``{{ config() }}`` and, for incremental
    models, exactly ``{% if is_incremental() %} … {% endif %}`` with ``{{ this }}`` inside it."""
    issues = []
    inside = "".join(m.group(1) for m in INCREMENTAL_BLOCK.finditer(sql))
    sql, blocks_ok = _incremental_blocks_ok(sql)
    if not blocks_ok:
        issues.append(SqlIssue(model=model, kind="jinja", message="Jinja statements inside is_incremental() are not allowed"))
    sql += " " + THIS.sub(" ", inside)  # {{ this }} only inside the block; other Jinja there is judged as usual
    if JINJA_STMT.search(sql):
        issues.append(SqlIssue(model=model, kind="jinja", message="Jinja statements ({% ... %}) are not allowed"))
    for match in JINJA_EXPR.finditer(JINJA_COMMENT.sub("", sql)):
        if HOOK_ARGS.search(match.group(1)):
            issues.append(SqlIssue(model=model, kind="jinja",
                                   message="hooks and sql_header in config() are not allowed (they run arbitrary SQL)"))
        elif not ALLOWED_CALL.match(match.group(1)) and not PII_KEY_CALL.match(match.group(1)):
            issues.append(SqlIssue(model=model, kind="jinja",
                                   message=f"only ref(), source() and config() may be used, found {{{{{match.group(1).strip()[:80]}}}}}"))
    return issues


def compile_sql(sql: str, relations: Relations, this: tuple[str, str, str] | None = None) -> str:
    """Compile allow-listed Jinja: ``ref``/``source`` → quoted relation names, ``config`` → nothing.

    ``is_incremental()`` blocks are dropped (a full build), or kept with ``{{ this }}`` compiled to
    ``this`` when it is given (an incremental run).

    Raises:
        KeyError: When a ref or source is unknown.
    """
    def relation(parts: tuple[str, str, str]) -> str:
        return ".".join('"' + p.replace('"', '""') + '"' for p in parts)

    def replace(match: re.Match[str]) -> str:
        call = match.group(1).strip()
        args = re.findall(r"""['"]([^'"]*)['"]""", call)
        if call.startswith("config"):
            return ""
        if PII_KEY_CALL.match(call):  # inside a string literal: any text parses the same
            return "pii_key"
        if call.startswith("ref"):
            if args[-1] not in relations.models:
                raise KeyError(f"ref('{args[-1]}') is not a model of this project")
            return relation(relations.models[args[-1]])
        key = (args[0], args[1])
        if key not in relations.sources:
            raise KeyError(f"source('{args[0]}', '{args[1]}') is not declared")
        return relation(relations.sources[key])

    sql = JINJA_COMMENT.sub("", sql)
    if this is None:
        sql = INCREMENTAL_BLOCK.sub(" ", sql)
    else:
        sql = THIS.sub(lambda _m: relation(this), INCREMENTAL_BLOCK.sub(lambda m: m.group(1), sql))
    return JINJA_EXPR.sub(replace, sql)


def check_compiled(model: str, sql: str, schema: Schema, expected_columns: list[str] | None = None) -> tuple[list[SqlIssue], list[str]]:
    """Check compiled SQL with sqlglot.

    Args:
        model: Model name (for messages).
        sql: Compiled SQL (no Jinja).
        schema: ``{db: {schema: {table: {column: type}}}}`` of every relation the SQL may read.
        expected_columns: Columns the model documents; compared to the query's output columns.

    Returns:
        ``(issues, output_columns)``.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except ParseError as exc:
        return [SqlIssue(model=model, kind="parse", message=str(exc).splitlines()[0][:300])], []
    if len(statements) != 1:
        return [SqlIssue(model=model, kind="unsafe", message=f"exactly one statement allowed, found {len(statements)}")], []
    ast = statements[0]
    issues = []
    if not isinstance(ast, QUERY_ROOTS):
        issues.append(SqlIssue(model=model, kind="unsafe",
                               message=f"only a SELECT/WITH/UNION query is allowed, found {type(ast).__name__.upper()}"))
    for node in ast.walk():
        if isinstance(node, FORBIDDEN_NODES):
            issues.append(SqlIssue(model=model, kind="unsafe", message=f"{type(node).__name__.upper()} is not allowed"))
        name = None
        if isinstance(node, exp.Anonymous):
            name = str(node.this)
        elif isinstance(node, exp.Func):
            name = node.sql_name()
        if name and name.lower() in FILE_FUNCTIONS:
            issues.append(SqlIssue(model=model, kind="unsafe", message=f"file/database-reading function {name.lower()}() is not allowed"))
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier) and node.this is not None:
            fn = node.this.sql_name() if isinstance(node.this, exp.Func) else str(node.this)
            if str(fn).lower() in FILE_FUNCTIONS or isinstance(node.this, (exp.Anonymous, exp.Func)):
                issues.append(SqlIssue(model=model, kind="unsafe", message=f"table function {node.this.sql()[:60]} is not allowed"))
        if isinstance(node, exp.Literal) and node.is_string and re.match(r"^(/|\w+://|\.\./)", node.this or ""):
            if isinstance(node.parent, exp.Table):
                issues.append(SqlIssue(model=model, kind="unsafe", message="reading files by path is not allowed"))
    if issues:
        return issues, []
    ctes = {cte.alias_or_name for cte in ast.find_all(exp.CTE)}
    known = {(db.lower(), s.lower(), t.lower()) for db, schemas in schema.items() for s, tables in schemas.items() for t in tables}
    for table in ast.find_all(exp.Table):
        if not table.name or (not table.db and table.name in ctes):
            continue
        key = (table.catalog.lower(), table.db.lower(), table.name.lower())
        if key not in known:
            issues.append(SqlIssue(model=model, kind="unknown_table", message=f"unknown table {table.sql(dialect='duckdb')}"))
    if issues:
        return issues, []
    try:
        qualified = qualify(ast.copy(), schema=schema, dialect="duckdb", validate_qualify_columns=True)
    except (OptimizeError, ParseError) as exc:
        return [SqlIssue(model=model, kind="unknown_column", message=str(exc).splitlines()[0][:300])], []
    outputs = list(qualified.named_selects)
    if expected_columns is not None and [c.lower() for c in outputs] != [c.lower() for c in expected_columns]:
        missing = [c for c in expected_columns if c not in outputs]
        extra = [c for c in outputs if c not in expected_columns]
        issues.append(SqlIssue(model=model, kind="columns_mismatch",
                               message=f"SQL returns {outputs}; documented {expected_columns} "
                                       f"(missing {missing}, undocumented {extra})"))
    return issues, outputs


@dataclass
class CheckOutcome:
    """What :func:`check_and_compile` found: issues, each model's compiled SQL, and the schema built up."""

    issues: list[SqlIssue]
    compiled: dict[str, str]
    schema: Schema


def check_and_compile(
    models: list[ModelSpec],
    sources: list[SourceSpec],
    warehouse: Schema,
    model_database: str,
    model_schema: str = "main",
    existing_models: dict[str, dict[str, str]] | None = None,
) -> CheckOutcome:
    """Check every model in dependency order: Jinja, compile, sqlglot; models become schema for the next.

    Args:
        models: Models to check (any order).
        sources: Sources the models may read.
        warehouse: sqlglot schema of the raw warehouse.
        model_database: Database the models are built into.
        model_schema: Schema the models are built into.
        existing_models: Columns of models already in the project (``name → {column: type}``).

    Returns:
        Every issue found (empty when all pass), the compiled SQL and the resulting schema.
    """
    schema: dict[str, Any] = {db: {s: dict(t) for s, t in schemas.items()} for db, schemas in warehouse.items()}
    relations = Relations()
    for src in sources:
        for t in src.tables:
            relations.sources[(src.name, t.name)] = (src.database, src.schema_name, t.relation_name)
    for name, cols in (existing_models or {}).items():
        relations.models[name] = (model_database, model_schema, name)
        schema.setdefault(model_database, {}).setdefault(model_schema, {})[name] = cols
    for model in models:
        relations.models[model.name] = (model_database, model_schema, model.name)
    issues: list[SqlIssue] = []
    compiled_sql: dict[str, str] = {}
    for model in _topological(models):
        jinja = check_jinja(model.name, model.sql)
        if jinja:
            issues += jinja
            continue
        try:
            compiled = compile_sql(model.sql, relations)
        except KeyError as exc:
            issues.append(SqlIssue(model=model.name, kind="unknown_table", message=str(exc.args[0])))
            continue
        found, outputs = check_compiled(model.name, compiled, schema, [c.name for c in model.columns])
        if not found and INCREMENTAL_BLOCK.search(model.sql):  # the incremental run's SQL must pass too
            own = {c.name: (c.data_type or "VARCHAR") for c in model.columns}
            schema.setdefault(model_database, {}).setdefault(model_schema, {})[model.name] = own
            found, _ = check_compiled(model.name, compile_sql(model.sql, relations, relations.models[model.name]),
                                      schema, [c.name for c in model.columns])
        issues += found
        if not found:
            compiled_sql[model.name] = compiled
        types = {c.name: (c.data_type or "VARCHAR") for c in model.columns}
        schema.setdefault(model_database, {}).setdefault(model_schema, {})[model.name] = {
            col: types.get(col, "VARCHAR") for col in (outputs or list(types))
        }
    return CheckOutcome(issues=issues, compiled=compiled_sql, schema=schema)


def check_models(models: list[ModelSpec], sources: list[SourceSpec], warehouse: Schema, model_database: str,
                 model_schema: str = "main") -> list[SqlIssue]:
    """Issues of :func:`check_and_compile` only."""
    return check_and_compile(models, sources, warehouse, model_database, model_schema).issues


def _topological(models: list[ModelSpec]) -> list[ModelSpec]:
    by_name = {m.name: m for m in models}
    done: list[ModelSpec] = []
    seen: set[str] = set()

    def visit(m: ModelSpec, stack: frozenset[str]) -> None:
        if m.name in seen or m.name in stack:
            return
        for ref in dependencies(m)[0]:
            if ref in by_name:
                visit(by_name[ref], stack | {m.name})
        seen.add(m.name)
        done.append(m)

    for m in models:
        visit(m, frozenset())
    return done
