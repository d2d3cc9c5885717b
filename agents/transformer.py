"""Transformation role, deterministic brain: the time-grain sales mart on top of staging.

The mart has one row per period from the first to the last activity (empty periods included),
and every measure's definition is written into its column description.
"""

from __future__ import annotations

from dataeng_crew.agents.modeler import staging_model_for
from dataeng_crew.agents.planner import GRAIN_ADJECTIVE, keyed_breakdown
from dataeng_crew.agents.semantics import (base_type, import_cte, entity_name, is_rate, line_value_sql, needs_normalising, quote_if_needed,
                                          singular, staged_name)
from dataeng_crew.agents.roles import RoleContext, explain, register_role
from dataeng_crew.contracts import ColumnProfile, ColumnSpec, Grain, ModelSpec, Plan, TableProfile, WarehouseProfile
from dataeng_crew.errors import RequestError
from dataeng_crew.agents.catalog import fk_path
from dataeng_crew.tools.warehouse import primary_key


MONEY = "DECIMAL(18,2)"


def _staged(plan: Plan, profile: WarehouseProfile, role: str) -> tuple[str, str] | None:
    """(staging model, staged column) bound to ``role``, or None when the role is unbound."""
    binding = plan.roles.get(role)
    if not binding:
        return None
    table_name, _, column_name = binding.partition(".")
    table = profile.table(table_name)
    if table is None:
        raise RequestError(f"plan role {role!r} points at unknown table {table_name!r}")
    model = staging_model_for(table, profile)
    if not column_name:
        return model, ""
    col = table.column(column_name)
    if col is None:
        raise RequestError(f"plan role {role!r} points at unknown column {binding!r}")
    return model, staged_name(col, table)


def _as(expr: str, name: str) -> str:
    """``expr as name``, or just ``name`` when the expression already is that column."""
    return name if expr == name else f"{expr} as {name}"


def valid_order_filters(plan: Plan, profile: WarehouseProfile) -> list[str]:
    """SQL predicates on the staged orders that keep the orders a sales mart counts."""
    filters = []
    test_flag = _staged(plan, profile, "test_flag")
    cancelled = _staged(plan, profile, "cancelled")
    if test_flag:
        filters.append(f"not coalesce({test_flag[1]}, false)")
    if cancelled:
        col = cancelled[1]
        filters.append(f"{col} is null" if col.endswith("_at") else f"not coalesce({col}, false)")
    return filters + status_filters(plan, profile) + request_filters(plan, profile)


def status_filters(plan: Plan, profile: WarehouseProfile) -> list[str]:
    """Predicates keeping rows whose status is not an excluded value (cancelled, void, failed, test …)."""
    from dataeng_crew.agents.semantic_layer import invalid_values

    out = []
    for role in sorted(r for r in plan.roles if r.startswith("invalid_status_")):
        table_name, _, column_name = plan.roles[role].partition(".")
        table = profile.table(table_name)
        col = table.column(column_name) if table else None
        if table is None or col is None:
            raise RequestError(f"plan role {role!r} points at unknown column {plan.roles[role]!r}")
        name = quote_if_needed(staged_name(col, table))
        values = _sql_values(_staged_values(table, col, invalid_values(col)))
        if values:
            out.append(f"({name} is null or {name} not in ({values}))")
    return out


def _staged_values(table: TableProfile, col: ColumnProfile, cleaned: list[str]) -> list[str]:
    """``cleaned`` values as the staged column holds them: cleaned when staging cleans the column, else raw."""
    from dataeng_crew.agents.semantic_layer import clean_value

    if table.origin == "model" or not needs_normalising(col):
        return sorted({v for v in col.top_values if clean_value(v) in cleaned})
    return cleaned


