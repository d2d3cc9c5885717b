"""Model SQL for the team's warehouse: DuckDB SQL (what the brains write and the sandbox validates)
transpiled with sqlglot to a target dialect, plus explicit rules where sqlglot's translation is wrong
for the SQL our brains emit, and a warning for every construct with no faithful translation.

Jinja (``{{ ref(...) }}``, ``{{ source(...) }}``, ``{{ config(...) }}``) is swapped for placeholder
identifiers before parsing and restored afterwards. The rules are small pure functions, chosen per
dialect from tables (``RULES``, ``LOSSY``, and ``STRPTIME`` in ``tools/dialect_strptime.py``) so each one is easy to see and to test:

- ``try_strptime(col, fmt)`` (several formats under ``coalesce``): sqlglot copies it verbatim (Postgres
  has no such function) or maps it to a raising ``to_timestamp`` with unquoted literal text. Each
  dialect gets its own null-on-failure parse with the format translated directive by directive.
- the date spine ``cast(unnest(generate_series(a, b, interval 1 <unit>)) as date)``: Postgres cannot
  ``unnest`` a set, BigQuery and Snowflake need a join, Spark cannot nest a generator in a cast.
- ``cast(date_trunc('<unit>', x) as date)`` on BigQuery: ``DATE_TRUNC(DATE, WEEK(MONDAY))`` (DuckDB
  weeks start on Monday, BigQuery's on Sunday).
- ``cast(x as decimal(p, s))`` on BigQuery: sqlglot drops ``(p, s)``; the value is rounded to ``s``.

- the staging dedupe ``qualify row_number() over (partition by k order by o) = 1`` on Postgres: ``DISTINCT
  ON (k) ... ORDER BY k, o`` (sqlglot's filtered subquery would add its helper column to ``select *``).
- ``sha256(text)`` (governance masking) on Postgres: ``encode(sha256(convert_to(text, 'UTF8')), 'hex')``.

sqlglot's own rewrites are kept where they are right: DuckDB's floating ``/`` becomes ``CAST(x AS DOUBLE PRECISION) / y`` on Postgres (no integer division),
``::`` casts and ``lower``/``trim`` map directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError

from dataeng_crew.contracts import ModelSpec
from dataeng_crew.errors import ConfigError, SqlCheckError
from dataeng_crew.tools.dialect_strptime import STRPTIME, STRPTIME_CAVEATS

SOURCE_DIALECT = "duckdb"
TARGET_DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "databricks", "spark")
ADAPTER_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "snowflake": "snowflake", "bigquery": "bigquery",
                    "databricks": "databricks", "spark": "spark"}
JINJA_RX = re.compile(r"\{\{.*?\}\}", re.S)
CONFIG_RX = re.compile(r"^\s*\{\{\s*config\(.*?\)\s*\}\}\s*\n?", re.S)
PLACEHOLDER = "__dbt_jinja_{}__"
PLACEHOLDER_RX = re.compile(r'"?(__dbt_jinja_(\d+)__)"?')


@dataclass
class Translation:
    """One model's SQL in the target dialect and what could not be translated faithfully."""

    dialect: str
    sql: str
    warnings: list[str] = field(default_factory=list)
    source: str = ""


# --------------------------------------------------------------------------- rules on the DuckDB AST


def _in(node: exp.Expression, dialect: str) -> str:
    return node.sql(dialect=dialect)


RAW = "__dbt_raw_{}__"
RAW_RX = re.compile(r'"?__dbt_raw_(\d+)__"?')


