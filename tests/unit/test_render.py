import yaml

from dataeng_crew.contracts import ColumnSpec, ModelSpec, SourceSpec, SourceTableSpec, TestSpec
from dataeng_crew.render import mermaid_lineage, render_project_files

SRC = SourceSpec(name="shop", database="shop", schema_name="raw_shop", description="Raw shop.",
                 tables=[SourceTableSpec(name="orders", description="Raw orders.", loaded_at_field="_loaded_at")])
STG = ModelSpec(name="stg_shop__orders", layer="staging", materialization="view", description="Orders.",
                folder="staging/shop", sql="select id as order_id from {{ source('shop', 'orders') }}",
                columns=[ColumnSpec(name="order_id", description="Key.", data_type="BIGINT",
                                    tests=[TestSpec(name="unique", column="order_id")])])
MART = ModelSpec(name="fct_daily_sales", layer="marts", materialization="table", description="Daily.",
                 folder="marts", contract_enforced=True, sql="select 1 as n from {{ ref('stg_shop__orders') }}",
                 columns=[ColumnSpec(name="n", description="N.", data_type="BIGINT", meta={"pii": False})])


def test_files_follow_dbt_layout():
    files = render_project_files([SRC], [STG, MART])
    assert set(files) == {
        "models/staging/shop/_shop__sources.yml",
        "models/staging/shop/stg_shop__orders.sql",
        "models/staging/shop/stg_shop__orders.yml",
        "models/marts/fct_daily_sales.sql",
        "models/marts/fct_daily_sales.yml",
        *(f"tests/generic/test_crew_{name}.sql" for name in (
            "expression_is_true", "reconciles_with", "row_count_between", "unique_combination", "values_at_least")),
        *(f"ddl/{d}/fct_daily_sales.sql" for d in ("duckdb", "postgres", "snowflake", "bigquery", "databricks")),
    }
    marts = yaml.safe_load(files["models/marts/fct_daily_sales.yml"])
    model = marts["models"][0]
    assert model["config"] == {"materialized": "table", "contract": {"enforced": True},
                               "meta": {"dataeng_crew": "generated"}}
    assert model["columns"][0]["data_type"] == "bigint"
    staging = yaml.safe_load(files["models/staging/shop/stg_shop__orders.yml"])
    assert staging["models"][0]["columns"][0]["data_tests"] == ["unique"]
    assert "data_type" not in staging["models"][0]["columns"][0]  # only contracted models carry types
    sources = yaml.safe_load(files["models/staging/shop/_shop__sources.yml"])
    assert sources["sources"][0]["database"] == "shop"  # pinned for slim CI


def test_existing_yml_is_merged_not_clobbered():
    existing = yaml.safe_dump({"version": 2, "models": [
        {"name": "fct_other", "description": "Someone else's mart."},
        {"name": "fct_daily_sales", "description": "old"},
    ]})
    files = render_project_files([], [MART], lambda path: existing if path.endswith("fct_daily_sales.yml") else None)
    models = yaml.safe_load(files["models/marts/fct_daily_sales.yml"])["models"]
    assert [m["name"] for m in models] == ["fct_other", "fct_daily_sales"]
    assert models[1]["description"] == "Daily."


def test_mermaid_lineage_links_sources_staging_and_marts():
    graph = mermaid_lineage([SRC], [STG, MART])
    assert graph.startswith("flowchart LR")
    assert "shop.orders[(shop.orders)] --> stg_shop__orders" in graph
    assert "stg_shop__orders --> fct_daily_sales" in graph


def _inventory(**conventions):
    from dataeng_crew.contracts import InventorySource, InventorySourceTable, ProjectConventions, ProjectInventory

    return ProjectInventory(name="p", model_paths=["src_models"], test_paths=["checks"],
                            conventions=ProjectConventions(**conventions),
                            sources=[InventorySource(name="shop", schema_name="raw_shop", file="src_models/sources.yml",
                                                     tables=[InventorySourceTable(name="customers", identifier="customers")])])


def test_old_dbt_projects_get_tests_key_without_arguments():
    inv = _inventory(tests_key="tests", test_arguments_key=False)
    mart = MART.model_copy(update={"root": "src_models", "columns": [ColumnSpec(
        name="n", description="N.", data_type="BIGINT",
        tests=[TestSpec(name="accepted_values", column="n", arguments={"values": [1, 2]})])]})
    files = render_project_files([], [mart], inventory=inv)
    assert "checks/generic/test_crew_values_at_least.sql" in files
    column = yaml.safe_load(files["src_models/marts/fct_daily_sales.yml"])["models"][0]["columns"][0]
    assert "data_tests" not in column
    assert column["tests"] == [{"accepted_values": {"values": [1, 2]}}]


def test_a_table_of_a_declared_source_is_added_to_its_yml_keeping_comments():
    existing = ("version: 2\n\nsources:\n  # the shop's loader writes here\n  - name: shop\n    schema: raw_shop\n"
                "    tables:\n      - name: customers  # keep me\n")
    files = render_project_files([SRC], [], lambda path: existing if path == "src_models/sources.yml" else None,
                                 inventory=_inventory())
    edited = files["src_models/sources.yml"]
    assert "# the shop's loader writes here" in edited and "# keep me" in edited
    tables = yaml.safe_load(edited)["sources"][0]["tables"]
    assert [t["name"] for t in tables] == ["customers", "orders"]
    assert not any(p.endswith("__sources.yml") for p in files)
