"""Dialect rules and warnings, table-driven like sqlglot's own tests: DuckDB SQL in, target SQL out."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from dataeng_crew.errors import ConfigError, SqlCheckError
from dataeng_crew.tools.dialect import (
    contract_type,
    parse_back,
    profile_dialect,
    protect_jinja,
    restore_jinja,
    transpile_model_sql,
)
from dataeng_crew.tools.dialect_strptime import strptime_regex

TWO_FORMATS = ("select cast(coalesce(try_strptime(c, '%Y-%m-%d %H:%M:%S'), try_strptime(c, '%Y-%m-%dT%H:%M:%SZ'))"
               " as timestamp) as c from t")
SPINE = ("select cast(unnest(generate_series(first_period, last_period, interval 1 day)) as date) as sales_date "
         "from period_bounds")
DEDUPE = "select * from source qualify row_number() over (partition by id order by _loaded_at desc) = 1"

# (dialect, DuckDB SQL, must appear in the output (lower-cased), must not appear)
CASES = [
    ("postgres", TWO_FORMATS,
     ["case when c ~ '^\\d{4}\\-\\d{1,2}\\-\\d{1,2}\\ \\d{1,2}:\\d{1,2}:\\d{1,2}$'",
      "to_timestamp(c || ' +00', 'yyyy-mm-dd\"t\"hh24:mi:ss\"z\" tzh') at time zone 'utc'", "coalesce("],
     ["try_strptime"]),
    ("snowflake", TWO_FORMATS, ["try_to_timestamp_ntz(c, 'yyyy-mm-dd\"t\"hh24:mi:ss\"z\"')"], ["try_strptime"]),
    ("bigquery", TWO_FORMATS, ["safe.parse_datetime('%y-%m-%dt%h:%m:%sz', c)"], ["try_strptime"]),
    ("databricks", TWO_FORMATS, ["try_to_timestamp(c, 'yyyy-m-d''t''h:m:s''z''')"], ["try_strptime"]),
    ("postgres", "select cast(price / 100 as decimal(18, 2)) as price from t",
     ["cast(cast(price as double precision) / 100 as decimal(18, 2))"], []),  # DuckDB's / never truncates
    ("snowflake", "select cast(price / 100 as decimal(18, 2)) as price from t", ["cast(price / 100 as decimal(18, 2))"], []),
    ("bigquery", "select cast(price / 100 as decimal(18, 2)) as price from t", ["round(cast(price / 100 as numeric), 2)"], []),
    ("postgres", SPINE, ["cast(generate_series(cast(first_period as timestamp), cast(last_period as timestamp), "
                         "interval '1 day') as date) as sales_date"], ["unnest"]),
    ("bigquery", SPINE, ["cross join unnest(generate_date_array(cast(first_period as date), cast(last_period as date)"],
     ["generate_series", "generate_array("]),
    ("snowflake", SPINE, ["dateadd(day, spine.value * 1, first_period)", "lateral flatten"], ["generate_series"]),
    ("databricks", SPINE, ["explode(sequence(cast(first_period as date), cast(last_period as date)"], ["cast(explode"]),
    ("postgres", DEDUPE, ["select distinct on (id) * from source order by id, _loaded_at desc nulls last"],
     ["qualify", "_w", "row_number"]),
    ("postgres", "select id, x from s qualify rank() over (order by y) = 1 order by id",  # not the dedupe: sqlglot's
     ["as _w", "where _w = 1"], ["qualify"]),
    ("snowflake", DEDUPE, ["qualify"], []),
    ("bigquery", "select cast(date_trunc('week', created_at) as date) as w from t",
     ["date_trunc(cast(created_at as date), week(monday))"], ["timestamp_trunc"]),
    ("postgres", "select cast(date_trunc('month', created_at) as date) as m, x::varchar as v, lower(trim(s)) as s from t",
     ["cast(date_trunc('month', created_at) as date)", "cast(x as text)", "lower(trim(s))"], ["::"]),
    ("postgres", "select sha256(cast(e as varchar)) as h from t", ["encode(sha256(convert_to(cast(e as text), 'utf8')), 'hex')"],
     []),
]


@pytest.mark.parametrize(("dialect", "sql", "present", "absent"), CASES)
def test_rule(dialect, sql, present, absent):
    out = transpile_model_sql(sql, dialect).sql
    flat = " ".join(out.lower().split())
    for text in present:
        assert text in flat, (text, out)
    for text in absent:
        assert text not in flat, (text, out)
    assert sqlglot.parse_one(out, read=dialect) is not None


# (dialect, DuckDB SQL, a warning must name this)
LOSSY = [
    ("postgres", TWO_FORMATS, "try_strptime"),
    ("postgres", "select median(x) as m from t", "median()"),
    ("snowflake", "select cast(date_trunc('week', x) as date) as w from t", "date_trunc('week')"),
    ("postgres", "select my_udf(x) as y from t", "my_udf()"),
    ("bigquery", "select regexp_matches(x, 'a+') as y from t", "regexp_matches()"),
    ("databricks", "select try_strptime(x, '%Y-%j') as y from t", "try_strptime(%Y-%j)"),
    ("postgres", "select * from t pivot (sum(v) for k in ('a', 'b'))", "sqlglot: PIVOT unsupported"),  # sqlglot's own
    ("bigquery", "select string_agg(x, ',' order by y) as s from t", "sqlglot: 'NULLS LAST'"),
]


@pytest.mark.parametrize(("dialect", "sql", "named"), LOSSY)
def test_a_construct_without_faithful_translation_is_named_in_a_warning(dialect, sql, named):
    warnings = transpile_model_sql(sql, dialect).warnings
    assert any(named in w for w in warnings), warnings


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "databricks"])
def test_faithful_sql_has_no_warning(dialect):
    assert transpile_model_sql("select lower(trim(s)) as s, count(*) as n from t group by 1", dialect).warnings == []


def test_jinja_is_protected_and_restored_verbatim():
    sql = ("{{ config(materialized='table') }}\nwith a as (select * from {{ ref('stg_shop__orders') }}),\n"
           "b as (select * from {{ source('shop', 'orders') }})\nselect a.id from a inner join b on a.id = b.id\n")
    out = transpile_model_sql(sql, "postgres").sql
    assert out.startswith("{{ config(materialized='table') }}\n")
    assert "{{ ref('stg_shop__orders') }}" in out and "{{ source('shop', 'orders') }}" in out
    config, body, jinja = protect_jinja(sql)
    assert "{{" not in body and restore_jinja(body, jinja) == sql[len(config):]


def test_jinja_statements_are_refused():
    with pytest.raises(SqlCheckError):
        transpile_model_sql("select 1 as x {% if true %}, 2 as y{% endif %}", "postgres")


def test_a_translation_that_does_not_parse_back_is_an_error():
    with pytest.raises(SqlCheckError):
        parse_back("select from from where", "postgres")
    with pytest.raises(SqlCheckError):
        parse_back("select 1; select 2", "postgres")


def test_unknown_dialect_is_a_config_error():
    with pytest.raises(ConfigError, match="postgres"):
        transpile_model_sql("select 1 as x", "oracle")


def test_duckdb_target_is_the_sql_unchanged():
    sql = "select * from {{ ref('x') }} qualify row_number() over () = 1\n"
    assert transpile_model_sql(sql, "duckdb").sql == sql


@pytest.mark.parametrize(("fmt", "ok", "bad"), [
    ("%Y-%m-%d %H:%M:%S", "2024-01-02 03:04:05", "2024-01-02T03:04:05Z"),
    ("%Y-%m-%dT%H:%M:%SZ", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05"),
    ("%m/%d/%Y", "1/2/2024", "2024/01/02"),
])
def test_strptime_guard_regex(fmt, ok, bad):
    import re

    assert re.match(strptime_regex(fmt), ok) and not re.match(strptime_regex(fmt), bad)


@pytest.mark.parametrize(("dialect", "duck", "expected"), [
    ("duckdb", "DECIMAL(18,2)", "decimal(18,2)"), ("postgres", "DECIMAL(18,2)", "decimal(18, 2)"),
    ("bigquery", "BIGINT", "int64"), ("bigquery", "VARCHAR", "string"), ("databricks", "VARCHAR", "string"),
    ("snowflake", "DATE", "date"),
])
def test_contract_types_per_dialect(dialect, duck, expected):
    assert contract_type(duck, dialect) == expected


@pytest.mark.parametrize(("adapter", "expected"), [("postgres", "postgres"), ("duckdb", "duckdb"),
                                                    ("spark", "spark"), ("oracle", "duckdb")])
def test_default_dialect_is_the_profiles_adapter_type(tmp_path: Path, adapter, expected):
    (tmp_path / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (tmp_path / "profiles.yml").write_text(f"p:\n  target: dev\n  outputs:\n    dev:\n      type: {adapter}\n")
    assert profile_dialect(tmp_path) == expected
    (tmp_path / "profiles.yml").unlink()
    assert profile_dialect(tmp_path) == "duckdb"
