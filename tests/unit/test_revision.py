"""The change-request grammar of the deterministic brain, and how its edits land on a mart (no dbt needed)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from dataeng_crew.agents.revision import (EditResult, RevisingBrain, apply_model_edits, parse_feedback,
                                          revised_request)
from dataeng_crew.ci import render_revise_workflow
from dataeng_crew.contracts import Feedback
from dataeng_crew.tools import git_local
from tests.conftest import git


def _parse(text: str, kind: str = "review_comment"):
    return parse_feedback(Feedback(id="review_comment:1", kind=kind, author="alice", body=text))


@pytest.mark.parametrize("text, kind, column, value", [
    ("Please rename net_sales to net_revenue.", "rename_column", "net_sales", "net_revenue"),
    ("rename column `net_sales` as net_revenue", "rename_column", "net_sales", "net_revenue"),
    ("make it weekly", "grain", None, "weekly"),
    ("Could you change the grain to month?", "grain", None, "monthly"),
    ("drop the average_order_value measure", "drop_measure", "average_order_value", None),
    ("add back average_order_value", "add_measure", "average_order_value", None),
    ("break it down by country", "breakdown", "country", None),
    ("only orders where financial_status = paid", "filter", "financial_status", "paid"),
    ("materialize it as a view", "materialization", None, "view"),
    ("add a not null test on refunds", "add_test", "refunds", "not_null"),
    ("remove the unique test on sales_date", "remove_test", "sales_date", "unique"),
    ("Exclude orders where financial_status = 'refunded'. Thanks!", "exclude_rows", "financial_status", "refunded"),
])
def test_grammar(text, kind, column, value):
    changes, refusals = _parse(text)
    assert refusals == [] and len(changes) == 1
    assert (changes[0].kind, changes[0].column, changes[0].value) == (kind, column, value)


def test_anything_else_is_refused_with_why_and_chatter_is_skipped():
    changes, refusals = _parse("LGTM overall.\nCan you compute the median basket size per cohort?\n> quoted: drop x")
    assert changes == [] and len(refusals) == 1
    assert refusals[0].startswith("cannot do this offline: “Can you compute the median basket size per cohort”")
    assert "rename <column> to <name>" in refusals[0]  # the reply states the grammar it does understand


def test_a_lead_in_is_not_mistaken_for_chatter():
    changes, refusals = _parse("Looks good, but make it weekly.\nThanks a lot!\nlooks good but add a median")
    assert [c.kind for c in changes] == ["grain"]
    assert len(refusals) == 1 and "“looks good but add a median”" in refusals[0]


def test_request_level_edits_rewrite_the_request_in_order():
    changes = _parse("make it weekly; break it down by country")[0] + _parse("make it monthly")[0]
    assert revised_request("daily_sales mart", changes) == "monthly_sales mart by country"


def _daily_sales(profile):
    """The deterministic brain's daily_sales proposal: (marts, all models with tests, suites)."""
    from dataeng_crew.agents.brains import DeterministicBrain

    brain = DeterministicBrain()
    plan = brain.plan("daily_sales mart", profile)
    sources, staging = brain.model(plan, profile)
    marts = brain.transform(plan, profile, staging)
    _s, models, suites = brain.test(plan, sources, staging + marts, profile)
    return marts, models, suites


def test_rename_drop_and_tests_rewrite_the_final_select_and_follow_the_columns(sample_profile):
    marts, models, suites = _daily_sales(sample_profile)
    edits = [c for text in ("rename net_sales to net_revenue", "drop the average_order_value measure",
                            "remove the unique test on sales_date", "rename missing_col to x")
             for c in _parse(text)[0]]
    result = EditResult()
    out, out_suites = apply_model_edits(models, suites, marts, list(enumerate(edits)), result)
    mart = next(m for m in out if m.layer == "marts")
    assert mart.sql.rstrip().endswith("from final") and "    refunds,\n    net_sales as net_revenue\n" in mart.sql
    assert [c.name for c in mart.columns][-2:] == ["refunds", "net_revenue"]  # average_order_value dropped
    assert not any(t.name == "unique" for t in mart.columns[0].tests)
    assert all("net_sales" not in str(t.arguments) for t in mart.tests)  # model tests follow the rename
    suite = next(s for s in out_suites if s.model == mart.name)
    assert all("net_sales" not in str(e.kwargs) and "average_order_value" not in str(e.kwargs) for e in suite.expectations)
    assert list(result.refused) == [3] and "has no column 'missing_col'" in result.refused[3]


def test_a_planner_refusal_refuses_only_that_edit(sample_profile):
    from dataeng_crew.agents.brains import DeterministicBrain

    edits = _parse("break it down by no_such_column")[0] + _parse("make it weekly")[0]
    brain = RevisingBrain(DeterministicBrain(), "daily_sales mart", edits)
    plan = brain.plan("daily_sales mart", sample_profile)
    assert plan.grain.value == "week" and list(brain.result.refused) == [0]
    assert brain.result.refused[0].startswith("cannot do this offline: ")


