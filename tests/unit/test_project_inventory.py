"""Project inventory from dbt's manifest, relation classification, project-aware naming and degenerate measures."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataeng_crew.agents.crew import schema_summary
from dataeng_crew.agents.project_plan import flag_degenerate_measures, place_models, project_mart_name
from dataeng_crew.contracts import (
    ColumnProfile,
    ColumnSpec,
    MeasureSpec,
    ModelSpec,
    Plan,
    TableProfile,
    WarehouseProfile,
)
from dataeng_crew.errors import RequestError
from dataeng_crew.tools.project_inventory import classify_relations, inventory_from_manifest


def _node(kind: str, name: str, path: str, **extra) -> dict:
    return {"resource_type": kind, "name": name, "package_name": "shop", "original_file_path": path,
            "fqn": ["shop", *path.split("/")[1:-1], name], "schema": "main", "alias": name, **extra}


MANIFEST = {
    "metadata": {"project_name": "shop"},
    "nodes": {
        "seed.shop.raw_orders": _node("seed", "raw_orders", "seeds/raw_orders.csv"),
        "model.shop.stg_orders": _node("model", "stg_orders", "models/staging/stg_orders.sql",
                                       config={"materialized": "view"}, patch_path="shop://models/staging/schema.yml",
                                       columns={"customer_id": {"name": "customer_id", "description": "Who ordered."}},
                                       depends_on={"nodes": ["seed.shop.raw_orders"]}),
        "model.shop.customers": _node("model", "customers", "models/customers.sql", config={"materialized": "table"},
                                      depends_on={"nodes": ["model.shop.stg_orders"]}),
        "model.shop.fct_mine": _node("model", "fct_mine", "models/fct_mine.sql",
                                     config={"materialized": "table", "meta": {"dataeng_crew": "generated"}}),
        "test.shop.unique_stg_orders_order_id": {
            "resource_type": "test", "name": "unique_stg_orders_order_id", "package_name": "shop",
            "test_metadata": {"name": "unique", "kwargs": {"column_name": "order_id"}},
            "attached_node": "model.shop.stg_orders", "column_name": "order_id"},
        "test.shop.not_null_stg_orders_order_id": {
            "resource_type": "test", "name": "not_null_stg_orders_order_id", "package_name": "shop",
            "test_metadata": {"name": "not_null", "kwargs": {"column_name": "order_id"}},
            "attached_node": "model.shop.stg_orders", "column_name": "order_id"},
    },
    "sources": {"source.shop.app.payments": {
        "resource_type": "source", "source_name": "app", "name": "payments", "identifier": "payments_v2",
        "schema": "raw_app", "package_name": "shop", "original_file_path": "models/staging/_app__sources.yml"}},
}


@pytest.fixture()
def inventory(tmp_path: Path):
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\nrequire-dbt-version: '>=1.0.0'\n")
    (tmp_path / "models" / "staging").mkdir(parents=True)
    (tmp_path / "models" / "staging" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: stg_orders\n    columns:\n      - name: order_id\n        tests: [unique]\n")
    return inventory_from_manifest(tmp_path, MANIFEST)


def test_inventory_reads_layers_keys_sources_and_conventions(inventory):
    assert {m.name: m.layer for m in inventory.models} == {"stg_orders": "staging", "customers": "marts",
                                                           "fct_mine": "marts"}
    stg = inventory.model("stg_orders")
    assert stg.yml_file == "models/staging/schema.yml" and stg.depends_on == ["seed:raw_orders"]
    assert stg.columns[0].description == "Who ordered."
    assert inventory.declared_keys("model:stg_orders") == ["order_id"]
    assert inventory.model("fct_mine").made_by_crew and not inventory.model("customers").made_by_crew
    assert inventory.sources[0].file == "models/staging/_app__sources.yml"
    conv = inventory.conventions
    assert conv.tests_key == "tests" and not conv.test_arguments_key  # what the project's yml already uses
    assert conv.staging_with_source is False  # stg_<entity>
    assert conv.mart_prefixes == ["fct_", "dim_"]  # one prefixed mart is enough to keep the prefixes


def test_relations_are_classified_against_the_project(inventory):
    classes = {c.name: c for c in classify_relations(
        [("main", "raw_orders"), ("main", "stg_orders"), ("main", "customers"), ("raw_app", "payments_v2"),
         ("raw_app", "refunds")], inventory)}
    assert classes["raw_orders"].origin == "seed" and classes["raw_orders"].covered_by == ["stg_orders"]
    assert classes["stg_orders"].origin == "model" and classes["customers"].origin == "model"
    assert classes["payments_v2"].origin == "source" and classes["payments_v2"].node == "source:app.payments"
    assert classes["refunds"].origin == "raw"


def _plan(name: str, **kw) -> Plan:
    return Plan(request="r", mart_name=name, subject="customers", source_tables=[], **{"measures": [], **kw})


def test_a_name_clash_gets_a_new_name_never_an_overwrite(inventory):
    profile = WarehouseProfile(path="x", database="d", inventory=inventory.model_copy(update={
        "conventions": inventory.conventions.model_copy(update={"mart_prefixes": []})}))
    renamed = project_mart_name(_plan("dim_customers"), profile)  # `customers` is the project's own mart
    assert renamed.mart_name == "dim_customers"
    assert any("customers is already a model of the project" in i for i in renamed.interpretations)
    assert project_mart_name(_plan("fct_mine"), profile).mart_name == "mine"  # unprefixed convention
    kept = project_mart_name(_plan("fct_mine"), WarehouseProfile(path="x", database="d", inventory=inventory))
    assert kept.mart_name == "fct_mine"  # made by dataeng-crew: a re-run may replace it
    model = ModelSpec(name="customers", layer="marts", materialization="table", description="d", sql="select 1",
                      columns=[], folder="marts")
    with pytest.raises(RequestError, match="never replaces"):
        place_models([model], inventory)
    placed = place_models([model.model_copy(update={"name": "dim_x"})], inventory)[0]
    assert placed.path == "models/dim_x.sql"  # where the project keeps its marts


def test_a_measure_on_an_all_null_column_is_flagged_or_refused():
    col = ColumnProfile(name="amount", data_type="DOUBLE", null_fraction=1.0)
    table = TableProfile(database="d", schema_name="main", name="payments", row_count=10, profiled_rows=10,
                         columns=[col, ColumnProfile(name="fee", data_type="DOUBLE", distinct_count=5)])
    profile = WarehouseProfile(path="x", database="d", tables=[table])
    measures = [MeasureSpec(name="customer_count", definition="d")]
    with pytest.raises(RequestError, match="null in all 10 profiled rows"):
        flag_degenerate_measures(_plan("fct_x", roles={"measure_0": "payments.amount"}), profile)
    flagged = flag_degenerate_measures(_plan("fct_x", roles={"measure_0": "payments.amount", "measure_1": "payments.fee",
                                                             "orders": "payments"}, measures=measures), profile)
    assert any(i.startswith("⚠ measure_0 is bound to payments.amount") for i in flagged.interpretations)
    assert any("customer_count cannot be computed" in a for a in flagged.alternatives)


def test_the_crews_prompts_carry_the_inventory(inventory):
    table = TableProfile(database="d", schema_name="main", name="stg_orders", row_count=1, profiled_rows=1,
                         origin="model", ref_name="stg_orders", declared_keys=["order_id"])
    text = schema_summary(WarehouseProfile(path="x", database="d", tables=[table], inventory=inventory))
    assert "ref('stg_orders')" in text and '"origin": "model"' in text
    assert "model stg_orders (staging, view, models/staging/stg_orders.sql)" in text and "customer_id" in text
    assert ModelSpec(name="m", layer="marts", materialization="table", description="d", sql="select 1",
                     columns=[ColumnSpec(name="a", description="a")], folder="", root="transform").path == \
        "transform/m.sql"
