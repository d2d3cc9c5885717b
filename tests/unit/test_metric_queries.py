"""Requests compile to metric queries over the inferred semantic layer; every reading is a stated rule.

Table-driven: each row is a small hand-made warehouse (real DuckDB, real profiling), a request, what the
query must say, and a *flipped* warehouse — the same one changed so that the other reading applies — whose
plan must change accordingly. The plan text (what the PR shows) must name the rule and its alternative.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataeng_crew.agents.modeler import stage_column
from dataeng_crew.agents.planner import plan
from dataeng_crew.contracts import Plan
from dataeng_crew.errors import RequestError
from dataeng_crew.tools.warehouse import profile_warehouse

PEOPLE = ("create table raw.members as select i as id, 'm' || i as full_name, "
          "date '1970-01-01' + cast(i * 37 % 9000 as integer) as {birth}, "
          "timestamp '2024-01-01' + to_days(cast(i % 90 as integer)) as {joined} from range(1, 201) t(i)")
RIDES = ("create table raw.rides as select i as id, timestamp '2024-01-01' + to_hours(cast(i as integer)) as "
         "requested_at, {fare} as {fare_name}, (['Completed', 'completed ', {third}])[1 + i % 3] as status "
         "from range(1, 2001) t(i)")
CALLS = ("create table raw.calls as select i as id, timestamp '2024-03-01' + to_minutes(cast(i * 17 as integer)) "
         "as started_at, timestamp '2024-03-01' + to_minutes(cast(i * 17 + 5 + i % 30 as integer)) as ended_at, "
         "(['answered', 'missed', 'voicemail', {fourth}])[1 + i % 4] as outcome from range(1, 3001) t(i)")
TICKETS = ("create table raw.tickets as select i as id, timestamp '2024-01-01' + to_hours(cast(i as integer)) as "
           "opened_at, timestamp '2024-01-01' + to_hours(cast(i + 3 + i % 7 as integer)) as resolved_at, "
           "timestamp '2024-01-01' + to_hours(cast(i + 30 as integer)) as closed_at from range(1, 1001) t(i)")
BILLS = ("create table raw.bills as select i as id, date '2024-01-01' + cast(i % 200 as integer) as billed_at, "
         "cast(50 + i % 40 as decimal(10, 2)) as billed_amount{discount} from range(1, 1001) t(i)")
ACTIVITY = ["create table raw.members as select i as id, 'm' || i as handle from range(1, 101) t(i)",
            "create table raw.loans as select i as id, 1 + i % 100 as member_id, timestamp '2024-01-01' + "
            "to_hours(cast(i as integer)) as loaned_at from range(1, {loans}) t(i)",
            "create table raw.visits as select i as id, 1 + i % 97 as member_id, timestamp '2024-01-01' + "
            "to_hours(cast(i as integer)) as visited_at from range(1, {visits}) t(i)"]


def _profile(tmp: Path, ddl: list[str]):
    path = tmp / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    for sql in ddl:
        con.execute(sql)
    con.close()
    return profile_warehouse(path)


def _text(p: Plan) -> str:
    return "\n".join(p.interpretations + p.alternatives)


def _choice(p: Plan, topic: str):
    assert p.query is not None
    return [c for c in p.query.choices if c.topic == topic]


def _time(p: Plan) -> str:
    return _choice(p, "time")[0].chosen


def _metric(p: Plan, kind: str):
    assert p.query is not None
    return next(m for m in p.query.metrics if m.kind == kind)


CASES = [
    # (id, ddl, request, check on the plan, flipped ddl, check on the flipped plan)
    ("time role: signups by registration, never a birth date",
     [PEOPLE.format(birth="birth_date", joined="registered_at")], "monthly signups",
     lambda p: _time(p) == "members.registered_at" and "birth_date" in _choice(p, "time")[0].alternatives,
     [PEOPLE.format(birth="birth_date", joined="signup_date")],
     lambda p: _time(p) == "members.signup_date"),
    ("validity: cancelled rides do not count in fares",
     [RIDES.format(fare="cast(10 + i % 20 as decimal(10, 2))", fare_name="fare", third="'CANCELLED'")],
     "monthly fares",
     lambda p: any("cancelled" in f.values for f in p.query.validity) and "cancelled" in _text(p)
     and "counting every row" in _text(p),
     [RIDES.format(fare="cast(10 + i % 20 as decimal(10, 2))", fare_name="fare", third="'pending'")],
     lambda p: not p.query.validity),
    ("value metric: a login is a row whose kind is login",
     ["create table raw.events as select i as id, timestamp '2024-01-01' + to_minutes(cast(i as integer)) as "
      "event_time, (['login', 'LOGIN ', 'logout', 'search'])[1 + i % 4] as kind from range(1, 2001) t(i)"],
     "weekly logins",
     lambda p: _metric(p, "count").where[0].values == ["login"] and p.mart_name == "fct_weekly_logins",
     ["create table raw.events as select i as id, timestamp '2024-01-01' + to_minutes(cast(i as integer)) as "
      "event_time, (['signin', 'logout', 'search'])[1 + i % 3] as kind from range(1, 2001) t(i)"],
     None),  # no login value any more: refused, not a silently different count
    ("rate: missed ÷ all calls",
     [CALLS.format(fourth="'answered'")], "weekly share of missed calls",
     lambda p: _metric(p, "ratio").numerator == "missed_calls" and _metric(p, "ratio").denominator == "calls_count"
     and "a rate divides" in _text(p),
     [CALLS.format(fourth="'failed'")],
     lambda p: any("failed" in f.values for f in p.query.validity)),
    ("rate of an excluded value: cancellations are the subject, not an exclusion",
     [RIDES.format(fare="cast(10 as decimal(10, 2))", fare_name="fare", third="'cancelled'")],
     "monthly cancellation rate",
     lambda p: _metric(p, "ratio").numerator == "cancellations" and not p.query.validity
     and "never excludes it" in _text(p),
     [RIDES.format(fare="cast(10 as decimal(10, 2))", fare_name="fare", third="'cancelled'").replace(
         "'completed '", "'void'")],
     lambda p: [f.values for f in p.query.validity] == [["void"]]),
    ("duration: resolution hours from opened to resolved",
     [TICKETS], "monthly average resolution hours",
     lambda p: _metric(p, "duration").column == "tickets.resolved_at" and _metric(p, "duration").scale == 1 / 3600
     and "opened_at → closed_at" in _choice(p, "duration")[0].alternatives,
     [TICKETS.replace("as resolved_at", "as first_reply_at")], None),  # no resolution time: refused
    ("distinct count: active members are members with a loan",
     [a.format(loans=3000, visits=500) for a in ACTIVITY], "monthly active members",
     lambda p: _metric(p, "count_distinct").column == "loans.member_id"
     and any("visits" in a for a in _choice(p, "activity")[0].alternatives),
     [a.format(loans=500, visits=3000) for a in ACTIVITY],
     lambda p: _metric(p, "count_distinct").column == "visits.member_id"),
    ("discount: revenue is net of a percent discount",
     [BILLS.format(discount=", cast(i % 3 * 10 as integer) as discount_percent")], "monthly revenue",
     lambda p: _metric(p, "sum").discount == "bills.discount_percent" and _metric(p, "sum").discount_kind == "percent"
     and "gross billed_amount" in _text(p),
     [BILLS.format(discount="")],
     lambda p: _metric(p, "sum").discount is None),
    ("measure named directly, money by meaning (spend)",
     ["create table raw.ad_stats as select i as id, date '2024-01-01' + cast(i % 60 as integer) as stat_date, "
      "(['google', 'meta'])[1 + i % 2] as utm_source, cast(i % 50 as decimal(10, 2)) as spend, i % 9 as clicks "
      "from range(1, 601) t(i)"], "monthly ad spend by utm source",
     lambda p: _metric(p, "sum").column == "ad_stats.spend" and p.query.group_by == ["ad_stats.utm_source"],
     ["create table raw.ad_stats as select i as id, date '2024-01-01' + cast(i % 60 as integer) as stat_date, "
      "(['google', 'meta'])[1 + i % 2] as utm_source, cast(i % 50 as decimal(10, 2)) as cost, i % 9 as clicks "
      "from range(1, 601) t(i)"],
     lambda p: _metric(p, "sum").column == "ad_stats.cost"),  # spend ~ cost
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule_and_alternative_follow_the_data(case, tmp_path):
    _id, ddl, request, check, flipped, check_flipped = case
    (tmp_path / "a").mkdir()
    p = plan(request, _profile(tmp_path / "a", ddl))
    assert p.kind == "metric" and p.query is not None
    assert check(p), _text(p)
    for c in p.query.choices:  # every rule the plan applied is in the PR's plan text, with its alternatives
        assert c.chosen in _text(p)
        for alt in c.alternatives:
            assert alt in _text(p)
    (tmp_path / "b").mkdir()
    other = _profile(tmp_path / "b", flipped)
    if check_flipped is None:
        with pytest.raises(RequestError):
            plan(request, other)
        return
    q = plan(request, other)
    assert check_flipped(q), _text(q)


@pytest.mark.parametrize("name,dtype,values,divisor", [
    ("fare_micros", "BIGINT", "(i * 1000000)", "1000000"),
    ("fare_cents", "INTEGER", "(i * 100)", "100"),
])
def test_money_units_are_converted_by_their_unit(tmp_path, name, dtype, values, divisor):
    prof = _profile(tmp_path, [f"create table raw.rides as select i as id, cast({values} as {dtype}) as {name}, "
                               "timestamp '2024-01-01' as requested_at from range(1, 50) t(i)"])
    table = prof.table("rides")
    staged = stage_column(table.column(name), table, prof, None, "raw")
    assert f"/ {divisor} " in staged.expression and staged.name == "fare"


def test_percent_is_never_money_and_never_summed(tmp_path):
    prof = _profile(tmp_path, ["create table raw.rides as select i as id, timestamp '2024-01-01' + "
                               "to_hours(cast(i as integer)) as requested_at, cast(i % 300 as integer) as surge_pct "
                               "from range(1, 500) t(i)"])
    p = plan("daily surge", prof)
    m = p.query.metrics[0]
    assert m.kind == "average" and "never summed" in _text(p)
    with pytest.raises(RequestError, match="cannot be summed"):
        plan("daily total surge", prof)


def test_a_fact_without_a_time_is_dated_by_its_parent(tmp_path):
    prof = _profile(tmp_path, [
        "create table raw.orders as select i as id, date '2024-01-01' + cast(i % 60 as integer) as order_date "
        "from range(1, 301) t(i)",
        "create table raw.payments as select i as id, 1 + i % 300 as order_id, "
        "(['credit_card', 'coupon', 'bank_transfer'])[1 + i % 3] as payment_method, i % 50 as amount "
        "from range(1, 601) t(i)"])
    p = plan("weekly credit card payments", prof)
    assert p.query.fact == "payments" and p.query.time_column == "orders.order_date"
    assert "payments has no time of its own" in _text(p)
    assert _metric(p, "count").where[0].values == ["credit_card"]


def test_degenerate_warehouses_are_refused_with_the_reason(tmp_path):
    (tmp_path / "a").mkdir()
    empty = _profile(tmp_path / "a", ["create table raw.rides as select 1 as id, timestamp '2024-01-01' as "
                                      "requested_at, cast(1 as decimal(10, 2)) as fare where false"])
    with pytest.raises(RequestError, match="every table in the warehouse is empty"):
        plan("monthly fares", empty)
    (tmp_path / "b").mkdir()
    null_time = _profile(tmp_path / "b", ["create table raw.visits as select i as id, cast(null as timestamp) as "
                                          "visited_at, i % 5 as pages from range(1, 100) t(i)"])
    with pytest.raises(RequestError, match="visited_at is NULL in every row"):
        plan("daily visits", null_time)


def test_a_table_named_in_another_script_can_be_requested(tmp_path):
    prof = _profile(tmp_path, ['create table raw."Заказы" as select i as id, timestamp \'2024-01-01\' + '
                               "to_hours(cast(i as integer)) as created_at from range(1, 100) t(i)"])
    p = plan("weekly заказы", prof)
    assert p.query.fact == "Заказы" and p.mart_name == "fct_weekly_zakazy"


def test_values_sharing_a_word_are_named_back(tmp_path):
    prof = _profile(tmp_path, ["create table raw.orders as select i as id, date '2024-01-01' + "
                               "cast(i % 90 as integer) as order_date, (['completed', 'returned', 'return_pending'])"
                               "[1 + i % 3] as status from range(1, 300) t(i)"])
    p = plan("monthly return rate", prof)
    value = _choice(p, "value")[0]
    assert value.chosen == "status = 'returned'" and value.alternatives == ["status = 'return_pending'"]
    assert "status = 'return_pending'" in _text(p)


def test_sales_marts_follow_meaning_not_names(tmp_path):
    """The sales path: a dollars column beats its cents twin, cancelled statuses are excluded by a stated rule,
    a discount percent is applied, and 'store' finds the project's locations."""
    from dataeng_crew.agents.transformer import transform

    prof = _profile(tmp_path, [
        "create table raw.locations as select i as id, 'Store ' || i as location_name from range(1, 5) t(i)",
        "create table raw.orders as select i as id, 1 + i % 4 as location_id, date '2024-01-01' + "
        "cast(i % 90 as integer) as ordered_at, cast(i * 100 as integer) as subtotal_cents, "
        "cast(i as decimal(10, 2)) as subtotal, i % 3 * 10 as discount_percent, "
        "(['Completed', 'cancelled', 'placed'])[1 + i % 3] as status from range(1, 400) t(i)"])
    p = plan("monthly revenue by store", prof)
    assert p.roles["order_amount"] == "orders.subtotal" and p.roles["dimension"] == "locations.location_name"
    assert p.roles["discount_percent"] == "orders.discount_percent"
    assert "cancelled" in _text(p) and "not chosen: counting every row" in _text(p)
    sql = transform(p, prof)[0].sql
    assert "status not in ('cancelled')" in sql and "discount_percent, 0) / 100.0" in sql


