import pytest

from dataeng_crew.agents.planner import plan
from dataeng_crew.contracts import Grain
from dataeng_crew.errors import RequestError


@pytest.mark.parametrize(
    ("request_text", "mart", "grain"),
    [("daily_sales mart", "fct_daily_sales", Grain.day), ("Daily Sales", "fct_daily_sales", Grain.day),
     ("weekly revenue mart", "fct_weekly_revenue", Grain.week), ("monthly_orders", "fct_monthly_orders", Grain.month),
     ("sales", "fct_daily_sales", Grain.day), ("build me a quarterly sales mart", "fct_quarterly_sales", Grain.quarter)],
)
def test_requests_map_to_marts(sample_profile, request_text, mart, grain):
    p = plan(request_text, sample_profile)
    assert (p.mart_name, p.grain) == (mart, grain)
    assert {"orders", "order_lines", "refunds"} == set(p.source_tables)  # only what the mart reads
    assert p.roles["order_time"] == "orders.created_at"
    assert any("Test orders" in i for i in p.interpretations)


@pytest.mark.parametrize(
    ("request_text", "why"),
    [("", "empty"), ("   ", "empty"), ("monthly rocket launches", "rocket launches"),
     ("daily sales and weekly sales", "more than one time grain"), ("x" * 600, "longer than"),
     ("daily sales of unicorns", "unicorns")],
)
def test_unmappable_requests_list_what_can_be_built(sample_profile, request_text, why):
    with pytest.raises(RequestError) as info:
        plan(request_text, sample_profile)
    message = str(info.value)
    assert why in message
    assert '"daily_sales mart"' in message and "orders" in message


def test_jaffle_shop_sales_come_from_payments(tmp_path):
    from tests.conftest import JAFFLE
    from dataeng_crew.tools.warehouse import load_folder, profile_warehouse

    profile = profile_warehouse(load_folder(JAFFLE, tmp_path / "j.duckdb"))
    p = plan("daily sales", profile)
    assert p.roles["lines"] == "raw_payments" and p.roles["line_price"] == "raw_payments.amount"
    assert "line_quantity" not in p.roles and "refunds" not in p.roles
    # no refund table, and 'returned' says where the goods went, not the money: kept, and refunds are 0
    assert "refunded_status" not in p.roles
    assert any("payments" in i for i in p.interpretations) and any("refunds are 0" in i for i in p.interpretations)


@pytest.mark.parametrize("values, refunded", [
    (["completed", "returned", "return_pending"], []),
    (["Paid", "REFUNDED", "Partially_Refunded", "refund requested"], ["refunded"]),
    (["fully-refunded", "shipped"], ["fully-refunded"]),
    (["completed", "shipped"], []),
])
def test_only_a_status_saying_refunded_in_full_is_a_refund(values, refunded):
    from dataeng_crew.agents.semantic_layer import refunded_values
    from dataeng_crew.contracts import ColumnProfile

    col = ColumnProfile(name="order_status", data_type="VARCHAR", top_values=values, distinct_count=len(values))
    assert refunded_values(col) == refunded
    assert refunded_values(col.model_copy(update={"name": "comment"})) == []  # not a status column


def test_warehouse_without_order_fact_says_so(tmp_path):
    from dataeng_crew.tools.warehouse import load_folder, profile_warehouse

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rockets.csv").write_text("id,name,launched_at\n1,Falcon,2024-01-01 10:00:00\n")
    profile = profile_warehouse(load_folder(tmp_path / "data", tmp_path / "w.duckdb"))
    with pytest.raises(RequestError, match="No sale-like fact"):
        plan("daily sales", profile)


@pytest.mark.parametrize(("request_text", "mart", "fact", "measures"), [
    ("daily signups", "fct_daily_signups", "customers", []),
    ("weekly refunds", "fct_weekly_refunds", "refunds", ["refunds.amount"]),
    ("monthly signups mart", "fct_monthly_signups", "customers", []),
])
def test_event_marts(sample_profile, request_text, mart, fact, measures):
    p = plan(request_text, sample_profile)
    assert (p.kind, p.mart_name, p.roles["fact"]) == ("metric", mart, fact)
    assert [v for k, v in sorted(p.roles.items()) if k.startswith("measure_")] == measures
    assert p.measures[0].name.endswith("_count")


def test_event_subject_without_a_table_is_refused(sample_profile):
    with pytest.raises(RequestError, match="no fact answers 'payments'"):
        plan("daily payments", sample_profile)
    message = str(pytest.raises(RequestError, plan, "daily payments", sample_profile).value)
    assert '"daily signups"' in message and '"daily refunds"' in message
