"""Quality role, deterministic brain: dbt tests and GX suites inferred from profiles, and triage.

Each fact is tested once, by the tool that can say it. dbt tests, per layer:
- sources: one row per key and load time (dedupe must be unambiguous); freshness where a loader ran today;
- staging: unique + not_null keys; not_null where the data has no nulls and the column is required by
  meaning (event times, categories, money, flags); relationships (to models that exist or are built) for
  foreign keys found by inclusion; accepted_values for low-cardinality categories; lower bounds for money
  and quantities;
- marts: the grain (key unique + not_null, or period × value), required measures (a contract constraint)
  and reconciliation of totals against staging. No test that cannot fail, none copied from today's data.
GX suites (marts only): a row-count floor from today's data, stated as such, and value ranges of shares and
averages.

Every generated test is proven by the build; :func:`triage` decides what a failure means.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from dataeng_crew.agents.modeler import StagedColumn, raw_table_of, source_name, staged_columns, staging_model_for
from dataeng_crew.agents.semantics import (
    NUMERIC_TYPES,
    base_type,
    is_minor_units,
    minor_unit_scale,
    entity_name,
    is_category,
    is_load_timestamp,
    is_money,
    is_temporal,
    load_timestamp,
    normalised_values,
    singular,
)
from dataeng_crew.agents.roles import RoleContext, explain, register_role
from dataeng_crew.agents.transformer import event_filters, staged_role, valid_order_filters
from dataeng_crew.contracts import (
    ColumnProfile,
    ExpectationSpec,
    ExpectationSuiteSpec,
    ModelSpec,
    Plan,
    SourceSpec,
    TableProfile,
    TestSpec,
    WarehouseProfile,
)
from dataeng_crew.tools.warehouse import primary_key, snake_case


MAX_ACCEPTED_VALUES = 12
QUANTITY_WORDS = ("quantity", "qty", "units", "count")


def expected_rows(table: TableProfile) -> int:
    """Rows staging should hold: distinct keys (re-synced copies removed), estimated when sampled."""
    key = primary_key(table)
    dupes = table.duplicate_key_rows.get(key or "", 0)
    distinct_share = (table.profiled_rows - dupes) / table.profiled_rows if table.profiled_rows else 1.0
    return int(round(table.row_count * distinct_share))


def _accepted(col: StagedColumn) -> list[str]:
    if not is_category(col.raw):
        return []
    return normalised_values(col.raw) if "lower(trim(" in col.expression else sorted(col.raw.top_values)


def _column_tests(col: StagedColumn, table: TableProfile, profile: WarehouseProfile,
                  available: set[str] | None = None) -> list[TestSpec]:
    found: list[TestSpec] = []
    pk = primary_key(table)
    raw = col.raw
    if raw.name == pk:
        return [TestSpec(name="unique", column=col.name, reason="primary key (one row per key after dedupe)"),
                TestSpec(name="not_null", column=col.name, reason="primary key")]
    fk = next((f for f in profile.foreign_keys if f.table == table.name and f.column == raw.name), None)
    required = (is_temporal(raw) and not is_load_timestamp(raw)) or is_category(raw) or is_money(raw) \
        or base_type(raw.data_type) == "BOOLEAN" or fk is not None
    if raw.null_fraction == 0 and table.profiled_rows and required:
        why = "foreign key" if fk else "required by meaning"
        found.append(TestSpec(name="not_null", column=col.name,
                              reason=f"{why}; no nulls in {table.profiled_rows:,} profiled rows"))
    parent = profile.table(fk.ref_table) if fk is not None else None
    if fk is not None and parent is not None and (available is None or staging_model_for(parent, profile) in available):
        # a relationships test only to a model the project has or this proposal builds: never staging just for it
        parent_src = source_name(parent.schema_name, profile.database)
        parent_key = next(c.name for c in staged_columns(parent, profile, parent_src) if c.raw.name == fk.ref_column)
        found.append(TestSpec(
            name="relationships", column=col.name,
            arguments={"to": f"ref('{staging_model_for(parent, profile)}')", "field": parent_key},
            reason=f"every {raw.name} was found in {fk.ref_table}.{fk.ref_column} ({fk.inclusion:.0%})"))
    values = _accepted(col)
    if 1 < len(values) <= MAX_ACCEPTED_VALUES and table.profiled_rows >= 10 * len(values):
        found.append(TestSpec(name="accepted_values", column=col.name, arguments={"values": values},
                              reason=f"low-cardinality category: {len(values)} values in the data"))
    numeric = base_type(raw.data_type) in NUMERIC_TYPES
    quantity = any(w in snake_case(raw.name).split("_") for w in QUANTITY_WORDS)
    if numeric and (is_money(raw) or quantity) and raw.min_value is not None:
        try:
            lowest = float(raw.min_value)
        except ValueError:
            lowest = -1.0
        if lowest >= 0:
            found.append(TestSpec(name="crew_values_at_least", column=col.name, arguments={"min_value": 0},
                                  reason="money/quantity: never negative in the data"))
    return found


def _staging_tests(model: ModelSpec, profile: WarehouseProfile, available: set[str]
                   ) -> tuple[dict[str, list[TestSpec]], list[TestSpec]]:
    """Rules every staged row keeps (keys, required values, categories, parents, no negative money); how many
    rows there are today is a band for the GX suite of the mart, never a dbt test copied from today's data."""
    table = raw_table_of(model.name, profile)
    if table is None:
        return {}, []
    src = source_name(table.schema_name, profile.database)
    return {c.name: t for c in staged_columns(table, profile, src)
            if (t := _column_tests(c, table, profile, available))}, []


