"""Transformation role, deterministic brain: entity marts (one row per customer, product, ...).

The mart selects the entity's staged attributes and left-joins one intermediate model per fact
that references the entity (``int_<facts>_aggregated_to_<entities>``, dbt's ``int_<entity>s_<verb>s``
convention as in ``int_payments_pivoted_to_orders``). Each intermediate aggregates its fact to one
row per entity key: row count, first/most recent event, sums of money; for the order fact the sales
marts use, lifetime value = gross - discounts - refunds over the valid orders.
"""

from __future__ import annotations

import re

from dataeng_crew.agents.modeler import StagedColumn, source_name, staged_columns, staging_model_for
from dataeng_crew.agents.planner import PRICE, entity_measure
from dataeng_crew.agents.semantics import (INTEGER_TYPES, import_cte, needs_normalising, entity_name, line_value_sql, plural, quote_if_needed, singular,
                                          staged_name)
from dataeng_crew.agents.transformer import refunded_predicate
from dataeng_crew.contracts import ColumnSpec, ModelSpec, Plan, TableProfile, WarehouseProfile
from dataeng_crew.errors import RequestError
from dataeng_crew.tools.warehouse import primary_key, snake_case

MONEY = "DECIMAL(18,2)"


def _table(plan: Plan, profile: WarehouseProfile, role: str) -> TableProfile:
    table = profile.table(plan.roles[role].partition(".")[0])
    if table is None:
        raise RequestError(f"plan role {role!r} points at unknown table {plan.roles[role]!r}")
    return table


def _col(plan: Plan, profile: WarehouseProfile, role: str) -> StagedColumn | None:
    """The staged column bound to ``role`` (None when unbound)."""
    binding = plan.roles.get(role)
    if not binding or "." not in binding:
        return None
    table = _table(plan, profile, role)
    src = source_name(table.schema_name, profile.database)
    raw = binding.partition(".")[2]
    return next((c for c in staged_columns(table, profile, src) if c.raw.name == raw), None)


def _stg(table: TableProfile, profile: WarehouseProfile) -> str:
    return staging_model_for(table, profile)


def _alias(name: str, fallback: str) -> str:
    return name if quote_if_needed(name) == name else fallback


def flag_filter(alias: str, col: str) -> str:
    """Keep rows not flagged by ``col`` (a ``*_at`` timestamp: null; a boolean: not true)."""
    ref = f"{alias}.{quote_if_needed(col)}"
    return f"{ref} is null" if col.endswith("_at") else f"not coalesce({ref}, false)"


def child_filters(plan: Plan, profile: WarehouseProfile, i: int, alias: str) -> list[str]:
    """Predicates on the staged child fact ``i`` that drop test, cancelled and deleted rows."""
    from dataeng_crew.agents.semantic_layer import clean_value, invalid_values

    roles = sorted(r for r in plan.roles if r.startswith(f"child_{i}_exclude_"))
    out = [flag_filter(alias, _col(plan, profile, r).name) for r in roles]  # type: ignore[union-attr]
    for r in sorted(r for r in plan.roles if r.startswith(f"child_{i}_invalid_")):  # cancelled, void, no-show …
        table_name, _, column_name = plan.roles[r].partition(".")
        table = profile.table(table_name)
        raw = table.column(column_name) if table else None
        staged = _col(plan, profile, r)
        if table is None or raw is None or staged is None:
            continue
        bad = invalid_values(raw)
        if table.origin == "model" or not needs_normalising(raw):  # staging keeps the values as they are
            bad = sorted({v for v in raw.top_values if clean_value(v) in bad})
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in bad)
        ref = f"{alias}.{quote_if_needed(staged.name)}"
        out.append(f"({ref} is null or {ref} not in ({values}))")
    return out


def _as(expr: str, name: str, source: str | None = None) -> str:
    """``expr as name``, or just ``expr`` when it already carries that name."""
    return expr if (source or expr) == name else f"{expr} as {name}"




