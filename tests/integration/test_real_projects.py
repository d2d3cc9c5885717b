"""Proposals in two more real dbt projects nobody here wrote (vendored from ../shared/projects): dbt_production_blueprint
(staging/intermediate/marts, dbt_utils + dbt_expectations, custom schemas, dirty seeds) and nba_monte_carlo (flat, no
tests). Each proposal is published, merged, built green from a fresh clone with the project's own profile, and its
numbers equal hand-written SQL over the raw seeds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dataeng_crew import flow
from dataeng_crew.errors import AlreadyAnswered
from tests.conftest import open_built
from tests.project_fixtures import commit_all, cwd, dbt_here, git

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
IGNORE = "target/\nlogs/\n*.duckdb\n*.duckdb.wal\ndbt_packages/\n.dataeng-crew/\n"


def _real_project(name: str, dest: Path) -> Path:
    shutil.copytree(DATA / name, dest, ignore=shutil.ignore_patterns("VENDORED.md"))
    (dest / ".gitignore").write_text(IGNORE)
    commit_all(dest)
    with cwd(dest):
        if (dest / "packages.yml").is_file():
            assert dbt_here(dest, "deps").success
        seeded = dbt_here(dest, "seed")
    assert seeded.success, seeded.error
    return dest


def _raw(con, table: str) -> str:  # noqa: ANN001 - the seed's schema differs per project (custom schemas)
    schema = con.execute("select table_schema from information_schema.tables where table_name = ? "
                         "and table_catalog = current_database()", [table]).fetchone()[0]
    return f"{schema}.{table}"


def _proposed(name: str, dest: Path, requests: tuple[str, ...], merged: bool = False) -> tuple[Path, dict]:
    """A fresh copy of the real project ``name`` at ``dest`` and one local proposal per request: from one base, or
    each merged before the next is proposed (the everyday flow)."""
    project = _real_project(name, dest)
    proposals = {}
    with cwd(project):
        for request in requests:
            proposals[request] = flow.propose(request, project=project, publish="local")
            if merged:
                git(project, "merge", "-q", "--ff-only", proposals[request].branch)
    return project, proposals


@pytest.fixture(scope="module")
def blueprint(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    # blueprint keeps one schema.yml per folder: proposals add to the same file, so each is merged before the next
    return _proposed("dbt_production_blueprint", tmp_path_factory.mktemp("bp") / "blueprint",
                     ("monthly revenue", "daily payments by payment method", "monthly revenue by region"), merged=True)


def test_blueprint_revenue_equals_hand_sql_over_the_raw_seeds(blueprint):
    _project, proposals = blueprint
    monthly = proposals["monthly revenue"]
    assert monthly.status == "published" and monthly.checks.build.success
    mart = next(m for m in monthly.models if m.layer == "marts")
    # stg_orders repeats O1002 (the seed has it twice) and the project does not dedupe it: the mart does, and says so
    assert "qualify row_number() over (partition by order_id" in mart.sql
    assert any("repeats order_id" in i for i in monthly.plan.interpretations)
    assert any("Deleted orders" in i for i in monthly.plan.interpretations)
    with open_built(monthly.warehouse) as con:
        got = con.execute(f"select month_start_date, order_count, gross_sales, refunds, net_sales "
                          f"from {_raw(con, mart.name)} where order_count > 0 order by 1").fetchall()
        gold = con.execute(f"""
            select cast(date_trunc('month', cast(order_date as date)) as date), count(*),
                   sum(coalesce(cast(order_total as decimal(18, 2)), 0)),
                   sum(case when lower(trim(order_status)) = 'refunded' then cast(order_total as decimal(18, 2))
                       else 0 end)
            from (select distinct * from {_raw(con, 'raw_orders')}) as o
            where not coalesce(cast(is_deleted as boolean), false)
              and lower(trim(order_status)) not in ('cancelled', 'chargeback')
            group by 1 order by 1""").fetchall()
    assert [(m, n, float(g), float(r), float(net)) for m, n, g, r, net in got] == \
        [(m, n, float(g), float(r), float(g - r)) for m, n, g, r in gold] == [(gold[0][0], 8, 675.5, 30.0, 645.5)]
    # no refund table: the order marked Refunded is refunded in full (it was in net sales, with refunds 0)
    assert any("stg_orders.order_status is refunded was refunded in full" in i for i in monthly.plan.interpretations)


def test_blueprint_payments_and_breakdown_equal_hand_sql(blueprint):
    _project, proposals = blueprint
    payments, by_region = proposals["daily payments by payment method"], proposals["monthly revenue by region"]
    assert payments.status == by_region.status == "published"
    with open_built(payments.warehouse) as con:
        mart = next(m for m in payments.models if m.layer == "marts").name
        amount = next(c.name for c in next(m for m in payments.models if m.layer == "marts").columns
                      if "amount" in c.name)
        got = con.execute(f"select payment_method, sum(payments_count), sum({amount}) from {_raw(con, mart)} "
                          "group by 1 having sum(payments_count) > 0 order by 1").fetchall()
        gold = con.execute(f"""
            select lower(trim(payment_method)), count(*), sum(cast(amount as decimal(18, 2)))
            from (select distinct * from {_raw(con, 'raw_payments')}) as p
            where lower(trim(status)) not in ('voided', 'failed', 'chargeback')
            group by 1 order by 1""").fetchall()
    assert [(m, n, float(a)) for m, n, a in got] == [(m, n, float(a)) for m, n, a in gold]
    with open_built(by_region.warehouse) as con:
        mart = next(m for m in by_region.models if m.layer == "marts").name
        total = con.execute(f"select sum(order_count), sum(gross_sales) from {_raw(con, mart)}").fetchone()
    assert (total[0], float(total[1])) == (8, 675.5)  # every valid order in exactly one region


def test_blueprint_answered_requests_are_refused_naming_the_model(blueprint):
    project, _ = blueprint
    with cwd(project), pytest.raises(AlreadyAnswered) as refused:
        flow.propose("customers mart with lifetime value", project=project, publish="local")
    assert "fct_customer_ltv" in str(refused.value) and "lifetime_value" in str(refused.value)


def test_blueprint_merged_proposals_build_green_from_a_fresh_clone_without_raw_pii(blueprint, tmp_path):
    project, proposals = blueprint
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    marts = yaml.safe_load((clone / "models" / "marts" / "schema.yml").read_text())["models"]
    assert sorted(m["name"] for m in marts) == sorted(m.name for p in proposals.values() for m in p.models
                                                       if m.layer == "marts")  # one file, as the project keeps
    with cwd(clone):
        assert dbt_here(clone, "deps").success and dbt_here(clone, "seed").success
        build = dbt_here(clone, "build")
    assert build.success, build.error
    built = {n.unique_id.split(".")[-1] for n in build.nodes if n.resource_type == "model"}
    assert {m.name for p in proposals.values() for m in p.models} <= built
    with open_built(next(iter(proposals.values())).warehouse) as con:
        raw = {str(v) for row in con.execute(f"select first_name, last_name, email, phone from "
                                             f"{_raw(con, 'raw_customers')}").fetchall() for v in row if v}
    for p in proposals.values():
        with open_built(p.warehouse) as con:
            for m in p.models:
                rows = con.execute(f"select * from {_raw(con, m.name)}").fetchall()
                assert not raw & {str(v) for row in rows for v in row}


@pytest.fixture(scope="module")
def nba(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return _proposed("nba_monte_carlo", tmp_path_factory.mktemp("nba") / "nba",
                     ("ratings mart", "average elo rating by conference", "games by home team"))


def test_nba_flat_project_entity_mart_counts_every_home_game(nba):
    _project, proposals = nba
    proposal = proposals["ratings mart"]
    assert proposal.status == "published" and proposal.checks.build.success
    mart = next(m for m in proposal.models if m.layer == "marts")
    with open_built(proposal.warehouse) as con:
        got = dict(con.execute(f"select team_long, schedule_count from {mart.name}").fetchall())
        gold = dict(con.execute(f"select homeneutral, count(*) from {_raw(con, 'raw_schedule')} group by 1").fetchall())
    assert got == gold and sum(got.values()) == 1230  # one regular season: 1,230 games


def test_nba_totals_per_breakdown_value_without_any_time(nba):
    """No relation of the project has a time (the schedule's date is dropped by its models): a request that asks for
    no period is answered per breakdown value over every row, and the plan says so."""
    _project, proposals = nba
    elo, games = proposals["average elo rating by conference"], proposals["games by home team"]
    assert elo.status == games.status == "published"
    assert any("No time grain given" in i for i in elo.plan.interpretations)
    with open_built(elo.warehouse) as con:
        mart = next(m for m in elo.models if m.layer == "marts").name
        got = con.execute(f"select conf, average_elo_rating, ratings_count from {mart} order by 1").fetchall()
        gold = con.execute(f"select conf, avg(elo_rating), count(*) from {_raw(con, 'raw_team_ratings')} "
                           "group by 1 order by 1").fetchall()
    assert [(c, round(float(a), 2), n) for c, a, n in got] == [(c, round(float(a), 2), n) for c, a, n in gold]
    with open_built(games.warehouse) as con:
        mart = next(m for m in games.models if m.layer == "marts")
        assert [c.name for c in mart.columns] == ["home_team", "game_count"]  # the request's noun, not the table's
        got = dict(con.execute(f"select home_team, game_count from {mart.name}").fetchall())
        gold = dict(con.execute(f"""
            select r.team, count(*) from {_raw(con, 'raw_schedule')} as s
            join {_raw(con, 'raw_team_ratings')} as r on r.team_long = s.homeneutral group by 1""").fetchall())
    assert got == gold and len(got) == 30


def test_nba_after_a_merge_the_generated_models_are_not_building_blocks(nba):
    """Once the ratings mart is merged, its intermediate aggregate (one row per team) is a model of the project; a
    request about teams still reads the project's own ratings, not dataeng-crew's aggregate (it bound a constant
    schedule_count and was refused)."""
    project, proposals = nba
    git(project, "merge", "-q", "--no-edit", proposals["ratings mart"].branch)
    with cwd(project):
        teams = flow.propose("teams by conference", project=project, publish="local")
    assert teams.status == "published" and teams.plan.query.fact == "ratings"
    with open_built(teams.warehouse) as con:
        mart = next(m for m in teams.models if m.layer == "marts").name
        got = dict(con.execute(f"select conf, team_count from {mart}").fetchall())
        gold = dict(con.execute(f"select conf, count(*) from {_raw(con, 'raw_team_ratings')} group by 1").fetchall())
    assert got == gold == {"East": 15, "West": 15}
    clone = project.parent / "nba_clone"  # main with the two merged marts builds green from a fresh clone
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    git(project, "merge", "-q", "--no-edit", teams.branch)
    git(clone, "pull", "-q", "--no-edit", "origin", "main")
    with cwd(clone):
        assert dbt_here(clone, "seed").success
        build = dbt_here(clone, "build")
    assert build.success, build.error
    built = {n.unique_id.split(".")[-1] for n in build.nodes if n.resource_type == "model"}
    assert {"dim_ratings", mart} <= built