@dataclass
class Rewrite:
    """What the rules of one translation share: the dialect, the warnings, and verbatim snippets.

    A rule's target-dialect snippet is checked to parse, then stands in the tree as a placeholder and is
    restored verbatim after generation: parsed and regenerated, sqlglot would re-interpret the formats
    inside it (``'T'`` literals, ``%F``) and undo the rule.
    """

    dialect: str
    warnings: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    def expr(self, sql: str) -> exp.Expression:
        """A placeholder for ``sql``, which must parse in the dialect.

        Raises:
            SqlCheckError: When it does not.
        """
        try:
            sqlglot.parse_one(sql, read=self.dialect)
        except ParseError as exc:
            raise SqlCheckError(f"a {self.dialect} rewrite does not parse: {sql}: {exc}") from exc
        self.raw.append(sql)
        return exp.column(RAW.format(len(self.raw) - 1))

    def restore(self, sql: str) -> str:
        """Put the snippets back in generated SQL (snippets may hold earlier snippets' placeholders)."""
        while RAW_RX.search(sql):
            sql = RAW_RX.sub(lambda m: self.raw[int(m.group(1))], sql)
        return sql


def rule_try_strptime(tree: exp.Expression, rw: Rewrite) -> exp.Expression:
    """``try_strptime(col, fmt | [fmts])`` → the dialect's null-on-failure parse (one per format)."""
    dialect = rw.dialect
    make = STRPTIME.get(dialect)
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() != "try_strptime" or make is None or len(node.expressions) != 2:
            continue
        col, fmt = node.expressions
        formats = [f.this for f in fmt.expressions] if isinstance(fmt, exp.Array) else [fmt.this]
        if not all(isinstance(f, str) for f in formats) or not (fmt.is_string or isinstance(fmt, exp.Array)):
            continue
        try:
            parsed = [make(_in(col, dialect), f) for f in formats]
        except SqlCheckError as exc:
            rw.warnings.append(f"try_strptime({', '.join(formats)}): {exc}; copied verbatim")
            continue
        text = parsed[0] if len(parsed) == 1 else f"coalesce({', '.join(parsed)})"
        node.replace(rw.expr(text))
        if dialect in STRPTIME_CAVEATS:
            rw.warnings.append(STRPTIME_CAVEATS[dialect])
    return tree


def _spine(node: exp.Expression) -> tuple[exp.Expression, exp.Expression, exp.Interval] | None:
    """(start, end, step) when ``node`` is ``unnest(generate_series(start, end, interval))``."""
    if isinstance(node, exp.Unnest) and len(node.expressions) == 1:
        series = node.expressions[0]
    elif isinstance(node, exp.Explode):
        series = node.this
    else:
        return None
    if not isinstance(series, exp.GenerateSeries) or not isinstance(series.args.get("step"), exp.Interval):
        return None
    return series.args["start"], series.args["end"], series.args["step"]


def _unit(step: exp.Interval) -> tuple[str, str]:
    """(count, unit) of ``interval 1 day``."""
    unit = step.args.get("unit")
    return step.this.name, (unit.name if unit is not None else "day").lower()


def rule_date_spine(tree: exp.Expression, rw: Rewrite) -> exp.Expression:
    """``cast(unnest(generate_series(a, b, interval n unit)) as date) as d from t`` per dialect."""
    dialect = rw.dialect
    for select in list(tree.find_all(exp.Select)):
        for projection in select.expressions:
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            cast_to_date = isinstance(inner, exp.Cast) and inner.to.is_type("date")
            found = _spine(inner.this if cast_to_date else inner)
            if found is None:
                continue
            start, end, step = (_in(x, dialect) for x in found)
            count, unit = _unit(found[2])
            alias = projection.alias_or_name if isinstance(projection, exp.Alias) else "spine_value"
            if dialect == "postgres":
                spine = f"generate_series(cast({start} as timestamp), cast({end} as timestamp), {step})"
                inner.replace(rw.expr(f"cast({spine} as date)" if cast_to_date else spine))
                continue
            if dialect in ("databricks", "spark"):
                inner.replace(rw.expr(f"explode(sequence(cast({start} as date), cast({end} as date), {step}))"))
                continue
            others = [p for p in select.expressions if p is not projection]
            tables = select.args.get("from") or select.args.get("from_")
            if others or tables is None or select.args.get("joins") or select.args.get("where"):
                rw.warnings.append(f"date spine over generate_series in a complex select: not translated for {dialect}")
                continue
            source = _in(tables.this, dialect)
            if dialect == "bigquery":
                text = (f"select {alias} from {source} cross join "
                        f"unnest(generate_date_array(cast({start} as date), cast({end} as date), {step})) as {alias}")
            elif dialect == "snowflake":
                text = (f"select cast(dateadd({unit}, spine.value * {count}, {start}) as date) as {alias} from {source}, "
                        f"lateral flatten(input => array_generate_range(0, floor(datediff({unit}, {start}, {end}) / {count}) + 1)) as spine")
            else:
                continue
            replacement = rw.expr(text)
            if select is tree:
                return replacement
            select.replace(replacement)
    return tree


