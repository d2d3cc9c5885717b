"""Cost guardrail: EXPLAIN a mart on the warehouse before it is built and estimate its work.

The mart's compiled SQL reads staging models that do not exist in the warehouse yet, so each model
reference is inlined as a subquery of that model's compiled SQL; DuckDB then plans the whole query
over the raw tables (read-only, locked-down connection) without running it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from dataeng_crew.tools.warehouse import open_readonly


def inline_models(sql: str, compiled: dict[str, str], depth: int = 0) -> str:
    """``sql`` with every table that is one of ``compiled``'s models replaced by its SQL as a subquery."""
    ast = sqlglot.parse_one(sql, dialect="duckdb")
    for table in list(ast.find_all(exp.Table)):
        if table.name in compiled and depth < 8:
            inner = sqlglot.parse_one(inline_models(compiled[table.name], compiled, depth + 1), dialect="duckdb")
            table.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))))
    return ast.sql(dialect="duckdb")


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("children", []):
        out += _walk(child)
    return out


def explain(warehouse: Path, sql: str) -> tuple[int, int | None]:
    """``(rows scanned, rows produced)`` estimated by DuckDB's planner for ``sql`` (nothing runs)."""
    with open_readonly(warehouse) as con:
        plan = json.loads(con.execute(f"explain (format json) {sql}").fetchall()[0][1])
    nodes = [n for root in plan for n in _walk(root)]

    def cardinality(node: dict[str, Any]) -> int | None:
        value = (node.get("extra_info") or {}).get("Estimated Cardinality")
        try:
            return int(str(value).replace(",", "")) if value is not None else None
        except ValueError:
            return None

    scanned = sum(cardinality(n) or 0 for n in nodes if "SCAN" in n.get("name", ""))
    produced = cardinality(plan[0]) if plan else None
    return scanned, produced
