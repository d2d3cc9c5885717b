"""The project's dbt profile as dbt finds it, PostgreSQL → DuckDB types, the scratch schema's name and macro,
and rounding that gives the same cents on DuckDB (double) as exact decimal arithmetic (PostgreSQL numeric)."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from dataeng_crew.errors import ConfigError
from dataeng_crew.tools.dbt_profile import profiles_dir, read_target
from dataeng_crew.tools.extract import duckdb_type, time_column
from dataeng_crew.tools.target_build import rows_differing, schema_macro, scratch_schema, write_target_profile

SECRET = "s3cr3t-pw-in-env"


def _project(folder: Path, profile: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n")
    if profile is not None:
        (folder / "profiles.yml").write_text(yaml.safe_dump({"shop": profile}))
    return folder


PG = {"target": "prod", "outputs": {
    "dev": {"type": "duckdb", "path": "warehouse/shop.duckdb"},
    "prod": {"type": "postgres", "host": "{{ env_var('PGHOST_T', 'db.internal') }}", "port": "{{ env_var('PGPORT_T') }}",
             "user": "analyst", "password": "{{ env_var('PGPASS_T') }}", "dbname": "shop", "schema": "analytics"}}}


def test_reads_the_named_target_with_env_vars(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPORT_T", "6543")
    monkeypatch.setenv("PGPASS_T", SECRET)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    t = read_target(_project(tmp_path / "p", PG))
    assert (t.type, t.host, t.port, t.user, t.dbname, t.schema_) == ("postgres", "db.internal", 6543, "analyst",
                                                                       "shop", "analytics")
    assert t.password.get_secret_value() == SECRET
    assert SECRET not in t.model_dump_json() and SECRET not in repr(t) and SECRET not in str(t.model_dump())
    assert read_target(tmp_path / "p", target="dev").type == "duckdb"


def test_profiles_dir_lookup_order(tmp_path, monkeypatch):
    project = _project(tmp_path / "p", {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": "x.duckdb"}}})
    env_dir, explicit = tmp_path / "env", tmp_path / "explicit"
    for d in (env_dir, explicit):
        d.mkdir()
        (d / "profiles.yml").write_text("{}")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(env_dir))
    assert profiles_dir(project, explicit) == explicit
    assert profiles_dir(project) == env_dir
    monkeypatch.delenv("DBT_PROFILES_DIR")
    assert profiles_dir(project) == project
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (project / "profiles.yml").unlink()
    assert profiles_dir(project) is None


def test_errors_name_profile_and_target_not_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("PGPORT_T", raising=False)
    monkeypatch.setenv("PGPASS_T", SECRET)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    with pytest.raises(ConfigError) as err:
        read_target(_project(tmp_path / "p", PG))
    assert "profile 'shop', target 'prod'" in str(err.value) and "PGPORT_T" in str(err.value)
    assert SECRET not in str(err.value)
    with pytest.raises(ConfigError, match="no target 'nope'"):
        read_target(tmp_path / "p", target="nope")


def test_postgres_types_in_duckdb_and_event_time():
    assert duckdb_type("numeric(18,2)") == "DECIMAL(18, 2)"
    assert duckdb_type("numeric") == "DECIMAL(38,10)"
    assert duckdb_type("timestamp without time zone") == "TIMESTAMP"
    assert duckdb_type("character varying(40)") == "VARCHAR"
    assert duckdb_type("integer[]") == "VARCHAR" and duckdb_type("jsonb") == "VARCHAR"
    assert time_column([("id", "integer"), ("_loaded_at", "timestamp"), ("updated_at", "timestamp"),
                        ("created_at", "timestamp")]) == "created_at"
    assert time_column([("id", "integer"), ("updated_at", "date")]) == "updated_at"  # the only time there is
    assert time_column([("id", "integer")]) is None


def test_scratch_schema_and_its_macro(tmp_path):
    schema = scratch_schema("20261204T022548-Daily-Sales-Mart" + "x" * 80)
    assert schema.startswith("dataeng_crew_20261204t022548_daily_sales_mart") and len(schema) <= 63
    macro = schema_macro(schema)
    assert "generate_schema_name" in macro and f"target.schema != '{schema}'" in macro
    from dataeng_crew.contracts import WarehouseTarget

    target = WarehouseTarget(profile="shop", target="prod", profiles_dir="/x", type="postgres", host="h", port=5432,
                             user="u", password=SECRET, dbname="shop", schema="analytics")
    written = (write_target_profile(tmp_path, "shop", target, schema) / "profiles.yml").read_text()
    assert SECRET not in written and "env_var(''DATAENG_CREW_TARGET_PASS''" in written and schema in written


def test_rows_differing_normalises_engines():
    assert rows_differing([(Decimal("1.50"), 2.0)], [(Decimal("1.5"), 2.0000001)]) == 0
    assert rows_differing([(1,), (1,)], [(1,)]) == 1


def test_cents_rounding_matches_exact_decimal_arithmetic():
    """The mart's ``round(cast(cents * 100 / n as decimal(38, 9))) / 100`` on DuckDB (double division) equals exact half-up rounding, the
    PostgreSQL (numeric) result; the bare cast rounds 152.015 to 152.01 on DuckDB (issue 24)."""
    rng = random.Random(24)
    cases = [(Decimal("304.03"), 2)] + [(Decimal(rng.randint(1, 10**7)) / 100, rng.randint(1, 997))
                                        for _ in range(3000)]
    con = duckdb.connect()
    rows = con.execute("select cast(round(cast(v * 100 / nullif(n, 0) as decimal(38, 9))) / 100 as decimal(18, 2)), "
                       "cast(v / n as decimal(18, 2)) "
                       "from (select unnest(?)::decimal(18, 2) as v, unnest(?)::bigint as n)",
                       [[str(v) for v, _ in cases], [n for _, n in cases]]).fetchall()
    exact = [(v / n).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for v, n in cases]
    assert [r[0] for r in rows] == exact
    assert rows[0] == (Decimal("152.02"), Decimal("152.01"))  # the old cast disagreed with PostgreSQL
