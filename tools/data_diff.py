"""Data diff of dbt models between two builds (base branch → head), over DuckDB.

Pure functions: both DuckDB files are attached read-only in one in-memory connection. For each model:
the schema diff (columns added, removed, retyped), the row counts, and — when the model exists on both
sides — a key-joined value diff: rows added, removed and changed, changed rows per column, and a few
examples with PII columns masked.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dataeng_crew.tools.warehouse import attach_sql, attachments, model_schema

from dataeng_crew.contracts import ModelDiff, SchemaChange
from dataeng_crew.tools.prompt_safety import clean_text

MASK = "•••"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple[str, str]]:
    rows = con.execute("select column_name, data_type from duckdb_columns() where database_name = ? and "
                       "schema_name = ? and table_name = ? order by column_index",
                       [catalog, model_schema(con, table, catalog), table]).fetchall()
    return [(str(n), str(t)) for n, t in rows]


def _connect(base: Path | None, head: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for db in [*attachments(head), *(attachments(base) if base is not None else [])]:  # what their views read
        con.execute(attach_sql(db))
    con.execute(f"attach '{str(head).replace(chr(39), chr(39) * 2)}' as head_db (read_only)")
    if base is not None:
        con.execute(f"attach '{str(base).replace(chr(39), chr(39) * 2)}' as base_db (read_only)")
    return con


def diff_model(base_db: Path | None, head_db: Path, model: str, key: list[str], masked: set[str] | None = None,
               examples: int = 3, base_model: str | None = None) -> ModelDiff:
    """Diff one model's relation ``main.<model>`` in the base build and the head build.

    Args:
        base_db: The base branch's build (None: the model is new).
        head_db: The proposal's build.
        model: Model name in the head build.
        key: Columns identifying a row (the model's grain); empty = counts and schema only.
        masked: Columns whose values never appear in examples (PII by the governance policy).
        examples: How many changed rows to show.
        base_model: The model's name in the base build when it differs.

    Returns:
        The diff.
    """
    masked = masked or set()
    con = _connect(base_db, head_db)
    try:
        head_cols = _columns(con, "head_db", model)
        head_rel = f"head_db.{_q(model_schema(con, model, 'head_db'))}.{_q(model)}"
        head_rows = con.execute(f"select count(*) from {head_rel}").fetchone()[0]
        base_cols = _columns(con, "base_db", base_model or model) if base_db is not None else []
        if not base_cols:
            return ModelDiff(model=model, status="added", head_rows=head_rows, key=key,
                             schema_changes=[SchemaChange(column=c, change="added", after=t) for c, t in head_cols])
        base_rel = f"base_db.{_q(model_schema(con, base_model or model, 'base_db'))}.{_q(base_model or model)}"
        base_rows = con.execute(f"select count(*) from {base_rel}").fetchone()[0]
        before, after = dict(base_cols), dict(head_cols)
        changes = [SchemaChange(column=c, change="removed", before=t) for c, t in base_cols if c not in after]
        changes += [SchemaChange(column=c, change="added", after=t) for c, t in head_cols if c not in before]
        changes += [SchemaChange(column=c, change="retyped", before=before[c], after=t)
                    for c, t in head_cols if c in before and before[c] != t]
        diff = ModelDiff(model=model, status="changed", key=key, schema_changes=changes, base_rows=base_rows,
                         head_rows=head_rows, masked_columns=sorted(masked & (set(before) | set(after))))
        if not key or any(k not in before or k not in after for k in key):
            diff.note = "no key shared by both builds: schema and row counts only"
            return diff
        on = " and ".join(f"b.{_q(k)} is not distinct from h.{_q(k)}" for k in key)
        diff.rows_added = con.execute(
            f"select count(*) from {head_rel} h where not exists (select 1 from {base_rel} b where {on})").fetchone()[0]
        diff.rows_removed = con.execute(
            f"select count(*) from {base_rel} b where not exists (select 1 from {head_rel} h where {on})").fetchone()[0]
        common = [c for c, _ in head_cols if c in before and c not in key]
        if common:
            flags = ", ".join(f"(b.{_q(c)} is distinct from h.{_q(c)})::int as {_q(c)}" for c in common)
            any_changed = " or ".join(f"b.{_q(c)} is distinct from h.{_q(c)}" for c in common)
            sums = ", ".join(f"coalesce(sum({_q(c)}), 0)" for c in common)
            row = con.execute(f"select count(*) filter (where changed), {sums} from (select {flags}, "
                              f"({any_changed}) as changed from {base_rel} b join {head_rel} h on {on})").fetchone()
            diff.rows_changed = int(row[0])
            diff.changed_columns = {c: int(n) for c, n in zip(common, row[1:]) if n}
            picked = [c for c in common if c in diff.changed_columns]
            if picked and examples:
                select = ", ".join([f"h.{_q(k)}" for k in key] + [f"b.{_q(c)}, h.{_q(c)}" for c in picked])
                order = ", ".join(f"h.{_q(k)}" for k in key)
                for values in con.execute(f"select {select} from {base_rel} b join {head_rel} h on {on} "
                                          f"where {any_changed} order by {order} limit {int(examples)}").fetchall():
                    example = {k: (MASK if k in masked else clean_text(v)) for k, v in zip(key, values)}
                    for i, c in enumerate(picked):
                        old, new = values[len(key) + 2 * i], values[len(key) + 2 * i + 1]
                        if old != new:
                            example[c] = MASK if c in masked else f"{clean_text(old)} → {clean_text(new)}"
                    diff.examples.append(example)
        if diff.rows_added == 0 and diff.rows_removed == 0 and not diff.rows_changed and not changes:
            diff.status = "unchanged"
        return diff
    finally:
        con.close()


def removed_model(base_db: Path, model: str) -> ModelDiff:
    """A model the change removes: its base row count and columns."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{str(base_db).replace(chr(39), chr(39) * 2)}' as base_db (read_only)")
        cols = _columns(con, "base_db", model)
        rel = f"base_db.{_q(model_schema(con, model, 'base_db'))}.{_q(model)}"
        rows = con.execute(f"select count(*) from {rel}").fetchone()[0] if cols else None
    finally:
        con.close()
    return ModelDiff(model=model, status="removed", base_rows=rows, head_rows=0,
                     schema_changes=[SchemaChange(column=c, change="removed", before=t) for c, t in cols])


