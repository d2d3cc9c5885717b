"""Quality role, deterministic brain: dbt data tests inferred from profiles.

Scope of this brain today: unique + not_null on keys, not_null on foreign keys that have no nulls,
relationships for foreign keys found by inclusion checks, accepted_values for low-cardinality
categories, and key tests on the mart's period column.
"""

from __future__ import annotations

from agents.modeler import source_name, staged_columns, staging_model_name
from agents.semantics import is_category, normalised_values
from dataeng_crew.contracts import ModelSpec, TestSpec, WarehouseProfile
from tools.warehouse import primary_key

MAX_ACCEPTED_VALUES = 12


def _staging_tests(model: ModelSpec, profile: WarehouseProfile) -> dict[str, list[TestSpec]]:
    table = next((t for t in profile.tables
                  if staging_model_name(source_name(t.schema_name, profile.database), t.name) == model.name), None)
    if table is None:
        return {}
    src = source_name(table.schema_name, profile.database)
    tests: dict[str, list[TestSpec]] = {}
    pk = primary_key(table)
    for col in staged_columns(table, profile, src):
        found: list[TestSpec] = []
        if col.raw.name == pk:
            found += [TestSpec(name="unique", column=col.name, reason="primary key (unique after dedupe)"),
                      TestSpec(name="not_null", column=col.name, reason="primary key")]
        fk = next((f for f in profile.foreign_keys if f.table == table.name and f.column == col.raw.name), None)
        if fk is not None:
            parent = profile.table(fk.ref_table)
            assert parent is not None
            parent_model = staging_model_name(source_name(parent.schema_name, profile.database), parent.name)
            parent_src = source_name(parent.schema_name, profile.database)
            parent_key = next(c.name for c in staged_columns(parent, profile, parent_src) if c.raw.name == fk.ref_column)
            if col.raw.null_fraction == 0:
                found.append(TestSpec(name="not_null", column=col.name, reason="foreign key without nulls in the data"))
            found.append(TestSpec(
                name="relationships", column=col.name,
                arguments={"to": f"ref('{parent_model}')", "field": parent_key},
                reason=f"every {col.raw.name} was found in {fk.ref_table}.{fk.ref_column} ({fk.inclusion:.0%})",
            ))
        if is_category(col.raw) and "lower(trim(" in col.expression:
            values = normalised_values(col.raw)
        elif is_category(col.raw):
            values = sorted(col.raw.top_values)
        else:
            values = []
        if 1 < len(values) <= MAX_ACCEPTED_VALUES and table.profiled_rows >= 10 * len(values):
            found.append(TestSpec(name="accepted_values", column=col.name, arguments={"values": values},
                                  reason=f"low-cardinality category: {len(values)} values in the data"))
        if found:
            tests[col.name] = found
    return tests


def _mart_tests(model: ModelSpec) -> dict[str, list[TestSpec]]:
    period = model.columns[0].name
    tests = {period: [TestSpec(name="unique", column=period, reason="one row per period"),
                      TestSpec(name="not_null", column=period, reason="one row per period")]}
    for col in model.columns[1:]:
        if col.name.endswith("_count") or col.name in {"gross_sales", "discounts", "refunds", "net_sales"}:
            tests[col.name] = [TestSpec(name="not_null", column=col.name, reason="zero, never null, on empty periods")]
    return tests


def add_tests(models: list[ModelSpec], profile: WarehouseProfile) -> list[ModelSpec]:
    """Return copies of ``models`` with inferred data tests on their columns.

    Args:
        models: Staging and mart models.
        profile: Warehouse profile the tests are inferred from.

    Returns:
        The same models, columns carrying ``tests``.
    """
    out = []
    for model in models:
        tests = _staging_tests(model, profile) if model.layer == "staging" else _mart_tests(model)
        columns = [c.model_copy(update={"tests": c.tests + tests.get(c.name, [])}) for c in model.columns]
        out.append(model.model_copy(update={"columns": columns}))
    return out
