"""A second real engine: the proposal committed with ``--target-dialect postgres`` builds and tests green
on a real PostgreSQL server (dbt-postgres) and its daily sales mart equals the DuckDB one row for row;
contracts and DDL on the sample and on the jaffle-shop data (DuckDB and Postgres DDL executed).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pytest
import sqlglot

from dataeng_crew.agents import governance
from dataeng_crew import flow
from dataeng_crew.contracts import BuildResult, Proposal
from tests.conftest import JAFFLE, git, make_git_project
from dataeng_crew.tools.ddl import DIALECTS, parse_back
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.postgres import PgConnection, copy_tables, ensure_database, ensure_roles, write_postgres_profile

pytestmark = pytest.mark.slow

MART = "fct_daily_sales"
PG_SCHEMA = "analytics"
REQUESTS = {"sample": "daily_sales mart", "jaffle": "daily sales"}


@dataclass
class Engines:
    """One dataset proposed for Postgres, built by the flow on DuckDB and by dbt-postgres on the server."""

    name: str
    proposal: Proposal
    repo: Path
    raw_warehouse: Path
    checkout: Path
    dbname: str
    pg_build: BuildResult
    conn: PgConnection


def _checkout(repo: Path, branch: str, dest: Path) -> Path:
    """The committed branch's dbt project, exported (what a reviewer checks out)."""
    data = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", branch, "dbt_project"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "dbt_project"


@pytest.fixture(scope="session", params=sorted(REQUESTS))
def engines(request, tmp_path_factory, sample_warehouse, postgres_server) -> Engines:
    name = request.param
    base = tmp_path_factory.mktemp(f"pg-{name}")
    project = make_git_project(base / "repo", sample_warehouse)
    repo = project.parent
    warehouse = JAFFLE if name == "jaffle" else None
    proposal = flow.propose(REQUESTS[name], project=project, warehouse=warehouse, target_dialect="postgres",
                            ddl=DIALECTS)  # DDL for every dialect (`--ddl`); the default is the target's only
    raw = (repo / ".dataeng-crew" / "warehouses" / "jaffle_shop_classic.duckdb") if warehouse else sample_warehouse
    dbname = proposal.sources[0].database  # the sources pin the DuckDB catalog: same name on Postgres
    copy_tables(raw, postgres_server.conn, dbname)
    ensure_roles(postgres_server.conn, governance.load_policy(project).unmasked_readers)  # the grants name them
    checkout = _checkout(repo, proposal.branch, base / "checkout")
    profiles = write_postgres_profile(base / "pg-profiles", "shop", postgres_server.conn, dbname, schema=PG_SCHEMA)
    build = run_dbt(["build", *flow.build_selector(proposal.models)], checkout, profiles, target_path=base / "target",
                    log_path=base / "logs", write_json=False)
    return Engines(name, proposal, repo, raw, checkout, dbname, build, postgres_server.conn)


