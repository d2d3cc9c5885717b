"""The LLM crew, driven by a scripted BaseLLM through the REAL crew code (CrewAI agents, tasks, guardrails),
the real flow (sqlglot, dbt build, git) and the repair loop. Every test asserts the outcome and the calls."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
import yaml

from dataeng_crew.agents.crew import CrewBrain, TransformOutput
from dataeng_crew import flow
from dataeng_crew.contracts import ColumnSpec
from dataeng_crew.errors import SqlCheckError, UnsafeArtifactError
from tests.conftest import git, make_git_project
from tests.fakes.scripted_llm import ScriptedLLM, good_answers, good_script, react
from tests.conftest import open_built

pytestmark = pytest.mark.slow
REQUEST = "daily_sales mart"
MART = "fct_daily_sales"
NEW_DESCRIPTION = "Daily sales in dollars, one row per calendar day, written by the crew's transformation agent."


@pytest.fixture(scope="module")
def drafts(sample_profile):
    """What a good model would answer: the deterministic brain's contracts for every role, serialized."""
    return good_answers(sample_profile, REQUEST)


def mart_with(drafts, **update) -> TransformOutput:
    mart = drafts["transform"].models[0]
    return TransformOutput(models=[mart.model_copy(update=update)])


def hallucinated(drafts) -> TransformOutput:
    mart = drafts["transform"].models[0]
    return mart_with(drafts, sql=mart.sql.replace("total_discounts as discounts", "total_discount_amount as discounts"))


def text_order_count(drafts) -> TransformOutput:
    """The mart with a text order_count: sqlglot passes it (same columns), dbt's enforced contract refuses it."""
    mart = drafts["transform"].models[0]
    return mart_with(drafts, sql=mart.sql.replace("coalesce(orders_per_period.order_count, 0) as order_count",
                                                  "cast(coalesce(orders_per_period.order_count, 0) as varchar) "
                                                  "as order_count"))


def run(project: Path, llm: ScriptedLLM, tmp_path: Path, **kw):
    brain = CrewBrain(llm, project=project, storage_dir=tmp_path / "crewai")
    return flow.propose(REQUEST, project=project, publish="local", brain=brain, **kw), brain


def report_of(project: Path) -> dict:
    reports = sorted((project.parent / ".dataeng-crew" / "proposals").glob("*/report.json"))
    return json.loads(reports[-1].read_text())


def test_full_propose_through_the_crew_publishes_the_same_shape(tmp_path, sample_warehouse, drafts, published,
                                                                 monkeypatch):
    # the transformer answers a hand-written change to the draft: a different mart description
    improved = mart_with(drafts, description=NEW_DESCRIPTION)
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(improved)]))
    project = make_git_project(tmp_path / "crew", sample_warehouse)
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    proposal, _brain = run(project, llm, tmp_path)
    assert not list(system_tmp.glob("crewai:*.lock"))  # CrewAI's lock files stay in its own storage
    deterministic = published[0]  # the deterministic brain's proposal on the same sample (session fixture)

    assert proposal.status == deterministic.status == "published"
    assert proposal.brain == "crew (scripted/scripted)"
    assert [m.name for m in proposal.models] == [m.name for m in deterministic.models]
    assert proposal.files == deterministic.files and proposal.checks.build.success
    assert len(proposal.checks.build.nodes) == len(deterministic.checks.build.nodes)
    committed = git(project.parent, "show", f"{proposal.branch}:dbt_project/models/marts/fct_daily_sales.yml")
    assert yaml.safe_load(committed)["models"][0]["description"] == NEW_DESCRIPTION
    assert llm.calls_by_role == {"planner": 1, "modeler": 1, "transformer": 1, "quality": 1, "governance": 1}
    usage = {u.role: u for u in proposal.llm_usage}
    assert set(usage) == {"planner", "modeler", "transformer", "quality", "governance"}
    assert all(u.calls == 1 and u.tokens_in > 0 and u.tokens_out > 0 and u.fallback is None for u in usage.values())
    assert report_of(project)["llm_usage"][0]["calls"] == 1
    pr = Path(proposal.pr).read_text()
    assert "## LLM usage" in pr and "| transformer | scripted/scripted | 1 |" in pr
    assert flow.summary(proposal)["llm_usage"][2]["role"] == "transformer"
    assert not (tmp_path / "crewai").exists() or (tmp_path / "crewai").is_dir()  # storage kept out of $HOME


def test_hallucinated_column_is_caught_by_sqlglot_and_repaired_in_round_two(tmp_path, sample_warehouse, drafts):
    good = drafts["transform"].models[0]
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(hallucinated(drafts)), react(good)]))
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    proposal, _ = run(project, llm, tmp_path)

    assert proposal.status == "published" and proposal.checks.build.success
    assert [(r.round, r.model, r.role, r.stage, r.outcome) for r in proposal.repairs] == [
        (1, MART, "transformer", "sqlglot", "rewritten")]
    assert "total_discount_amount" in proposal.repairs[0].error
    assert "total_discount_amount" not in next(m for m in proposal.models if m.name == MART).sql
    assert llm.calls_by_role["transformer"] == 2  # the answer, then the repair
    repair_prompt = [p for role, p in llm.prompts if role == "transformer"][1]
    assert "total_discount_amount" in repair_prompt  # the error went back to the role that wrote the model
    assert report_of(project)["repairs"][0]["outcome"] == "rewritten"


