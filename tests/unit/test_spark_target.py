"""A ``type: spark`` target without a running Spark: its profile settings (session, thrift, http), the scratch build's
profile (the token only as an ``env_var``), Spark types in DuckDB, the committed files in Spark's dialect, and errors
that name the target, never the token."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataeng_crew.contracts import ColumnSpec, ModelSpec, SourceSpec, SourceTableSpec, TestSpec
from dataeng_crew.errors import ConfigError, WarehouseError
from dataeng_crew.tools.dbt_files import model_yaml, source_yaml
from dataeng_crew.tools.dbt_profile import read_target
from dataeng_crew.tools.dialect import ADAPTER_DIALECTS, transpile_model_sql
from dataeng_crew.tools.extract import extract_target
from dataeng_crew.tools.spark import duckdb_type, select_list
from dataeng_crew.tools.target_build import write_target_profile
from dataeng_crew.warehouse_stages import target_dialect

TOKEN = "dapi-0123456789abcdef-secret"

SPARK = {"target": "cluster", "outputs": {
    "local": {"type": "spark", "method": "session", "host": "NA", "schema": "analytics",
              "server_side_parameters": {"spark.sql.shuffle.partitions": 4}},
    "cluster": {"type": "spark", "method": "http", "host": "dbc-1.cloud.databricks.com", "cluster": "0123-abc",
                "organization": "42", "token": "{{ env_var('SPARK_TOKEN_T') }}", "schema": "analytics",
                "connect_timeout": 5},
    "thrift": {"type": "spark", "method": "thrift", "host": "127.0.0.1", "port": 1, "user": "analyst",
               "schema": "analytics", "password": "{{ env_var('SPARK_TOKEN_T') }}", "auth": "LDAP"},
    "odd": {"type": "spark", "host": "x", "schema": "analytics"}}}


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPARK_TOKEN_T", TOKEN)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    (tmp_path / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n")
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump({"shop": SPARK}))
    return tmp_path


def test_reads_spark_targets_of_each_method(project):
    http = read_target(project)
    assert (http.type, http.method, http.host, http.port, http.schema_) == ("spark", "http",
                                                                          "dbc-1.cloud.databricks.com", 443, "analytics")
    assert http.password.get_secret_value() == TOKEN and http.options["cluster"] == "0123-abc"
    assert TOKEN not in http.model_dump_json() and TOKEN not in repr(http) and "0123-abc" not in http.model_dump_json()
    assert read_target(project, target="thrift").port == 1 and read_target(project, target="thrift").method == "thrift"
    local = read_target(project, target="local")
    assert local.method == "session" and local.options == {"server_side_parameters": {"spark.sql.shuffle.partitions": 4}}
    assert target_dialect(local) == "spark" and ADAPTER_DIALECTS["spark"] == "spark"
    with pytest.raises(ConfigError, match="needs `method:` session, thrift or http"):
        read_target(project, target="odd")


def test_scratch_profile_keeps_the_token_in_the_environment(project, tmp_path):
    schema = "dataeng_crew_20261204t000000_x"
    for name, key in (("cluster", "token"), ("thrift", "password")):
        written = (write_target_profile(tmp_path / name, "shop", read_target(project, target=name), schema)
                   / "profiles.yml").read_text()
        out = yaml.safe_load(written)["shop"]["outputs"]["scratch"]
        assert TOKEN not in written and out[key] == "{{ env_var('DATAENG_CREW_TARGET_PASS', '') }}"
        assert out["schema"] == schema and out["type"] == "spark" and out["method"] == read_target(project, target=name).method
    assert out["auth"] == "LDAP" and out["user"] == "analyst"


def test_unreachable_cluster_names_the_target_never_the_token(project, tmp_path):
    with pytest.raises(WarehouseError) as err:
        extract_target(read_target(project, target="thrift"), tmp_path)
    assert "profile 'shop', target 'thrift'" in str(err.value) and TOKEN not in str(err.value)
    assert not list(tmp_path.rglob("*.duckdb"))


def test_spark_types_in_duckdb_and_how_they_travel():
    assert duckdb_type("decimal(18,2)") == "DECIMAL(18, 2)" and duckdb_type("bigint") == "BIGINT"
    assert duckdb_type("timestamp") == duckdb_type("timestamp_ntz") == "TIMESTAMP" and duckdb_type("date") == "DATE"
    assert duckdb_type("array<string>") == "VARCHAR" and duckdb_type("varchar(20)") == "VARCHAR"
    assert select_list([("id", "bigint"), ("at", "timestamp"), ("tags", "map<string,int>"), ("n`x", "string")]) == (
        "`id`, cast(`at` as timestamp_ntz) as `at`, cast(`tags` as string) as `tags`, `n``x`")


def test_committed_files_in_spark_dialect():
    spine = ("select cast(unnest(generate_series(min(d), max(d), interval 1 day)) as date) as day "
             "from {{ ref('x') }}")
    sql = transpile_model_sql(spine, "spark").sql
    assert "explode(sequence(" in sql.lower() and "{{ ref('x') }}" in sql
    source = SourceSpec(name="shop", database="spark_catalog", schema_name="raw_shop", description="d",
                        tables=[SourceTableSpec(name="orders", description="o")])
    assert "database" not in source_yaml(source, dialect="spark")
    assert source_yaml(source)["database"] == "spark_catalog"
    mart = ModelSpec(name="fct_x", layer="marts", materialization="table", sql="select 1", description="d",
                     folder="marts", contract_enforced=True,
                     columns=[ColumnSpec(name="day", data_type="DATE", description="d",
                                         tests=[TestSpec(name="unique"), TestSpec(name="not_null")]),
                              ColumnSpec(name="n", data_type="BIGINT", description="n",
                                         tests=[TestSpec(name="not_null")])])
    spark = model_yaml(mart, "spark")  # no constraints: dbt-spark sets NOT NULL only on Delta tables
    assert all("constraints" not in c for c in spark["columns"])
    assert [c["data_type"] for c in spark["columns"]] == ["date", "bigint"]
    assert spark["columns"][1]["data_tests"] == ["not_null"]
    assert model_yaml(mart, "postgres")["columns"][1]["constraints"] == [{"type": "not_null"}]
