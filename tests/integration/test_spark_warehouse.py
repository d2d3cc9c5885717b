"""The warehouse the user already has, on Spark: a project whose dbt profile names a ``type: spark`` target (method
``session``: a real local Spark, in this process) holding the sample shop, or an eval warehouse of another shape (the
ride-hailing app). ``propose`` extracts it into DuckDB, validates there, commits Spark SQL on a branch, builds it with
``--validate-on-target`` (dbt-spark) in a scratch database it drops, and its marts equal hand-written Spark SQL. No
token reaches a file, the PR or ``--json``.

One Spark session is shared by every test here (one xdist worker runs them all: ``ONE_WORKER_FILES`` in
tests/conftest.py), its catalog (Derby metastore and warehouse folder) under a temporary folder; dbt-spark's session method and the tool reuse it (``getOrCreate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import yaml

from dataeng_crew import flow
from dataeng_crew.contracts import Proposal, WarehouseTarget
from dataeng_crew.eval_datasets import build_dataset
from dataeng_crew.tools import target_build
from dataeng_crew.tools.extract import extract_target
from dataeng_crew.warehouse_stages import TargetOptions
from tests.conftest import git, make_git_project, open_built
from tests.warehouse_checks import (assert_committed_in, assert_target_mart, fake_run, orphans, stop_target_build,
                                    written_texts)

pytestmark = pytest.mark.slow

TOKEN = "tok-Sp4rk-9xQ-never-written"
TOKEN_ENV = "SHOP_SPARK_TOKEN_FOR_TEST"

# Hand-written on Spark over the raw tables, independently of the generator (compare eval/cases' gold.sql).
LATEST = "(select *, row_number() over (partition by id order by _loaded_at desc) as rn from raw_shop.{t}) as x"
GOLD_SALES = f"""
with orders as (select * from {LATEST.format(t='orders')} where rn = 1),
valid as (
    select id, customer_id, total_discounts, cast(substr(created_at, 1, 10) as date) as day
    from orders where not test and cancelled_at is null
),
lines as (select * from {LATEST.format(t='order_lines')} where rn = 1),
refunds as (select * from {LATEST.format(t='refunds')} where rn = 1),
gross as (select v.day, sum(l.quantity * l.price) as cents from valid v join lines l on l.order_id = v.id
          group by v.day),
per_day as (select day, count(*) as orders, count(distinct customer_id) as customers,
                   sum(total_discounts) as discount_cents from valid group by day),
refund_day as (select cast(r.created_at as date) as day, sum(r.amount) as cents from refunds r
               where r.order_id in (select id from valid) group by cast(r.created_at as date)),
days as (select explode(sequence(min(day), max(day), interval 1 day)) as day
         from (select day from per_day union all select day from refund_day) as d)
select d.day, coalesce(p.orders, 0), coalesce(p.customers, 0), coalesce(g.cents, 0) / 100.0,
       coalesce(p.discount_cents, 0) / 100.0, coalesce(r.cents, 0) / 100.0,
       (coalesce(g.cents, 0) - coalesce(p.discount_cents, 0) - coalesce(r.cents, 0)) / 100.0,
       round(cast(coalesce(g.cents, 0) - coalesce(p.discount_cents, 0) as decimal(38, 9)) / nullif(p.orders, 0)) / 100.0
from days d left join per_day p on p.day = d.day left join gross g on g.day = d.day
left join refund_day r on r.day = d.day
"""
GOLD_RIDES = """
with per_day as (select cast(requested_at as date) as day, count(*) as rides from rides.rides
                 where lower(trim(status)) not in ('cancelled', 'no_show') group by cast(requested_at as date)),