def _metric_reconciliation(plan: Plan, profile: WarehouseProfile, model: ModelSpec) -> list[TestSpec]:
    """The mart's plain row count adds up to the staged rows it counts (same validity rules and filters)."""
    from dataeng_crew.agents.marts import row_filters, time_expression

    q = plan.query
    assert q is not None
    count = next((m.name for m in q.metrics if m.kind == "count" and not m.where and not m.hidden), None)
    fact = profile.table(q.fact)
    dated_by_parent = bool(q.time_column) and q.time_column.partition(".")[0] != q.fact  # type: ignore[union-attr]
    on_parent = any(f.column.partition(".")[0] != q.fact for f in q.filters)
    if count is None or fact is None or dated_by_parent or on_parent or model.meta.get("no_period"):
        return []
    where = " and ".join(row_filters(q, profile, time_expression(q, profile)))
    return [TestSpec(name="crew_reconciles_with", arguments={
        "expression": count, "to": f"ref('{staging_model_for(fact, profile)}')", "compare_expression": "1",
        "compare_where": where}, reason="the counted rows equal the staged rows the rules keep")]


def _mart_tests(model: ModelSpec, plan: Plan | None, profile: WarehouseProfile) -> tuple[dict[str, list[TestSpec]], list[TestSpec]]:
    period = model.columns[0].name
    tests: dict[str, list[TestSpec]] = {
        period: [TestSpec(name="unique", column=period, reason="one row per period"),
                 TestSpec(name="not_null", column=period, reason="one row per period")]}
    dim = model.meta.get("dimension")
    names = {c.name for c in model.columns}
    nullable = set(model.meta.get("nullable") or [])  # averages and rates: null when nothing was counted
    if model.meta.get("no_period"):  # totals per breakdown value (a NULL value is a group of its own)
        tests = {period: [TestSpec(name="unique", column=period, reason="one row per breakdown value")]}
        dim = None
    elif dim:  # the grain is period × breakdown value
        tests[period] = [TestSpec(name="not_null", column=period, reason="one row per period and value")]
    money = {c.name for c in model.columns if (c.data_type or "").upper().startswith("DECIMAL")
             and not c.name.startswith("average")}
    for col in model.columns[1:]:
        if col.name == dim or col.name in nullable:
            continue
        if col.name.endswith("_count") or col.name in money:  # a constraint of the contract, not a test too
            tests[col.name] = [TestSpec(name="not_null", column=col.name, reason="zero, never null, on empty periods")]
    # no range test on a count (it cannot be negative) nor a balance the SQL computes by definition: a test that
    # cannot fail is noise; the inputs' ranges are tested in staging, totals are reconciled below
    model_tests: list[TestSpec] = []
    if dim:
        model_tests.append(TestSpec(name="crew_unique_combination", arguments={"columns": [period, dim]},
                                    reason="one row per period and breakdown value"))
    if plan is not None and plan.kind == "metric" and plan.query is not None:
        model_tests += _metric_reconciliation(plan, profile, model)
    elif plan is not None and plan.kind == "event":
        fact = staged_role(plan, profile, "fact")
        count = next((c.name for c in model.columns if c.name.endswith("_count")), None)
        when = staged_role(plan, profile, "event_time")
        if fact and count and when:
            where = " and ".join(event_filters(plan, profile) + [f"{when[1]} is not null"])
            model_tests.append(TestSpec(name="crew_reconciles_with", arguments={
                "expression": count, "to": f"ref('{fact[0]}')", "compare_expression": "1", "compare_where": where},
                reason="total events equal the staged rows they come from"))
    elif plan is not None and model.meta.get("dimension_level") != "line":  # split orders do not add up to all
        orders = staged_role(plan, profile, "orders")
        discount = staged_role(plan, profile, "discount")
        where = " and ".join(valid_order_filters(plan, profile)) or None
        if orders and "order_count" in names:
            model_tests.append(TestSpec(name="crew_reconciles_with", arguments={
                "expression": "order_count", "to": f"ref('{orders[0]}')", "compare_expression": "1",
                **({"compare_where": where} if where else {})}, reason="total orders equal the valid orders in staging"))
        if orders and discount and "discounts" in names:
            model_tests.append(TestSpec(name="crew_reconciles_with", arguments={
                "expression": "discounts", "to": f"ref('{orders[0]}')", "compare_expression": discount[1],
                **({"compare_where": where} if where else {})}, reason="total discounts equal staging's, to the cent"))
    return tests, model_tests