def _sql(ctes: list[str], last: str) -> str:
    return "with\n\n" + ",\n\n".join(ctes) + f"\n\nselect * from {last}\n"


def _first_last(plan: Plan, ent: str, when: StagedColumn, ref: str) -> list[tuple[str, str, str]]:
    """First and most recent event of the entity: dates when the request asks for dates, else as stored."""
    if plan.roles.get("entity_dates") == "true" and not when.name.endswith("_date"):
        return [(f"first_{ent}_date", "DATE", f"cast(min({ref}) as date)"),
                (f"most_recent_{ent}_date", "DATE", f"cast(max({ref}) as date)")]
    suffix = "date" if when.name.endswith("_date") else "at"
    return [(f"first_{ent}_{suffix}", when.data_type, f"min({ref})"),
            (f"most_recent_{ent}_{suffix}", when.data_type, f"max({ref})")]


def _sales_child(plan: Plan, profile: WarehouseProfile, i: int, key: str, fk: StagedColumn,
                 when: StagedColumn | None, child: TableProfile) -> tuple[list[str], list[tuple[str, str, str]]]:
    """CTEs and ``(column, type, aggregate)`` of the order fact aggregated to the entity, with lifetime value."""
    order_key = staged_name(child.column(primary_key(child)), child)  # type: ignore[arg-type]
    ent = singular(entity_name(child.name))
    ctes = [import_cte("orders", _stg(child, profile), profile)]
    lines, refunds = plan.roles.get("lines"), plan.roles.get("refunds")
    if lines:
        ctes.append(import_cte("order_parts", _stg(_table(plan, profile, "lines"), profile), profile))
    if refunds and plan.roles.get("refund_amount"):
        ctes.append(import_cte("refunds", _stg(_table(plan, profile, "refunds"), profile), profile))
    discount = _col(plan, profile, "discount")
    amount = _col(plan, profile, "order_amount")
    where = [f"orders.{quote_if_needed(fk.name)} is not null"] + child_filters(plan, profile, i, "orders")
    select = [f"orders.{quote_if_needed(order_key)}", _as(f"orders.{quote_if_needed(fk.name)}", key, fk.name),
              f"{'orders.' + quote_if_needed(discount.name) if discount else '0'} as discounts"]
    if when is not None:
        select.append(f"orders.{quote_if_needed(when.name)} as event_at")
    if not lines and amount is not None:
        select.append(f"orders.{quote_if_needed(amount.name)} as gross_value")
    refunded = None if refunds else refunded_predicate(plan, profile, "orders")
    if refunded:  # no refund table: an order its status marks refunded is refunded in full
        select.append(f"{refunded} as is_refunded")
    ctes.append("valid_orders as (\n\n    select\n        " + ",\n        ".join(select)
                + "\n\n    from orders\n    where " + "\n        and ".join(where) + "\n\n)")
    joins, gross = "", "valid_orders.gross_value"
    if lines:
        line_order = _col(plan, profile, "line_order").name  # type: ignore[union-attr]
        price = _col(plan, profile, "line_price").name  # type: ignore[union-attr]
        qty = _col(plan, profile, "line_quantity")
        rate = _col(plan, profile, "line_discount_rate")
        value = line_value_sql(quote_if_needed(qty.name) if qty else None, quote_if_needed(price),
                               quote_if_needed(rate.name) if rate else None)
        ctes.append(f"order_gross as (\n\n    select\n        {_as(quote_if_needed(line_order), order_key)},\n"
                    f"        sum({value}) as gross_value\n\n    from order_parts\n"
                    f"    group by {quote_if_needed(line_order)}\n\n)")
        joins += (f"\n    left join order_gross\n        on valid_orders.{order_key} = order_gross.{order_key}")
        gross = "order_gross.gross_value"
    refund = "0"
    if refunds and plan.roles.get("refund_amount"):
        r_order = _col(plan, profile, "refund_order").name  # type: ignore[union-attr]
        r_amount = _col(plan, profile, "refund_amount").name  # type: ignore[union-attr]
        ctes.append(f"order_refunds as (\n\n    select\n        {_as(quote_if_needed(r_order), order_key)},\n"
                    f"        sum({quote_if_needed(r_amount)}) as refunds\n\n    from refunds\n"
                    f"    group by {quote_if_needed(r_order)}\n\n)")
        joins += (f"\n    left join order_refunds\n        on valid_orders.{order_key} = order_refunds.{order_key}")
        refund = "coalesce(order_refunds.refunds, 0)"
    elif refunded:
        refund = f"case when valid_orders.is_refunded then coalesce({gross}, 0) else 0 end"
    aggs = [(f"{ent}_count", "BIGINT", "count(*)")]
    if when is not None:
        aggs += _first_last(plan, ent, when, "valid_orders.event_at")
    aggs.append(("lifetime_value", MONEY, f"cast(sum(coalesce({gross}, 0) - coalesce(valid_orders.discounts, 0) "
                                          f"- {refund}) as decimal(18, 2))"))
    body = ",\n        ".join(f"{expr} as {name}" for name, _, expr in aggs)
    ctes.append(f"aggregated as (\n\n    select\n        valid_orders.{key},\n        {body}\n\n"
                f"    from valid_orders{joins}\n    group by valid_orders.{key}\n\n)")
    return ctes, aggs


