"""The mart renderer for metric queries: one code path from a :class:`MetricQuery` to a dbt model.

Like MetricFlow's dataflow plan, a query becomes a few steps — read the staged fact (and the tables its
breakdown lives on), keep the rows its validity rules and filters allow, aggregate each metric per period and
group, lay the aggregates on a gap-free period spine (× every group value), and compute ratios last — written
as import CTEs, logical CTEs and ``select * from final`` in the house style.
"""

from __future__ import annotations

from dataeng_crew.agents.modeler import staging_model_for
from dataeng_crew.agents.planner import GRAIN_ADJECTIVE
from dataeng_crew.agents.semantics import import_cte, quote_if_needed, staged_name
from dataeng_crew.agents.transformer import _period, dimension, dimension_ctes
from dataeng_crew.contracts import ColumnSpec, Metric, MetricQuery, ModelSpec, Plan, RowFilter, WarehouseProfile
from dataeng_crew.errors import RequestError
from dataeng_crew.tools.warehouse import primary_key

MONEY = "DECIMAL(18,2)"
RATE = "DECIMAL(18,4)"


def _column(ref: str, profile: WarehouseProfile) -> str:
    """The staged name of a raw ``table.column``, quoted when needed."""
    table_name, _, column_name = ref.partition(".")
    table = profile.table(table_name)
    col = table.column(column_name) if table else None
    if table is None or col is None:
        raise RequestError(f"metric query names unknown column {ref!r}")
    return quote_if_needed(staged_name(col, table))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def predicate(f: RowFilter, profile: WarehouseProfile, alias: str = "") -> str:
    """SQL for one row filter over the staged columns."""
    col = (alias + "." if alias else "") + _column(f.column, profile)
    if f.op == "in":
        return f"{col} = {_literal(f.values[0])}" if len(f.values) == 1 else \
            f"{col} in ({', '.join(_literal(v) for v in f.values)})"
    if f.op == "not_in":
        return f"{col} not in ({', '.join(_literal(v) for v in f.values)})"
    if f.op == "later_than":
        other = (alias + "." if alias else "") + _column(f.values[0], profile)
        return f"{col} > {other}"
    if f.op == "has_child":
        child = profile.table(f.values[0].partition(".")[0])
        if child is None:
            raise RequestError(f"metric query names unknown table {f.values[0]!r}")
        return f"{col} in (select {_column(f.values[0], profile)} from {{{{ ref('{staging_model_for(child, profile)}') }}}})"
    return {"is_null": f"{col} is null", "is_not_null": f"{col} is not null", "is_true": f"coalesce({col}, false)",
            "is_not_true": f"not coalesce({col}, false)"}[f.op]


def _not_excluded(f: RowFilter, profile: WarehouseProfile) -> str:
    """A validity rule as a predicate that keeps NULL statuses (unknown is not an exclusion)."""
    if f.op == "not_in":
        col = _column(f.column, profile)
        return f"({col} is null or {predicate(f, profile)})"
    return predicate(f, profile)


def time_expression(q: MetricQuery, profile: WarehouseProfile) -> str:
    """The staged expression a query's rows are dated by (a column, or a date made of year/month/day parts)."""
    if q.time_parts:
        return f"make_date({', '.join(_column(c, profile) for c in q.time_parts)})"
    return _column(q.time_column or "", profile)


def row_filters(q: MetricQuery, profile: WarehouseProfile, when: str | None) -> list[str]:
    """The predicates every counted row passes: validity rules, the request's filters, a known time."""
    filters = [_not_excluded(f, profile) for f in q.validity] + [predicate(f, profile) for f in q.filters]
    return filters + ([f"{when} is not null"] if when else [])


def _when(m: Metric, profile: WarehouseProfile) -> str:
    return " and ".join(predicate(f, profile) for f in m.where)


def aggregate(m: Metric, profile: WarehouseProfile) -> str | None:
    """The aggregate expression of one metric (None for ratios, computed after the spine)."""
    when = _when(m, profile)
    if m.kind == "count":
        return f"count(case when {when} then 1 end)" if when else "count(*)"
    if m.kind == "ratio":
        return None
    col = _column(m.column or "", profile)
    value = col if not m.quantity else f"{col} * {_column(m.quantity, profile)}"
    if m.discount:
        d = _column(m.discount, profile)
        value = {"percent": f"{col} * (1 - coalesce({d}, 0) / 100.0)", "rate": f"{col} * (1 - coalesce({d}, 0))",
                 "amount": f"{col} - coalesce({d}, 0)"}[m.discount_kind or "amount"]
    if m.kind == "duration":
        start = _column(m.start_column or "", profile)
        value = f"date_diff('second', {start}, {col}) * {m.scale!r}"
    if when:
        value = f"case when {when} then {value} end"
    fn = {"sum": "sum", "average": "avg", "duration": "avg", "min": "min", "max": "max"}.get(m.kind)
    if m.kind == "count_distinct":
        return f"count(distinct {value})"
    return f"{fn}({value})"


def _type(m: Metric) -> str:
    if m.kind in {"count", "count_distinct"}:
        return "BIGINT"
    if m.kind == "ratio":
        return RATE
    return MONEY


