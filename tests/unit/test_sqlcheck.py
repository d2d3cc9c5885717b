"""Table-driven sqlglot checks, in the style of sqlglot's own fixture tests."""

import pytest

from dataeng_crew.contracts import ColumnSpec, ModelSpec, SourceSpec, SourceTableSpec
from dataeng_crew.tools.sqlcheck import check_compiled, check_jinja, check_models

SCHEMA = {"shop": {"raw_shop": {"orders": {"id": "BIGINT", "amount": "BIGINT", "status": "VARCHAR"}}}}

CASES = [
    # (sql, expected issue kind or None)
    ('select id, amount from "shop"."raw_shop"."orders"', None),
    ('with o as (select * from shop.raw_shop.orders) select id from o', None),
    ('select id from shop.raw_shop.orders union all select id from shop.raw_shop.orders', None),
    ('select id from shop.raw_shop.orders qualify row_number() over (partition by id order by id) = 1', None),
    ('select idd from shop.raw_shop.orders', "unknown_column"),
    ('select id from shop.raw_shop.customers', "unknown_table"),
    ("select * from '/etc/passwd'", "unknown_table"),
    ("select * from read_text('/etc/passwd')", "unsafe"),
    ("select * from read_csv_auto('data/x.csv')", "unsafe"),
    ("select * from glob('*')", "unsafe"),
    ("select id, (select content from read_text('/etc/passwd')) as x from shop.raw_shop.orders", "unsafe"),
    ("drop table shop.raw_shop.orders", "unsafe"),
    ("delete from shop.raw_shop.orders", "unsafe"),
    ("insert into shop.raw_shop.orders values (1, 2, 'x')", "unsafe"),
    ("create table x as select 1", "unsafe"),
    ("attach 'other.duckdb' as other", "unsafe"),
    ("copy shop.raw_shop.orders to '/tmp/out.csv'", "unsafe"),
    ("install httpfs", "unsafe"),
    ("load httpfs", "unsafe"),
    ("set enable_external_access = true", "unsafe"),
    ("pragma database_list", "unsafe"),
    ("select id from shop.raw_shop.orders; drop table shop.raw_shop.orders", "unsafe"),
    ("select from where", "parse"),
]


@pytest.mark.parametrize(("sql", "kind"), CASES)
def test_check_compiled(sql, kind):
    issues, _ = check_compiled("m", sql, SCHEMA)
    if kind is None:
        assert issues == []
    else:
        assert issues, f"expected a {kind} issue for {sql!r}"
        assert issues[0].kind == kind, issues


def test_documented_columns_must_match_output():
    issues, outputs = check_compiled("m", "select id, amount from shop.raw_shop.orders", SCHEMA, ["id", "status"])
    assert outputs == ["id", "amount"]
    assert [i.kind for i in issues] == ["columns_mismatch"]


@pytest.mark.parametrize(
    ("sql", "ok"),
    [
        ("select * from {{ ref('stg_a') }}", True),
        ("select * from {{ source('shop', 'orders') }}", True),
        ("{{ config(materialized='table') }} select 1", True),
        ("select '{{ env_var(\"GITHUB_TOKEN\") }}' as t", False),
        ("{{ run_query('drop table x') }} select 1", False),
        ("{{ config(pre_hook='drop table x') }} select 1", False),
        ("{{ config(materialized='table', sql_header='attach x') }} select 1", False),
        ("{% set x = 1 %} select 1", False),
        ("{{ ref('a') | safe }}", False),
        # incremental models: exactly this block form, {{ this }} only inside it
        ("select * from {{ ref('a') }} {% if is_incremental() %} where d >= (select max(d) from {{ this }}) "
         "{% endif %}", True),
        ("select * from {{ this }}", False),
        ("select 1 {% if is_incremental() %} {% set x = 1 %} {% endif %}", False),
        ("select 1 {% if is_incremental() %} {{ env_var('GITHUB_TOKEN') }} {% endif %}", False),
        ("select 1 {% if is_incremental() %} {{ run_query('drop table x') }} {% endif %}", False),
        ("select 1 {% if is_incremental() or execute %} where true {% endif %}", False),
        ("select 1 {% if is_incremental() %} where true", False),
        ("select 1 {% if not is_incremental() %} where true {% endif %}", False),
        ("select 1 {%- if is_incremental() -%} where true {%- endif -%}", False),
        ("select 1 {% for x in [1] %} {% endfor %}", False),
        ("select 1 {% if is_incremental() %} {{ this.schema }} {% endif %}", False),
    ],
)
def test_jinja_allow_list(sql, ok):
    assert (check_jinja("m", sql) == []) is ok


def test_models_checked_in_dependency_order_and_hallucinated_column_caught():
    src = SourceSpec(name="shop", database="shop", schema_name="raw_shop", description="d",
                     tables=[SourceTableSpec(name="orders", description="d")])
    stg = ModelSpec(name="stg_shop__orders", layer="staging", materialization="view", description="d",
                    folder="staging/shop", sql="select id as order_id, amount from {{ source('shop', 'orders') }}",
                    columns=[ColumnSpec(name="order_id", description="d"), ColumnSpec(name="amount", description="d")])
    mart = ModelSpec(name="fct_x", layer="marts", materialization="table", description="d", folder="marts",
                     sql="select order_id, revenue from {{ ref('stg_shop__orders') }}",
                     columns=[ColumnSpec(name="order_id", description="d"), ColumnSpec(name="revenue", description="d")])
    issues = check_models([mart, stg], [src], SCHEMA, model_database="shop")
    assert [(i.model, i.kind) for i in issues] == [("fct_x", "unknown_column")]
    assert "revenue" in issues[0].message


def test_unknown_ref_is_reported():
    mart = ModelSpec(name="fct_x", layer="marts", materialization="table", description="d", folder="marts",
                     sql="select 1 as a from {{ ref('nope') }}", columns=[ColumnSpec(name="a", description="d")])
    issues = check_models([mart], [], SCHEMA, model_database="shop")
    assert issues[0].kind == "unknown_table" and "nope" in issues[0].message