def rule_bigquery_date_trunc(tree: exp.Expression, rw: Rewrite) -> exp.Expression:
    """``cast(date_trunc('week', x) as date)`` → ``DATE_TRUNC(CAST(x AS DATE), WEEK(MONDAY))``."""
    dialect = rw.dialect
    for cast in list(tree.find_all(exp.Cast)):
        trunc = cast.this
        if not cast.to.is_type("date") or not isinstance(trunc, (exp.TimestampTrunc, exp.DateTrunc)):
            continue
        unit = trunc.text("unit").lower() or "day"
        part = "week(monday)" if unit == "week" else unit
        cast.replace(rw.expr(f"date_trunc(cast({_in(trunc.this, dialect)} as date), {part})"))
    return tree


def rule_bigquery_decimal(tree: exp.Expression, rw: Rewrite) -> exp.Expression:
    """``cast(x as decimal(p, s))`` → ``round(cast(x as numeric), s)``: sqlglot drops ``(p, s)``."""
    dialect = rw.dialect
    for cast in list(tree.find_all(exp.Cast)):
        params = cast.to.expressions
        if cast.to.is_type("decimal") and len(params) == 2:
            scale = params[1].name
            cast.replace(rw.expr(f"round(cast({_in(cast.this, dialect)} as numeric), {scale})"))
    return tree


def rule_postgres_dedupe(tree: exp.Expression, rw: Rewrite) -> exp.Expression:
    """``select * ... qualify row_number() over (partition by k order by o) = 1`` → ``select distinct on (k) *
    ... order by k, o``: sqlglot's generic rewrite would add its helper column ``_w`` to the ``*`` output."""
    for select in list(tree.find_all(exp.Select)):
        qualify = select.args.get("qualify")
        if qualify is None:
            continue
        cond = qualify.this
        window = cond.this if isinstance(cond, exp.EQ) and cond.expression.name == "1" else None
        plain = not any(select.args.get(k) for k in ("distinct", "group", "order", "having", "limit"))
        if not (isinstance(window, exp.Window) and isinstance(window.this, exp.RowNumber) and plain
                and window.args.get("partition_by") and window.args.get("order")):
            if any(isinstance(p, exp.Star) for p in select.expressions):
                rw.warnings.append("qualify over select *: the postgres rewrite adds a helper column _w to the output")
            continue
        keys = window.args["partition_by"]
        select.set("qualify", None)
        select.set("distinct", exp.Distinct(on=exp.Tuple(expressions=[k.copy() for k in keys])))
        select.set("order", exp.Order(expressions=[exp.Ordered(this=k.copy()) for k in keys]
                                      + [o.copy() for o in window.args["order"].expressions]))
    return tree


def rule_postgres_sha256(tree: exp.Expression, rw: Rewrite) -> exp.Expression:
    """``sha256(text)`` (hex text in DuckDB) → ``encode(sha256(convert_to(text, 'UTF8')), 'hex')``: Postgres
    hashes bytea only, and sqlglot's ``sha256(cast(x as text))`` does not exist there."""
    for node in list(tree.find_all(exp.SHA2)):
        if node.text("length") in {"", "256"}:
            node.replace(rw.expr(f"encode(sha256(convert_to({_in(node.this, rw.dialect)}, 'UTF8')), 'hex')"))
    return tree


