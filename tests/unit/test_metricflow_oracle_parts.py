"""The oracle's parts that need no dbt: the row comparison, the layer's shape, and what MetricFlow cannot express."""

from __future__ import annotations

import pytest

from dataeng_crew.agents import planner
from dataeng_crew.agents.query_layer import Unsupported, oracle, semantic_layer, semantic_layer_yaml
from dataeng_crew.tools.metricflow import compare_with_mart
from dataeng_crew.tools.semantic_yaml import time_spine_files, validate_layer

KEYS = [("week_start_date", "metric_time__week")]


def test_rows_match_within_tolerance_and_missing_counts_are_zero():
    mart = [{"week_start_date": "2024-01-01", "orders": 3, "share": 0.3333},
            {"week_start_date": "2024-01-08", "orders": 0, "share": None}]  # an empty week on the mart's spine
    mf = [{"metric_time__week": "2024-01-01", "orders": 3, "share": 1 / 3}]
    result = compare_with_mart(mf, mart, keys=KEYS, metrics=["orders", "share"], zero_metrics=["orders"])
    assert (result.rows, result.differences) == (2, 0)


def test_a_changed_value_a_missing_row_and_an_extra_row_are_differences():
    mart = [{"week_start_date": "2024-01-01", "orders": 3}, {"week_start_date": "2024-01-08", "orders": 2}]
    mf = [{"metric_time__week": "2024-01-01", "orders": 4}, {"metric_time__week": "2024-01-15", "orders": 1}]
    result = compare_with_mart(mf, mart, keys=KEYS, metrics=["orders"], zero_metrics=["orders"])
    assert result.differences == 3
    assert result.detail[0] == "week_start_date=2024-01-01: orders: mart 3.0 vs MetricFlow 4.0"
    assert "only MetricFlow" in result.detail[2]


def test_group_keys_match_null_and_boolean_values():
    keys = [("week_start_date", "metric_time__week"), ("is_member", "rider__is_member")]
    mart = [{"week_start_date": "2024-01-01", "is_member": True, "n": 1},
            {"week_start_date": "2024-01-01", "is_member": None, "n": 2}]
    mf = [{"metric_time__week": "2024-01-01", "rider__is_member": True, "n": 1},
          {"metric_time__week": "2024-01-01", "rider__is_member": None, "n": 2}]
    assert compare_with_mart(mf, mart, keys=keys, metrics=["n"]).differences == 0


def test_the_layer_of_a_breakdown_two_hops_away_chains_semantic_models(sample_profile):
    plan = planner.plan("weekly refunds by customer country", sample_profile)
    built = semantic_layer(plan.query, plan, sample_profile)
    assert validate_layer(built.semantic_models, built.metrics) == []
    assert [sm.name for sm in built.semantic_models] == ["refunds", "orders", "customers"]
    assert built.oracle.group_by == ("metric_time__week", "order__customer__country_code")
    assert built.oracle.keys[1] == ("customer_country_code", "order__customer__country_code")
    layer = semantic_layer_yaml(plan.query, plan, sample_profile)
    refunds = layer["semantic_models"][0]
    assert refunds["defaults"] == {"agg_time_dimension": "created_at"}
    assert {"name": "order", "type": "foreign", "expr": "order_id"} in refunds["entities"]


def test_a_plan_that_is_not_a_metric_query_is_skipped_with_a_reason(sample_profile, tmp_path):
    plan = planner.plan("daily_sales mart", sample_profile)
    result = oracle(plan, sample_profile, tmp_path, tmp_path, tmp_path)
    assert result.skipped_reason and "not a metric query" in result.skipped_reason


def test_time_spine_files_declare_the_day_column():
    files = time_spine_files("models/metricflow")
    assert "time_spine:\n    standard_granularity_column: date_day" in files["models/metricflow/metricflow_time_spine.yml"]
    assert "granularity: day" in files["models/metricflow/metricflow_time_spine.yml"]


def test_a_fact_without_a_time_column_cannot_be_expressed(sample_profile, tmp_path):
    plan = planner.plan("weekly refunds", sample_profile)
    undated = plan.model_copy(update={"query": plan.query.model_copy(update={"time_column": None, "grain": None})})
    result = oracle(undated, sample_profile, tmp_path, tmp_path, tmp_path)
    assert "aggregation time dimension" in (result.skipped_reason or "")


def test_jinja_in_a_filter_value_is_refused(sample_profile):
    plan = planner.plan("weekly share of paid orders", sample_profile)
    metrics = [m.model_copy(update={"where": [w.model_copy(update={"values": ["{{ Dimension('x') }}"]})
                                              for w in m.where]}) for m in plan.query.metrics]
    doctored = plan.query.model_copy(update={"metrics": metrics})
    with pytest.raises(Unsupported, match="Jinja"):
        semantic_layer(doctored, plan, sample_profile)


def test_the_layer_is_dbt_yaml_with_labels_and_validity_filters(sample_profile):
    plan = planner.plan("weekly share of paid orders", sample_profile)
    layer = semantic_layer_yaml(plan.query, plan, sample_profile)
    (orders,) = layer["semantic_models"]
    assert orders["model"] == "ref('stg_shop__orders')"
    assert orders["defaults"] == {"agg_time_dimension": "created_at"}
    assert {"name": "order", "type": "primary", "expr": "order_id"} in orders["entities"]
    assert {"name": "customer", "type": "foreign", "expr": "customer_id"} in orders["entities"]
    metrics = {m["name"]: m for m in layer["metrics"]}
    assert all(m["label"] for m in metrics.values())  # dbt 1.11 requires it
    assert metrics["paid_order_share"]["type_params"] == {"numerator": "paid_orders", "denominator": "orders_count"}
    assert metrics["orders_count"]["type_params"]["measure"] == {"name": "orders_count", "fill_nulls_with": 0}
    paid = metrics["paid_orders"]["filter"]
    assert "{{ Dimension('order__financial_status') }} = 'paid'" in paid
    assert ("{{ Dimension('order__financial_status') }} is null or "  # validity keeps unknown statuses
            "{{ Dimension('order__financial_status') }} not in ('voided')") in paid
