"""Quality inference on data nobody here wrote (jaffle-shop), and GX validation catching a defect."""

import duckdb

from dataeng_crew.agents.modeler import model_sources
from dataeng_crew.agents.quality import add_tests, expectation_suites, source_tests
from dataeng_crew.contracts import ExpectationSpec, ExpectationSuiteSpec, Grain, Plan
from tests.conftest import JAFFLE
from dataeng_crew.tools.expectations import validate_suites
from dataeng_crew.tools.warehouse import load_folder, profile_warehouse


def test_jaffle_shop_tests_are_sensible(tmp_path):
    profile = profile_warehouse(load_folder(JAFFLE, tmp_path / "jaffle.duckdb"))
    plan = Plan(request="stage jaffle", mart_name="fct_x", grain=Grain.day, subject="sales", measures=[],
                source_tables=["raw_customers", "raw_orders", "raw_payments"])
    sources, staging = model_sources(plan, profile)
    models = {m.name: m for m in add_tests(staging, profile, None)}
    assert set(models) == {"stg_jaffle_shop_classic__customers", "stg_jaffle_shop_classic__orders",
                           "stg_jaffle_shop_classic__payments"}
    tests = {(m, c.name, t.name): t for m, model in models.items() for c in model.columns for t in c.tests}
    for (model, column, name), _ in tests.items():
        if name == "accepted_values":
            assert not column.endswith("id"), (model, column)  # never on ids
    orders, payments = "stg_jaffle_shop_classic__orders", "stg_jaffle_shop_classic__payments"
    assert tests[(orders, "user_id", "relationships")].arguments == {
        "to": "ref('stg_jaffle_shop_classic__customers')", "field": "customer_id"}
    assert tests[(payments, "order_id", "relationships")].arguments == {
        "to": "ref('stg_jaffle_shop_classic__orders')", "field": "order_id"}
    assert set(tests[(orders, "status", "accepted_values")].arguments["values"]) == {
        "completed", "placed", "return_pending", "returned", "shipped"}
    assert set(tests[(payments, "payment_method", "accepted_values")].arguments["values"]) == {
        "bank_transfer", "coupon", "credit_card", "gift_card"}
    assert (payments, "amount", "crew_values_at_least") in tests
    for key in ("customer_id", "order_id", "payment_id"):
        model = next(m for m in models.values() if m.columns[0].name == key)
        assert {t.name for t in model.columns[0].tests} == {"unique", "not_null"}
    assert all(not t.tests for s in source_tests(sources, profile) for t in s.tables)  # no load stamp here
    assert not any(t.name == "crew_row_count_between" for m in models.values() for t in m.tests)  # not from today
    assert expectation_suites(list(models.values()), profile) == []  # GX says what dbt cannot: nothing for staging


def test_gx_validation_reports_failures_with_observed_values(tmp_path):
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table fct_x as select * from (values (1, 10), (2, -5), (2, 7)) as t(day, amount)")
    con.close()
    suite = ExpectationSuiteSpec(name="fct_x_suite", model="fct_x", expectations=[
        ExpectationSpec(type="ExpectColumnValuesToBeUnique", kwargs={"column": "day"}),
        ExpectationSpec(type="ExpectColumnValuesToBeBetween", kwargs={"column": "amount", "min_value": 0}),
        ExpectationSpec(type="ExpectTableRowCountToBeBetween", kwargs={"min_value": 1, "max_value": 10}),
    ])
    [result] = validate_suites(db, [suite])
    assert (result.evaluated, result.passed, result.failed, result.rows_validated) == (3, 1, 2, 3)
    failed = {o.type for o in result.outcomes if not o.success}
    assert failed == {"expect_column_values_to_be_unique", "expect_column_values_to_be_between"}


def test_big_tables_are_validated_on_a_sample_with_exact_row_counts(tmp_path):
    db = tmp_path / "big.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table big as select range as id from range(50000)")
    con.close()
    suite = ExpectationSuiteSpec(name="big_suite", model="big", expectations=[
        ExpectationSpec(type="ExpectTableRowCountToBeBetween", kwargs={"min_value": 50000, "max_value": 50000}),
        ExpectationSpec(type="ExpectColumnValuesToNotBeNull", kwargs={"column": "id"}),
    ])
    [result] = validate_suites(db, [suite], sample_rows=1000)
    assert result.sampled and result.rows_validated == 1000 and result.failed == 0
    assert result.outcomes[0].observed == "50000"