Rule = Callable[[exp.Expression, Rewrite], exp.Expression]
RULES: dict[str, tuple[Rule, ...]] = {
    "postgres": (rule_try_strptime, rule_date_spine, rule_postgres_dedupe, rule_postgres_sha256),
    "snowflake": (rule_try_strptime, rule_date_spine),
    "bigquery": (rule_try_strptime, rule_date_spine, rule_bigquery_date_trunc, rule_bigquery_decimal),
    "databricks": (rule_try_strptime, rule_date_spine),
    "spark": (rule_try_strptime, rule_date_spine),
}

# Functions (as sqlglot parses them from DuckDB) with no faithful translation to a dialect, and why.
LOSSY: dict[str, dict[str, str]] = {
    "*": {
        "strptime": "strptime() raises on bad text in DuckDB; the target's parse may differ on edge cases",
        "regexp_matches": "regular expression flavours differ between engines",
        "list_aggregate": "DuckDB list functions have no direct equivalent",
        "struct_pack": "DuckDB structs have no direct equivalent",
        "epoch_ms": "epoch conversions differ in precision between engines",
        "strftime": "strftime patterns are translated element by element; locale-dependent names may differ",
    },
    "snowflake": {"date_trunc:week": "date_trunc('week') follows the session's WEEK_START (DuckDB: Monday)"},
    "postgres": {"median": "median() is not a Postgres aggregate (percentile_cont(0.5) within group)"},
}


def _lossy_warnings(tree: exp.Expression, dialect: str) -> list[str]:
    table = {**LOSSY["*"], **LOSSY.get(dialect, {})}
    out = []
    for node in tree.find_all(exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name not in table and not isinstance(node, exp.Anonymous):  # DuckDB's own spelling of it
            name = node.sql(dialect=SOURCE_DIALECT).split("(", 1)[0].strip().lower() or name
        if name in table:
            out.append(f"{name}(): {table[name]}")
        if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)) and f"date_trunc:{node.text('unit').lower()}" in table:
            out.append(table[f"date_trunc:{node.text('unit').lower()}"])
        if isinstance(node, exp.Anonymous) and name not in table and not name.startswith("__dbt_jinja"):
            out.append(f"{name}(): sqlglot does not know this function; copied verbatim to {dialect}")
    return out


# --------------------------------------------------------------------------- the public functions


def protect_jinja(sql: str) -> tuple[str, str, list[str]]:
    """Swap ``{{ ... }}`` for placeholder identifiers; return (leading config block, sql, jinja list).

    Raises:
        SqlCheckError: On Jinja statements (``{% ... %}``), which the safety rules never allow in models.
    """
    if "{%" in sql or "{#" in sql:
        raise SqlCheckError("cannot transpile model SQL with Jinja statements or comments ({% %}, {# #})")
    config = ""
    m = CONFIG_RX.match(sql)
    if m:
        config, sql = m.group(), sql[m.end():]
    found: list[str] = []

    def swap(match: re.Match[str]) -> str:
        found.append(match.group())
        return PLACEHOLDER.format(len(found) - 1)

    return config, JINJA_RX.sub(swap, sql), found


def restore_jinja(sql: str, jinja: list[str]) -> str:
    """Put the Jinja back where the placeholders are (quoted or not)."""
    return PLACEHOLDER_RX.sub(lambda m: jinja[int(m.group(2))], sql)