def _intermediate_tests(model: ModelSpec) -> tuple[dict[str, list[TestSpec]], list[TestSpec]]:
    key = model.columns[0].name
    return {key: [TestSpec(name="unique", column=key, reason="aggregated to one row per entity"),
                  TestSpec(name="not_null", column=key, reason="rows without the entity are filtered out")]}, []


def _entity_tests(model: ModelSpec, plan: Plan | None, profile: WarehouseProfile
                  ) -> tuple[dict[str, list[TestSpec]], list[TestSpec]]:
    """Entity mart: key unique/not_null and related to staging, counts never null/negative, counts reconciled."""
    key = str(model.meta.get("entity_key") or model.columns[0].name)
    tests: dict[str, list[TestSpec]] = {key: [
        TestSpec(name="unique", column=key, reason="one row per entity"),
        TestSpec(name="not_null", column=key, reason="one row per entity")]}
    model_tests: list[TestSpec] = []
    if plan is None:
        return tests, model_tests
    entity = staged_role(plan, profile, "entity")
    if entity:
        tests[key].append(TestSpec(name="relationships", column=key, arguments={"to": f"ref('{entity[0]}')",
                                                                               "field": key},
                                   reason="every mart row is an entity of staging"))
    for col in model.columns:
        if col.name.endswith("_count") or col.name == "lifetime_value":
            tests.setdefault(col.name, []).append(TestSpec(name="not_null", column=col.name,
                                                           reason="0, never null, for entities without facts"))
    from dataeng_crew.agents.entity_marts import child_filters  # entity_marts imports the transformer, as this module does

    names = {c.name for c in model.columns}
    for i in sorted({int(r.split("_")[1]) for r in plan.roles if re.fullmatch(r"child_\d+", r)}):
        child, fk = staged_role(plan, profile, f"child_{i}"), staged_role(plan, profile, f"child_{i}_key")
        count = f"{singular(entity_name(plan.roles[f'child_{i}']))}_count"
        table = profile.table(plan.roles[f"child_{i}"])
        inclusion = next((f.inclusion for f in profile.foreign_keys if table and f.table == table.name
                          and f"{f.table}.{f.column}" == plan.roles[f"child_{i}_key"]), 0.0)
        if not child or not fk or count not in names or inclusion < 1 or plan.roles.get(f"child_{i}_via_orders"):
            continue
        where = " and ".join([f"{fk[1]} is not null"] + [
            f.replace("child.", "") for f in child_filters(plan, profile, i, "child")])
        model_tests.append(TestSpec(name="crew_reconciles_with", arguments={
            "expression": count, "to": f"ref('{child[0]}')", "compare_expression": "1", "compare_where": where},
            reason=f"every counted {plan.roles[f'child_{i}']} row is attributed to exactly one entity"))
    return tests, model_tests