def test_a_metric_query_from_another_brain_is_checked_against_the_warehouse(tmp_path):
    """The LLM crew answers with the same MetricQuery contract: unknown columns and dangling ratios are refused
    (its answer goes back to it, then the deterministic draft is used); a valid one renders with the one renderer."""
    from dataeng_crew.agents.metric_planner import query_problems
    from dataeng_crew.agents.transformer import transform

    prof = _profile(tmp_path, [CALLS.format(fourth="'answered'")])
    p = plan("weekly share of missed calls", prof)
    assert query_problems(p.query, prof) == []
    bad = p.query.model_copy(update={"metrics": [m.model_copy(update={"denominator": "calls_total"})
                                                 if m.kind == "ratio" else m for m in p.query.metrics],
                                     "group_by": ["calls.queue"]})
    assert query_problems(bad, prof) == ["metric query names 'calls.queue', which is not a column of the warehouse",
                                         "ratio missed_call_share divides metrics the query does not define"]
    sql = transform(p, prof)[0].sql
    assert "count(case when outcome = 'missed' then 1 end) as missed_calls" in sql
    assert "round(cast(10000.0 * aggregated.missed_calls / nullif(aggregated.calls_count, 0) as decimal(38, 9)))" in sql


def test_a_fact_named_by_its_own_noun_beats_a_compound_name(tmp_path):
    """'orders' names orders, not order_items (larger, dated by its order); 'invoices' never names invoicelines."""
    prof = _profile(tmp_path, [
        "create table raw.orders as select i as id, date '2024-01-01' + cast(i % 60 as integer) as ordered_at "
        "from range(1, 200) t(i)",
        "create table raw.order_items as select i as id, 1 + i % 199 as order_id, i % 5 as quantity "
        "from range(1, 900) t(i)",
        "create table raw.invoice as select i as id, date '2024-01-01' + cast(i % 60 as integer) as invoicedate "
        "from range(1, 100) t(i)",
        "create table raw.invoiceline as select i as id, 1 + i % 99 as invoice_id, 1 as quantity "
        "from range(1, 500) t(i)"])
    assert plan("daily orders", prof).query.fact == "orders"
    assert plan("daily order items", prof).query.fact == "order_items"
    assert plan("daily invoices", prof).query.fact == "invoice"


