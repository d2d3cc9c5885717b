"""DDL artifacts: the physical contract of a model as CREATE TABLE statements per warehouse dialect.

Rendered with sqlglot from the same contract objects dbt enforces: column names, types (translated per
dialect), NOT NULL, the primary key and column comments from the descriptions. Comments go where each
dialect wants them: inline ``COMMENT`` (Snowflake, Databricks, Spark), ``OPTIONS(description=...)`` (BigQuery),
separate ``COMMENT ON COLUMN`` statements (DuckDB, Postgres).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from dataeng_crew.contracts import ColumnSpec, ModelSpec

DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "databricks", "spark")
COMMENT_MAX = 1000


def _not_null(col: ColumnSpec) -> bool:
    return any(t.name == "not_null" for t in col.tests) or any(
        c.get("type") in {"not_null", "primary_key"} for c in col.meta.get("constraints", []))


def primary_key(model: ModelSpec) -> str | None:
    """The column tested unique + not_null first (the model's grain), if any."""
    for col in model.columns:
        names = {t.name for t in col.tests}
        if {"unique", "not_null"} <= names:
            return col.name
    return None


def _type(col: ColumnSpec, dialect: str) -> exp.DataType:
    return exp.DataType.build(col.data_type or "VARCHAR", dialect="duckdb")


def _literal(text: str) -> exp.Literal:
    return exp.Literal.string(text[:COMMENT_MAX])


def create_table(model: ModelSpec, dialect: str) -> str:
    """The CREATE TABLE (and comment) statements for ``model`` in ``dialect``, ending with a newline."""
    pk = primary_key(model)
    table = exp.to_table(model.name)
    inline_comments = dialect in {"snowflake", "databricks", "spark"}
    defs: list[exp.Expression] = []
    for col in model.columns:
        constraints = []
        if _not_null(col) or col.name == pk:
            constraints.append(exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()))
        if inline_comments and col.description:
            constraints.append(exp.ColumnConstraint(kind=exp.CommentColumnConstraint(this=_literal(col.description))))
        defs.append(exp.ColumnDef(this=exp.to_identifier(col.name), kind=_type(col, dialect), constraints=constraints))
    if dialect == "bigquery":
        return _bigquery(model, pk)
    if pk:
        defs.append(exp.PrimaryKey(expressions=[exp.to_identifier(pk)]))
    create = exp.Create(kind="TABLE", this=exp.Schema(this=table, expressions=defs))
    statements = [create.sql(dialect=dialect, pretty=True)]
    if not inline_comments:
        statements.append(f"COMMENT ON TABLE {table.sql(dialect=dialect)} IS {_literal(model.description).sql(dialect=dialect)}")
        for col in model.columns:
            if col.description:
                target = exp.column(col.name, table=model.name).sql(dialect=dialect)
                statements.append(f"COMMENT ON COLUMN {target} IS {_literal(col.description).sql(dialect=dialect)}")
    return ";\n\n".join(statements) + ";\n"


def _bigquery(model: ModelSpec, pk: str | None) -> str:
    lines = []
    for col in model.columns:
        typ = _type(col, "bigquery").sql(dialect="bigquery")
        null = " NOT NULL" if _not_null(col) or col.name == pk else ""
        options = f" OPTIONS(description={_literal(col.description).sql(dialect='bigquery')})" if col.description else ""
        lines.append(f"  {exp.to_identifier(col.name).sql(dialect='bigquery')} {typ}{null}{options}")
    if pk:
        lines.append(f"  PRIMARY KEY ({exp.to_identifier(pk).sql(dialect='bigquery')}) NOT ENFORCED")
    return (f"CREATE TABLE {exp.to_table(model.name).sql(dialect='bigquery')} (\n" + ",\n".join(lines)
            + f"\n)\nOPTIONS(description={_literal(model.description).sql(dialect='bigquery')});\n")


def ddl_files(models: list[ModelSpec], dialects: Sequence[str] = DIALECTS) -> dict[str, str]:
    """``ddl/<dialect>/<model>.sql`` for every model with an enforced contract, in each of ``dialects``."""
    return {f"ddl/{dialect}/{m.name}.sql": create_table(m, dialect)
            for m in models if m.contract_enforced for dialect in dialects}


def parse_back(sql: str, dialect: str) -> list[tuple[str, str]]:
    """``(column, type)`` of the CREATE TABLE in ``sql`` as sqlglot reads it back in ``dialect``."""
    statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    create = next(s for s in statements if isinstance(s, exp.Create))
    return [(c.name, c.args["kind"].sql(dialect=dialect)) for c in create.this.expressions
            if isinstance(c, exp.ColumnDef)]
