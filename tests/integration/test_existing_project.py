"""Proposals inside dbt projects that already exist: they build on the project's models, follow its paths and
yml keys, never replace its models, list every changed file, merge cleanly and build green from a fresh clone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dataeng_crew import flow
from dataeng_crew.checks import check_project, validate_project
from dataeng_crew.contracts import Proposal
from dataeng_crew.errors import AlreadyAnswered
from tests.conftest import open_built
from tests.project_fixtures import acme_monorepo, cwd, dbt_here, git, jaffle_duckdb

pytestmark = pytest.mark.slow

GOLD_JAFFLE_DAILY = """
with payments as (select order_id, sum(amount) / 100.0 as amount from raw_payments group by order_id)
select o.order_date as sales_date, count(*) as order_count, count(distinct o.user_id) as customer_count,
       coalesce(sum(p.amount), 0) as gross_sales
from raw_orders as o left join payments as p on p.order_id = o.id
group by o.order_date
"""


@pytest.fixture(scope="session")
def jaffle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Proposal, Proposal]:
    """jaffle_shop_duckdb (seeded) with two proposals made from the same base."""
    project = jaffle_duckdb(tmp_path_factory.mktemp("jaffle") / "jaffle_shop")
    daily = flow.propose("daily_sales mart", project=project, publish="local")
    weekly = flow.propose("weekly orders by status", project=project, publish="local")
    return project, daily, weekly


@pytest.fixture(scope="session")
def acme(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Proposal]:
    """The monorepo project; "daily_sales mart" clashes with its hand-written fct_daily_sales."""
    project = acme_monorepo(tmp_path_factory.mktemp("acme") / "repo")
    return project, flow.propose("daily_sales mart", project=project, publish="local")


def _added(repo: Path, proposal: Proposal) -> list[str]:
    return git(repo, "diff", "--name-only", "--diff-filter=A", f"{proposal.commit}~1", proposal.commit).splitlines()


def _changed(repo: Path, proposal: Proposal) -> list[str]:
    return git(repo, "diff", "--name-only", "--diff-filter=M", f"{proposal.commit}~1", proposal.commit).splitlines()


def test_jaffle_marts_build_on_the_projects_own_marts(jaffle):
    project, daily, weekly = jaffle
    for proposal in (daily, weekly):
        assert proposal.status == "published"
        assert proposal.sources == []  # the seeds are already modelled: no source, no new staging
        assert not [m for m in proposal.models if m.layer == "staging"]
        assert not [p for p in _added(project, proposal) if "/staging/" in p or p.endswith("sources.yml")]
        # the project keeps one schema.yml per folder: the mart's entry is the only change to it
        assert _changed(project, proposal) == ["models/schema.yml"]
        assert [m.path for m in proposal.modified] == ["models/schema.yml"]
        # the project's `orders` mart holds every row and column of stg_orders, plus the order amount: built on it
        assert "{{ ref('orders') }}" in proposal.models[0].sql and "stg_" not in proposal.models[0].sql
        assert any("Builds on the project's own models orders" in i for i in proposal.plan.interpretations)
    assert daily.models[0].name == "daily_sales"  # the project's marts carry no prefix
    assert daily.models[0].path == "models/daily_sales.sql"  # where the project keeps its marts
    # the returned orders are kept, and the plan says so
    assert any("returned" in i and "kept" in i for i in daily.plan.interpretations)


def test_a_request_the_projects_mart_answers_is_refused_naming_it(jaffle):
    project, _, _ = jaffle
    head = git(project, "rev-parse", "HEAD")
    branches = git(project, "branch", "--list")
    for request in ("customers mart with lifetime value", "customers mart"):
        with pytest.raises(AlreadyAnswered) as refused:
            flow.propose(request, project=project, publish="local")
        assert "already answers" in str(refused.value) and "models/customers.sql" in str(refused.value)
        assert ("customer_lifetime_value" in str(refused.value)) == ("lifetime" in request)
    assert git(project, "rev-parse", "HEAD") == head and git(project, "branch", "--list") == branches


def test_jaffle_yml_uses_the_keys_its_dbt_version_understands(jaffle):
    project, daily, _ = jaffle
    # jaffle keeps one schema.yml per folder: the mart's entry goes there, every line of the project's kept
    text = git(project, "show", f"{daily.commit}:models/schema.yml")
    before = (project / "models" / "schema.yml").read_text()
    rest = iter(text.splitlines())
    assert all(line in rest for line in before.splitlines())
    assert not git(project, "ls-tree", "--name-only", daily.commit, "models/daily_sales.yml")
    doc = yaml.safe_load(text)
    assert "data_tests:" not in text and "arguments:" not in text  # the project writes `tests:` (dbt >= 1.0)
    entry = next(m for m in doc["models"] if m["name"] == "daily_sales")
    columns = {c["name"]: c for c in entry["columns"]}
    assert columns["sales_date"]["tests"] == ["unique", "not_null"]


def test_jaffle_marts_equal_hand_written_sql_over_the_seeds(jaffle):
    _project, daily, weekly = jaffle
    with open_built(daily.warehouse) as con:
        got = con.execute("select sales_date, order_count, customer_count, gross_sales from daily_sales "
                          "where order_count > 0 order by 1").fetchall()
        gold = con.execute(GOLD_JAFFLE_DAILY + " order by 1").fetchall()
        assert len(got) == len(gold) > 50
        assert [(d, n, c, float(g)) for d, n, c, g in got] == [(d, n, c, pytest.approx(float(g))) for d, n, c, g in gold]
    with open_built(weekly.warehouse) as con:  # every status counted, week by week (weeks start on Monday)
        got = con.execute("select * exclude (order_count) from weekly_orders_by_status limit 0").description
        status = [d[0] for d in got if d[0] != "week_start_date"][0]
        diff = con.execute(f"""
            with gold as (
                select cast(date_trunc('week', order_date) as date) as week_start_date, status, count(*) as n
                from raw_orders group by all)
            select count(*) from gold full join (select * from weekly_orders_by_status where order_count > 0) as w
                on gold.week_start_date = w.week_start_date and gold.status = w.{status}
            where w.order_count is distinct from gold.n""").fetchone()
        assert diff == (0,)


def test_revenue_by_a_payment_column_reads_the_payments(jaffle):
    """The orders mart carries the order amount, but only payments carry the method: "revenue by payment method"
    is the payments' amount per method, dated by the order (jaffle payments have no time of their own)."""
    project, _, _ = jaffle
    with cwd(project):
        proposal = flow.propose("revenue per week by payment method", project=project, publish="none")
    assert proposal.status == "validated"
    mart = next(m for m in proposal.models if m.layer == "marts")
    assert mart.name == "weekly_revenue_by_payment_method" and "ref('stg_payments')" in mart.sql
    added = len(proposal.files) - len(proposal.modified)  # validated, not published: the PR text still counts them
    assert added >= 1 and f"**Files**: {added} added, {len(proposal.modified)} existing modified" in \
        Path(proposal.pr).read_text()
    with open_built(proposal.warehouse) as con:
        got = con.execute(f"select week_start_date, payment_method, revenue from {mart.name} where revenue <> 0 "
                          "order by 1, 2").fetchall()
        gold = con.execute("""
            select cast(date_trunc('week', o.order_date) as date), p.payment_method, sum(p.amount) / 100.0
            from raw_payments as p join raw_orders as o on o.id = p.order_id
            group by 1, 2 having sum(p.amount) <> 0 order by 1, 2""").fetchall()
    assert [(w, m, float(r)) for w, m, r in got] == [(w, m, pytest.approx(float(r))) for w, m, r in gold]