def _final(m: Metric, source: str) -> str:
    """The metric's column in the final select: zeros for counts and sums, nulls for averages and ratios."""
    if m.kind == "ratio":
        # rounded in whole 1/10000ths as a decimal before the cast: the same result on DuckDB and PostgreSQL
        return (f"cast(round(cast(10000.0 * {source}.{m.numerator} / nullif({source}.{m.denominator}, 0) "
                f"as decimal(38, 9))) / 10000 as decimal(18, 4)) as {m.name}")
    if m.kind in {"count", "count_distinct"}:
        return f"coalesce({source}.{m.name}, 0) as {m.name}"
    # round() of a decimal: PostgreSQL has no round(double precision, int), and a double's tie rounds differently
    if m.kind == "sum":
        return f"cast(round(cast(coalesce({source}.{m.name}, 0) as decimal(38, 9)), 2) as decimal(18, 2)) as {m.name}"
    return f"cast(round(cast({source}.{m.name} as decimal(38, 9)), 2) as decimal(18, 2)) as {m.name}"


def _time_join(q: MetricQuery, fact, profile: WarehouseProfile) -> tuple[str, str, str, str] | None:
    """(parent model, fk, pk, staged time column) when the query's time lives on the fact's parent."""
    if not q.time_column or q.time_column.partition(".")[0] == fact.name:
        return None
    parent = profile.table(q.time_column.partition(".")[0])
    fk = next((f for f in profile.foreign_keys if f.table == fact.name and parent is not None
               and f.ref_table == parent.name), None)
    if parent is None or fk is None:
        raise RequestError(f"the time {q.time_column} is not on {fact.name} nor on a table it references")
    child_col, parent_pk = fact.column(fk.column), parent.column(fk.ref_column)
    return (staging_model_for(parent, profile), quote_if_needed(staged_name(child_col, fact)),  # type: ignore[arg-type]
            quote_if_needed(staged_name(parent_pk, parent)), _column(q.time_column, profile))  # type: ignore[arg-type]


def _event_ctes(q: MetricQuery, fact, model: str, dim: dict | None, dname: str | None,  # noqa: ANN001
                profile: WarehouseProfile) -> list[str]:
    """Import CTEs and ``events``: the staged fact, with its parent's time or its breakdown joined when needed."""
    ctes = [import_cte("events", model, profile)]
    time_join = _time_join(q, fact, profile) if q.grain else None  # totals over all time need no time
    if time_join and not (dim and dim.get("model")):  # dated by a parent (a payment by its order's date)
        parent_model, fk, pk, column = time_join
        return [import_cte("events_source", model, profile), import_cte("time_source", parent_model, profile),
                "events as (\n\n    select\n        events_source.*,\n"
                f"        time_source.{column}\n\n    from events_source\n    left join time_source\n"
                f"        on events_source.{fk} = time_source.{pk}\n\n)"]
    if time_join:
        raise RequestError("a breakdown on a parent table and a time from a parent table in one mart are not "
                           "supported yet; ask without the breakdown")
    if dim and dim.get("model"):
        return dimension_ctes(model, dim, dname, profile)  # type: ignore[arg-type]
    return ctes


def _first_rows(q: MetricQuery, fact, when: str, filters: list[str], profile: WarehouseProfile) -> str:  # noqa: ANN001
    """``first_events``: the rows the rules keep, each entity's first by time (ties: the row's key)."""
    fk = _column(q.first_per or "", profile)
    key = primary_key(fact)
    order = when + (f", {quote_if_needed(staged_name(fact.column(key), fact))}" if key else "")
    kept = "\n        and ".join([*filters, f"{fk} is not null"])
    return ("first_events as (\n\n    select *\n\n    from events\n    where\n        " + kept
            + f"\n    qualify row_number() over (\n        partition by {fk}\n        order by {order}\n    ) = 1\n\n)")


def _spine_ctes(grain: str, period: str, dname: str | None) -> tuple[list[str], str, list[str]]:
    """The gap-free period spine (× every breakdown value seen), the grid's name and its join to the aggregates."""
    ctes = [
        "period_bounds as (\n\n    select\n"
        f"        min({period}) as first_period,\n        max({period}) as last_period\n\n    from aggregated\n\n)",
        "period_spine as (\n\n    select\n"
        f"        cast(unnest(generate_series(first_period, last_period, interval 1 {grain})) as date) "
        f"as {period}\n\n    from period_bounds\n\n)"]
    if not dname:
        return ctes, "period_spine", [f"period_spine.{period} = aggregated.{period}"]
    ctes += [f"dimension_values as (\n\n    select distinct {dname}\n\n    from aggregated\n\n)",
             f"period_grid as (\n\n    select\n        period_spine.{period},\n        dimension_values.{dname}"
             "\n\n    from period_spine\n    cross join dimension_values\n\n)"]
    return ctes, "period_grid", [f"period_grid.{period} = aggregated.{period}",
                                 f"period_grid.{dname} is not distinct from aggregated.{dname}"]


