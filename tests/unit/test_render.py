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
        "models/staging/shop/_shop__models.yml",
        "models/marts/fct_daily_sales.sql",
        "models/marts/_marts__models.yml",
        *(f"tests/generic/test_crew_{name}.sql" for name in (
            "expression_is_true", "reconciles_with", "row_count_between", "unique_combination", "values_at_least")),
        *(f"ddl/{d}/fct_daily_sales.sql" for d in ("duckdb", "postgres", "snowflake", "bigquery", "databricks")),
    }
    marts = yaml.safe_load(files["models/marts/_marts__models.yml"])
    model = marts["models"][0]
    assert model["config"] == {"materialized": "table", "contract": {"enforced": True}}
    assert model["columns"][0]["data_type"] == "bigint"
    staging = yaml.safe_load(files["models/staging/shop/_shop__models.yml"])
    assert staging["models"][0]["columns"][0]["data_tests"] == ["unique"]
    assert "data_type" not in staging["models"][0]["columns"][0]  # only contracted models carry types
    sources = yaml.safe_load(files["models/staging/shop/_shop__sources.yml"])
    assert sources["sources"][0]["database"] == "shop"  # pinned for slim CI


def test_existing_yml_is_merged_not_clobbered():
    existing = yaml.safe_dump({"version": 2, "models": [
        {"name": "fct_other", "description": "Someone else's mart."},
        {"name": "fct_daily_sales", "description": "old"},
    ]})
    files = render_project_files([], [MART], lambda path: existing if path.endswith("_marts__models.yml") else None)
    models = yaml.safe_load(files["models/marts/_marts__models.yml"])["models"]
    assert [m["name"] for m in models] == ["fct_other", "fct_daily_sales"]
    assert models[1]["description"] == "Daily."


def test_mermaid_lineage_links_sources_staging_and_marts():
    graph = mermaid_lineage([SRC], [STG, MART])
    assert graph.startswith("flowchart LR")
    assert "shop.orders[(shop.orders)] --> stg_shop__orders" in graph
    assert "stg_shop__orders --> fct_daily_sales" in graph