def test_two_proposals_merge_and_a_fresh_clone_builds_green(jaffle, tmp_path):
    project, daily, weekly = jaffle
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", daily.branch, str(project), str(clone)], check=True)
    git(clone, "config", "user.name", "Reviewer")
    git(clone, "config", "user.email", "r@example.com")
    git(clone, "fetch", "-q", "origin", weekly.branch)
    git(clone, "merge", "-q", "--no-edit", "FETCH_HEAD")  # raises on a conflict
    assert (clone / "models" / "daily_sales.sql").is_file() and (clone / "models" / "weekly_orders_by_status.sql").is_file()
    assert dbt_here(clone, "seed").success
    build = dbt_here(clone, "build")  # with the project's own profile, as a user runs it
    assert build.success, build.error
    built = {n.unique_id.split(".")[-1] for n in build.nodes if n.resource_type == "model"}
    assert {"daily_sales", "weekly_orders_by_status", "customers", "orders", "stg_orders"} <= built


def test_check_and_validate_work_on_a_project_with_seeds(jaffle):
    project, _, _ = jaffle
    report = check_project(project, None)
    assert report.build is not None and report.build.success and not report.sql_issues
    validation = validate_project(project, None, models=["customers"])
    assert validation.passed


def test_monorepo_project_with_sources_package_and_custom_paths(acme):
    project, proposal = acme
    repo = project.parent
    assert proposal.status == "published"
    names = [m.name for m in proposal.models]
    # the hand-written fct_daily_sales is left alone; the new mart gets a new name and the plan says so
    assert names == ["stg_jaffle__payments", "fct_daily_sales_v2"]
    assert git(repo, "show", f"{proposal.commit}:analytics/transform/marts/fct_daily_sales.sql") == \
        (project / "transform" / "marts" / "fct_daily_sales.sql").read_text().strip()
    assert any("fct_daily_sales is already a model" in i for i in proposal.plan.interpretations)
    added = _added(repo, proposal)
    assert "analytics/transform/staging/jaffle/stg_jaffle__payments.sql" in added  # only the unmodelled table
    assert not [p for p in added if "stg_jaffle__orders" in p or p.endswith("__sources.yml")]
    assert "analytics/checks/generic/dataeng_crew_tests.sql" in added  # its test-paths
    assert not [p for p in added if p.startswith("analytics/models/") or p.startswith("analytics/tests/")]
    mart = next(m for m in proposal.models if m.layer == "marts")
    assert "ref('stg_jaffle__orders')" in mart.sql  # the project's staging model, its customer_id
    # the new table of the declared source goes into the source's own yml, comments kept, and the PR shows it
    # and the new staging model's entry into the folder's own models yml, as the project keeps one per folder
    staging = "analytics/transform/staging/jaffle/"
    assert _changed(repo, proposal) == [staging + "_jaffle__models.yml", staging + "_jaffle__sources.yml"]
    models_yml = yaml.safe_load(git(repo, "show", f"{proposal.commit}:{staging}_jaffle__models.yml"))["models"]
    assert [m["name"] for m in models_yml][-1] == "stg_jaffle__payments"
    sources_yml = git(repo, "show", f"{proposal.commit}:analytics/transform/staging/jaffle/_jaffle__sources.yml")
    assert "# loaded nightly by the shop's EL job" in sources_yml and "# one row per order" in sources_yml
    tables = [t["name"] for t in yaml.safe_load(sources_yml)["sources"][0]["tables"]]
    assert tables == ["orders", "customers", "payments"]
    body = Path(proposal.pr).read_text()
    assert "Modified existing files (2)" in body and "+      - name: payments" in body
    assert [m.path for m in proposal.modified] == [staging + "_jaffle__models.yml", staging + "_jaffle__sources.yml"]
    with open_built(proposal.warehouse) as con:
        got = con.execute("select sum(order_count), sum(customer_count), sum(gross_sales) "
                          "from fct_daily_sales_v2").fetchone()
        gold = con.execute("with d as (select order_date, count(*) n, count(distinct user_id) c "
                           "from raw_jaffle.orders group by 1) select sum(n), sum(c), "
                           "(select sum(amount) / 100.0 from raw_jaffle.payments) from d").fetchone()
        assert (got[0], got[1], float(got[2])) == (gold[0], gold[1], pytest.approx(gold[2]))


