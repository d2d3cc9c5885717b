"""A red CI run fed back to the role that wrote the failing model: the failed check is read from the fake GitHub
server, the crew (scripted LLM) gets the failing node's output as fenced untrusted data and rewrites the model;
the deterministic brain says it cannot."""

from __future__ import annotations

from github import Auth, Github

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew.agents.revision import RevisingBrain, parse_feedback
from dataeng_crew.tools import github_review
from tests.fakes.github_server import FakeGitHub
from tests.fakes.scripted_llm import ScriptedLLM, good_answers, good_script, react

REQUEST = "daily_sales mart"
FAILURE = "Conversion Error: Could not convert string 'n/a' to INT64 in average_order_value"


def _red_ci_feedback():
    """The PR's head commit has a failed `validate` check whose summary table names the failing mart."""
    with FakeGitHub(token="t") as fake:
        remote = fake.create_repo("acme/shop", {"README.md": "# shop\n"})
        remote.refs["refs/heads/dataeng-crew/daily-sales-mart"] = head = remote.refs["refs/heads/main"]
        remote.pulls.append({"number": 1, "state": "open", "title": "t", "body": "", "draft": True,
                             "head": "dataeng-crew/daily-sales-mart", "base": "main", "labels": [], "reviewers": [],
                             "teams": []})
        fake.add_check_run("acme/shop", head, "dataeng-crew / validate", "failure",
                           summary="## dataeng-crew validate: ❌ failed\n\n| check | object | result | detail |\n"
                                   f"|---|---|---|---|\n| dbt model | `fct_daily_sales` | **error** | {FAILURE} |\n"
                                   "| dbt test | `not_null_fct_daily_sales_sales_date` | **skipped** |  |\n")
        fake.add_check_run("acme/shop", head, "lint", "success")
        fake.add_check_run("acme/shop", head, "dataeng-crew / validate (rerun)", "failure", annotations=[
            f"| dbt model | `stg_shop__orders` | **error** | {FAILURE} |"])  # what `validate` prints in Actions
        repo = Github(auth=Auth.Token("t"), base_url=fake.base_url, seconds_between_requests=0,
                      seconds_between_writes=0).get_repo("acme/shop")
        return github_review.read_feedback(repo, 1).feedback


def test_failing_node_of_a_red_ci_run_is_fed_back_and_fixed_by_the_crew(sample_profile, tmp_path):
    from dataeng_crew.agents.crew import CrewBrain

    check, annotated = _red_ci_feedback()
    assert check.kind == "check" and check.node == "fct_daily_sales" and FAILURE in check.body
    assert annotated.node == "stg_shop__orders" and FAILURE in annotated.body  # read from the run's annotations
    changes, refusals = parse_feedback(check)
    assert refusals == [] and [(c.kind, c.model) for c in changes] == [("repair", "fct_daily_sales")]

    drafts = good_answers(sample_profile, REQUEST)
    mart = drafts["transform"].models[0]
    fixed = mart.model_copy(update={"sql": mart.sql.replace("/ nullif(orders_per_period.order_count, 0)",
                                                            "/ nullif(cast(orders_per_period.order_count as decimal(18, 2)), 0)")})
    assert fixed.sql != mart.sql
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(drafts["transform"]), react(fixed)]))
    brain = RevisingBrain(CrewBrain(llm, storage_dir=tmp_path / "crewai"), REQUEST, changes)
    plan = brain.plan(REQUEST, sample_profile)
    _sources, staging = brain.model(plan, sample_profile)
    marts = brain.transform(plan, sample_profile, staging)

    assert brain.result.refused == {}
    assert [m.sql for m in marts] == [fixed.sql]  # the repaired model replaces the one CI refused
    assert llm.calls_by_role["transformer"] == 2  # the draft, then the repair with the CI output
    prompt = [p for role, p in llm.prompts if role == "transformer"][-1]
    fence = prompt.index("<<untrusted data: CI check output")
    assert fence < prompt.index(FAILURE) < prompt.index("<<end of untrusted data>>")


def test_the_deterministic_brain_says_it_cannot_rewrite_a_model_ci_refused(sample_profile):
    check, _ = _red_ci_feedback()
    changes, _ = parse_feedback(check)
    brain = RevisingBrain(DeterministicBrain(), REQUEST, changes)
    plan = brain.plan(REQUEST, sample_profile)
    _sources, staging = brain.model(plan, sample_profile)
    brain.transform(plan, sample_profile, staging)
    assert brain.result.refused[0].startswith("cannot do this offline: the deterministic brain does not rewrite SQL")
