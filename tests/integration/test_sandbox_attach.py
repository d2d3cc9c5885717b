"""The sandbox never copies the warehouse: a new, small DuckDB file with views over the warehouse attached
read-only — and agent SQL is as locked down as before (no file reads or writes, no attach, no write into the
warehouse)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from dataeng_crew.tools import sandbox
from dataeng_crew.tools.warehouse import open_readonly


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def box(tmp_path_factory, sample_warehouse):
    from tests.conftest import make_git_project

    project = make_git_project(tmp_path_factory.mktemp("attach") / "repo", sample_warehouse)
    warehouse = project / "warehouse" / "shop.duckdb"
    before = _digest(warehouse)
    made = sandbox.prepare_sandbox(project, warehouse, tmp_path_factory.mktemp("box"))
    return made, warehouse, before


def test_the_sandbox_file_is_new_and_small_and_reads_every_warehouse_relation(box):
    made, warehouse, before = box
    assert made.db_file.name == warehouse.name  # same database name as the sources pin
    assert made.db_file.stat().st_size < warehouse.stat().st_size / 2
    raw = duckdb.connect(str(warehouse), read_only=True)
    try:
        expected = {(s, t, raw.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0])
                    for s, t in raw.execute("select schema_name, table_name from duckdb_tables()").fetchall()}
    finally:
        raw.close()
    with open_readonly(made.db_file) as con:
        seen = {(s, t, con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0])
                for s, t in con.execute("select schema_name, view_name from duckdb_views() where not internal "
                                        "and database_name = current_database()").fetchall()}
    assert expected and seen == expected
    assert _digest(warehouse) == before


ATTACKS = {
    "reads a file": "select * from read_csv('/etc/passwd')",
    "attaches another file": "{{ config(pre_hook=\"attach '/tmp/dataeng_crew_evil.duckdb' as evil\") }} select 1 as x",
    "writes a file": "{{ config(post_hook=\"copy (select 1) to '/tmp/dataeng_crew_evil.csv'\") }} select 1 as x",
    "writes into the warehouse": "{{ config(database='ALIAS', materialized='table') }} select 1 as x",
    "drops a warehouse relation": "{{ config(pre_hook='drop table ALIAS.raw_shop.orders') }} select 1 as x",
}


@pytest.mark.parametrize("sql", ATTACKS.values(), ids=ATTACKS.keys())
def test_agent_sql_cannot_leave_the_sandbox(box, sql):
    made, warehouse, before = box
    model = made.project / "models" / "evil_model.sql"
    model.write_text(sql.replace("ALIAS", sandbox.warehouse_alias(warehouse)) + "\n")
    try:
        result = made.dbt(["run", "--select", "evil_model"])
    finally:
        model.unlink()
    assert not result.success
    assert not Path("/tmp/dataeng_crew_evil.csv").exists() and not Path("/tmp/dataeng_crew_evil.duckdb").exists()
    assert _digest(warehouse) == before


def test_a_harmless_model_builds_in_the_sandbox_file_only(box):
    made, warehouse, before = box
    model = made.project / "models" / "ok_model.sql"
    model.write_text("select count(*) as n from raw_shop.orders\n")
    try:
        result = made.dbt(["run", "--select", "ok_model"])
    finally:
        model.unlink()
    assert result.success, result.error
    with open_readonly(made.db_file) as con:
        assert con.execute("select n from main.ok_model").fetchone()[0] > 0
    assert _digest(warehouse) == before


def test_the_target_schema_keeps_small_tables_writable_for_the_projects_hooks(tmp_path, sample_warehouse):
    """A project's hook writes into its target schema (an audit table left by its own runs): a small table there is
    a copy the hook can write; a large one is read where it is; the warehouse is never written."""
    from tests.conftest import make_git_project

    project = make_git_project(tmp_path / "repo", sample_warehouse)
    warehouse = project / "warehouse" / "shop.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create table main.audit_run as select 1 as run_id")
    con.execute(f"create table main.big_raw as select range as id from range({sandbox.COPY_BELOW_ROWS + 1})")
    con.close()
    before = _digest(warehouse)
    made = sandbox.prepare_sandbox(project, warehouse, tmp_path / "box")
    with open_readonly(made.db_file) as box:
        kinds = dict(box.execute("select table_name, 'table' from duckdb_tables() where database_name = "
                                 "current_database() union all select view_name, 'view' from duckdb_views() "
                                 "where database_name = current_database() and not internal").fetchall())
    assert kinds["audit_run"] == "table" and kinds["big_raw"] == "view" and kinds["orders"] == "view"
    model = made.project / "models" / "hooked.sql"
    model.write_text("{{ config(post_hook='insert into main.audit_run values (2)') }} select 1 as x\n")
    result = made.dbt(["run", "--select", "hooked"])
    assert result.success, result.error or [n.message for n in result.nodes]
    assert _digest(warehouse) == before