FRESHNESS_HOURS = 24


def _loaded_recently(column: ColumnProfile, now: dt.datetime) -> bool:
    """Whether the newest load stamp is within the freshness window of ``now`` (a loader that runs today)."""
    try:
        newest = dt.datetime.fromisoformat(str(column.max_value))
    except ValueError:
        return False
    newest = newest if newest.tzinfo else newest.replace(tzinfo=dt.timezone.utc)
    return now - newest <= dt.timedelta(hours=FRESHNESS_HOURS)


def source_tests(sources: list[SourceSpec], profile: WarehouseProfile, now: dt.datetime | None = None
                 ) -> list[SourceSpec]:
    """Sources with key+load uniqueness tests, and freshness where a loader keeps the table fresh today.

    A table whose newest load stamp is older than the window (an extract, a static sample) gets no freshness
    check: it would warn from the first run and say nothing.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    out = []
    for source in sources:
        tables = []
        for spec in source.tables:
            table = profile.table(spec.name)
            loaded = load_timestamp(table) if table else None
            key = primary_key(table) if table else None
            update: dict[str, Any] = {}
            if loaded is not None and _loaded_recently(loaded, now):
                update["freshness"] = {"warn_after": {"count": FRESHNESS_HOURS, "period": "hour"}}
            if loaded is not None and key is not None:
                update["tests"] = spec.tests + [TestSpec(
                    name="crew_unique_combination", arguments={"columns": [key, loaded.name]},
                    reason="one row per key and load: otherwise staging's dedupe would pick a copy at random")]
            tables.append(spec.model_copy(update=update))
        out.append(source.model_copy(update={"tables": tables}))
    return out


def add_tests(models: list[ModelSpec], profile: WarehouseProfile, plan: Plan | None = None) -> list[ModelSpec]:
    """Return copies of ``models`` with inferred data tests on their columns and on the models.

    Args:
        models: Staging and mart models.
        profile: Warehouse profile the tests are inferred from.
        plan: The plan (marts reconcile against the staging the plan binds).

    Returns:
        The same models carrying ``tests``.
    """
    out = []
    available = {m.name for m in models} | {m.name for m in (profile.inventory.models if profile.inventory else [])}
    for model in models:
        if model.layer == "staging":
            by_column, model_tests = _staging_tests(model, profile, available)
        elif model.layer == "intermediate":
            by_column, model_tests = _intermediate_tests(model)
        elif model.meta.get("mart_kind") == "entity":
            by_column, model_tests = _entity_tests(model, plan, profile)
        else:
            by_column, model_tests = _mart_tests(model, plan, profile)
        columns = [c.model_copy(update={"tests": c.tests + by_column.get(c.name, [])}) for c in model.columns]
        out.append(model.model_copy(update={"columns": columns, "tests": model.tests + model_tests}))
    return out


# --------------------------------------------------------------------------- GX suites


def _expect(kind: str, reason: str, **kwargs: Any) -> ExpectationSpec:
    return ExpectationSpec(type=kind, kwargs=kwargs, reason=reason)


def _periods(first: dt.date, last: dt.date, grain: str) -> int:
    """How many periods of ``grain`` a spine from ``first`` to ``last`` has."""
    if grain == "day":
        return (last - first).days + 1
    if grain == "week":
        return (last - first).days // 7 + 1
    months = (last.year - first.year) * 12 + last.month - first.month
    return {"month": months, "quarter": months // 3, "year": last.year - first.year}[grain] + 1


def _as_date(value: str | None) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(str(value)).date()
    except ValueError:
        return None


def _row_floor(model: ModelSpec, plan: Plan | None, profile: WarehouseProfile) -> ExpectationSpec | None:
    """A row-count floor from today's data, stated as such: history is not expected to shrink."""
    today = dt.date.today().isoformat()
    if model.meta.get("mart_kind") == "entity":
        entity = profile.table(plan.roles.get("entity", "")) if plan is not None else None
        rows = expected_rows(entity) if entity is not None else 0
        return _expect("ExpectTableRowCountToBeBetween", f"at least 90% of the {rows:,} {entity.name} profiled on "
                       f"{today} (one row per entity; a floor from today's data, not a rule)",
                       min_value=math.floor(rows * 0.9)) if rows and entity is not None else None
    if plan is None or plan.grain is None or model.meta.get("dimension") or model.meta.get("no_period"):
        return None
    when = (plan.query.time_column if plan.query is not None else None) or plan.roles.get("event_time") \
        or plan.roles.get("order_time")
    table, _, column = (when or "").partition(".")
    col = profile.table(table).column(column) if profile.table(table) is not None else None  # type: ignore[union-attr]
    first, last = (_as_date(col.min_value), _as_date(col.max_value)) if col is not None else (None, None)
    if first is None or last is None or last < first:
        return None
    n = _periods(first, last, plan.grain.value)
    return _expect("ExpectTableRowCountToBeBetween", f"at least 90% of the {n:,} {plan.grain.value}s from {first} to "
                   f"{last} in the data profiled on {today} (a floor from today's data, not a rule: history is not "
                   "expected to shrink)", min_value=max(1, math.floor(n * 0.9)))


