"""Warehouses the tool was not built for, and data that breaks naive inference — through a real build."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from dataeng_crew import flow
from tests.conftest import JAFFLE, SAMPLE_PROJECT
from tests.conftest import open_built

pytestmark = pytest.mark.slow


def _plain_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(SAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    return project


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("hostile") / "app.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema raw_app")
    con.execute("""
        create table raw_app.events as
        select
            range as id,
            case when range % 1000 = 0 then 'dup' else 'v' || range end as near_unique,
            cast(null as varchar) as always_null,
            timestamp '2031-01-01' + range * interval 1 hour as scheduled_at,
            (['Zürich', '東京', 'São Paulo', 'Ωmega'])[range % 4 + 1] as store_type,
            range % 7 - 3 as delta_amount
        from range(5000)
    """)
    con.execute("create table raw_app.empty_things (id integer, label varchar, created_at timestamp)")
    con.close()
    return db


def test_hostile_data_builds_with_sensible_tests(tmp_path, hostile):
    proposal = flow.propose("staging models", project=_plain_project(tmp_path), warehouse=hostile, publish="none")
    assert proposal.status == "validated" and proposal.checks.build.success
    events = next(m for m in proposal.models if m.name == "stg_app__events")
    tests = {(c.name, t.name) for c in events.columns for t in c.tests}
    assert ("event_id", "unique") in tests
    assert not any(col == "near_unique" for col, _ in tests)  # 99.9 % unique is not a key
    assert not any(col == "always_null" for col, _ in tests)  # all nulls: nothing to assert
    assert ("store_type", "accepted_values") in tests
    store = next(t for c in events.columns for t in c.tests if t.name == "accepted_values")
    assert sorted(store.arguments["values"]) == sorted(["Zürich", "東京", "São Paulo", "Ωmega"])
    assert ("scheduled_at", "not_null") in tests  # future timestamps are still timestamps
    assert ("delta_amount", "crew_values_at_least") not in tests  # negatives exist: no lower bound
    empty = next(m for m in proposal.models if m.name == "stg_app__empty_things")
    assert all(not c.tests for c in empty.columns) and not empty.tests
    assert proposal.suite_results == []  # staging only: dbt's tests say it all, GX has nothing to add


def test_jaffle_shop_stages_builds_and_validates(tmp_path):
    proposal = flow.propose("staging models", project=_plain_project(tmp_path), warehouse=JAFFLE, publish="none")
    assert proposal.checks.build.success
    assert {m.name for m in proposal.models} == {"stg_jaffle_shop_classic__customers",
                                                 "stg_jaffle_shop_classic__orders", "stg_jaffle_shop_classic__payments"}
    relationships = {(n.attached_to, n.column) for n in proposal.checks.build.nodes if n.test_name == "relationships"}
    assert relationships == {("stg_jaffle_shop_classic__orders", "user_id"),
                             ("stg_jaffle_shop_classic__payments", "order_id")}
    assert proposal.suite_results == []  # staging only: dbt's tests say it all
    con = open_built(proposal.warehouse)
    total = con.execute("select sum(amount) from main.stg_jaffle_shop_classic__payments").fetchone()[0]
    raw = con.execute("select sum(amount) from raw_jaffle_shop_classic.raw_payments").fetchone()[0]
    con.close()
    assert float(total) == raw / 100  # cents converted to dollars, nothing lost


def test_hostile_names_and_a_wide_table_stage_cleanly(tmp_path):
    db = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(db))
    con.execute('create schema "Raw CRM"')
    con.execute("""create table "Raw CRM"."Order Items" as select range as "OrderID", 'item ' || range as "Item Name",
                   range % 3 as "select", 'x' || (range % 5) as "Größe", range * 100 as "AMOUNT",
                   timestamp '2024-01-01' + range * interval 1 hour as "CreatedAt", 'v' as "東京"
                   from range(300)""")
    wide = ", ".join(f'range % {i + 2} as "Col{i}"' for i in range(510))
    con.execute(f'create table "Raw CRM".wide_table as select range as id, {wide} from range(50)')
    con.close()
    proposal = flow.propose("staging models", project=_plain_project(tmp_path), warehouse=db, publish="none")
    assert proposal.checks.build.success
    items = next(m for m in proposal.models if m.name == "stg_crm__order_items")
    names = [c.name for c in items.columns]
    assert {"order_id", "item_name", "grosse", "amount", "created_at", "select"} <= set(names)
    assert any(n.startswith("col_") for n in names)  # 東京 gets a stable ASCII name
    assert '"Item Name" as item_name' in items.sql and '"select"' in items.sql
    con = open_built(proposal.warehouse)
    built = [r[0] for r in con.execute("describe main.stg_crm__order_items").fetchall()]
    assert built == names
    wide_cols = con.execute("select count(*) from information_schema.columns where table_name = 'stg_crm__wide_tables'").fetchone()[0]
    con.close()
    assert wide_cols == 511
    assert proposal.suites == []  # staging only: GX has nothing to say that dbt's tests do not