days as (select explode(sequence(min(day), max(day), interval 1 day)) as day from per_day)
select d.day, coalesce(p.rides, 0) from days d left join per_day p on p.day = d.day
"""
# (request, mart, gold SQL, extract rows): the sample shop read as a 500-row sample per table (foreign keys closed,
# the sampled path end to end), the rides warehouse whole (the DuckDB mart then equals the target's)
CASES = {"sample": ("daily_sales mart", "fct_daily_sales", GOLD_SALES, 500),
         "rides": ("daily rides", "fct_daily_rides", GOLD_RIDES, 100_000)}


@dataclass
class LocalSpark:
    """The session every test here shares, and the settings a profile names to open the same catalog."""

    session: object
    conf: dict[str, str]

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.session.sql(sql).collect()]

    def databases(self) -> set[str]:
        return {r[0] for r in self.rows("show databases")}


def _load(spark: LocalSpark, warehouse: Path, folder: Path) -> None:
    """Every table of a DuckDB warehouse as a Spark table over a Parquet copy (schema for schema)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        for schema, table in tables:
            out = folder / schema / table
            out.mkdir(parents=True)
            con.execute(f"copy {schema}.{table} to '{out}/part-0.parquet' (format parquet)")
            spark.session.sql(f"create database if not exists {schema}")
            spark.session.sql(f"create table {schema}.{table} using parquet location '{out}'")
    finally:
        con.close()


@pytest.fixture(scope="session")
def spark_loaded(sample_warehouse, tmp_path_factory):
    """A local Spark session (catalog under a temp folder) holding the sample shop (database ``raw_shop``) and the
    ride-hailing eval warehouse (database ``rides``)."""
    from tests.spark_session import start_local_spark

    root = tmp_path_factory.mktemp("spark")
    spark = LocalSpark(*start_local_spark(root, "dataeng-crew-tests"))
    _load(spark, sample_warehouse, root / "data")
    _load(spark, build_dataset("rides", tmp_path_factory.mktemp("rides-wh")), root / "data")
    yield spark
    spark.session.stop()


def _target(spark: LocalSpark, token: str = "") -> WarehouseTarget:
    return WarehouseTarget(profile="shop", target="spark", profiles_dir="/nowhere", type="spark", host="localhost",
                           password=token, schema="analytics", method="session",
                           options={"server_side_parameters": spark.conf})


def _write_profile(project: Path, spark: LocalSpark) -> None:
    (project / "profiles.yml").write_text(yaml.safe_dump({"shop": {"target": "spark", "outputs": {"spark": {
        "type": "spark", "method": "session", "host": "localhost", "schema": "analytics",
        "token": "{{ env_var('" + TOKEN_ENV + "') }}", "server_side_parameters": spark.conf}}}}))


@dataclass
class OnSpark:
    """One proposal made from a project whose profile points at the local Spark."""

    name: str
    proposal: Proposal
    repo: Path
    databases_before: set[str]
    databases_after: set[str]
    target_marts: dict[str, list[tuple]] = field(default_factory=dict)  # read just before the scratch schema dropped


@pytest.fixture(scope="session", params=sorted(CASES))
def on_spark(request, spark_loaded, sample_warehouse, tmp_path_factory) -> OnSpark:
    name = request.param
    words, mart, _gold, rows = CASES[name]
    spark = spark_loaded
    project = make_git_project(tmp_path_factory.mktemp(f"onspark-{name}") / "repo", sample_warehouse)
    (project / "warehouse" / "shop.duckdb").unlink()  # the warehouse is Spark now
    _write_profile(project, spark)
    git(project.parent, "add", "-A")
    git(project.parent, "commit", "-qm", "profile: Spark")
    seen: dict[str, list[tuple]] = {}
    drop = target_build.drop_scratch_schema

    def snapshot_then_drop(target, schema):  # what the scratch database held, read just before the tool drops it
        if schema in spark.databases():
            seen[mart] = spark.rows(f"select * from {schema}.{mart}")
        return drop(target, schema)

    before = spark.databases()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TOKEN_ENV, TOKEN)
        mp.setattr(target_build, "drop_scratch_schema", snapshot_then_drop)
        proposal = flow.propose(words, project=project, warehouse_options=TargetOptions(validate_on_target=True,
                                                                                        extract_rows=rows))
    return OnSpark(name, proposal, project.parent, before, spark.databases(), seen)


