"""The CrewAI wrappers are thin: same answers as the pure functions."""

import json

from dataeng_crew.tools.sqlcheck import check_compiled


def test_wrappers_call_the_pure_functions(sample_warehouse):
    from dataeng_crew.tools.crewai_tools import CheckSqlTool, ProfileWarehouseTool, all_tools

    assert {t.name for t in all_tools()} == {"profile_warehouse", "check_sql", "transpile_sql", "introspect_table",
                                             "read_project_file", "dbt_model"}
    profile = json.loads(ProfileWarehouseTool().run(path=str(sample_warehouse), sample_rows=1000))
    assert {t["name"] for t in profile["tables"]} >= {"orders", "customers"}
    schema = {"shop": {"raw_shop": {"orders": {"id": "BIGINT"}}}}
    out = json.loads(CheckSqlTool().run(model="m", sql="select nope from shop.raw_shop.orders", schema=schema))
    issues, _ = check_compiled("m", "select nope from shop.raw_shop.orders", schema)
    assert out["ok"] is False and out["issues"] == [i.model_dump() for i in issues]
    assert json.loads(ProfileWarehouseTool().run(path="/nonexistent.duckdb"))["error"].startswith("warehouse file not found")


def test_transpile_wrapper_calls_the_pure_function():
    from dataeng_crew.tools.crewai_tools import TranspileSqlTool
    from dataeng_crew.tools.dialect import transpile_model_sql

    sql = "select try_strptime(c, '%Y-%m-%d') as d from {{ ref('x') }}"
    out = json.loads(TranspileSqlTool().run(sql=sql, dialect="postgres"))
    expected = transpile_model_sql(sql, "postgres")
    assert out == {"sql": expected.sql, "warnings": expected.warnings} and out["warnings"]
    assert "unsupported target dialect" in json.loads(TranspileSqlTool().run(sql=sql, dialect="oracle"))["error"]