def test_suite_json_is_what_gx_writes(tmp_path):
    from dataeng_crew.tools.expectations import build_suite, suite_json

    spec = ExpectationSuiteSpec(name="m_suite", model="m", expectations=[
        ExpectationSpec(type="ExpectColumnValuesToBeInSet", kwargs={"column": "s", "value_set": ["a", "b"]}),
        ExpectationSpec(type="ExpectTableRowCountToBeBetween", kwargs={"min_value": 1})])
    ours = suite_json(spec)
    gx_written = build_suite(spec).to_json_dict()
    assert [(e["type"], e["kwargs"]) for e in ours["expectations"]] == [
        (e["type"], e["kwargs"]) for e in gx_written["expectations"]]
    import great_expectations as gx

    loaded = gx.ExpectationSuite(name=ours["name"], expectations=ours["expectations"], meta=ours["meta"])
    assert len(loaded.expectations) == 2


def test_gx_triage_loosens_inferences_and_keeps_promises(tmp_path):
    from dataeng_crew.agents.triage import triage_suites

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table main.m as select * from (values (1, 'a', 5.0, 'x'), (1, 'b', 50.0, null)) as t(id, s, v, n)")
    con.close()
    suite = ExpectationSuiteSpec(name="m_suite", model="m", expectations=[
        ExpectationSpec(type="ExpectColumnValuesToBeUnique", kwargs={"column": "id"}),
        ExpectationSpec(type="ExpectColumnValuesToBeInSet", kwargs={"column": "s", "value_set": ["a"]}),
        ExpectationSpec(type="ExpectColumnValuesToBeBetween", kwargs={"column": "v", "min_value": 0, "max_value": 10}),
        ExpectationSpec(type="ExpectColumnValuesToNotBeNull", kwargs={"column": "n"}),
    ])
    [first] = validate_suites(db, [suite])
    assert first.failed == 4
    [fixed], decisions = triage_suites([first], [suite], db)
    verdicts = {d.test: (d.verdict, d.action) for d in decisions}
    assert verdicts == {
        "expect_column_values_to_be_unique on id": ("data_wrong", "kept_as_warning"),
        "expect_column_values_to_be_in_set on s": ("inference_wrong", "loosened"),
        "expect_column_values_to_be_between on v": ("inference_wrong", "loosened"),
        "expect_column_values_to_not_be_null on n": ("inference_wrong", "dropped"),
    }
    [again] = validate_suites(db, [fixed])
    assert (again.evaluated, again.failed) == (3, 1)  # only the broken promise still fails


def test_freshness_only_where_a_loader_ran_in_the_last_day():
    import datetime as dt

    from dataeng_crew.contracts import ColumnProfile, SourceSpec, SourceTableSpec, TableProfile, WarehouseProfile

    now = dt.datetime(2026, 12, 3, 12, tzinfo=dt.timezone.utc)

    def profile(newest: str) -> WarehouseProfile:
        cols = [ColumnProfile(name="id", data_type="BIGINT", distinct_count=10),
                ColumnProfile(name="_loaded_at", data_type="TIMESTAMP", min_value="2020-01-01 00:00:00",
                              max_value=newest)]
        return WarehouseProfile(path="w", database="w", tables=[TableProfile(
            database="w", schema_name="raw", name="orders", row_count=10, profiled_rows=10, columns=cols)])

    source = SourceSpec(name="raw", database="w", schema_name="raw", description="Raw.",
                        tables=[SourceTableSpec(name="orders", description="Orders.", loaded_at_field="_loaded_at")])
    fresh = source_tests([source], profile("2026-12-03 06:00:00"), now)[0].tables[0]
    stale = source_tests([source], profile("2024-12-31 23:00:00"), now)[0].tables[0]
    assert fresh.freshness == {"warn_after": {"count": 24, "period": "hour"}}
    assert stale.freshness is None or stale.freshness == {}  # a static extract: a check that would only ever warn
