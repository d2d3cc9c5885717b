"""The warehouse the user already has: a project whose dbt profile names a real PostgreSQL server (tests/pg_server.py)
holding the sample shop, or an eval warehouse of another shape (the ride-hailing app). ``propose`` extracts it into
DuckDB, validates there, commits PostgreSQL SQL on a branch, builds it with ``--validate-on-target`` in a scratch
schema it drops, and its marts equal hand-written PostgreSQL SQL. No password reaches a file, the PR or ``--json``.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlglot
import yaml

from dataeng_crew import flow
from dataeng_crew.contracts import Proposal, WarehouseTarget
from dataeng_crew.eval_datasets import build_dataset
from dataeng_crew.recorder import StageIO
from dataeng_crew.tools import target_build
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.extract import extract_target
from dataeng_crew.tools.postgres import copy_tables
from dataeng_crew.warehouse_stages import TargetOptions
from dataeng_crew import warehouse_stages
from tests.conftest import git, make_git_project, open_built
from tests.warehouse_checks import (assert_committed_in, assert_target_mart, fake_run, orphans, stop_target_build,
                                    written_texts)

pytestmark = pytest.mark.slow

PASSWORD = "pw-Zq8vT3-never-written"
PASSWORD_ENV = "SHOP_PG_PASSWORD_FOR_TEST"

# Hand-written on PostgreSQL over the raw tables, independently of the generator (compare eval/cases' gold.sql).
GOLD_SALES = """
with orders as (select distinct on (id) * from raw_shop.orders order by id, _loaded_at desc),
valid as (
    select id, customer_id, total_discounts, cast(left(created_at, 10) as date) as day
    from orders where not test and cancelled_at is null
),
lines as (select distinct on (id) * from raw_shop.order_lines order by id, _loaded_at desc),
refunds as (select distinct on (id) * from raw_shop.refunds order by id, _loaded_at desc),
gross as (select v.day, sum(l.quantity * l.price) as cents from valid v join lines l on l.order_id = v.id group by 1),
per_day as (select day, count(*) as orders, count(distinct customer_id) as customers,
                   sum(total_discounts) as discount_cents from valid group by day),
refund_day as (select cast(r.created_at as date) as day, sum(r.amount) as cents from refunds r
               where r.order_id in (select id from valid) group by 1),
days as (select cast(generate_series(min(day), max(day), interval '1 day') as date) as day
         from (select day from per_day union all select day from refund_day) as d)
select d.day, coalesce(p.orders, 0), coalesce(p.customers, 0), coalesce(g.cents, 0) / 100.0,
       coalesce(p.discount_cents, 0) / 100.0, coalesce(r.cents, 0) / 100.0,
       (coalesce(g.cents, 0) - coalesce(p.discount_cents, 0) - coalesce(r.cents, 0)) / 100.0,
       round((coalesce(g.cents, 0) - coalesce(p.discount_cents, 0))::numeric / nullif(p.orders, 0)) / 100.0
from days d left join per_day p on p.day = d.day left join gross g on g.day = d.day
left join refund_day r on r.day = d.day
"""
GOLD_RIDES = """
with per_day as (select cast(requested_at as date) as day, count(*) as rides from rides.rides
                 where lower(trim(status)) not in ('cancelled', 'no_show') group by 1),