def _sql_values(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def refunded_predicate(plan: Plan, profile: WarehouseProfile, alias: str = "") -> str | None:
    """True on the staged orders refunded in full (``plan.roles["refunded_status"]``: no refund table), else None."""
    from dataeng_crew.agents.semantic_layer import refunded_values

    table_name, _, column_name = plan.roles.get("refunded_status", "").partition(".")
    table = profile.table(table_name) if table_name else None
    col = table.column(column_name) if table else None
    values = _sql_values(_staged_values(table, col, refunded_values(col))) if table and col else ""
    if not values:
        return None
    name = (f"{alias}." if alias else "") + quote_if_needed(staged_name(col, table))  # type: ignore[arg-type]
    return f"coalesce({name} in ({values}), false)"


def request_filters(plan: Plan, profile: WarehouseProfile) -> list[str]:
    """The request's own filters ("for status completed") as predicates on the staged fact."""
    out = []
    for role, value in sorted(plan.filters.items()):
        table_name, _, column_name = plan.roles[role].partition(".")
        table = profile.table(table_name)
        col = table.column(column_name) if table else None
        if table is None or col is None:
            raise RequestError(f"plan filter {role!r} points at unknown column {plan.roles[role]!r}")
        name = quote_if_needed(staged_name(col, table))
        if base_type(col.data_type) == "BOOLEAN":
            out.append(f"{name} = {'true' if value.strip().lower() in {'true', 't', '1', 'yes'} else 'false'}")
            continue
        literal = (value.strip().lower() if needs_normalising(col) else value).replace("'", "''")
        out.append(f"{name} = '{literal}'")
    return out


def dimension(plan: Plan, profile: WarehouseProfile, fact: TableProfile) -> dict[str, str] | None:
    """The breakdown column: its output name and type, and the parent to join when it is not on ``fact``."""
    binding = plan.roles.get("dimension")
    if not binding:
        return None
    table_name, _, column_name = binding.partition(".")
    table = profile.table(table_name)
    col = table.column(column_name) if table else None
    if table is None or col is None:
        raise RequestError(f"plan dimension points at unknown column {binding!r}")
    name = staged_name(col, table)
    dtype = "BOOLEAN" if base_type(col.data_type) == "BOOLEAN" else "VARCHAR"
    keyed = keyed_breakdown(table, col, profile) is not None
    if keyed:  # "by driver": the key of the entity, as typed, one row per period and key with activity
        dtype = base_type(col.data_type)
    if table.name == fact.name:
        return {"name": name, "column": name, "type": dtype, **({"sparse": "yes"} if keyed else {})}
    path = fk_path(fact, table, profile)
    if not path:
        raise RequestError(f"{binding} is not reachable from {fact.name}")
    parent = singular(entity_name(table.name))
    out = name if keyed or name.startswith(parent + "_") or name == parent else f"{parent}_{name}"
    hops = []
    for fk in path:
        child, ref = profile.table(fk.table), profile.table(fk.ref_table)
        assert child is not None and ref is not None
        pk = ref.column(fk.ref_column)
        hops.append({"model": staging_model_for(ref, profile),
                     "fk": staged_name(child.column(fk.column), child),  # type: ignore[arg-type]
                     "pk": staged_name(pk, ref) if pk else fk.ref_column})
    last = hops[-1]
    return {"name": out, "column": name, "type": dtype, "model": last["model"], "fk": hops[0]["fk"],
            "pk": last["pk"], "hops": hops, **({"sparse": "yes"} if keyed else {})}  # type: ignore[dict-item]


def _hop_joins(hops: list, dim: dict, base: str = "orders_source") -> str:
    """Left joins from the fact (``base``) over each foreign key to the breakdown's table."""
    if len(hops) <= 1:
        return (f"\n    left join dimension_source\n        on {base}.{quote_if_needed(dim['fk'])} = "
                f"dimension_source.{quote_if_needed(dim['pk'])}")
    aliases = [base] + [f"hop_{n}_source" for n in range(1, len(hops))] + ["dimension_source"]
    return "".join(f"\n    left join {aliases[n + 1]}\n        on {aliases[n]}.{quote_if_needed(hop['fk'])} = "
                   f"{aliases[n + 1]}.{quote_if_needed(hop['pk'])}" for n, hop in enumerate(hops))


def dimension_ctes(model: str, dim: dict, name: str, profile: WarehouseProfile | None = None) -> list[str]:
    """Import CTEs and ``events``: the staged fact with its breakdown joined from the table it references
    (over every hop), so the aggregation reads one relation."""
    hops = list(dim.get("hops") or [])
    ctes = [import_cte("events_source", model, profile)]
    ctes += [import_cte(f"hop_{n}_source", hop["model"], profile) for n, hop in enumerate(hops[:-1], start=1)]
    ctes.append(import_cte("dimension_source", dim["model"], profile))
    ctes.append("events as (\n\n    select\n        events_source.*,\n"
                f"        dimension_source.{quote_if_needed(dim['column'])} as {name}\n\n"
                "    from events_source" + _hop_joins(hops, dim, "events_source") + "\n\n)")
    return ctes


def staged_role(plan: Plan, profile: WarehouseProfile, role: str) -> tuple[str, str] | None:
    """Public view of a role binding: (staging model, staged column)."""
    return _staged(plan, profile, role)


def period_column(grain: Grain) -> str:
    """Name of the period column: ``sales_date`` for days, ``<grain>_start_date`` otherwise."""
    return "sales_date" if grain is Grain.day else f"{grain.value}_start_date"


def _period(expr: str, grain: Grain) -> str:
    if grain is Grain.day:
        return f"cast({expr} as date)"
    return f"cast(date_trunc('{grain.value}', {expr}) as date)"


def line_shares(plan: Plan, profile: WarehouseProfile, role: dict, dim: dict[str, str], order_key: str) -> list[str]:
    """CTEs splitting each order's line value by a breakdown below the order, with each value's share."""
    line_order = role["line_order"][1]
    price = role["line_price"][1]
    rate = role.get("line_discount_rate")
    value = line_value_sql(f"order_lines.{role['line_quantity'][1]}" if role["line_quantity"] else None,
                           f"order_lines.{price}", f"order_lines.{rate[1]}" if rate else None)
    source = (f"dimension_source.{quote_if_needed(dim['column'])}" if dim.get("model")
              else f"order_lines.{quote_if_needed(dim['column'])}")
    join = (f"\n    left join dimension_source\n        on order_lines.{quote_if_needed(dim['fk'])} = "
            f"dimension_source.{quote_if_needed(dim['pk'])}") if dim.get("model") else ""
    return [
        "line_values as (\n\n    select\n"
        f"        {_as('order_lines.' + line_order, order_key)},\n"
        f"        {source} as {dim['name']},\n"
        f"        {value} as line_value\n\n"
        f"    from order_lines{join}\n\n)",
        "order_shares as (\n\n    select\n"
        f"        {order_key},\n        {dim['name']},\n"
        "        sum(line_value) as gross_sales,\n"
        f"        sum(line_value) / nullif(sum(sum(line_value)) over (partition by {order_key}), 0) as share\n\n"
        f"    from line_values\n    group by {order_key}, {dim['name']}\n\n)",
    ]


def transform(plan: Plan, profile: WarehouseProfile) -> list[ModelSpec]:
    """Write the mart the plan asks for.

    Args:
        plan: Plan with ``roles`` bound to raw tables/columns.
        profile: Warehouse profile (to map raw columns to their staging names).

    Returns:
        The mart model(s).

    Raises:
        RequestError: When the plan lacks the roles a sales mart needs.
    """
    if plan.kind == "staging":
        return []
    if plan.kind == "metric":
        from dataeng_crew.agents.marts import render

        return [render(plan, profile)]
    if plan.kind == "event":
        return [transform_event(plan, profile)]
    if plan.kind == "entity":
        from dataeng_crew.agents.entity_marts import transform_entity  # it imports this module's neighbours

        return transform_entity(plan, profile)
    role = {r: _staged(plan, profile, r) for r in (
        "orders", "order_time", "customer", "test_flag", "cancelled", "discount", "order_amount",
        "lines", "line_order", "line_quantity", "line_price", "line_discount_rate", "refunds", "refund_order",
        "refund_amount", "refund_time")}
    if role["orders"] is None or role["order_time"] is None:
        raise RequestError("a sales mart needs an order table with an event time")
    orders_table = profile.table(plan.roles["orders"])
    pk = primary_key(orders_table) if orders_table else None
    if orders_table is None or pk is None:
        raise RequestError("a sales mart needs an order table with a primary key")
    order_key = staged_name(orders_table.column(pk), orders_table)  # type: ignore[arg-type]
    period = period_column(plan.grain)
    grain = plan.grain

    line_level = plan.roles.get("dimension_level") == "line" and role["lines"] is not None
    lines_table = profile.table(plan.roles["lines"]) if line_level else None
    dim = dimension(plan, profile, lines_table or orders_table)
    parent_join = bool(dim and dim.get("model")) and not line_level
    imports = [("orders_source" if parent_join else "orders", role["orders"][0])]
    hops = list(dim.get("hops") or []) if dim and parent_join else []  # type: ignore[arg-type]
    for n, hop in enumerate(hops[:-1], start=1):  # tables between the order and the breakdown's table
        imports.append((f"hop_{n}_source", hop["model"]))
    if dim and dim.get("model"):
        imports.append(("dimension_source", dim["model"]))
    if role["lines"]:
        imports.append(("order_lines", role["lines"][0]))
    if role["refunds"] and role["refund_amount"] and role["refund_time"]:
        imports.append(("refunds", role["refunds"][0]))
    ctes = [import_cte(alias, model, profile) for alias, model in imports]
    if parent_join:  # the breakdown lives on a parent of the order: join it once, up front
        assert dim is not None
        ctes.append(
            "orders as (\n\n    select\n        orders_source.*,\n"
            f"        dimension_source.{quote_if_needed(dim['column'])} as {dim['name']}\n\n"
            "    from orders_source" + _hop_joins(hops, dim) + "\n\n)")
    sparse = bool(dim and dim.get("sparse"))  # by an entity's key: the periods and keys with activity only
    per_customer = sparse and dim["name"] == "customer_id" and role["customer"] is not None  # type: ignore[index]
    dim_cte = "order_shares" if line_level else "valid_orders"
    d = f",\n        {dim_cte}.{dim['name']}" if dim else ""
    dgroup = f", {dim_cte}.{dim['name']}" if dim else ""

    filters = valid_order_filters(plan, profile)
    where = ("\n    where " + "\n        and ".join(filters)) if filters else ""
    customer = role["customer"][1] if role["customer"] else "cast(null as bigint)"
    discount = role["discount"][1] if role["discount"] else "0"
    percent = _staged(plan, profile, "discount_percent")
    if percent and role["order_amount"] and not role["lines"]:
        table = profile.table(plan.roles["orders"])
        raw = table.column(plan.roles["discount_percent"].partition(".")[2])  # type: ignore[union-attr]
        fraction = "" if is_rate(raw) else " / 100.0"  # type: ignore[arg-type]
        discount = (f"cast(round({role['order_amount'][1]} * coalesce({quote_if_needed(percent[1])}, 0){fraction}, 2) "
                    "as decimal(18, 2))")
    order_value = (
        "" if role["lines"] else f",\n        {role['order_amount'][1]} as gross_sales"  # type: ignore[index]
    )
    refunded = None if role["refunds"] else refunded_predicate(plan, profile)
    if refunded:  # no refund table: an order its status marks refunded is refunded in full, in its own period
        order_value += f",\n        {refunded} as is_refunded"
    ctes.append(
        "valid_orders as (\n\n"
        "    select\n"
        f"        {order_key},\n"
        f"        {_as(customer, 'customer_id')},\n"
        f"        {_period(role['order_time'][1], grain)} as {period},\n"
        + (f"        {quote_if_needed(dim['name'])},\n" if dim and not line_level and not per_customer else "")
        + f"        {_as(discount, 'discounts')}{order_value}\n\n"
        f"    from orders{where}\n\n)"
    )
    share = ""
    if line_level:
        assert dim is not None
        ctes += line_shares(plan, profile, role, dim, order_key)
        gross_expr = "order_shares.gross_sales"
        gross_join = f"\n    inner join order_shares\n        on valid_orders.{order_key} = order_shares.{order_key}"
        share = " * coalesce(order_shares.share, 0)"
    elif role["lines"]:
        line_order = role["line_order"][1]  # type: ignore[index]
        price = role["line_price"][1]  # type: ignore[index]
        line_value = line_value_sql(role["line_quantity"][1] if role["line_quantity"] else None, price,
                                    role["line_discount_rate"][1] if role["line_discount_rate"] else None)
        ctes.append(
            "order_gross as (\n\n"
            "    select\n"
            f"        {_as(line_order, order_key)},\n"
            f"        sum({line_value}) as gross_sales\n\n"
            "    from order_lines\n"
            f"    group by {line_order}\n\n)"
        )
        gross_expr = "coalesce(order_gross.gross_sales, 0)"
        gross_join = f"\n    left join order_gross\n        on valid_orders.{order_key} = order_gross.{order_key}"
    else:
        gross_expr = "coalesce(valid_orders.gross_sales, 0)"
        gross_join = ""
    ctes.append(
        "orders_per_period as (\n\n"
        "    select\n"
        f"        valid_orders.{period}{d},\n"
        "        count(*) as order_count,\n"
        + ("" if per_customer else "        count(distinct valid_orders.customer_id) as customer_count,\n") +
        f"        sum({gross_expr}) as gross_sales,\n"
        + (f"        sum(cast(round(coalesce(valid_orders.discounts, 0) * 100{share}) / 100 as decimal(18, 2))) as discounts" if share else
           "        sum(coalesce(valid_orders.discounts, 0)) as discounts")
        + (f",\n        sum(case when valid_orders.is_refunded then {gross_expr} else 0 end) as refunds\n\n"
           if refunded else "\n\n")
        + 
        f"    from valid_orders{gross_join}\n"
        f"    group by valid_orders.{period}{dgroup}\n\n)"
    )
    has_refunds = any(alias == "refunds" for alias, _ in imports)
    if has_refunds:
        ctes.append(
            "refunds_per_period as (\n\n"
            "    select\n"
            f"        {_period('refunds.' + role['refund_time'][1], grain)} as {period}{d},\n"  # type: ignore[index]
            # allocated to the cent: round the share of the amount in cents (exact integer cents times the share)
            + (f"        sum(cast(round(refunds.{role['refund_amount'][1]} * 100{share}) / 100 as decimal(18, 2))) as refunds\n\n" if share else  # type: ignore[index]
               f"        sum(refunds.{role['refund_amount'][1]}) as refunds\n\n")  # type: ignore[index]
            + "    from refunds\n"
            "    inner join valid_orders\n"
            f"        on refunds.{role['refund_order'][1]} = valid_orders.{order_key}\n"  # type: ignore[index]
            + (f"    inner join order_shares\n        on valid_orders.{order_key} = order_shares.{order_key}\n"
               if share else "")
            + 
            f"    group by {_period('refunds.' + role['refund_time'][1], grain)}{dgroup}\n\n)"  # type: ignore[index]
        )
        activity = (f"select {period} from orders_per_period\n"
                    f"        union all\n        select {period} from refunds_per_period")
    else:
        activity = f"select {period} from orders_per_period"
    if sparse:
        keyed = activity.replace(f"select {period} from", f"select {period}, {dim['name']} from")  # type: ignore[index]
        ctes.append(f"period_grid as (\n\n    select distinct\n        {period},\n        {dim['name']}\n\n"  # type: ignore[index]
                    f"    from (\n        {keyed}\n    ) as activity\n\n)")
    else:
        ctes.append(
            "period_bounds as (\n\n"
            "    select\n"
            f"        min({period}) as first_period,\n"
            f"        max({period}) as last_period\n\n"
            f"    from (\n        {activity}\n    ) as activity\n\n)"
        )
        ctes.append(
            "period_spine as (\n\n"
            "    select\n"
            f"        cast(unnest(generate_series(first_period, last_period, interval 1 {grain.value})) as date) as {period}\n\n"
            "    from period_bounds\n\n)"
        )
    if dim and not sparse:  # every breakdown value in every period
        ctes += [f"dimension_values as (\n\n    select distinct {dim_cte}.{dim['name']}\n\n    from valid_orders"
                 + (gross_join if line_level else "") + "\n\n)",
                 f"period_grid as (\n\n    select\n        period_spine.{period},\n        dimension_values.{dim['name']}"
                 "\n\n    from period_spine\n    cross join dimension_values\n\n)"]
    spine = "period_grid" if dim else "period_spine"
    on_dim = (lambda other: f"\n        and {spine}.{dim['name']} is not distinct from {other}.{dim['name']}") if dim \
        else (lambda other: "")
    refunds_expr = ("coalesce(refunds_per_period.refunds, 0)" if has_refunds else
                    "coalesce(orders_per_period.refunds, 0)" if refunded else "0")
    refund_join = (f"\n    left join refunds_per_period\n        on {spine}.{period} = refunds_per_period.{period}"
                   + on_dim("refunds_per_period") if has_refunds else "")
    ctes.append(
        "final as (\n\n"
        "    select\n"
        f"        {spine}.{period},\n"
        + (f"        {spine}.{dim['name']},\n" if dim else "") +
        "        coalesce(orders_per_period.order_count, 0) as order_count,\n"
        + ("" if per_customer else "        coalesce(orders_per_period.customer_count, 0) as customer_count,\n") +
        f"        cast(coalesce(orders_per_period.gross_sales, 0) as decimal(18, 2)) as gross_sales,\n"
        f"        cast(coalesce(orders_per_period.discounts, 0) as decimal(18, 2)) as discounts,\n"
        f"        cast({refunds_expr} as decimal(18, 2)) as refunds,\n"
        "        cast(\n"
        "            coalesce(orders_per_period.gross_sales, 0)\n"
        "            - coalesce(orders_per_period.discounts, 0)\n"
        f"            - {refunds_expr}\n"
        "            as decimal(18, 2)\n"
        "        ) as net_sales,\n"
        # rounded explicitly, in whole cents, before the cast: a cast alone rounds per engine (DuckDB divides in
        # double, 152.015 → 152.01; PostgreSQL in numeric → 152.02), and round() of a double is half-even on
        # PostgreSQL. The cents quotient is cast to a decimal first (a half-cent tie is exact), so round() is the
        # decimal one, half away from zero, on every engine.
        "        cast(\n"
        "            round(cast(\n"
        "                (orders_per_period.gross_sales - orders_per_period.discounts) * 100\n"
        "                / nullif(orders_per_period.order_count, 0)\n"
        "                as decimal(38, 9)\n"
        "            )) / 100\n"
        "            as decimal(18, 2)\n"
        "        ) as average_order_value\n\n"
        f"    from {spine}\n"
        "    left join orders_per_period\n"
        f"        on {spine}.{period} = orders_per_period.{period}{on_dim('orders_per_period')}{refund_join}\n\n)"
    )
    sql = "with\n\n" + ",\n\n".join(ctes) + "\n\nselect * from final\n"

    definitions = {m.name: m.definition for m in plan.measures}
    types = {"order_count": "BIGINT", "customer_count": "BIGINT"}
    columns = [ColumnSpec(name=period, data_type="DATE", description=(
        f"The {grain.value} (its first date). " + (
            f"One row per {grain.value} and {dim['name']} with orders or refunds." if sparse else  # type: ignore[index]
            f"One row per {grain.value} from the first to the last order or refund, including periods with no "
            "activity.")))]
    if dim:
        columns.append(ColumnSpec(name=dim["name"], data_type=dim["type"], description=(
            f"Breakdown: {plan.roles['dimension']} (staged); with the period, the grain of this mart. " + (
                "A value appears in the periods it has orders or refunds in." if sparse else
                "Every value seen in the valid orders appears in every period."))))
    columns += [ColumnSpec(name=name, data_type=types.get(name, MONEY), description=definitions[name])
                for name in ("order_count", "customer_count", "gross_sales", "discounts", "refunds",
                             "net_sales", "average_order_value") if not (per_customer and name == "customer_count")]
    return [ModelSpec(
        name=plan.mart_name,
        layer="marts",
        materialization="table",
        folder="marts",
        description=(f"{GRAIN_ADJECTIVE[grain].capitalize()} {plan.subject}: one row per {grain.value} with orders, customers, "
                     "gross sales, discounts, refunds, net sales and average order value. "
                     "Built for the request: " + plan.request.replace('"', "'")),
        sql=sql,
        columns=columns,
        contract_enforced=True,
        meta=({"dimension": dim["name"], **({"dimension_level": "line"} if line_level else {})} if dim else {}),
    )]


def event_filters(plan: Plan, profile: WarehouseProfile) -> list[str]:
    """Predicates that drop test and soft-deleted rows of an event fact."""
    filters = []
    for role in sorted(r for r in plan.roles if r.startswith("exclude_")):
        col = _staged(plan, profile, role)[1]  # type: ignore[index]
        filters.append(f"{col} is null" if col.endswith("_at") else f"not coalesce({col}, false)")
    return filters + request_filters(plan, profile)


def transform_event(plan: Plan, profile: WarehouseProfile) -> ModelSpec:
    """A mart counting an event table's rows (and summing its money) per period, empty periods included.

    With a breakdown the grain is period × value; with ``plan.incremental_lookback`` the mart is incremental
    (``unique_key`` the period; each run recomputes the trailing periods so late-arriving rows are counted).
    """
    assert plan.grain is not None
    grain = plan.grain
    model, _ = _staged(plan, profile, "fact")  # type: ignore[misc]
    when = _staged(plan, profile, "event_time")[1]  # type: ignore[index]
    if plan.roles.get("event_month") and plan.roles.get("event_day"):  # dated by calendar parts
        parts = [quote_if_needed(_staged(plan, profile, r)[1]) for r in ("event_time", "event_month", "event_day")]  # type: ignore[index]
        when = f"make_date({', '.join(parts)})"
    measures = [_staged(plan, profile, r)[1] for r in sorted(r for r in plan.roles if r.startswith("measure_"))]  # type: ignore[index]
    period = f"{grain.value}_start_date" if grain is not Grain.day else "event_date"
    count = f"{plan.subject}_count"
    fact = profile.table(plan.roles["fact"])
    assert fact is not None
    dim = dimension(plan, profile, fact)
    lookback = plan.incremental_lookback if not dim else None
    d = f",\n        {quote_if_needed(dim['name'])}" if dim else ""
    dgroup = f", {quote_if_needed(dim['name'])}" if dim else ""
    filters = event_filters(plan, profile) + [f"{when} is not null"]
    where = "\n    where " + "\n        and ".join(filters)
    window = ""
    if lookback:
        window = ("\n    {% if is_incremental() %}\n"
                  f"        -- late-arriving rows: recompute the last {lookback} {grain.value}s already built\n"
                  f"        and {when} >= (select max({period}) - interval {lookback} {grain.value} from {{{{ this }}}})\n"
                  "    {% endif %}")
    sums = "".join(f",\n        sum({m}) as {m}" for m in measures)
    config = (f"{{{{ config(materialized='incremental', unique_key='{period}', "
              "on_schema_change='fail') }}\n\n" if lookback else "")
    ctes = dimension_ctes(model, dim, dim["name"], profile) if dim and dim.get("model") else [
        import_cte("events", model, profile)]
    ctes += [
        "counted as (\n\n    select\n"
        f"        {_period(when, grain)} as {period}{d},\n"
        f"        count(*) as {count}{sums}\n\n"
        f"    from events{where}{window}\n"
        f"    group by {_period(when, grain)}{dgroup}\n\n)",
        "period_bounds as (\n\n    select\n"
        f"        min({period}) as first_period,\n        max({period}) as last_period\n\n    from counted\n\n)",
        "period_spine as (\n\n    select\n"
        f"        cast(unnest(generate_series(first_period, last_period, interval 1 {grain.value})) as date) as {period}\n\n"
        "    from period_bounds\n\n)",
    ]
    spine, on_dim = "period_spine", ""
    if dim and dim.get("sparse"):  # by an entity's key: the periods and keys with activity only
        ctes = [c for c in ctes if not c.startswith(("period_bounds", "period_spine"))]
        ctes.append(f"period_grid as (\n\n    select distinct\n        {period},\n        {dim['name']}\n\n"
                    "    from counted\n\n)")
        spine = "period_grid"
        on_dim = f"\n        and period_grid.{dim['name']} is not distinct from counted.{dim['name']}"
    elif dim:
        ctes += [f"dimension_values as (\n\n    select distinct {dim['name']}\n\n    from counted\n\n)",
                 f"period_grid as (\n\n    select\n        period_spine.{period},\n        dimension_values.{dim['name']}"
                 "\n\n    from period_spine\n    cross join dimension_values\n\n)"]
        spine = "period_grid"
        on_dim = f"\n        and period_grid.{dim['name']} is not distinct from counted.{dim['name']}"
    measure_cols = "".join(f",\n        cast(coalesce(counted.{m}, 0) as decimal(18, 2)) as {m}" for m in measures)
    ctes.append(
        "final as (\n\n    select\n"
        f"        {spine}.{period},\n"
        + (f"        {spine}.{dim['name']},\n" if dim else "")
        + f"        coalesce(counted.{count}, 0) as {count}{measure_cols}\n\n"
        f"    from {spine}\n"
        f"    left join counted\n        on {spine}.{period} = counted.{period}{on_dim}\n\n)"
    )
    sql = config + "with\n\n" + ",\n\n".join(ctes) + "\n\nselect * from final\n"
    definitions = {m.name: m.definition for m in plan.measures}
    columns = [ColumnSpec(name=period, data_type="DATE",
                          description=f"The {grain.value} (its first date). One row per {grain.value} from the first to the "
                                      "last event, including periods with none.")]
    if dim:
        columns.append(ColumnSpec(name=dim["name"], data_type=dim["type"], description=(
            f"Breakdown: {plan.roles['dimension']} (staged); with the period, the grain of this mart.")))
    columns.append(ColumnSpec(name=count, data_type="BIGINT", description=definitions.get(count, count)))
    columns += [ColumnSpec(name=m, data_type=MONEY, description=definitions.get(m, f"Sum of {m} in the period."))
                for m in measures]
    meta: dict[str, object] = {"dimension": dim["name"]} if dim else {}
    if lookback:
        meta["incremental_lookback"] = f"{lookback} {grain.value}s"
    return ModelSpec(
        name=plan.mart_name or f"fct_{plan.subject}", layer="marts",
        materialization="incremental" if lookback else "table", folder="marts",
        description=(f"{GRAIN_ADJECTIVE[grain].capitalize()} {plan.subject}: one row per {grain.value}"
                     + (f" and {dim['name']}" if dim else "")
                     + (f"; incremental, recomputing the last {lookback} {grain.value}s on each run" if lookback else "")
                     + ". Built for the request: " + plan.request.replace('"', "'")),
        sql=sql, columns=columns, contract_enforced=True, meta=meta)


def _transform_step(ctx: RoleContext) -> tuple[str, str]:
    """This role's step in a proposal: run the brain, return (thought, observation)."""
    ctx.marts = ctx.brain.transform(ctx.plan, ctx.profile, ctx.staging)
    ctx.models = ctx.staging + ctx.marts
    return explain(ctx.brain, "transform", ctx.marts), ", ".join(m.name for m in ctx.marts) or "no mart"


register_role("transformer", "time-grain sales marts (daily/weekly/monthly/quarterly/yearly) with a date spine and "
              "enforced contracts",
              ("weekly sales mart",), order=30, stage="transform marts", action="transformer.transform(plan, profile, staging)",
              step=_transform_step)