def test_propose_publishes_spark_sql(on_spark):
    p = on_spark.proposal
    assert p.status == "published" and p.branch and p.target_dialect == "spark"
    assert p.extract is not None and p.extract.engine == "spark" and p.extract.database == "spark_catalog"
    sampled = {r.relation for r in p.extract.relations if r.sampled}
    if on_spark.name == "sample":
        assert {"raw_shop.orders", "raw_shop.order_lines"} <= sampled and p.extract.foreign_keys
        assert all(r.rows <= 500 + r.parents_added for r in p.extract.relations)
    else:
        assert not sampled and {r.relation for r in p.extract.relations} >= {"rides.rides", "rides.zones"}
    assert_committed_in(p, on_spark.repo, "spark", ("try_strptime", "generate_series", "interval 1 day", "::"))
    sources = [f for f in git(on_spark.repo, "show", "--name-only", "--format=", p.branch).splitlines()
               if f.endswith("__sources.yml")]
    assert sources
    for f in sources:  # dbt-spark refuses a source database other than its schema
        doc = yaml.safe_load(git(on_spark.repo, "show", f"{p.branch}:{f}"))
        assert all("database" not in s for s in doc["sources"])
    body = Path(p.pr).read_text()
    assert "Numbers in this description are from the extract" in body and "Spark (catalog `spark_catalog`)" in body


def test_target_marts_equal_hand_written_spark_sql(on_spark, spark_loaded):
    _words, mart, gold, _rows = CASES[on_spark.name]
    assert_target_mart(on_spark.proposal, mart, on_spark.name == "rides", spark_loaded.rows(gold),
                       on_spark.target_marts[mart])


def test_scratch_schema_is_gone_and_grants_left_out(on_spark):
    p = on_spark.proposal
    tv = p.target_validation
    assert tv.dropped and tv.schema_.startswith("dataeng_crew_") and tv.schema_ not in on_spark.databases_after
    assert on_spark.databases_after == on_spark.databases_before  # nothing else was created
    if p.roles_to_create:  # Spark has no roles to check: grants are left out and listed, the build never breaks
        assert all(not (m.grants or {}).get("select") for m in p.models)
        assert "Spark has no roles the tool can check" in Path(p.pr).read_text()


def test_no_token_in_any_written_file_pr_or_json(on_spark):
    p = on_spark.proposal
    assert p.target_validation is not None  # the scratch build's profile carried the token (as an env_var)
    texts = written_texts(p, on_spark.repo)
    leaked = [name for name, text in texts.items() if TOKEN in text]
    assert not leaked and len(texts) > 20
    scratch_profile = next(on_spark.repo.rglob("on-target/profiles/profiles.yml")).read_text()
    assert "env_var(''DATAENG_CREW_TARGET_PASS''" in scratch_profile and "method: session" in scratch_profile


# -- the pieces, on the same session ------------------------------------------------------------------------------
def test_small_extract_keeps_foreign_keys_closed(spark_loaded, tmp_path):
    summary = extract_target(_target(spark_loaded), tmp_path, max_rows=300, window_days=365)
    rows = {r.relation: r for r in summary.relations}
    assert rows["raw_shop.orders"].sampled and rows["raw_shop.products"].rows == rows["raw_shop.products"].source_rows
    assert rows["raw_shop.orders"].source_rows == spark_loaded.rows("select count(*) from raw_shop.orders")[0][0]
    assert "raw_shop.orders.customer_id -> raw_shop.customers.id" in summary.foreign_keys
    assert "raw_shop.order_lines.order_id -> raw_shop.orders.id" in summary.foreign_keys
    con = open_built(summary.db_file)
    try:
        assert con.execute("select current_database()").fetchone()[0] == "spark_catalog"
        assert all(orphans(con, fk) == 0 for fk in summary.foreign_keys)
        lines = con.execute("select count(*) from raw_shop.order_lines").fetchone()[0]
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = 'orders'").fetchall())
    finally:
        con.close()
    assert lines <= 300  # a child sampled to the bound; its parents pulled in by key
    assert rows["raw_shop.orders"].parents_added > 0 and summary.window_days == 365
    assert types["_loaded_at"] == "TIMESTAMP" and types["id"] == "BIGINT" and types["test"] == "BOOLEAN"


@pytest.mark.parametrize("how", ["failed build", "ctrl-c"])
def test_scratch_schema_dropped_when_the_target_build_fails_or_is_interrupted(spark_loaded, tmp_path, monkeypatch,
                                                                               how):
    def create(schema: str) -> None:
        spark_loaded.session.sql(f"create database {schema}")
        spark_loaded.session.sql(f"create table {schema}.half_built (x int) using parquet")

    run = fake_run(tmp_path, _target(spark_loaded))
    assert stop_target_build(monkeypatch, run, create, how) not in spark_loaded.databases()
