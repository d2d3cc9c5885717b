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
        "ddl/duckdb/fct_daily_sales.sql",  # the target dialect's DDL only; no own generic test is used here
    }
    more = render_project_files([SRC], [STG, MART], ddl_dialects=["duckdb", "snowflake"])
    assert {"ddl/duckdb/fct_daily_sales.sql", "ddl/snowflake/fct_daily_sales.sql"} <= set(more)
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
    assert "checks/generic/dataeng_crew_tests.sql" not in files  # accepted_values is dbt's own
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


def test_own_generic_tests_only_where_no_installed_package_has_one():
    mart = MART.model_copy(update={"tests": [
        TestSpec(name="crew_unique_combination", arguments={"columns": ["n", "m"]}),
        TestSpec(name="crew_reconciles_with", arguments={"expression": "n", "to": "ref('x')", "compare_expression": "1"})],
        "columns": [ColumnSpec(name="n", description="N.", data_type="BIGINT",
                               tests=[TestSpec(name="unique", column="n"), TestSpec(name="not_null", column="n")]),
                    ColumnSpec(name="m", description="M.", data_type="BIGINT",
                               tests=[TestSpec(name="not_null", column="m"),
                                      TestSpec(name="crew_values_at_least", column="m", arguments={"min_value": 0})])]})
    plain = render_project_files([], [mart])
    assert "tests/generic/dataeng_crew_tests.sql" in plain  # one file, the same bytes in every proposal
    inv = _inventory().model_copy(update={"packages": ["dbt_utils"], "model_paths": ["models"], "test_paths": ["tests"]})
    files = render_project_files([], [mart], inventory=inv)
    entry = yaml.safe_load(files["models/marts/fct_daily_sales.yml"])["models"][0]
    names = [next(iter(t)) if isinstance(t, dict) else t for t in entry["data_tests"]]
    assert names == ["dbt_utils.unique_combination_of_columns", "crew_reconciles_with"]
    assert entry["data_tests"][0]["dbt_utils.unique_combination_of_columns"]["arguments"] == {
        "combination_of_columns": ["n", "m"]}
    n, m = entry["columns"]
    assert n["data_tests"] == ["unique", "not_null"]  # the key: the tests dbt tools look for, and the contract's
    assert n["constraints"] == [{"type": "not_null"}, {"type": "primary_key"}]
    assert m["constraints"] == [{"type": "not_null"}]  # a required column: the contract's constraint, no test too
    assert m["data_tests"] == [{"dbt_utils.accepted_range": {"arguments": {"min_value": 0}}}]
    assert "tests/generic/dataeng_crew_tests.sql" in files  # reconciles_with has no package equivalent