def _generic_child(plan: Plan, profile: WarehouseProfile, i: int, key: str, fk: StagedColumn,
                   when: StagedColumn | None, child: TableProfile) -> tuple[list[str], list[tuple[str, str, str]]]:
    """CTEs and ``(column, type, aggregate)`` of any fact aggregated to the entity."""
    ent = singular(entity_name(child.name))
    alias = _alias(plural(ent), "fact")
    ctes = [import_cte(alias, _stg(child, profile), profile)]
    where = [f"{alias}.{quote_if_needed(fk.name)} is not null"] + child_filters(plan, profile, i, alias)
    join = ""
    via = plan.roles.get(f"child_{i}_via_orders")
    if via:
        orders = profile.table(via)
        assert orders is not None
        order_fk = next(f for f in profile.foreign_keys if f.table == child.name and f.ref_table == orders.name)
        src = source_name(child.schema_name, profile.database)
        fk_to_orders = next(c.name for c in staged_columns(child, profile, src) if c.raw.name == order_fk.column)
        order_key = staged_name(orders.column(primary_key(orders)), orders)  # type: ignore[arg-type]
        ctes.append(import_cte("orders", _stg(orders, profile), profile))
        join = (f"\n    inner join orders\n        on {alias}.{quote_if_needed(fk_to_orders)} = "
                f"orders.{quote_if_needed(order_key)}")
        where += [flag_filter("orders", _col(plan, profile, r).name)  # type: ignore[union-attr]
                  for r in ("test_flag", "cancelled") if plan.roles.get(r)]
    aggs = [(f"{ent}_count", "BIGINT", "count(*)")]
    if when is not None:
        ref = f"{alias}.{quote_if_needed(when.name)}"
        aggs += _first_last(plan, ent, when, ref)
    qty = _col(plan, profile, f"child_{i}_quantity")
    for r in sorted(r for r in plan.roles if r.startswith(f"child_{i}_measure_")):
        col = _col(plan, profile, r)
        assert col is not None
        name, _ = entity_measure(col.raw, child, qty.raw if qty else None)
        expr = f"{alias}.{quote_if_needed(col.name)}"
        if qty is not None and re.fullmatch(PRICE, snake_case(col.raw.name)):
            expr = f"{alias}.{quote_if_needed(qty.name)} * {expr}"
        aggs.append((name, MONEY, f"cast(sum({expr}) as decimal(18, 2))"))
    if qty is not None:
        numeric = "BIGINT" if qty.data_type.upper() in INTEGER_TYPES else "DOUBLE"
        aggs.append((f"total_{ent}_{qty.name}", numeric,
                     f"cast(sum({alias}.{quote_if_needed(qty.name)}) as {numeric.lower()})"))
    body = ",\n        ".join(f"{expr} as {name}" for name, _, expr in aggs)
    first = _as(f"{alias}.{quote_if_needed(fk.name)}", key, fk.name)
    ctes.append(f"aggregated as (\n\n    select\n        {first},\n"
                f"        {body}\n\n    from {alias}{join}\n    where " + "\n        and ".join(where)
                + f"\n    group by {alias}.{quote_if_needed(fk.name)}\n\n)")
    return ctes, aggs


