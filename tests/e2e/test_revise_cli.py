"""`dataeng-crew revise` through the installed CLI on a local proposal: a person's commit on the branch stays,
"make it weekly" is one follow-up commit on top of it, the same feedback again changes nothing, and feedback
outside the grammar is answered without a commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataeng_crew.tools import git_local
from tests.conftest import GOLD_DAILY_SALES, git
from tests.conftest import open_built

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("dataeng-crew"))
BRANCH = "dataeng-crew/daily-sales-mart"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, env=dict(os.environ), timeout=600)


@pytest.fixture(scope="module")
def revised(published, tmp_path_factory):
    """A copy of the shared proposal's repository; a person commits on the branch; then three revise runs."""
    _proposal, repo, *_ = published
    copy = tmp_path_factory.mktemp("revise") / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".dataeng-crew"), symlinks=True)
    tip = git(copy, "rev-parse", BRANCH)
    person = git_local.commit_on_top(copy, BRANCH, tip, {"dbt_project/analyses/weekly_check.sql": "select 1 as ok\n"},
                                     [], "analyses: a check the reviewer wants to keep")
    project = str(copy / "dbt_project")
    first = run("revise", BRANCH, "--project", project, "--comment", "Please make it weekly.", "--json", cwd=copy)
    after_first = git(copy, "rev-parse", BRANCH)
    again = run("revise", BRANCH, "--project", project, "--comment", "Please make it weekly.", "--json", cwd=copy)
    after_again = git(copy, "rev-parse", BRANCH)
    other = run("revise", BRANCH, "--project", project, "--comment", "add a cohort retention curve", "--json", cwd=copy)
    return {"repo": copy, "tip": tip, "person": person, "first": first, "after_first": after_first, "again": again,
            "after_again": after_again, "other": other}


def test_one_follow_up_commit_on_top_of_the_persons_commit(revised):
    first, repo = revised["first"], revised["repo"]
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["status"] == "revised" and data["commit"] == revised["after_first"]
    assert git(repo, "rev-parse", f"{data['commit']}^") == revised["person"]  # ONE commit, on top of the person's
    assert git(repo, "show", f"{BRANCH}:dbt_project/analyses/weekly_check.sql") == "select 1 as ok"
    files = git(repo, "ls-tree", "-r", "--name-only", BRANCH).splitlines()
    assert "dbt_project/models/marts/fct_weekly_sales.sql" in files
    assert "dbt_project/models/marts/fct_daily_sales.sql" not in files
    assert data["outcomes"][0]["status"] == "applied" and "changed the grain to weekly" in data["outcomes"][0]["reply"]
    assert "revision 1 committed" in first.stderr


def test_same_feedback_again_changes_nothing(revised):
    again = revised["again"]
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "no_new_feedback"
    assert revised["after_again"] == revised["after_first"]


def test_feedback_outside_the_grammar_is_answered_without_a_commit(revised):
    other = revised["other"]
    assert other.returncode == 0, other.stderr
    data = json.loads(other.stdout)
    assert data["status"] == "nothing_applied" and data["commit"] is None
    assert data["outcomes"][0]["reply"].startswith("cannot do this offline: “add a cohort retention curve”")
    assert git(revised["repo"], "rev-parse", BRANCH) == revised["after_first"]


def test_the_weekly_mart_equals_hand_written_sql(revised):
    data = json.loads(revised["first"].stdout)
    assert data["build_summary"].startswith("dbt build: ") and data["build_summary"].split()[2].split("/")[0] == \
        data["build_summary"].split()[2].split("/")[1]  # every node passed
    con = open_built(data["head_warehouse"])  # the sandbox copy: raw tables + the built mart
    weeks, wrong = con.execute(f"""
        with gold as ({GOLD_DAILY_SALES}),
        weekly as (
            select cast(date_trunc('week', day) as date) as week, sum(orders) as orders, round(sum(gross), 2) as gross,
                   round(sum(discounts), 2) as discounts, round(sum(refunds), 2) as refunds, round(sum(net), 2) as net
            from gold group by 1
        )
        select count(*), count(*) filter (where m.week_start_date is null or w.week is null or m.order_count <> w.orders
            or m.gross_sales <> w.gross or m.discounts <> w.discounts or m.refunds <> w.refunds or m.net_sales <> w.net)
        from weekly as w full join main.fct_weekly_sales as m on m.week_start_date = w.week""").fetchone()
    assert weeks > 50 and wrong == 0
    diff = next(d for d in data["diffs"] if d["model"] == "fct_weekly_sales")
    assert diff["status"] == "added" and diff["head_rows"] == weeks