def _metric_ranges(model: ModelSpec, plan: Plan | None, profile: WarehouseProfile) -> list[ExpectationSpec]:
    """Ranges dbt's tests do not state: a fraction lies in [0, 1]; an average, minimum or maximum lies within
    the profiled range of the values it reads (outside it means a unit or join error: cents shown as dollars)."""
    names = {c.name for c in model.columns}
    out = []
    for m in (plan.query.metrics if plan is not None and plan.query is not None else []):
        if m.hidden or m.name not in names:
            continue
        if m.kind == "ratio" and m.unit == "fraction":
            out.append(_expect("ExpectColumnValuesToBeBetween", "a share of rows: between 0 and 1", column=m.name,
                               min_value=0, max_value=1))
        if m.kind not in {"average", "min", "max"} or not m.column or m.discount:
            continue
        table, _, column = m.column.partition(".")
        raw = profile.table(table).column(column) if profile.table(table) is not None else None  # type: ignore[union-attr]
        if raw is None or base_type(raw.data_type) not in NUMERIC_TYPES or raw.min_value is None or raw.max_value is None:
            continue
        scale = m.scale / (minor_unit_scale(raw) if is_minor_units(raw) else 1)
        try:
            lo, hi = sorted((float(raw.min_value) * scale, float(raw.max_value) * scale))
        except ValueError:
            continue
        out.append(_expect("ExpectColumnValuesToBeBetween", f"within the range of {m.column} profiled on "
                           f"{dt.date.today().isoformat()} ({lo:g} to {hi:g}, in {m.unit or 'its unit'})",
                           column=m.name, min_value=lo, max_value=hi))
    return out


def expectation_suites(models: list[ModelSpec], profile: WarehouseProfile, plan: Plan | None = None
                       ) -> list[ExpectationSuiteSpec]:
    """GX suites for what dbt's tests do not say, one per mart that has something to say: row-count floors and
    value ranges taken from today's data (stated as such). Keys, nulls, categories and parents are dbt's tests;
    a suite never repeats them."""
    suites = []
    for model in models:
        if model.layer != "marts":
            continue
        exps = [e for e in (_row_floor(model, plan, profile), *_metric_ranges(model, plan, profile)) if e is not None]
        if exps:
            suites.append(ExpectationSuiteSpec(name=f"{model.name}_suite", model=model.name, expectations=exps))
    return suites


def _test_step(ctx: RoleContext) -> tuple[str, str]:
    """This role's step in a proposal: run the brain, return (thought, observation)."""
    ctx.sources, ctx.models, ctx.suites = ctx.brain.test(ctx.plan, ctx.sources, ctx.models, ctx.profile)
    return explain(ctx.brain, "test", (ctx.sources, ctx.models, ctx.suites)), f"{len(ctx.suites)} suites"


register_role("quality", "dbt tests and Great Expectations suites inferred from profiles, proven by the build, "
              "failures triaged",
              order=40, stage="quality tests", action="quality.test(plan, sources, models, profile)",
              step=_test_step)
