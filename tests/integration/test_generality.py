"""Three warehouse shapes, entity and time-grain marts, each mart checked against hand-written SQL.

The sample shop, dbt Labs' classic jaffle-shop (cents) and a hostile-names shop (tests/fakes) are
each built through the real flow (profile, sqlglot, dbt build, GX) and the marts' values compared
with independent SQL over the raw tables.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from dataeng_crew import flow
from tests.conftest import JAFFLE, REPO, SAMPLE_PROJECT
from tests.fakes.hostile_shop import build_hostile_shop
from tests.conftest import open_built

pytestmark = pytest.mark.slow
CASES = REPO / "eval" / "cases"


def _propose(tmp: Path, request: str, warehouse: Path):  # noqa: ANN202
    project = tmp / "project"
    shutil.copytree(SAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    return flow.propose(request, project=project, warehouse=warehouse, publish="none")


@pytest.fixture(scope="module")
def hostile_shop(tmp_path_factory) -> Path:
    return build_hostile_shop(tmp_path_factory.mktemp("hostile_shop") / "web.duckdb")


@pytest.fixture(scope="module")
def hostile_sales(tmp_path_factory, hostile_shop):
    return _propose(tmp_path_factory.mktemp("hs"), "daily sales mart", hostile_shop)


@pytest.fixture(scope="module")
def hostile_customers(tmp_path_factory, hostile_shop):
    return _propose(tmp_path_factory.mktemp("hc"), "customers mart with lifetime value", hostile_shop)


def _rows(db: str, sql: str) -> list[tuple]:
    from dataeng_crew.tools.dbt_runner import SANDBOX_PII_KEY

    con = open_built(db)
    try:
        con.execute("set variable pii_key = ?", [SANDBOX_PII_KEY])  # the key this process's builds hash with
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _cents(value) -> int | None:  # noqa: ANN001
    return None if value is None else int(round(Decimal(str(value)) * 100))


def test_hostile_daily_sales_equal_hand_sql(hostile_sales):
    assert hostile_sales.status == "validated" and hostile_sales.checks.build.success
    mart = _rows(hostile_sales.warehouse, """
        select sales_date, order_count, customer_count, gross_sales, discounts, refunds, net_sales
        from main.fct_daily_sales order by 1""")
    truth = _rows(hostile_sales.warehouse, """
        with valid as (select * from "Web Shop"."Order" where not "IsTest"),
        per_day as (
            select cast("Order Date" as date) as d, count(*) as n, count(distinct "CustomerID") as c,
                   sum("AMOUNT") as g, sum("Discount") as disc
            from valid group by 1),
        days as (select cast(unnest(generate_series(min(d), max(d), interval 1 day)) as date) as d from per_day)
        select days.d, coalesce(n, 0), coalesce(c, 0), coalesce(g, 0), coalesce(disc, 0), 0,
               coalesce(g, 0) - coalesce(disc, 0)
        from days left join per_day on per_day.d = days.d order by 1""")
    assert len(mart) == len(truth) == 40
    assert sum(1 for r in mart if r[1] == 0) == 2  # the two days without orders are present, with zeros
    for got, want in zip(mart, truth):
        assert got[:3] == want[:3]
        assert [_cents(v) for v in got[3:]] == list(want[3:]), got[0]


def test_hostile_customers_mart_equals_hand_sql_with_pii_masked(hostile_customers):
    proposal = hostile_customers
    assert proposal.status == "validated" and proposal.checks.build.success
    assert proposal.plan.kind == "entity" and proposal.plan.mart_name == "dim_customers"
    names = [r[0] for r in _rows(proposal.warehouse, "describe main.dim_customers")]
    assert {"customer_id", "group", "region", "region_2", "order_count", "first_order_date",
            "most_recent_order_date", "lifetime_value"} <= set(names)
    assert "e_mail_hash" in names and "full_name_hash" in names  # PII reached the mart: hashed, not copied
    assert not {"e_mail", "full_name"} & set(names)
    assert {e.column for e in proposal.exposures} >= {"e_mail", "full_name"}
    assert any(a.kind == "governance" and any("dim_customers.e_mail" in r for r in a.reasons)
               for a in proposal.approvals)
    mart = _rows(proposal.warehouse, """
        select customer_id, e_mail_hash, order_count, first_order_date, most_recent_order_date, lifetime_value
        from main.dim_customers order by 1""")
    truth = _rows(proposal.warehouse, """
        with o as (select * from "Web Shop"."Order" where not "IsTest" and "CustomerID" is not null)
        select c."CustomerID", sha256(getvariable('pii_key') || c."E-Mail"), count(o."OrderID"), min(o."Order Date"), max(o."Order Date"),
               coalesce(sum(o."AMOUNT" - o."Discount"), 0)
        from "Web Shop"."Customers" as c left join o on o."CustomerID" = c."CustomerID"
        group by all order by 1""")
    assert len(mart) == len(truth) == 60
    assert sum(1 for r in mart if r[2] == 0) == 10  # customers 51..60 never ordered: 0, not missing
    for got, want in zip(mart, truth):
        assert got[:5] == want[:5] and _cents(got[5]) == want[5], got[0]
    tests = {n.unique_id for n in proposal.checks.build.nodes if n.resource_type == "test"}
    assert any("unique_dim_customers_customer_id" in t for t in tests)
    assert any("relationships_dim_customers_customer_id" in t for t in tests)
    assert any("crew_reconciles_with_dim_customers" in t for t in tests)
    assert any("unique_int_orders_aggregated_to_customers_customer_id" in t for t in tests)


def _gold(case: str, db: str) -> list[tuple]:
    return _rows(db, (CASES / case / "gold.sql").read_text() + "\norder by 1")


def test_jaffle_customers_mart_equals_dbt_classic_customers_model(tmp_path):
    proposal = _propose(tmp_path, "customers mart", JAFFLE)
    assert proposal.status == "validated"
    assert [m.name for m in proposal.models if m.layer != "staging"] == [
        "int_orders_aggregated_to_customers", "dim_customers"]
    mart = _rows(proposal.warehouse, """
        select customer_id, first_name_hash, last_name_hash, first_order_date, most_recent_order_date, order_count,
               lifetime_value
        from main.dim_customers order by 1""")
    gold = _gold("jaffle_customers_mart", proposal.warehouse)
    assert len(mart) == len(gold) == 100
    for got, want in zip(mart, gold):
        assert got[:6] == want[:6] and _cents(got[6]) == _cents(want[6]), got[0]
    [(raw_cents,)] = _rows(proposal.warehouse, "select sum(amount) from raw_jaffle_shop_classic.raw_payments")
    assert sum(_cents(r[6]) for r in mart) == raw_cents == 167_200  # every payment counted once, cents → dollars


def test_sample_customers_mart_equals_hand_sql(tmp_path, sample_warehouse):
    proposal = _propose(tmp_path, "dim customers", sample_warehouse)
    assert proposal.status == "validated"
    mart = _rows(proposal.warehouse, """
        select customer_id, email_hash, country_code, order_count, first_order_at, most_recent_order_at,
               lifetime_value
        from main.dim_customers order by 1""")
    gold = _gold("sample_customers_mart", proposal.warehouse)
    assert len(mart) == len(gold) > 100
    for got, want in zip(mart, gold):
        assert got[:6] == want[:6] and _cents(got[6]) == _cents(want[6]), got[0]
    assert any(r[3] == 0 for r in mart) and any(r[6] < 0 or r[6] > 0 for r in mart)


def test_sample_sales_by_customer_country_row_by_row(tmp_path, sample_warehouse):
    proposal = _propose(tmp_path, "monthly sales by country", sample_warehouse)
    assert proposal.plan.roles["dimension"] == "customers.country_code"
    mart = _rows(proposal.warehouse, """
        select month_start_date, customer_country_code, order_count, customer_count, gross_sales, discounts, refunds,
               net_sales
        from main.fct_monthly_sales_by_country_code order by 1, 2""")
    gold = _rows(proposal.warehouse, (CASES / "sample_monthly_sales_by_country" / "gold.sql").read_text()
                 + "\norder by 1, 2")
    assert len(mart) == len(gold) > 12 and len({r[1] for r in mart}) > 3
    for got, want in zip(mart, gold):
        assert got[:4] == want[:4] and [_cents(v) for v in got[4:]] == [_cents(v) for v in want[4:]], got[:2]
    tests = {n.test_name for n in proposal.checks.build.nodes if n.resource_type == "test"}
    assert "crew_unique_combination" in tests and "crew_reconciles_with" in tests


def test_jaffle_filtered_orders_row_by_row(tmp_path):
    proposal = _propose(tmp_path, "weekly orders for status completed", JAFFLE)
    assert proposal.plan.filters == {"filter_0": "completed"}
    assert any("status = 'completed'" in i for i in proposal.plan.interpretations)
    mart = _rows(proposal.warehouse, """
        select week_start_date, order_count, customer_count, gross_sales
        from main.fct_weekly_completed_orders order by 1""")
    gold = _gold("jaffle_weekly_completed_orders", proposal.warehouse)
    assert len(mart) == len(gold) > 5
    for got, want in zip(mart, gold):
        assert got[:3] == want[:3] and _cents(got[3]) == _cents(want[3]), got[0]


def test_sample_signups_by_country_row_by_row(tmp_path, sample_warehouse):
    proposal = _propose(tmp_path, "weekly signups by country", sample_warehouse)
    assert proposal.plan.kind == "metric" and proposal.plan.mart_name == "fct_weekly_signups_by_country"
    assert any("updated_at" in a for a in proposal.plan.alternatives)  # the other timestamp is reported
    mart = _rows(proposal.warehouse, "select * from main.fct_weekly_signups_by_country order by 1, 2")
    gold = _rows(proposal.warehouse, """
        with customers as (
            select * from raw_shop.customers
            qualify row_number() over (partition by id order by _loaded_at desc) = 1
        ),
        per_week as (
            select cast(date_trunc('week', created_at) as date) as week, country_code, count(*) as n
            from customers where created_at is not null group by all
        ),
        weeks as (
            select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week
        ),
        grid as (select * from weeks cross join (select distinct country_code from per_week))
        select g.week, g.country_code, coalesce(p.n, 0)
        from grid as g left join per_week as p on p.week = g.week and p.country_code = g.country_code
        order by 1, 2""")
    assert mart == gold and len(gold) > 20


def test_sample_sales_by_product_type_allocates_order_money(tmp_path, sample_warehouse):
    """A breakdown below the order: line value split by product type, discounts and refunds allocated by share."""
    proposal = _propose(tmp_path, "monthly sales by product category", sample_warehouse)
    assert proposal.plan.roles["dimension_level"] == "line"
    mart = _rows(proposal.warehouse, """
        select month_start_date, product_type, order_count, customer_count, gross_sales, discounts, refunds, net_sales
        from main.fct_monthly_sales_by_product_type order by 1, 2""")
    gold = _rows(proposal.warehouse, (CASES / "sample_monthly_sales_by_product_type" / "gold.sql").read_text()
                 + "\norder by 1, 2")
    assert len(mart) == len(gold) > 12
    for got, want in zip(mart, gold):
        assert got[:4] == want[:4] and _cents(got[4]) == _cents(want[4]), got[:2]
        # allocations round each order's share to the cent: the two roundings may differ by a cent on a tie
        assert abs(_cents(got[5]) - _cents(want[5])) <= 1 and abs(_cents(got[6]) - _cents(want[6])) <= 1, got[:2]
        assert _cents(got[7]) == _cents(got[4]) - _cents(got[5]) - _cents(got[6])
    [(gross,)] = _rows(proposal.warehouse, """
        select sum(l.quantity * l.price) from main.stg_shop__order_lines as l
        join main.stg_shop__orders as o on o.order_id = l.order_id where not o.is_test and o.cancelled_at is null""")
    assert _cents(sum(r[4] for r in mart)) == _cents(gross)  # split, never lost or doubled


def test_jaffle_revenue_by_payment_method(tmp_path):
    proposal = _propose(tmp_path, "daily revenue by payment method", JAFFLE)
    mart = _rows(proposal.warehouse, """
        select sales_date, payment_method, order_count, gross_sales
        from main.fct_daily_revenue_by_payment_method where order_count > 0 order by 1, 2""")
    gold = _rows(proposal.warehouse, """
        select o.order_date, p.payment_method, count(distinct o.id), sum(p.amount)
        from raw_jaffle_shop_classic.raw_orders as o join raw_jaffle_shop_classic.raw_payments as p on p.order_id = o.id
        group by all order by 1, 2""")
    assert [(r[0], r[1], r[2], _cents(r[3])) for r in mart] == gold and len(gold) > 50
