"""Schema/modeling role, deterministic brain: sources yml and one staging model per raw table.

Staging follows dbt's conventions: one model per source table, views, no joins or aggregates;
rename to snake_case, cast types, keep the latest copy of re-synced rows, normalise category
values, convert money from minor to major units and keep test rows flagged (marts filter them).
"""

from __future__ import annotations

from dataclasses import dataclass

from dataeng_crew.agents.semantics import (
    NUMERIC_TYPES,
    base_type,
    entity_name,
    is_category,
    is_load_timestamp,
    is_minor_units,
    minor_unit_scale,
    epoch_scale,
    is_money,
    is_text_timestamp,
    load_timestamp,
    needs_normalising,
    normalised_values,
    plural,
    quote_if_needed,
    singular,
    staged_name,
)
from dataeng_crew.agents.roles import RoleContext, explain, register_role
from dataeng_crew.contracts import (
    ColumnProfile,
    ColumnSpec,
    ModelSpec,
    Plan,
    SourceSpec,
    SourceTableSpec,
    TableProfile,
    WarehouseProfile,
)
from dataeng_crew.tools.warehouse import primary_key, snake_case


@dataclass(frozen=True)
class StagedColumn:
    """One staging column: its SQL expression, new name, type and description."""

    raw: ColumnProfile
    name: str
    expression: str
    data_type: str
    description: str
    group: int  # 0 ids, 1 text, 2 numbers, 3 booleans, 4 timestamps, 5 load metadata


def source_name(schema: str, database: str) -> str:
    """dbt source name for a raw schema: ``raw_shop`` → ``shop``; ``main`` → the database name."""
    name = snake_case(schema)
    if name in {"main", "public", "dbo", "default"}:
        name = snake_case(database)
    return name.removeprefix("raw_") or name


def staging_model_name(source: str, table: str) -> str:
    """``stg_<source>__<entities>``."""
    return f"stg_{source}__{plural(entity_name(table))}"


def table_source(table: TableProfile, profile: WarehouseProfile) -> str:
    """The dbt source a table is (or will be) declared in: the project's own source when it declares the table
    or its schema, else one named after the raw schema."""
    if table.origin == "source" and table.ref_name and "." in table.ref_name:
        return table.ref_name.split(".", 1)[0]
    inventory = profile.inventory
    if inventory is not None and table.origin == "raw":
        same_schema = [s for s in inventory.sources if s.schema_name.lower() == table.schema_name.lower()]
        if same_schema:
            return same_schema[0].name
    return source_name(table.schema_name, profile.database)


def staging_model_for(table: TableProfile, profile: WarehouseProfile) -> str:
    """The model a proposal reads ``table`` through: the project's own model when the table IS one, else the
    staging model named by the project's convention (``stg_<source>__<entities>`` or ``stg_<entities>``)."""
    if table.origin == "model" and table.ref_name:
        return table.ref_name
    conventions = profile.inventory.conventions if profile.inventory is not None else None
    if conventions is not None and not conventions.staging_with_source:
        return f"{conventions.staging_prefix}{plural(entity_name(table.name))}"
    return staging_model_name(table_source(table, profile), table.name)


def raw_table_of(model_name: str, profile: WarehouseProfile) -> TableProfile | None:
    """The table a generated staging model of this name stages, or None (marts, the project's models)."""
    return next((t for t in profile.tables if t.origin != "model" and staging_model_for(t, profile) == model_name),
                None)