days as (select cast(generate_series(min(day), max(day), interval '1 day') as date) as day from per_day)
select d.day, coalesce(p.rides, 0) from days d left join per_day p on p.day = d.day
"""
# (database, request, mart, gold SQL, extract rows): the sample shop is read as a 500-row sample per table (foreign
# keys closed, the sampled path end to end), the rides warehouse whole (the DuckDB mart then equals the target's)
CASES = {"sample": ("shopdb", "daily_sales mart", "fct_daily_sales", GOLD_SALES, 500),
         "rides": ("ridehail", "daily rides", "fct_daily_rides", GOLD_RIDES, 100_000)}


@dataclass
class OnPostgres:
    """One proposal made from a project whose profile points at PostgreSQL."""

    name: str
    proposal: Proposal
    repo: Path
    schemas_before: set[str]
    schemas_after: set[str]
    target_marts: dict[str, list[tuple]] = field(default_factory=dict)  # read just before the scratch schema dropped


def _pg_rows(server, dbname: str, sql: str, params: tuple = ()) -> list[tuple]:
    con = server.conn.connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def _pg_exec(server, dbname: str, sql: str) -> None:
    con = server.conn.connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


def _schemas(server, dbname: str) -> set[str]:
    return {r[0] for r in _pg_rows(server, dbname, "select nspname from pg_namespace")}


def _write_profile(project: Path, port: int, dbname: str) -> None:
    (project / "profiles.yml").write_text(yaml.safe_dump({"shop": {"target": "pg", "outputs": {"pg": {
        "type": "postgres", "host": "127.0.0.1", "port": port, "user": "postgres",
        "password": "{{ env_var('" + PASSWORD_ENV + "') }}", "dbname": dbname, "schema": "analytics", "threads": 4}}}}))


@pytest.fixture(scope="session")
def pg_loaded(postgres_server, sample_warehouse, tmp_path_factory):
    """The sample shop in database ``shopdb`` and the ride-hailing eval warehouse (schema ``rides``) in ``ridehail``
    (a schema named as its database is refused: ``rides.rides`` is ambiguous in DuckDB)."""
    rides = build_dataset("rides", tmp_path_factory.mktemp("rides-wh"))
    copy_tables(sample_warehouse, postgres_server.conn, "shopdb")  # not "shop": test_postgres_engine builds there
    copy_tables(rides, postgres_server.conn, "ridehail")
    return postgres_server


@pytest.fixture(scope="session", params=sorted(CASES))
def on_pg(request, pg_loaded, sample_warehouse, tmp_path_factory) -> OnPostgres:
    name = request.param
    dbname, words, mart, _gold, rows = CASES[name]
    server = pg_loaded
    project = make_git_project(tmp_path_factory.mktemp(f"onpg-{name}") / "repo", sample_warehouse)
    (project / "warehouse" / "shop.duckdb").unlink()  # the warehouse is PostgreSQL now
    _write_profile(project, server.port, dbname)
    git(project.parent, "add", "-A")
    git(project.parent, "commit", "-qm", "profile: PostgreSQL")
    seen: dict[str, list[tuple]] = {}
    drop = target_build.drop_scratch_schema

    def snapshot_then_drop(target, schema):  # what the scratch schema held, read just before the tool drops it
        if (schema,) in _pg_rows(server, dbname, "select nspname from pg_namespace"):
            seen[mart] = _pg_rows(server, dbname, f'select * from "{schema}"."{mart}"')
        return drop(target, schema)

    before = _schemas(server, dbname)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, PASSWORD)
        mp.setattr(target_build, "drop_scratch_schema", snapshot_then_drop)
        proposal = flow.propose(words, project=project, warehouse_options=TargetOptions(validate_on_target=True,
                                                                                        extract_rows=rows))
    return OnPostgres(name, proposal, project.parent, before, _schemas(server, dbname), seen)


def test_propose_publishes_postgres_sql(on_pg):
    p = on_pg.proposal
    assert p.status == "published" and p.branch and p.target_dialect == "postgres"
    assert p.extract is not None and p.extract.database == CASES[on_pg.name][0]
    sampled = {r.relation for r in p.extract.relations if r.sampled}
    if on_pg.name == "sample":
        assert {"raw_shop.orders", "raw_shop.order_lines"} <= sampled and p.extract.foreign_keys
        assert all(r.rows <= 500 + r.parents_added for r in p.extract.relations)
    else:
        assert not sampled  # every table whole
    assert_committed_in(p, on_pg.repo, "postgres",
                        ("try_strptime", "qualify", "interval 1 day", "date_trunc('day',"))
    body = Path(p.pr).read_text()
    assert "Numbers in this description are from the extract" in body and "Warehouse extract" in body


def test_target_marts_equal_hand_written_postgres_sql(on_pg, pg_loaded):
    dbname, _words, mart, gold, _rows = CASES[on_pg.name]
    assert_target_mart(on_pg.proposal, mart, on_pg.name == "rides", _pg_rows(pg_loaded, dbname, gold),
                       on_pg.target_marts[mart])


def test_scratch_schema_is_gone(on_pg):
    tv = on_pg.proposal.target_validation
    assert tv.dropped and tv.schema_.startswith("dataeng_crew_") and tv.schema_ not in on_pg.schemas_after
    assert on_pg.schemas_after == on_pg.schemas_before  # nothing else was created (generate_schema_name override)


def test_no_password_in_any_written_file_pr_or_json(on_pg):
    p = on_pg.proposal
    assert p.target_validation is not None  # the password was used: the target build connected with it
    texts = written_texts(p, on_pg.repo)
    leaked = [name for name, text in texts.items() if PASSWORD in text]
    assert not leaked and len(texts) > 20


# -- the pieces, on the same server ------------------------------------------------------------------------------
def _target(server, dbname: str, schema: str = "analytics", password: str = "") -> WarehouseTarget:
    return WarehouseTarget(profile="shop", target="pg", profiles_dir="/nowhere", type="postgres", host="127.0.0.1",
                           port=server.port, user="postgres", password=password, dbname=dbname, schema=schema)


def test_small_extract_keeps_foreign_keys_closed(pg_loaded, tmp_path):
    summary = extract_target(_target(pg_loaded, "shopdb"), tmp_path, max_rows=300, window_days=365)
    rows = {r.relation: r for r in summary.relations}
    assert rows["raw_shop.orders"].sampled and rows["raw_shop.products"].rows == rows["raw_shop.products"].source_rows
    assert "raw_shop.orders.customer_id -> raw_shop.customers.id" in summary.foreign_keys
    assert "raw_shop.order_lines.order_id -> raw_shop.orders.id" in summary.foreign_keys
    con = open_built(summary.db_file)
    try:
        assert con.execute("select current_database()").fetchone()[0] == "shopdb"  # as the sources name it
        assert all(orphans(con, fk) == 0 for fk in summary.foreign_keys)
        sampled_orders = con.execute("select count(*) from raw_shop.order_lines").fetchone()[0]
    finally:
        con.close()
    assert sampled_orders <= 300  # a child sampled to the bound; its parents pulled in by key
    assert rows["raw_shop.orders"].parents_added > 0 and summary.window_days == 365


def test_a_large_view_is_read_bounded(pg_loaded, tmp_path):
    """TABLESAMPLE does not apply to a view: a view larger than the sample is read with a LIMIT."""
    _pg_exec(pg_loaded, "postgres", "drop database if exists viewdb")
    _pg_exec(pg_loaded, "postgres", "create database viewdb")
    _pg_exec(pg_loaded, "viewdb", "create schema app; create table app.events as select g as id, "
                                  "timestamp '2024-01-01' + g * interval '1 minute' as happened_at "
                                  "from generate_series(1, 5000) g; create view app.recent_events as "
                                  "select * from app.events where id > 10")
    summary = extract_target(_target(pg_loaded, "viewdb"), tmp_path, max_rows=400)
    rows = {r.relation: r for r in summary.relations}
    assert rows["app.recent_events"].sampled and rows["app.recent_events"].rows == 400
    assert rows["app.events"].sampled and 0 < rows["app.events"].rows <= 400


@pytest.mark.parametrize("how", ["failed build", "ctrl-c"])
def test_scratch_schema_dropped_when_the_target_build_fails_or_is_interrupted(pg_loaded, tmp_path, monkeypatch, how):
    def create(schema: str) -> None:
        _pg_exec(pg_loaded, "shopdb", f'create schema "{schema}"; create table "{schema}".half_built (x int)')

    run = fake_run(tmp_path, _target(pg_loaded, "shopdb"))
    assert stop_target_build(monkeypatch, run, create, how) not in _schemas(pg_loaded, "shopdb")


def test_generate_schema_name_override_keeps_every_node_in_the_scratch_schema(pg_loaded, tmp_path):
    target = _target(pg_loaded, "shopdb")
    source = tmp_path / "src"
    (source / "models").mkdir(parents=True)
    (source / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n"
                                            "models:\n  shop:\n    +schema: marts\n")
    (source / "models" / "elsewhere.sql").write_text("{{ config(schema='other', materialized='table') }}\nselect 1 as x\n")
    schema = target_build.scratch_schema("20261204T000001-schema")
    project = target_build.prepare_scratch_project(source, tmp_path / "scratch", {}, schema)
    before = _schemas(pg_loaded, "shopdb")
    try:
        built = run_dbt(["build"], project, target_build.write_target_profile(tmp_path / "profiles", "shop", target,
                                                                              schema), write_json=False)
        assert built.success, built.error
        assert _pg_rows(pg_loaded, "shopdb", "select table_schema from information_schema.tables "
                        "where table_name = 'elsewhere'") == [(schema,)]
        assert _schemas(pg_loaded, "shopdb") - before == {schema}
        wrong = target_build.write_target_profile(tmp_path / "wrong", "shop", target, "analytics")
        refused = run_dbt(["build"], project, wrong, write_json=False)
        assert not refused.success and "builds only in schema" in (refused.error or "") + str(
            [n.message for n in refused.nodes])
    finally:
        assert target_build.drop_scratch_schema(target, schema)
    assert "analytics" not in _schemas(pg_loaded, "shopdb") - before


def test_errors_name_the_profile_and_target_never_the_password(pg_loaded, tmp_path):
    from dataeng_crew.errors import WarehouseError

    wrong = _target(pg_loaded, "shopdb", password=PASSWORD).model_copy(update={"port": 1})
    with pytest.raises(WarehouseError) as err:
        extract_target(wrong, tmp_path)
    assert "profile 'shop', target 'pg'" in str(err.value) and PASSWORD not in str(err.value)
    assert PASSWORD not in wrong.model_dump_json() and PASSWORD not in repr(wrong)
    assert not list(tmp_path.rglob("*.duckdb"))  # nothing half-written


def test_cents_are_the_same_on_postgres_as_on_duckdb(pg_loaded):
    """The average-order-value expression, transpiled as the committed SQL is, gives the same cents on both engines
    (issue 24: 152.015 was 152.01 on DuckDB and 152.02 on PostgreSQL)."""
    import duckdb

    expr = ("select cast(round(cast((g - d) * 100 / nullif(n, 0) as decimal(38, 9))) / 100 as decimal(18, 2)) as aov "
            "from (select cast(g as decimal(18, 2)) as g, cast(0 as decimal(18, 2)) as d, n from t) as x")
    values = [("304.03", 2), ("0.05", 2), ("100.01", 4), ("7.00", 3), ("0.15", 2), ("2.675", 1), ("10.10", 4)]
    rows = ", ".join(f"({v}, {n})" for v, n in values)
    duck = duckdb.connect().execute(f"with t(g, n) as (values {rows}) {expr}").fetchall()
    pg_sql = sqlglot.transpile(f"with t(g, n) as (values {rows}) {expr}", read="duckdb", write="postgres")[0]
    assert duck == _pg_rows(pg_loaded, "shopdb", pg_sql)
    assert duck[0] == (decimal.Decimal("152.02"),)


def test_grants_keep_only_roles_the_target_has(pg_loaded):
    """A grant to a role the server lacks would fail the build (``role "pii_reader" does not exist``): it is left
    out and listed for the PR; a role the server has keeps its grant. Unreachable: no role is assumed."""
    from dataeng_crew.contracts import ModelSpec

    _pg_exec(pg_loaded, "postgres", "do $$ begin if not exists (select 1 from pg_roles where rolname = 'bi_reader') "
                                    "then create role bi_reader nologin; end if; end $$")
    model = ModelSpec(name="stg_shop__customers", layer="staging", materialization="view", sql="select 1 as id",
                      columns=[], folder="staging/shop", description="d",
                      grants={"select": ["no_such_reader", "bi_reader"]})
    # (not pii_reader: test_postgres_engine creates it on the same server)
    for target, kept, missing in ((_target(pg_loaded, "shopdb"), ["bi_reader"], ["no_such_reader"]),
                                  (_target(pg_loaded, "shopdb").model_copy(update={"port": 1}), [],
                                   ["bi_reader", "no_such_reader"])):
        run = SimpleNamespace(target=target, models=[model], proposal=Proposal(proposal_id="g", request="x",
                                                                                  created_at="now"))
        warehouse_stages.check_grants(run, StageIO())
        assert run.proposal.roles_to_create == missing
        assert (run.models[0].grants or {}).get("select", []) == kept
    from dataeng_crew.render import render_pr_body

    assert "Grants left out" in render_pr_body(run.proposal)


def test_validate_on_target_builds_a_pull_requests_checkout_in_a_scratch_schema_then_drops_it(on_pg, pg_loaded,
                                                                                               tmp_path, monkeypatch):
    """The on-target CI workflow's command, on the published branch's checkout: green, nothing left behind; a failing
    test turns it red, and the scratch schema is dropped all the same."""
    import json

    from click.testing import CliRunner

    from dataeng_crew.cli import main

    if on_pg.name != "sample":
        pytest.skip("one warehouse is enough for the CI command")
    checkout = tmp_path / "pr"
    git(on_pg.repo, "worktree", "add", "-q", str(checkout), on_pg.proposal.branch)
    project = checkout / "dbt_project"
    dbname = CASES["sample"][0]
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    before = _schemas(pg_loaded, dbname)
    green = CliRunner().invoke(main, ["validate", "--on-target", "--project", str(project), "--run-id", "pr_7_1",
                                      "--json"])
    assert green.exit_code == 0, green.output
    result = json.loads(green.stdout[green.stdout.index("{"):])
    assert result["schema"] == "dataeng_crew_pr_7_1" and result["success"] and result["dropped"]
    assert result["tests_passed"] >= 5 and result["tests_failed"] == 0
    (project / "tests" / "no_order_ever.sql").write_text("select * from {{ ref('fct_daily_sales') }}\n")
    summary = tmp_path / "summary.md"
    red = CliRunner().invoke(main, ["validate", "--on-target", "--project", str(project), "--run-id", "pr_7_2",
                                    "--markdown", str(summary)])
    assert red.exit_code == 1 and "no_order_ever" in red.output
    assert "❌ failed" in summary.read_text() and "`dataeng_crew_pr_7_2`" in summary.read_text()
    assert _schemas(pg_loaded, dbname) == before  # both scratch schemas are gone
    assert PASSWORD not in green.output + red.output + summary.read_text()