def _duckdb_rows(db_file: str, sql: str) -> list[tuple]:
    con = duckdb.connect(db_file, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _pg_rows(conn: PgConnection, dbname: str, sql: str) -> list[tuple]:
    con = conn.connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def test_raw_tables_copied_to_postgres_equal_duckdb(engines):
    con = duckdb.connect(str(engines.raw_warehouse), read_only=True)
    tables = con.execute("select table_schema, table_name from information_schema.tables "
                         "where table_schema not in ('information_schema', 'pg_catalog')").fetchall()
    con.close()
    assert tables
    for schema, table in tables:
        query = f'select * from "{schema}"."{table}"'
        duck = sorted(_duckdb_rows(str(engines.raw_warehouse), query), key=repr)
        pg = sorted(_pg_rows(engines.conn, engines.dbname, query), key=repr)
        assert pg == duck, f"{schema}.{table} differs after the copy"


def test_committed_sql_is_postgres_and_parses_back(engines):
    p = engines.proposal
    assert p.target_dialect == "postgres" and p.status == "published"
    for model in p.models:
        committed = git(engines.repo, "show", f"{p.branch}:dbt_project/{model.path}")
        assert committed.strip() != model.sql.strip()  # transpiled, not the DuckDB text
        for duckdb_only in ("try_strptime", "unnest(", "qualify", "interval 1 day"):
            assert duckdb_only not in committed.lower(), (model.name, duckdb_only)
        body = committed.replace("{{", "\"").replace("}}", "\"")  # Jinja kept: sqlglot parses what is left
        assert sqlglot.parse_one(body, read="postgres") is not None
        assert "{{ ref(" in committed or "{{ source(" in committed
    report = json.loads((Path(p.proposal_dir) / "report.json").read_text())
    assert report["target_dialect"] == "postgres"
    pr = Path(p.pr).read_text()  # the PR description (never a file of the branch)
    assert "Model SQL committed for **postgres**" in pr
    for warning in p.dialect_warnings:
        assert warning.split(": ", 1)[1][:60].replace("|", "\\|") in pr


def test_warnings_name_the_lossy_constructs_and_only_those(engines):
    warnings = engines.proposal.dialect_warnings
    if engines.name == "sample":  # timestamps stored as text: the guarded parse is not exactly try_strptime
        assert any(w.startswith("stg_shop__orders: try_strptime") for w in warnings)
        assert all("try_strptime" in w for w in warnings), warnings
    else:  # jaffle: dates are dates, money is integer cents: everything translates faithfully
        assert warnings == []


def test_generated_project_builds_and_tests_green_on_postgres(engines):
    build = engines.pg_build
    assert build.success, [(n.unique_id, n.status, n.message) for n in build.failed_nodes] or build.error
    statuses = {n.unique_id: n.status for n in build.nodes}
    assert statuses[f"model.shop.{MART}"] == "success"
    tests = [n for n in build.nodes if n.resource_type == "test"]
    assert len(tests) >= 10 and all(n.status == "pass" for n in tests)


def test_daily_sales_on_postgres_equals_duckdb_row_for_row(engines):
    assert engines.pg_build.success
    columns = [c.name for c in next(m for m in engines.proposal.models if m.name == MART).columns]
    select = f"select {', '.join(columns)} from {{}}{MART} order by 1"
    duck = _duckdb_rows(engines.proposal.warehouse, select.format("main."))
    pg = _pg_rows(engines.conn, engines.dbname, select.format(f"{PG_SCHEMA}."))
    assert len(duck) > 30 and len(pg) == len(duck)
    for d_row, p_row in zip(duck, pg):
        assert p_row == d_row  # dates equal, decimals exactly (Decimal == Decimal), counts equal
    assert sum(r[columns.index("net_sales")] for r in pg) == sum(r[columns.index("net_sales")] for r in duck)


def test_postgres_contract_is_enforced_in_the_database(engines):
    assert engines.pg_build.success
    rows = _pg_rows(engines.conn, engines.dbname,
                    "select column_name, data_type, is_nullable from information_schema.columns "
                    f"where table_schema = '{PG_SCHEMA}' and table_name = '{MART}' order by ordinal_position")
    types = {c: (t, n) for c, t, n in rows}
    assert types["sales_date"] == ("date", "NO") and types["order_count"][0] == "bigint"
    assert types["net_sales"] == ("numeric", "NO")


def test_contracts_enforced_in_the_duckdb_build(engines):
    rows = _duckdb_rows(engines.proposal.warehouse, "select constraint_type, constraint_column_names "
                        f"from duckdb_constraints() where table_name = '{MART}'")
    kinds = {(kind, tuple(cols)) for kind, cols in rows}
    assert ("PRIMARY KEY", ("sales_date",)) in kinds and ("NOT NULL", ("net_sales",)) in kinds
    yml = git(engines.repo, "show", f"{engines.proposal.branch}:dbt_project/models/marts/fct_daily_sales.yml")
    assert "enforced: true" in yml and "data_type: decimal(18, 2)" in yml


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ddl_for_five_dialects_parses_back(engines, dialect):
    sql = git(engines.repo, "show", f"{engines.proposal.branch}:dbt_project/ddl/{dialect}/{MART}.sql")
    mart = next(m for m in engines.proposal.models if m.name == MART)
    assert [c for c, _ in parse_back(sql, dialect)] == [c.name for c in mart.columns]


def test_duckdb_and_postgres_ddl_execute(engines, tmp_path):
    branch = engines.proposal.branch
    duck_sql = git(engines.repo, "show", f"{branch}:dbt_project/ddl/duckdb/{MART}.sql")
    con = duckdb.connect(str(tmp_path / "ddl.duckdb"))
    con.execute(duck_sql)
    assert con.execute(f"select count(*) from duckdb_columns() where table_name = '{MART}'").fetchone()[0] == 8
    con.close()
    pg_sql = git(engines.repo, "show", f"{branch}:dbt_project/ddl/postgres/{MART}.sql")
    ddl_db = f"ddl_{engines.name}"
    ensure_database(engines.conn, ddl_db)
    pg = engines.conn.connect(ddl_db)
    try:
        with pg.cursor() as cur:
            cur.execute(f"drop table if exists {MART}")
            cur.execute(pg_sql)
            cur.execute("select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                        "col_description(a.attrelid, a.attnum) from pg_attribute a "
                        f"where a.attrelid = '{MART}'::regclass and a.attnum > 0 order by a.attnum")
            cols = cur.fetchall()
            cur.execute(f"select conname from pg_constraint where conrelid = '{MART}'::regclass and contype = 'p'")
            assert cur.fetchone() is not None
    finally:
        pg.close()
    assert cols[0][:3] == ("sales_date", "date", True)
    assert dict((c[0], c[1]) for c in cols)["net_sales"] == "numeric(18,2)"
    assert all(c[3] for c in cols)  # every column carries its description as a comment


# The same rows in both engines; each DuckDB query below is transpiled and must give the same result on
# the real Postgres server (the rules of tools/dialect.py, checked for meaning, not only for spelling).
EQUIVALENCE_ROWS = [
    (1, "2024-01-02 03:04:05", 1999, "19.99", 3, "2024-01-01", "  Paid "),
    (2, "2024-01-02T23:59:59Z", 5, "0.05", 2, "2024-01-07", "PAID"),
    (3, "not a time", -7, "-0.07", 0, "2024-01-08", "refunded"),
    (4, None, 100001, "1000.01", 7, "2024-02-29", None),
    (5, "2024-03-10 02:30:00", 20001, "20.01", 2, "2024-03-10", "Paid"),
]
EQUIVALENCE_QUERIES = [
    "select id, cast(coalesce(try_strptime(txt, '%Y-%m-%d %H:%M:%S'), try_strptime(txt, '%Y-%m-%dT%H:%M:%SZ')) "
    "as timestamp) as parsed from t order by id",
    "select id, cast(cents / 100 as decimal(18, 2)) as dollars from t order by id",
    "select id, cast(amt / nullif(n, 0) as decimal(18, 2)) as avg_value from t order by id",
    "select cast(unnest(generate_series(min(d), max(d), interval 1 day)) as date) as spine_date from t",
    "with b as (select min(d) as f, max(d) as l from t) "
    "select cast(unnest(generate_series(f, l, interval 1 week)) as date) as spine_date from b",
    "select id, cast(date_trunc('week', d) as date) as week_start, cast(date_trunc('month', d) as date) as m from t order by id",
    "select id, lower(trim(status)) as status, id::varchar as id_text from t order by id",
    "with r as (select * from t union all select * from t) "
    "select id, txt from r qualify row_number() over (partition by id order by cents desc) = 1 order by id",
    "with r as (select * from t union all select id, txt, cents + 1, amt, n, d, status from t), "
    "latest as (select * from r qualify row_number() over (partition by id order by cents desc) = 1) "
    "select * from latest order by id",
    "select id, sha256(cast(status as varchar)) as status_hash from t order by id",  # governance masking
]


def test_transpiled_rules_give_duckdbs_results_on_postgres(postgres_server):
    from dataeng_crew.tools.dialect import transpile_model_sql

    ddl = "create table t (id integer, txt varchar, cents bigint, amt decimal(18, 2), n bigint, d date, status varchar)"
    duck = duckdb.connect()
    duck.execute(ddl)
    duck.executemany("insert into t values (?, ?, ?, ?, ?, ?, ?)", EQUIVALENCE_ROWS)
    ensure_database(postgres_server.conn, "rules")
    pg = postgres_server.conn.connect("rules")
    try:
        with pg.cursor() as cur:
            cur.execute("drop table if exists t")
            cur.execute(ddl)
            cur.executemany("insert into t values (%s, %s, %s, %s, %s, %s, %s)", EQUIVALENCE_ROWS)
            cur.execute("set timezone = 'America/New_York'")  # 2024-03-10 02:30 does not exist there
            plain_wrong = []
            for query in EQUIVALENCE_QUERIES:
                expected = duck.execute(query).fetchall()
                cur.execute(transpile_model_sql(query, "postgres").sql)
                assert cur.fetchall() == expected, query
                try:  # control: sqlglot alone, without our rules
                    cur.execute(sqlglot.transpile(query, read="duckdb", write="postgres")[0])
                    if cur.fetchall() != expected:
                        plain_wrong.append(query)
                except psycopg2.Error:
                    plain_wrong.append(query)
    finally:
        pg.close()
        duck.close()
    assert len(plain_wrong) == 5, plain_wrong  # try_strptime, both date spines, select-* dedupe and sha256 need rules


def test_a_translation_that_does_not_parse_back_fails_before_anything_is_committed(git_project, monkeypatch):
    from dataeng_crew.errors import SqlCheckError
    from dataeng_crew.tools import dialect

    def broken_rule(tree, rw):  # a wrong rule: its output is not SQL
        tree.find(dialect.exp.Column).replace(dialect.exp.Var(this="select from from"))
        return tree

    monkeypatch.setitem(dialect.RULES, "postgres", (broken_rule,))
    with pytest.raises(SqlCheckError, match="does not parse back"):
        flow.propose("daily_sales mart", project=git_project, target_dialect="postgres")
    assert git(git_project.parent, "branch", "--list", "dataeng-crew/*") == ""