def test_destructive_sql_is_refused_and_never_executed(tmp_path, sample_warehouse, drafts):
    good = drafts["transform"].models[0]
    destructive = mart_with(drafts, sql="delete from {{ ref('stg_shop__orders') }}")
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(destructive), react(good)]))
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    warehouse = project / "warehouse" / "shop.duckdb"
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    proposal, _ = run(project, llm, tmp_path)

    assert proposal.repairs[0].stage == "sqlglot" and "unsafe" in proposal.repairs[0].error
    assert proposal.status == "published"  # published only after the repaired, safe model passed
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before
    with open_built(proposal.warehouse) as con:  # the sandbox copy the build ran on
        assert con.execute("select count(*) from stg_shop__orders").fetchone()[0] > 0
    assert llm.calls_by_role["transformer"] == 2


def test_a_model_dbt_refuses_goes_back_to_its_author(tmp_path, sample_warehouse, drafts):
    # sqlglot passes it (same columns); dbt's enforced contract refuses a text order_count
    mart = drafts["transform"].models[0]
    wrong_type = text_order_count(drafts)
    assert wrong_type.models[0].sql != mart.sql
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(wrong_type), react(mart)]))
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    proposal, _ = run(project, llm, tmp_path)

    assert proposal.status == "published" and proposal.checks.build.success
    assert [(r.round, r.model, r.stage, r.outcome) for r in proposal.repairs] == [(1, MART, "dbt build", "rewritten")]
    assert "contract" in proposal.repairs[0].error.lower()
    assert "as varchar" not in git(project.parent, "show", f"{proposal.branch}:dbt_project/models/marts/{MART}.sql")
    assert llm.calls_by_role["transformer"] == 2


def test_a_repair_after_the_build_cannot_add_a_pii_exposure(tmp_path, sample_warehouse, sample_profile):
    # the lineage guard ran before the build; a mart repaired after it is checked again, and refused
    drafts = good_answers(sample_profile, REQUEST, also_stage=("customers",))  # the leaky repair reads customers
    mart = drafts["transform"].models[0]
    wrong_type = text_order_count(drafts)
    leaky = mart.model_copy(update={
        "sql": "with customers as (select * from {{ ref('stg_shop__customers') }})\n"
               "select email as customer_email, count(*) as order_count from customers group by email",
        "columns": [ColumnSpec(name="customer_email", description="e-mail", data_type="varchar"),
                    ColumnSpec(name="order_count", description="orders", data_type="bigint")]})
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(wrong_type), react(leaky)]))
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    with pytest.raises(UnsafeArtifactError, match="fct_daily_sales.customer_email"):
        run(project, llm, tmp_path)
    report = report_of(project)
    assert report["status"] == "failed" and [r["stage"] for r in report["repairs"]] == ["dbt build"]
    assert git(project.parent, "branch", "--list", "dataeng-crew/*") == ""
    assert llm.calls_by_role["transformer"] == 2


def test_a_model_never_fixed_stops_after_n_rounds_and_publishes_nothing(tmp_path, sample_warehouse, drafts):
    bad = hallucinated(drafts)
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[react(bad), react(bad.models[0])]))
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    with pytest.raises(SqlCheckError, match="2 repair round"):
        run(project, llm, tmp_path, max_repair_rounds=2)
    report = report_of(project)
    assert report["status"] == "failed" and report["branch"] is None
    assert [r["round"] for r in report["repairs"]] == [1, 2]
    assert llm.calls_by_role["transformer"] == 3  # the answer and two repairs
    assert git(project.parent, "branch", "--list", "dataeng-crew/*") == ""


def test_provider_down_falls_back_to_the_deterministic_brain(tmp_path, sample_warehouse, drafts):
    llm = ScriptedLLM.with_script(good_script(drafts, transformer=[ConnectionError("connection refused")]))
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    proposal, _ = run(project, llm, tmp_path)

    assert proposal.status == "published" and proposal.checks.build.success
    usage = {u.role: u for u in proposal.llm_usage}
    assert "connection refused" in usage["transformer"].fallback or "ConnectionError" in usage["transformer"].fallback
    assert usage["quality"].fallback.startswith("provider down earlier")
    assert usage["planner"].fallback is None
    assert llm.calls_by_role == {"planner": 1, "modeler": 1, "transformer": 3}  # 3 attempts, then no more calls
    assert usage["transformer"].retries == 2
    assert "deterministic fallback" in Path(proposal.pr).read_text()
    assert report_of(project)["llm_usage"][2]["fallback"]


def test_dbt_single_model_compiles_a_good_model_and_reports_a_bad_one(tmp_path, git_project, sample_profile):
    from dataeng_crew.agents.brains import DeterministicBrain
    from dataeng_crew.tools.dbt_model import dbt_single_model

    brain = DeterministicBrain()
    plan = brain.plan("daily_sales mart", sample_profile)
    sources, staging = brain.model(plan, sample_profile)
    warehouse = git_project / "warehouse" / "shop.duckdb"
    good = dbt_single_model(git_project, warehouse, staging[0], sources, staging, tmp_path / "ok", "build")
    assert good.success and any(n.status == "success" for n in good.nodes)
    broken = staging[0].model_copy(update={"sql": "select no_such_column as id from {{ source('shop', 'orders') }}"})
    bad = dbt_single_model(git_project, warehouse, broken, sources, staging, tmp_path / "bad", "build")
    assert not bad.success
    assert any("no_such_column" in (n.message or "") for n in bad.nodes if n.status == "error")
    assert not (git_project / "models" / "staging").exists()  # the user's project was not written