def diff_markdown(diffs: list[ModelDiff], base_label: str = "base") -> str:
    """The ``## Data diff`` section of a PR body / CI job summary."""
    lines = ["## Data diff", "", f"Against the {base_label} build, computed in the sandbox (PII columns masked).", ""]
    if not diffs:
        return "\n".join(lines + ["No model added or changed.", ""])
    lines += ["| model | status | rows base → head | added | removed | changed | schema |", "|---|---|---|---|---|---|---|"]
    for d in diffs:
        schema = ", ".join(f"{'+' if s.change == 'added' else '−' if s.change == 'removed' else '~'}`{s.column}`"
                           + (f" ({s.before} → {s.after})" if s.change == "retyped" else "")
                           for s in d.schema_changes) if d.status not in ("added", "removed") else (
                               f"{len(d.schema_changes)} columns ({'new' if d.status == 'added' else 'gone'})")

        def n(x: int | None) -> str:
            return "–" if x is None else f"{x:,}"
        lines.append(f"| `{d.model}` | {d.status} | {n(d.base_rows)} → {d.head_rows:,} | {n(d.rows_added)} | "
                     f"{n(d.rows_removed)} | {n(d.rows_changed)} | {schema or 'same'} |")
    for d in diffs:
        if d.changed_columns or d.note:
            lines += ["", f"`{d.model}`" + (f" (key: {', '.join(d.key)})" if d.key else "") + ": "
                      + (", ".join(f"`{c}` changed in {k:,} rows" for c, k in d.changed_columns.items()) or d.note)]
        if d.examples:
            cols = list(d.examples[0])
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(e.get(c, "")).replace("|", "\\|") for c in cols) + " |" for e in d.examples]
    return "\n".join(lines) + "\n"