def render(plan: Plan, profile: WarehouseProfile) -> ModelSpec:
    """Render a metric plan's query as one mart model.

    Args:
        plan: A ``kind="metric"`` plan (its ``query`` set; breakdown and filter roles bound).
        profile: The warehouse profile (raw → staged names).

    Returns:
        The mart: period × group × metrics, empty periods included, ratios null-safe.
    """
    q: MetricQuery = plan.query  # type: ignore[assignment]
    fact = profile.table(q.fact)
    if fact is None:
        raise RequestError(f"metric query over unknown table {q.fact!r}")
    model = staging_model_for(fact, profile)
    grain = q.grain
    when = time_expression(q, profile) if q.time_column or q.time_parts else ""  # none: totals per breakdown value
    period = (f"{grain.value}_start_date" if grain.value != "day" else "event_date") if grain else None
    dim = dimension(plan, profile, fact)
    dname = quote_if_needed(dim["name"]) if dim else None
    lookback = plan.incremental_lookback if not dim and grain and not q.first_per else None  # a first is over all time

    ctes = _event_ctes(q, fact, model, dim, dname, profile)
    filters = row_filters(q, profile, when if grain else None)
    where = ("\n    where " + "\n        and ".join(filters)) if filters else ""
    if q.first_per:  # each entity's first counted row: rank the rows the rules keep, count the first
        ctes.append(_first_rows(q, fact, when, filters, profile))
        where = ""
    if lookback:
        where += ("\n    {% if is_incremental() %}\n"
                  f"        -- late-arriving rows: recompute the last {lookback} {grain.value}s already built\n"
                  f"        and {when} >= (select max({period}) - interval {lookback} {grain.value} from {{{{ this }}}})\n"
                  "    {% endif %}")
    keys = ([f"{_period(when, grain)} as {period}"] if grain else []) + ([dname] if dim else [])
    group = ([_period(when, grain)] if grain else []) + ([dname] if dim else [])
    aggs = [f"{agg} as {m.name}" for m in q.metrics if (agg := aggregate(m, profile)) is not None]
    ctes.append("aggregated as (\n\n    select\n        " + ",\n        ".join(keys + aggs)
                + f"\n\n    from {'first_events' if q.first_per else 'events'}{where}\n" + (f"    group by {', '.join(group)}\n" if group else "") + "\n)")
    source = "aggregated"
    grid, on = (None, [])
    sparse = bool(dim and dim.get("sparse"))  # by an entity's key: periods × keys with activity, not a grid of zeros
    if grain and not sparse:
        grid_ctes, grid, on = _spine_ctes(grain.value, period, dname)  # type: ignore[arg-type]
        ctes += grid_ctes
    outer = [m for m in q.metrics if not m.hidden]
    cols = ([f"{grid or source}.{period}"] if grain else []) + ([f"{grid or source}.{dname}"] if dim else [])
    cols += [_final(m, "aggregated") for m in outer]
    body = "    from " + (f"{grid}\n    left join aggregated\n        on " + "\n        and ".join(on) if grid
                          else "aggregated")
    ctes.append("final as (\n\n    select\n        " + ",\n        ".join(cols) + "\n\n" + body + "\n\n)")
    config = (f"{{{{ config(materialized='incremental', unique_key='{period}', on_schema_change='fail') }}}}\n\n"
              if lookback else "")
    sql = config + "with\n\n" + ",\n\n".join(ctes) + "\n\nselect * from final\n"

    columns = []
    if grain:
        columns.append(ColumnSpec(name=period, data_type="DATE", description=(
            f"The {grain.value} (its first date). " + (f"One row per {grain.value} and {dim['name']} with counted rows."
                                                       if sparse else f"One row per {grain.value} from the first to "
                                                       "the last counted row, including periods with none."))))
    if dim:
        columns.append(ColumnSpec(name=dim["name"], data_type=dim["type"], description=(
            f"Breakdown: {plan.roles['dimension']} (staged)" + ("; with the period, the grain of this mart." if grain
                                                                  else "; the grain of this mart."))))
    columns += [ColumnSpec(name=m.name, data_type=_type(m), description=m.description + (
        f" Unit: {m.unit}." if m.unit and m.kind not in {"count", "count_distinct"} else "")) for m in outer]
    meta: dict[str, object] = {"dimension": dim["name"]} if dim else {}
    meta["nullable"] = [m.name for m in outer if m.kind not in {"count", "count_distinct", "sum"}]
    if not grain:
        meta["no_period"] = True
    if lookback:
        meta["incremental_lookback"] = f"{lookback} {grain.value}s"  # type: ignore[union-attr]
    what = ", ".join(m.name for m in outer)
    return ModelSpec(
        name=plan.mart_name or "fct_metrics", layer="marts",
        materialization="incremental" if lookback else "table", folder="marts",
        description=((f"{GRAIN_ADJECTIVE[grain].capitalize()} " if grain else "") + f"{what}: one row per "
                     + (grain.value if grain else "") + (" and " if grain and dim else "") + (dim["name"] if dim else "")
                     + ". Built for the request: " + plan.request.replace('"', "'")),
        sql=sql, columns=columns, contract_enforced=True, meta=meta)