def test_exclusion_binds_to_a_staged_value_or_says_why(sample_profile):
    from dataeng_crew.agents.brains import DeterministicBrain
    from dataeng_crew.agents.revision import apply_exclusions

    brain = DeterministicBrain()
    plan = brain.plan("daily_sales mart", sample_profile)
    _src, staging = brain.model(plan, sample_profile)
    marts = brain.transform(plan, sample_profile, staging)
    edits = _parse("exclude orders where financial_status = Refunded")[0] + _parse(
        "exclude orders where financial_status = lost")[0]
    result = EditResult()
    out, applied = apply_exclusions(marts, list(enumerate(edits)), sample_profile, result)
    assert "where financial_status is distinct from 'refunded'" in out[0].sql
    assert list(applied.values()) == [["financial_status is distinct from 'refunded'"]]
    assert "'lost' is not a value of" in result.refused[1]


def test_own_commits_are_recognised_and_foreign_ones_listed(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "T")
    git(repo, "config", "user.email", "t@example.com")
    (repo / "a").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    base = git(repo, "rev-parse", "HEAD")
    own = git_local.commit_to_branch(repo, base, "dataeng-crew/x", {"m.sql": "select 1\n"},
                                     f"dataeng-crew: x\n\n{git_local.TRAILER}: p1")
    git(repo, "checkout", "-q", "dataeng-crew/x")
    (repo / "note.md").write_text("mine\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a person's note")
    person = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    assert git_local.foreign_commits(repo, "dataeng-crew/x", base) == [person]
    assert git_local.proposal_base(repo, person) == base
    top = git_local.commit_on_top(repo, "dataeng-crew/x", person, {"m.sql": "select 2\n"}, [], "dataeng-crew: x (r1)\n\n"
                                  f"{git_local.TRAILER}: p1")
    assert git(repo, "rev-parse", f"{top}^") == person and git(repo, "show", f"{top}:note.md") == "mine"
    with pytest.raises(Exception, match="moved while revising"):  # compare-and-swap: a stale tip never wins
        git_local.commit_on_top(repo, "dataeng-crew/x", person, {"m.sql": "select 3\n"}, [], "stale")
    assert own != top and subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", own, top]).returncode == 0


def test_revise_workflow_runs_only_for_writers_and_never_with_pull_request_target():
    text = render_revise_workflow("dbt_project", "", "dataeng-crew sample --project dbt_project")
    doc = yaml.safe_load(text)
    triggers = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads `on:` as True
    assert set(triggers) == {"pull_request_review", "issue_comment"} and "pull_request_target" not in text.split(
        "name: dataeng-crew revise")[1]
    job = doc["jobs"]["revise"]
    assert "changes_requested" in job["if"] and "head.repo.full_name == github.repository" in job["if"]
    assert "author_association" in job["if"] and "/dataeng-crew revise" in job["if"]
    check = job["steps"][0]["run"]
    assert "collaborators/$ACTOR/permission" in check and "admin|maintain|write" in check
    assert job["steps"][-1]["run"].strip().startswith('dataeng-crew revise --pr "$PR_NUMBER"')
    assert doc["permissions"] == {"contents": "write", "pull-requests": "write", "checks": "read"}


def test_renaming_to_a_sql_keyword_is_refused_naming_the_word(sample_profile):
    marts, models, suites = _daily_sales(sample_profile)
    edits = _parse("rename net_sales to select")[0]
    result = EditResult()
    out, _ = apply_model_edits(models, suites, marts, list(enumerate(edits)), result)
    assert "'select': it is a SQL keyword" in result.refused[0]
    assert "net_sales" in [c.name for c in next(m for m in out if m.layer == "marts").columns]  # nothing renamed


def test_dropping_every_measure_refuses_the_last_one(sample_profile):
    """A mart of dates only answers nothing: the drop that would leave no measure is refused, naming it."""
    marts, models, suites = _daily_sales(sample_profile)
    mart = next(m for m in models if m.layer == "marts")
    grain = mart.columns[0].name
    measures = [c.name for c in mart.columns if c.name != grain]
    edits = [c for name in measures for c in _parse(f"drop {name}")[0]]
    result = EditResult()
    out, _ = apply_model_edits(models, suites, marts, list(enumerate(edits)), result)
    assert list(result.refused) == [len(measures) - 1]
    assert f"cannot drop {measures[-1]}: it is the last measure" in result.refused[len(measures) - 1]
    assert [c.name for c in next(m for m in out if m.layer == "marts").columns] == [grain, measures[-1]]