def transpile_model_sql(sql: str, dialect: str) -> Translation:
    """Model SQL written for DuckDB, for ``dialect``, with warnings for what is not faithful.

    Args:
        sql: The model's SQL (DuckDB, Jinja limited to ref/source/config).
        dialect: One of ``TARGET_DIALECTS``.

    Returns:
        The translated SQL (Jinja restored) and the warnings, each naming the construct.

    Raises:
        ConfigError: For a dialect we do not support.
        SqlCheckError: When the SQL does not parse, or the translation does not parse back in ``dialect``.
    """
    check_dialect(dialect)
    if dialect == SOURCE_DIALECT:
        return Translation(dialect, sql, source=sql)
    config, body, jinja = protect_jinja(sql)
    try:
        tree = sqlglot.parse_one(body, read=SOURCE_DIALECT)
    except ParseError as exc:
        raise SqlCheckError(f"cannot parse the DuckDB SQL to transpile it: {exc}") from exc
    rw = Rewrite(dialect)
    for rule in RULES.get(dialect, ()):
        tree = rule(tree, rw)
    warnings = _lossy_warnings(tree, dialect)  # what no rule replaced
    generator = Dialect.get_or_raise(dialect).generator(pretty=True, unsupported_level=ErrorLevel.IGNORE)
    out = rw.restore(generator.generate(tree))
    warnings += rw.warnings + [f"sqlglot: {msg}" for msg in generator.unsupported_messages]
    parse_back(out, dialect)
    return Translation(dialect, config + restore_jinja(out, jinja) + "\n", list(dict.fromkeys(warnings)), sql)


def check_dialect(dialect: str) -> str:
    """``dialect`` when we can emit it.

    Raises:
        ConfigError: Otherwise, listing the ones we can.
    """
    if dialect not in TARGET_DIALECTS:
        raise ConfigError(f"unsupported target dialect {dialect!r}; choose one of {', '.join(TARGET_DIALECTS)}")
    return dialect


def transpile_models(models: list[ModelSpec], dialect: str) -> dict[str, Translation]:
    """Every model's SQL in ``dialect``, by model name (each parsed back in ``dialect``).

    Raises:
        SqlCheckError: Naming the model whose SQL cannot be translated or does not parse back.
    """
    out = {}
    for model in models:
        try:
            out[model.name] = transpile_model_sql(model.sql, dialect)
        except SqlCheckError as exc:
            raise SqlCheckError(f"{model.name}: {exc}") from exc
    return out


def dialect_warnings(translated: dict[str, Translation]) -> list[str]:
    """``"<model>: <warning>"`` for every warning of every translation."""
    return [f"{name}: {w}" for name, t in translated.items() for w in t.warnings]


def parse_back(sql: str, dialect: str) -> exp.Expression:
    """Parse translated SQL (placeholders or Jinja allowed) in ``dialect``; it must be one query.

    Raises:
        SqlCheckError: When it does not parse as exactly one SELECT/WITH/UNION query.
    """
    _config, body, _jinja = protect_jinja(sql)
    try:
        statements = [s for s in sqlglot.parse(body, read=dialect, error_level=ErrorLevel.RAISE) if s is not None]
    except ParseError as exc:
        raise SqlCheckError(f"the {dialect} translation does not parse back with sqlglot: {exc}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlCheckError(f"the {dialect} translation is not exactly one query")
    return statements[0]


def profile_dialect(project: Path) -> str:
    """The dialect of the dbt project's default target (``profiles.yml`` beside it), else ``duckdb``."""
    from dataeng_crew.settings import project_config

    profiles = project / "profiles.yml"
    if not profiles.is_file():
        return SOURCE_DIALECT
    try:
        data = yaml.safe_load(profiles.read_text()) or {}
        prof = data.get(project_config(project)["profile"]) or {}
        output = (prof.get("outputs") or {}).get(prof.get("target", "dev")) or {}
    except (yaml.YAMLError, AttributeError):
        return SOURCE_DIALECT
    return ADAPTER_DIALECTS.get(str(output.get("type", "")).lower(), SOURCE_DIALECT)


def contract_type(data_type: str, dialect: str) -> str:
    """A contract ``data_type`` (DuckDB spelling) in ``dialect``'s spelling, lower-case."""
    if dialect == SOURCE_DIALECT:
        return data_type.lower()
    return exp.DataType.build(data_type, dialect=SOURCE_DIALECT).sql(dialect=dialect).lower()
