"""The semantic catalog on warehouses that look nothing like the sample shop (small hand-made tables that
follow real naming schemes: TPC-H prefixes, CamelCase ids, plain codes, app-prefixed tables)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataeng_crew.agents.catalog import build_catalog
from dataeng_crew.agents.planner import capabilities, plan, request_words
from dataeng_crew.errors import RequestError
from dataeng_crew.tools.warehouse import key_stem, primary_key, profile_warehouse


def _warehouse(path: Path, ddl: list[str]) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    for sql in ddl:
        con.execute(sql)
    con.close()
    return path


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory):
    """TPC-H-style: every column prefixed, keys named *key, line items with an extended price and discount rate."""
    path = tmp_path_factory.mktemp("prefixed") / "w.duckdb"
    return profile_warehouse(_warehouse(path, [
        "create table raw.customer as select i as c_custkey, 'Customer#' || i as c_name, "
        "case when i % 2 = 0 then 'BUILDING' else 'MACHINERY' end as c_mktsegment from range(1, 21) t(i)",
        "create table raw.orders as select i as o_orderkey, 1 + i % 15 as o_custkey, "
        "date '2024-01-01' + cast(i as integer) as o_orderdate, cast(100 + i as decimal(15, 2)) as o_totalprice, "
        "case when i % 3 = 0 then 'F' else 'O' end as o_orderstatus from range(1, 101) t(i)",
        "create table raw.lineitem as select 1 + i % 100 as l_orderkey, i % 4 as l_linenumber, "
        "cast(1 + i % 5 as decimal(15, 2)) as l_quantity, cast(10 + i as decimal(15, 2)) as l_extendedprice, "
        "cast((i % 10) / 100 as decimal(15, 2)) as l_discount from range(0, 300) t(i)",
    ]))


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """Flight-style: parents keyed by text codes (no id column), facts dated by year/month/day parts."""
    path = tmp_path_factory.mktemp("coded") / "w.duckdb"
    return profile_warehouse(_warehouse(path, [
        "create table raw.airlines as select * from (values ('AA', 'American'), ('UA', 'United'), ('DL', 'Delta')) "
        "t(carrier, name)",
        "create table raw.airports as select * from (values ('JFK', 'Kennedy'), ('LGA', 'LaGuardia'), "
        "('EWR', 'Newark'), ('BOS', 'Logan')) t(faa, name)",
        "create table raw.flights as select 2024 as year, 1 + i % 12 as month, 1 + i % 28 as day, "
        "(['AA', 'UA', 'DL'])[1 + i % 3] as carrier, (['JFK', 'LGA', 'EWR'])[1 + i % 3] as origin, "
        "100 + i as distance, i % 60 as dep_delay from range(0, 500) t(i)",
    ]))


def test_keys_whatever_their_names(prefixed, coded):
    assert primary_key(prefixed.table("orders")) == "o_orderkey"
    assert primary_key(prefixed.table("customer")) == "c_custkey"
    assert primary_key(prefixed.table("lineitem")) is None  # no single unique column: not a made-up key
    assert primary_key(coded.table("airlines")) == "carrier"
    assert primary_key(coded.table("airports")) == "faa"
    assert key_stem("CustomerId") == "customer" and key_stem("l_orderkey", "l_") == "order"


def test_foreign_keys_across_naming_schemes(prefixed, coded):
    fks = {(f.table, f.column): (f.ref_table, f.ref_column) for f in prefixed.foreign_keys + coded.foreign_keys}
    assert fks[("lineitem", "l_orderkey")] == ("orders", "o_orderkey")
    assert fks[("orders", "o_custkey")] == ("customer", "c_custkey")
    assert fks[("flights", "carrier")] == ("airlines", "carrier")  # same name
    assert fks[("flights", "origin")] == ("airports", "faa")  # values alone: a text code column
    assert ("flights", "distance") not in fks and ("flights", "dep_delay") not in fks


def test_declared_keys_win(prefixed):
    table = prefixed.table("customer").model_copy(update={"declared_keys": ["c_name"]})
    assert primary_key(table) == "c_name"


def test_catalog_names_facts_measures_dimensions(prefixed, coded):
    cat = build_catalog(prefixed)
    assert cat.sales_fact == "orders"
    orders = next(f for f in cat.facts if f.table == "orders")
    gross = next(m for m in orders.measures if m.name == "gross_sales")
    assert "l_extendedprice" in gross.expression and "l_discount" in gross.expression
    assert "customer.c_mktsegment" in orders.dimensions
    flights = next(f for f in build_catalog(coded).facts if f.table == "flights")
    assert flights.event_time == "year/month/day"
    assert {m.meaning for m in flights.measures} == {"count", "distance"}  # a delay is not summed


def test_revenue_is_extended_price_less_discount(prefixed):
    p = plan("monthly revenue", prefixed)
    assert p.roles["orders"] == "orders" and p.roles["line_price"] == "lineitem.l_extendedprice"
    assert p.roles["line_discount_rate"] == "lineitem.l_discount"
    assert any("o_totalprice" in a for a in p.alternatives)


def test_breakdown_through_parent_and_filter_on_prefixed_columns(prefixed):
    p = plan("monthly sales by market segment", prefixed)
    assert p.roles["dimension"] == "customer.c_mktsegment"
    f = plan("monthly orders for order status F", prefixed)
    assert f.roles["filter_0"] == "orders.o_orderstatus" and f.filters["filter_0"] == "F"


def test_any_fact_by_name_dated_by_parts(coded):
    p = plan("daily flights", coded)
    assert p.kind == "metric" and p.roles["event_month"] == "flights.month"
    assert any("distance" in m.name for m in p.measures)


def test_refusal_names_candidates(coded):
    with pytest.raises(RequestError) as exc:
        plan("monthly revenue", coded)
    text = str(exc.value)
    assert "Facts: flights" in text and "flights.carrier" in text and "No sale-like fact" in text


def test_capabilities_are_concrete_and_plan(coded, prefixed):
    for profile in (coded, prefixed):
        options = capabilities(profile)
        assert len(options) > 3
        for request in options[:-1]:
            plan(request, profile)  # every listed request plans
    assert "daily flights" in capabilities(coded) and "airlines mart" in capabilities(coded)


@pytest.mark.parametrize("request_text", ["daily sales mart 仅限中国", "daily sales mart для россии",
                                          "weekly sales für österreich"])
def test_every_word_is_used_or_named_back(prefixed, request_text):
    with pytest.raises(RequestError) as exc:
        plan(request_text, prefixed)
    foreign = [w for w in request_words(request_text) if not w.isascii()]
    assert foreign and all(w in str(exc.value) for w in foreign)
    assert "f, r, sterreich" not in str(exc.value)


def test_unicode_words():
    assert request_words("für österreich") == ["für", "österreich"]
    assert request_words("仅限中国") == ["仅限中国"]


def test_event_breakdown_through_a_parent(coded):
    p = plan("monthly flights by airline", coded)
    assert p.roles["dimension"] == "airlines.name" and "airlines" in p.source_tables


def test_same_column_on_two_equally_near_tables_is_ambiguous(coded):
    with pytest.raises(RequestError, match="ambiguous") as exc:
        plan("monthly flights by name", coded.model_copy(update={"tables": [
            t if t.name != "airports" else t.model_copy(update={"columns": [
                c if c.name != "name" else c.model_copy(update={"top_values": ["Kennedy", "LaGuardia", "Newark", "Logan"]})
                for c in t.columns]}) for t in coded.tables]}))
    assert "airlines.name" in str(exc.value) and "airports.name" in str(exc.value)


@pytest.fixture(scope="module")
def billing(tmp_path_factory):
    """SaaS-billing style: CamelCase tables and ids, a text signup time, cents in a spaced name, money as text."""
    path = tmp_path_factory.mktemp("billing") / "w.duckdb"
    return profile_warehouse(_warehouse(path, [
        'create table raw."AppUsers" as select i as "UserId", strftime(timestamp \'2024-01-01\' + interval (i * 7) hour, '
        '\'%Y-%m-%d %H:%M:%S\') as "SignupTS" from range(1, 200) t(i)',
        'create table raw."Invoices" as select i as "InvoiceId", 1 + i % 150 as "UserId", '
        'cast((i * 37) % 5000 as integer) as "Amount Due (cents)", strftime(timestamp \'2024-01-01\' + '
        'interval (i * 5) hour, \'%Y-%m-%dT%H:%M:%SZ\') as "IssuedAt", cast(round(i * 1.5, 2) as varchar) as tax_amount '
        'from range(1, 600) t(i)',
    ]))


def test_saas_billing_schema(billing):
    assert [(f.table, f.column, f.ref_table) for f in billing.foreign_keys] == [("Invoices", "UserId", "AppUsers")]
    assert plan("daily signups", billing).roles["event_time"] == "AppUsers.SignupTS"
    revenue = plan("monthly revenue", billing)
    assert revenue.roles["orders"] == "Invoices" and revenue.roles["order_amount"] == "Invoices.Amount Due (cents)"
    invoices = plan("weekly invoices", billing)
    assert "Invoices.tax_amount" in invoices.roles.values()  # money stored as text is a measure
