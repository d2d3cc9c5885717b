"""propose end to end through the flow: real profiling, real sqlglot, real dbt build, real git."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew import flow
from dataeng_crew.contracts import TestSpec
from dataeng_crew.errors import BuildError, RequestError, SqlCheckError
from tests.conftest import GOLD_DAILY_SALES, git, tree_state as _tree_state
from dataeng_crew.tools import sandbox
from dataeng_crew.tools.dbt_runner import run_dbt
from tests.conftest import open_built

pytestmark = pytest.mark.slow


def test_published_on_a_branch_with_one_commit(published):
    proposal, repo, _project, _before, base, stages = published
    assert proposal.status == "published"
    assert proposal.branch == "dataeng-crew/daily-sales-mart"
    assert git(repo, "rev-list", "--count", f"{base}..{proposal.branch}") == "1"
    files = git(repo, "diff", "--name-only", base, proposal.branch).splitlines()
    assert sorted(files) == proposal.files
    tables = ("orders", "order_lines", "refunds")  # only what the mart reads: no staging just for a test
    expected = {f"dbt_project/models/staging/shop/stg_shop__{t}.{ext}" for t in tables for ext in ("sql", "yml")}
    expected |= {"dbt_project/models/marts/fct_daily_sales.sql", "dbt_project/models/marts/fct_daily_sales.yml",
                 "dbt_project/models/staging/shop/_shop__sources.yml",
                 "dbt_project/gx/expectations/fct_daily_sales_suite.json",  # GX's own folder, the mart's only
                 "dbt_project/tests/generic/dataeng_crew_tests.sql",  # one file, no dbt_utils in this project
                 "dbt_project/ddl/duckdb/fct_daily_sales.sql"}  # the target dialect's DDL only
    assert set(files) == expected  # the PR text is the PR's: never a file of the project
    added = sum(int(line.split("\t")[0]) for line in git(repo, "diff", "--numstat", base, proposal.branch).splitlines())
    assert len(files) <= 12 and added <= 700, (len(files), added)  # a lean pull request
    assert stages[:3] == ["sandbox", "project inventory (dbt parse)", "profile warehouse"]
    assert stages[-1] == "publish (local branch)"


def test_users_working_tree_is_untouched(published):
    _proposal, repo, project, before, _base, _stages = published
    assert _tree_state(repo) == before
    assert not (project / "models" / "marts").exists()


def test_build_passed_with_tests_on_every_model(published):
    proposal = published[0]
    build = proposal.checks.build
    assert build.success and not build.failed_nodes
    models = {n.unique_id.split(".")[-1] for n in build.nodes if n.resource_type == "model"}
    assert models == {m.name for m in proposal.models}
    tested = {n.unique_id for n in build.nodes if n.resource_type == "test"}
    for model in proposal.models:
        assert any(f"unique_{model.name}_" in t for t in tested), f"{model.name} has no key test"
    assert any(t.startswith("test.shop.relationships_stg_shop__order_lines_order_id") for t in tested)
    assert not any("stg_shop__customers" in t for t in tested)  # customers are not staged: no test points there
    assert any(t.startswith("test.shop.accepted_values_stg_shop__orders_financial_status") for t in tested)
    assert any("crew_reconciles_with_fct_daily_sales" in t for t in tested)  # totals proven against staging
    assert proposal.checks.sql_issues == [] and proposal.checks.models_checked == 4


def test_mart_equals_independent_raw_computation_day_by_day(published):
    proposal = published[0]
    con = open_built(proposal.warehouse)
    mart = con.execute("""
        select sales_date, order_count, customer_count, gross_sales, discounts, refunds, net_sales
        from main.fct_daily_sales order by 1""").fetchall()
    cents = lambda x: round(float(x) * 100)  # noqa: E731
    truth = con.execute(GOLD_DAILY_SALES).fetchall()
    con.close()
    truth_by_day = {r[0]: r for r in truth}
    first, last = mart[0][0], mart[-1][0]
    assert len(mart) == (last - first).days + 1 == len(truth)  # every day present
    assert (first, last) == (min(truth_by_day), max(truth_by_day))
    empty_days = 0
    for day, orders, customers, gross, discounts, refunds, net in mart:
        t = truth_by_day[day]
        assert (orders, customers) == (t[1], t[2]), day
        assert [cents(gross), cents(discounts), cents(refunds), cents(net)] == [cents(v) for v in t[3:7]], day
        empty_days += orders == 0
    assert empty_days >= 2  # the shop's closed days are present with zeros
    assert sum(cents(r[6]) for r in mart) == sum(cents(t[6]) for t in truth)

def test_staging_cleans_the_mess(published):
    con = open_built(published[0].warehouse)
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    assert q("select count(*) - count(distinct order_id) from main.stg_shop__orders") == [(0,)]
    assert {r[0] for r in q("select distinct financial_status from main.stg_shop__orders")} <= {
        "paid", "pending", "refunded", "partially_refunded", "voided"}
    assert q("select count(*) from main.stg_shop__orders where created_at is null") == [(0,)]
    assert q("select typeof(subtotal_price) from main.stg_shop__orders limit 1") == [("DECIMAL(18,2)",)]
    assert q("select count(*) from main.stg_shop__orders where is_test") [0][0] > 0  # flagged, kept
    con.close()


def test_pr_description_and_report(published):
    proposal, repo, *_ = published
    body = Path(proposal.pr).read_text()
    for needle in ("# dataeng-crew: daily_sales mart", "```mermaid", "stg_shop__orders --> fct_daily_sales",
                   "`net_sales`", "Plan: how the request was read", "dbt build **passed**",
                   "no personal data is read", "git checkout dataeng-crew/daily-sales-mart", "dataeng-crew sample"):
        assert needle in body, needle
    first_screen = body.split("<details>")[0].splitlines()
    assert len(first_screen) <= 60 and any("dbt build" in line for line in first_screen[:30])
    report = json.loads((Path(proposal.proposal_dir) / "report.json").read_text())
    assert report["status"] == "published" and report["commit"] == git(repo, "rev-parse", proposal.branch)


def test_no_personal_data_is_read_so_none_is_staged_or_flagged(published):
    proposal = published[0]
    assert "customers" not in proposal.plan.source_tables  # the mart reads no customer attribute
    assert proposal.policies == [] and proposal.exposures == [] and proposal.approvals == []
    mart = next(m for m in proposal.models if m.layer == "marts")
    assert not any(c.meta.get("pii") for c in mart.columns)


def test_branch_builds_with_dbt_on_its_own(published, tmp_path):
    """Done-when: `dbt build` of the published branch passes, outside our sandbox."""
    proposal, repo, *_ = published
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", proposal.branch, str(repo), str(clone))
    db = tmp_path / "wh" / "shop.duckdb"
    db.parent.mkdir()
    shutil.copyfile(published[2] / "warehouse" / "shop.duckdb", db)
    profiles = sandbox.write_sandbox_profile(tmp_path, "shop", db)
    result = run_dbt(["build"], clone / "dbt_project", profiles, target_path=tmp_path / "target",
                     log_path=tmp_path / "logs")
    assert result.success, [n for n in result.failed_nodes]
    assert sum(n.resource_type == "model" for n in result.nodes) == 4


# ---------------------------------------------------------------- failures publish nothing


class WrongTestBrain(DeterministicBrain):
    """Adds a test on a column that does not exist: dbt errors, no triage can fix it."""

    def test(self, plan, sources, models, profile):
        sources, models, suites = super().test(plan, sources, models, profile)
        orders = next(m for m in models if m.name == "stg_shop__orders")
        broken = orders.model_copy(update={"tests": orders.tests + [
            TestSpec(name="crew_values_at_least", column="no_such_column", arguments={"min_value": 0})]})
        return sources, [broken if m is orders else m for m in models], suites


class HallucinatingBrain(DeterministicBrain):
    """Writes a mart that reads a column staging does not have."""

    def transform(self, plan, profile, staging):
        marts = super().transform(plan, profile, staging)
        return [marts[0].model_copy(update={"sql": marts[0].sql.replace("total_discounts", "total_discount_amt")})]


def _assert_nothing_published(repo: Path, before) -> None:
    assert _tree_state(repo) == before
    assert git(repo, "branch", "--list", "dataeng-crew/*") == ""


def test_failing_dbt_test_is_not_published_and_names_the_node(git_project):
    repo = git_project.parent
    before = _tree_state(repo)
    with pytest.raises(BuildError) as info:
        flow.propose("daily_sales mart", project=git_project, brain=WrongTestBrain())
    assert "crew_values_at_least_stg_shop__orders" in str(info.value) and "error" in str(info.value)
    _assert_nothing_published(repo, before)
    report = json.loads(next((repo / ".dataeng-crew" / "proposals").glob("*/report.json")).read_text())
    assert report["status"] == "failed" and report["branch"] is None
    failed = [n for n in report["checks"]["build"]["nodes"] if n["status"] == "error"]
    assert [n["unique_id"].split(".")[2] for n in failed] == ["crew_values_at_least_stg_shop__orders_0"]
    assert report["triage"] == []  # an erroring test is not something triage may loosen


def test_hallucinated_column_is_caught_by_sqlglot_before_dbt_runs(git_project, monkeypatch):
    repo = git_project.parent
    before = _tree_state(repo)
    calls = []
    monkeypatch.setattr(flow, "run_dbt", lambda *a, **k: calls.append(a))
    with pytest.raises(SqlCheckError, match="total_discount_amt"):
        flow.propose("daily_sales mart", project=git_project, brain=HallucinatingBrain())
    assert calls == []
    _assert_nothing_published(repo, before)


def test_ctrl_c_mid_build_leaves_everything_as_it_was(git_project, monkeypatch):
    repo = git_project.parent
    before = _tree_state(repo)

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(flow, "run_dbt", interrupted)
    with pytest.raises(KeyboardInterrupt):
        flow.propose("daily_sales mart", project=git_project)
    _assert_nothing_published(repo, before)
    report = json.loads(next((repo / ".dataeng-crew" / "proposals").glob("*/report.json")).read_text())
    assert report["status"] == "interrupted"


def test_unmappable_request_creates_nothing(git_project):
    repo = git_project.parent
    before = _tree_state(repo)
    with pytest.raises(RequestError):
        flow.propose("monthly rocket launches", project=git_project)
    _assert_nothing_published(repo, before)


def test_rerun_updates_the_same_branch(git_project):
    repo = git_project.parent
    base = git(repo, "rev-parse", "HEAD")
    first = flow.propose("daily_sales mart", project=git_project, publish="local")
    second = flow.propose("daily sales", project=git_project, publish="local")
    assert first.branch != second.branch or first.commit != second.commit
    again = flow.propose("daily_sales mart", project=git_project, publish="local")
    assert again.branch == first.branch
    assert git(repo, "rev-list", "--count", f"{base}..{again.branch}") == "1"


def test_publish_none_validates_without_git(tmp_path, sample_warehouse):
    project = tmp_path / "plain"
    shutil.copytree(Path(flow.__file__).parents[1] / "dbt_project", project,
                    ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    proposal = flow.propose("weekly sales", project=project, warehouse=sample_warehouse, publish="none")
    assert proposal.status == "validated" and proposal.branch is None
    con = open_built(proposal.warehouse)
    weeks = con.execute("select count(*), count(distinct dayofweek(week_start_date)) from main.fct_weekly_sales").fetchone()
    con.close()
    assert weeks[0] >= 52 and weeks[1] == 1  # every week, all starting on the same weekday


def test_sandbox_duckdb_refuses_file_reads_even_past_sqlglot(git_project, tmp_path):
    """Defence in depth: the sandbox profile disables external access for dbt's own connection."""
    box = sandbox.prepare_sandbox(git_project, git_project / "warehouse" / "shop.duckdb", tmp_path / "sb")
    project_copy, profiles = box.project, box.profiles_dir
    (project_copy / "models" / "leak.sql").write_text("select * from read_text('/etc/passwd')\n")
    result = run_dbt(["build", "--select", "leak"], project_copy, profiles, target_path=tmp_path / "t",
                     log_path=tmp_path / "l")
    assert not result.success
    leak = next(n for n in result.nodes if n.unique_id == "model.shop.leak")
    assert leak.status == "error" and "disabled" in (leak.message or "").lower()
    (project_copy / "models" / "leak.sql").write_text(
        "{{ config(pre_hook=\"set enable_external_access = true\") }}\nselect 1 as n\n")
    result = run_dbt(["build", "--select", "leak"], project_copy, profiles, target_path=tmp_path / "t",
                     log_path=tmp_path / "l")
    leak = next(n for n in result.nodes if n.unique_id == "model.shop.leak")
    assert leak.status == "error" and "cannot enable external access" in (leak.message or "").lower()  # one way