def transform_entity(plan: Plan, profile: WarehouseProfile) -> list[ModelSpec]:
    """The entity mart and its intermediate models.

    Args:
        plan: An ``entity`` plan (roles ``entity``, ``entity_key``, ``child_<i>``...).
        profile: Warehouse profile.

    Returns:
        The intermediate models (one per referencing fact) followed by the mart.
    """
    table = _table(plan, profile, "entity")
    src = source_name(table.schema_name, profile.database)
    attrs = [c for c in staged_columns(table, profile, src) if c.group != 5]
    key_col = _col(plan, profile, "entity_key")
    assert key_col is not None and plan.mart_name
    key = key_col.name
    ent_plural = plural(entity_name(table.name))
    ent = singular(ent_plural)
    definitions = {m.name: m.definition for m in plan.measures}
    alias = _alias(ent_plural, "entity")
    mart_ctes = [import_cte(alias, _stg(table, profile), profile)]
    select = [f"{alias}.{quote_if_needed(c.name)}" for c in attrs]
    columns = [ColumnSpec(name=c.name, data_type=c.data_type,
                          description=(f"Primary key of the {ent}." if c.name == key else c.description))
               for c in attrs]
    joins, models = "", []
    children = sorted({int(m.group(1)) for r in plan.roles if (m := re.fullmatch(r"child_(\d+)", r))})
    for i in children:
        child = _table(plan, profile, f"child_{i}")
        fk = _col(plan, profile, f"child_{i}_key")
        when = _col(plan, profile, f"child_{i}_time")
        assert fk is not None
        build = _sales_child if plan.roles.get(f"child_{i}_sales") else _generic_child
        ctes, aggs = build(plan, profile, i, key, fk, when, child)
        name = f"int_{plural(entity_name(child.name))}_aggregated_to_{ent_plural}"
        models.append(ModelSpec(
            name=name, layer="intermediate", materialization="view", folder="intermediate",
            description=f"{child.name} aggregated to one row per {ent} (only {ent}s that have {child.name} rows).",
            sql=_sql(ctes, "aggregated"),
            columns=[ColumnSpec(name=key, data_type=key_col.data_type, description=f"The {ent}.")]
            + [ColumnSpec(name=n, data_type=t, description=definitions.get(n, n)) for n, t, _ in aggs]))
        mart_ctes.append(import_cte(name, name, profile))
        joins += f"\n    left join {name}\n        on {alias}.{quote_if_needed(key)} = {name}.{key}"
        for n, t, _ in aggs:
            zero = n.endswith("_count") or n.startswith("total_") or t == MONEY
            cast = "decimal(18, 2)" if t == MONEY else None
            expr = f"coalesce({name}.{n}, 0)" if zero else f"{name}.{n}"
            select.append(f"cast({expr} as {cast}) as {n}" if cast else (f"{expr} as {n}" if zero else expr))
            columns.append(ColumnSpec(name=n, data_type=t, description=definitions.get(n, n)))
    mart_ctes.append("final as (\n\n    select\n        " + ",\n        ".join(select)
                     + f"\n\n    from {alias}{joins}\n\n)")
    safe = all(quote_if_needed(c.name) == c.name for c in columns)
    models.append(ModelSpec(
        name=plan.mart_name, layer="marts", materialization="table", folder="marts",
        description=(f"One row per {ent} of {table.name} with its attributes and aggregates of the facts that "
                     "reference it. Built for the request: " + plan.request.replace('"', "'")),
        sql=_sql(mart_ctes, "final"), columns=columns, contract_enforced=safe,
        meta={"mart_kind": "entity", "entity_key": key}))
    return models