def test_monorepo_fresh_clone_builds_and_check_passes(acme, tmp_path):
    project, proposal = acme
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", proposal.branch, str(project.parent), str(clone)], check=True)
    analytics = clone / "analytics"
    (analytics / "warehouse.duckdb").write_bytes((project / "warehouse.duckdb").read_bytes())  # the raw data
    assert dbt_here(analytics, "deps").success
    build = dbt_here(analytics, "build")
    assert build.success, build.error
    assert "fct_daily_sales_v2" in {n.unique_id.split(".")[-1] for n in build.nodes}
    report = check_project(project, None)
    assert report.build is not None and report.build.success


def test_a_cleared_proposals_folder_breaks_no_later_proposal(jaffle, monkeypatch):
    """dbt's saved parse of an earlier sandbox is reused; the seeds it points at must be this sandbox's."""
    from dataeng_crew.settings import PARSE_CACHE_ENV

    monkeypatch.delenv(PARSE_CACHE_ENV, raising=False)  # the repository's own cache, as a user has it
    project, _, _ = jaffle
    proposals = project / ".dataeng-crew" / "proposals"
    flow.propose("weekly orders", project=project, publish="none")  # its parse is kept in the repository
    assert (project / ".dataeng-crew" / "parse" / "partial_parse.msgpack").is_file()
    aside = project.parent / "proposals-aside"
    proposals.rename(aside)  # as a user clearing old proposals does
    try:
        again = flow.propose("monthly orders", project=project, publish="none")
    finally:
        shutil.rmtree(proposals, ignore_errors=True)
        aside.rename(proposals)
    assert again.checks.build is not None and again.checks.build.success