def test_a_wait_is_creation_to_start_and_the_activity_is_start_to_end(tmp_path):
    prof = _profile(tmp_path, [
        "create table raw.rides as select i as id, timestamp '2024-01-01' + to_minutes(cast(i * 30 as integer)) as "
        "requested_at, timestamp '2024-01-01' + to_minutes(cast(i * 30 + 5 as integer)) as pickup_at, "
        "timestamp '2024-01-01' + to_minutes(cast(i * 30 + 25 as integer)) as dropoff_at from range(1, 500) t(i)"])
    wait = _metric(plan("monthly average wait minutes", prof), "duration")
    ride = _metric(plan("monthly average ride minutes", prof), "duration")
    assert (wait.start_column, wait.column) == ("rides.requested_at", "rides.pickup_at")
    assert (ride.start_column, ride.column) == ("rides.pickup_at", "rides.dropoff_at")
    assert "requested_at → pickup_at" in _choice(plan("monthly average ride minutes", prof), "duration")[0].alternatives


def test_a_rate_of_rows_with_a_child_row(tmp_path):
    """"Return rate" where returns are rows of a child table: orders with at least one return ÷ orders, dated by the
    order; a status value of the order itself would win, and this reading would be named as its alternative."""
    from dataeng_crew.agents.transformer import transform

    ddl = ["create table raw.orders as select i as id, timestamp '2024-01-01' + to_hours(cast(i * 7 as integer)) "
           "as ordered_at{status} from range(1, 600) t(i)",
           "create table raw.returns as select i as id, 1 + (i * 13) % 599 as order_id, timestamp '2024-03-01' + "
           "to_hours(cast(i as integer)) as returned_at from range(1, 60) t(i)"]
    (tmp_path / "a").mkdir()
    prof = _profile(tmp_path / "a", [d.format(status="") for d in ddl])
    p = plan("monthly return rate", prof)
    where = _metric(p, "count").where
    assert p.query.fact == "orders" and [(f.op, f.values) for f in where] == [("has_child", ["returns.order_id"])]
    assert "returns" in p.source_tables
    assert "in (select order_id from {{ ref('stg_raw__returns') }})" in transform(p, prof)[0].sql
    (tmp_path / "b").mkdir()
    prof = _profile(tmp_path / "b", [d.format(status=", (['completed', 'returned'])[1 + i % 2] as status")
                                     for d in ddl])
    p = plan("monthly return rate", prof)
    assert _metric(p, "count").where[0].op == "in"
    assert "rows with at least one returns row (by returns.order_id)" in _choice(p, "event")[0].alternatives