def _human(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def _plain_description(name: str, col: ColumnProfile, table: TableProfile, entity: str) -> str:
    """What the data says of a column the name alone does not (unique, one value, its values, empty share,
    range), or ``""``: a description that repeats the name ("Currency.") is left out."""
    parts = []
    if len(col.top_values) == 1:
        parts.append(f"'{col.top_values[0][:40]}' in every profiled row")
    elif 1 < len(col.top_values) <= 12 and is_category(col):
        parts.append("one of: " + ", ".join(v[:40] for v in col.top_values))
    elif (rows := table.profiled_rows - sum(table.duplicate_key_rows.values())) > 1 \
            and col.distinct_count >= 0.99 * rows * (1 - col.null_fraction):  # re-synced copies are not distinct
        parts.append(f"unique per {entity}")
    if base_type(col.data_type) in NUMERIC_TYPES and col.min_value is not None and col.max_value is not None \
            and col.min_value != col.max_value and not parts:
        parts.append(f"from {col.min_value} to {col.max_value} in the data")
    if col.null_fraction >= 0.005:
        parts.append(f"empty in {col.null_fraction:.0%} of rows")
    return f"{_human(name)}: {'; '.join(parts)}." if parts else ""


def _event_description(name: str, entity: str) -> str:
    """``created_at`` → "When the order was created."; ``birth_date`` → "Birth date."."""
    for suffix, lead in (("_at", "When"), ("_date", "Date")):
        if name.endswith(suffix) and name != suffix:
            verb = name.removesuffix(suffix)
            if verb.endswith("ed"):
                last = "last " if verb == "updated" else ""
                return f"{lead} the {entity} was {last}{verb.replace('_', ' ')}."
    return f"{_human(name)}."


def _project_column(col: ColumnProfile, table: TableProfile, profile: WarehouseProfile) -> StagedColumn:
    """A column of a project model: its own name, type and the project's description (else a plain one)."""
    model = profile.inventory.model(table.ref_name or table.name) if profile.inventory is not None else None
    documented = next((c.description for c in (model.columns if model else []) if c.name == col.name and c.description),
                      None)
    ref = quote_if_needed(col.name)
    is_key = col.name == primary_key(table) or any(f.table == table.name and f.column == col.name
                                                     for f in profile.foreign_keys)
    kind = base_type(col.data_type)
    group = 0 if is_key else 4 if kind in {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"} else \
        3 if kind == "BOOLEAN" else 1 if kind == "VARCHAR" else 2
    return StagedColumn(col, col.name, ref, col.data_type,
                        documented or f"{_human(col.name)} (from the project's {table.ref_name or table.name}).", group)


def stage_column(
    col: ColumnProfile, table: TableProfile, profile: WarehouseProfile, currency: str | None, source: str
) -> StagedColumn:
    """Decide how one raw column is cleaned in staging (table-driven by its semantics).

    A column of one of the project's own models is taken as it is, with the project's description.
    """
    entity = singular(entity_name(table.name))
    if table.origin == "model":
        return _project_column(col, table, profile)
    name = staged_name(col, table)
    ref = quote_if_needed(col.name)
    dtype = col.data_type
    unit = currency or "the order currency"
    fk = next((f for f in profile.foreign_keys if f.table == table.name and f.column == col.name), None)
    if col.name == primary_key(table):
        return StagedColumn(col, name, ref, dtype, f"Primary key of the {entity}.", 0)
    if fk is not None:
        parent = singular(entity_name(fk.ref_table))
        return StagedColumn(col, name, ref, dtype, f"The {parent} this {entity} belongs to ({fk.ref_table}."
                            f"{fk.ref_column}).", 0)
    if is_load_timestamp(col):
        return StagedColumn(col, name, f"cast({ref} as timestamp)", "TIMESTAMP",
                            "When the loader last synced this row; staging keeps only the latest copy of each key.", 5)
    if is_text_timestamp(col):
        parsed = ", ".join(f"try_strptime({ref}, '{fmt}')" for fmt in col.timestamp_formats)
        expr = f"coalesce({parsed})" if len(col.timestamp_formats) > 1 else parsed
        formats = " or ".join(f"'{f}'" for f in col.timestamp_formats)
        return StagedColumn(col, name, f"cast({expr} as timestamp)", "TIMESTAMP",
                            f"{_event_description(name, entity)[:-1]} (UTC), parsed from text stored as {formats}.", 4)
    if epoch_scale(col) is not None:
        micros = "1000000" if epoch_scale(col) == 1 else "1000"
        return StagedColumn(col, name, f"make_timestamp(cast({ref} as bigint) * {micros})", "TIMESTAMP",
                            f"{_event_description(name, entity)[:-1]} (UTC), converted from epoch "
                            f"{'seconds' if epoch_scale(col) == 1 else 'milliseconds'}.", 4)
    if is_minor_units(col):
        scale = minor_unit_scale(col)
        places, what = (6, "micros (1e-6 units)") if scale == 1_000_000 else (2, "integer cents")
        return StagedColumn(col, name, f"cast({ref} / {scale} as decimal(18, {places}))", f"DECIMAL(18,{places})",
                            f"{_human(name)} in {unit} (major units), converted from {what}.", 2)
    if is_money(col):
        return StagedColumn(col, name, f"cast({ref} as decimal(18, 2))", "DECIMAL(18,2)",
                            f"{_human(name)} in {unit} (major units).", 2)
    if needs_normalising(col):
        values = ", ".join(normalised_values(col))
        return StagedColumn(col, name, f"lower(trim({ref}))", dtype,
                            f"{_human(name)}, lower-cased and trimmed (raw values differ in case); one of: {values}.", 1)
    if base_type(dtype) == "VARCHAR" and "email" in name:
        return StagedColumn(col, name, f"lower(trim({ref}))", dtype, f"{_human(name)}, lower-cased and trimmed.", 1)
    if base_type(dtype) == "BOOLEAN":
        what = name.removeprefix("is_").removeprefix("has_").replace("_", " ")
        extra = " Test rows are kept here, flagged; marts exclude them." if "test" in name else ""
        return StagedColumn(col, name, ref, dtype, f"True when the {entity} is flagged '{what}'.{extra}", 3)
    if base_type(dtype) in {"TIMESTAMP", "DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}:
        cast_to = "date" if base_type(dtype) == "DATE" else "timestamp"
        return StagedColumn(col, name, f"cast({ref} as {cast_to})", cast_to.upper(), _event_description(name, entity), 4)
    group = 2 if base_type(dtype) not in {"VARCHAR"} else 1
    return StagedColumn(col, name, ref, dtype, _plain_description(name, col, table, entity), group)


def staged_columns(table: TableProfile, profile: WarehouseProfile, source: str,
                   currency: str | None = None) -> list[StagedColumn]:
    """Every staging column of ``table`` in dbt-style order: ids, text, numbers, booleans, times."""
    cols = [stage_column(c, table, profile, currency, source) for c in table.columns]
    seen: dict[str, int] = {}
    unique: list[StagedColumn] = []
    for c in cols:  # names that collide after snake_casing get a numeric suffix
        n = seen.get(c.name, 0)
        seen[c.name] = n + 1
        unique.append(c if n == 0 else StagedColumn(c.raw, f"{c.name}_{n + 1}", c.expression, c.data_type,
                                                     c.description, c.group))
    return sorted(unique, key=lambda c: c.group)


def source_table_name(table: str) -> str:
    """The dbt source name of a raw table: itself when it is a plain identifier, else its snake_case form
    (the real name is then declared as ``identifier:``), so ``source('shop', 'ord"ers')`` never happens."""
    import re

    return table if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table) else (snake_case(table) or "raw_table")


def _staging_sql(source: str, table: TableProfile, columns: list[StagedColumn]) -> str:
    key = primary_key(table)
    loaded = load_timestamp(table)
    if table.origin == "seed" and table.ref_name:  # seeds are read with ref()
        read = f"ref('{table.ref_name}')"
    else:
        name = table.ref_name.split(".", 1)[1] if table.origin == "source" and table.ref_name else source_table_name(table.name)
        read = f"source('{source}', '{name}')"
    ctes = [f"source as (\n\n    select * from {{{{ {read} }}}}\n\n)"]
    upstream = "source"
    if key and loaded:
        ctes.append(
            "deduplicated as (\n\n"
            "    -- re-synced rows: keep the latest load of each key\n"
            "    select * from source\n"
            f"    qualify row_number() over (partition by {quote_if_needed(key)} "
            f"order by {quote_if_needed(loaded.name)} desc) = 1\n\n)"
        )
        upstream = "deduplicated"
    lines = []
    for c in columns:
        lines.append(c.expression if c.expression == quote_if_needed(c.name) else f"{c.expression} as {quote_if_needed(c.name)}")
    body = ",\n        ".join(lines)
    ctes.append(f"renamed as (\n\n    select\n        {body}\n\n    from {upstream}\n\n)")
    return "with\n\n" + ",\n\n".join(ctes) + "\n\nselect * from renamed\n"


def model_sources(plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
    """Declare the raw tables the plan needs as dbt sources and write one staging model each.

    Args:
        plan: The planner's plan (``source_tables`` names the raw tables).
        profile: Warehouse profile.

    Returns:
        The sources (one per raw schema) and the staging models.
    """
    currency = None
    if plan.roles.get("orders"):
        orders = profile.table(plan.roles["orders"])
        cur = next((c for c in orders.columns if snake_case(c.name) in {"currency", "currency_code"}), None) if orders else None
        currency = cur.top_values[0] if cur and len(cur.top_values) == 1 else None
    by_schema: dict[str, list[TableProfile]] = {}
    for name in plan.source_tables:
        table = profile.table(name)
        if table is not None and table.origin != "model":  # the project's own models are read as they are
            by_schema.setdefault(table.schema_name, []).append(table)
    sources: list[SourceSpec] = []
    models: list[ModelSpec] = []
    for schema, tables in by_schema.items():
        spec_tables = []
        for table in sorted(tables, key=lambda t: t.name):
            src = table_source(table, profile)
            loaded = load_timestamp(table)
            if table.origin == "raw":  # seeds and declared source tables need no new source entry
                spec_tables.append(SourceTableSpec(
                    name=source_table_name(table.name),
                    identifier=None if source_table_name(table.name) == table.name else table.name,
                    description=f"Raw {table.name} as loaded ({table.row_count:,} rows when profiled"
                                + (", re-synced rows included" if table.duplicate_key_rows else "") + ").",
                    loaded_at_field=loaded.name if loaded else None,
                ))
            cols = staged_columns(table, profile, src, currency)
            entity = singular(entity_name(table.name))
            notes = []
            if primary_key(table) and loaded:
                notes.append(f"keeps the latest load of each {entity}")
            if any(c.expression.startswith("cast(") and "/ 100" in c.expression for c in cols):
                notes.append("converts money from cents")
            if any("lower(trim(" in c.expression for c in cols):
                notes.append("normalises text values")
            origin = f"seed {table.ref_name}" if table.origin == "seed" else f"{src}.{table.name}"
            models.append(ModelSpec(
                name=staging_model_for(table, profile),
                layer="staging",
                materialization="view",
                folder=f"staging/{src}" if table.origin != "seed" else "staging",
                description=f"One row per {entity} from {origin}, cleaned"
                            + (f": {', '.join(notes)}." if notes else "."),
                sql=_staging_sql(src, table, cols),
                columns=[ColumnSpec(name=c.name, description=c.description, data_type=c.data_type) for c in cols],
            ))
        if spec_tables:
            sources.append(SourceSpec(
                name=table_source(next(t for t in tables if t.origin == "raw"), profile), database=profile.database,
                schema_name=schema, description=f"Raw data loaded into {profile.database}.{schema}.", tables=spec_tables,
            ))
    return sources, models


def _model_step(ctx: RoleContext) -> tuple[str, str]:
    """This role's step in a proposal: run the brain, return (thought, observation)."""
    ctx.sources, ctx.staging = ctx.brain.model(ctx.plan, ctx.profile)
    return explain(ctx.brain, "model", (ctx.sources, ctx.staging)), ", ".join(m.name for m in ctx.staging)


register_role("modeler", "dbt sources and one staging view per raw table: snake_case, types, dedupe on the "
              "load stamp, cents to major units, parsed text timestamps",
              ("stage orders",), order=20, stage="model staging", action="modeler.model(plan, profile)",
              step=_model_step)
