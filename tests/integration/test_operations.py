"""Cost guardrail, capabilities, history and rollback on real proposals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dataeng_crew.agents.capabilities import capabilities
from dataeng_crew import flow
from dataeng_crew.errors import PublishError
from dataeng_crew.history import load_proposals
from dataeng_crew.rollback import rollback
from tests.conftest import JAFFLE, git
from dataeng_crew.tools.warehouse import load_folder, profile_warehouse

pytestmark = pytest.mark.slow


def _tree_hashes(repo: Path, rev: str) -> dict[str, str]:
    out = git(repo, "ls-tree", "-r", rev)
    return {line.split("\t")[1]: line.split()[2] for line in out.splitlines()}


def _worktree_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts
                       and ".dataeng-crew" not in p.parts):
        digest.update(path.relative_to(repo).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_every_mart_is_explained_and_a_heavy_one_needs_cost_approval(git_project):
    repo = git_project.parent
    (git_project / "governance.yml").write_text("max_rows_scanned: 1000\nincremental_above_rows: 500\n"
                                               "cost_approvers: ['@finops']\n")
    git(repo, "commit", "-qam", "tight cost policy")
    proposal = flow.propose("daily_sales mart", project=git_project, publish="none")
    [cost] = proposal.costs
    assert cost.model == "fct_daily_sales" and cost.rows_scanned > 1000 and cost.over_threshold
    assert cost.materialization_advice == "incremental"
    approval = next(a for a in proposal.approvals if a.kind == "cost")
    assert approval.approvers == ["@finops"] and "fct_daily_sales" in approval.reasons[0]
    assert "Cost of `fct_daily_sales`" in Path(proposal.pr).read_text()


def test_default_policy_does_not_trip_on_the_sample(published):
    proposal = published[0]
    [cost] = proposal.costs
    assert not cost.over_threshold and cost.materialization_advice == "table"
    assert cost.rows_scanned >= 2000  # at least the orders it reads
    assert not any(a.kind == "cost" for a in proposal.approvals)


def test_capabilities_on_jaffle_shop_suggest_sensible_marts(tmp_path):
    profile = profile_warehouse(load_folder(JAFFLE, tmp_path / "j.duckdb"))
    data = capabilities(profile)
    assert [r["name"] for r in data["roles"]] == ["planner", "modeler", "transformer", "quality", "governance"]
    requests = {s["request"]: s["from"] for s in data["suggestions"]}
    assert "daily_sales mart" in requests and "monthly_sales mart" in requests
    assert requests["daily_sales mart"] == "raw_orders.order_date; gross sales from raw_payments.amount per order"
    assert "staging models" in requests


def test_history_lists_proposals_newest_first(git_project):
    flow.propose("daily_sales mart", project=git_project, publish="none")
    try:
        flow.propose("monthly rocket launches", project=git_project, publish="none")
    except Exception:  # noqa: BLE001 - a failed proposal is history too
        pass
    proposals = load_proposals(git_project.parent / ".dataeng-crew")
    assert [p.status for p in proposals] == ["failed", "validated"]
    assert proposals[0].request == "monthly rocket launches"


def test_rollback_of_an_unmerged_proposal_deletes_its_branch_only(git_project):
    repo = git_project.parent
    before = (_worktree_digest(repo), git(repo, "rev-parse", "HEAD"))
    proposal = flow.propose("daily_sales mart", project=git_project)
    result = rollback(flow.resolve_workspace(git_project), proposal.proposal_id[:15])
    assert result.action == "branch_deleted"
    assert git(repo, "branch", "--list", "dataeng-crew/*") == ""
    assert (_worktree_digest(repo), git(repo, "rev-parse", "HEAD")) == before
    report = json.loads((Path(proposal.proposal_dir) / "report.json").read_text())
    assert report["status"] == "rolled_back"
    with pytest.raises(PublishError, match="no published proposal"):
        rollback(flow.resolve_workspace(git_project), "nope")


def test_rollback_of_a_merged_proposal_builds_a_revert_that_restores_byte_for_byte(git_project):
    repo = git_project.parent
    (git_project / "models" / "marts").mkdir(parents=True)
    (git_project / "models" / "marts" / "_marts__models.yml").write_text(
        "version: 2\nmodels:\n  - name: fct_other\n    description: Someone else's mart.\n")
    (git_project / "models" / "marts" / "fct_other.sql").write_text("select 1 as id\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "an existing mart")
    base = git(repo, "rev-parse", "HEAD")
    proposal = flow.propose("daily_sales mart", project=git_project)
    git(repo, "merge", "-q", "--ff-only", proposal.branch)  # the reviewer merged it
    assert git(repo, "rev-parse", "HEAD") == proposal.commit
    result = rollback(flow.resolve_workspace(git_project))
    assert result.action == "revert_branch" and result.branch == "dataeng-crew/revert-daily-sales-mart"
    assert _tree_hashes(repo, result.branch) == _tree_hashes(repo, base)  # byte-for-byte, by blob hash
    assert git(repo, "rev-list", "--count", f"HEAD..{result.branch}") == "1"
    merged_yml = git(repo, "show", f"{proposal.commit}:dbt_project/models/marts/_marts__models.yml")
    # the project keeps one yml for the folder: the mart's entry joined it, the user's lines as they were; the revert
    # (tree hashes above) gives the user's file back byte for byte
    assert merged_yml.startswith("version: 2\nmodels:\n  - name: fct_other\n    description: Someone else's mart.\n")
    assert "  - name: fct_daily_sales\n" in merged_yml


def test_a_new_role_joins_proposals_and_capabilities_without_touching_flow_or_cli(git_project):
    from dataeng_crew.agents import roles

    seen = []

    def review(ctx):
        seen.append([m.name for m in ctx.models])
        return "a second pair of eyes on the marts", f"reviewed {len(ctx.models)} models"

    roles.register_role("reviewer", "reads every generated model before the checks", order=60, stage="review",
                        action="reviewer.review(models)", step=review)
    try:
        proposal = flow.propose("daily_sales mart", project=git_project, publish="none")
        assert "reviewer" in [r["name"] for r in capabilities()["roles"]]
    finally:
        roles._ROLES.pop("reviewer")
    assert seen and "fct_daily_sales" in seen[0]
    step = next(s for s in proposal.trace if s.role == "reviewer")
    assert step.observation == "reviewed 4 models" and step.action == "reviewer.review(models)"
    assert [s.role for s in proposal.trace if s.role != "tool"][:5] == ["planner", "modeler", "transformer", "quality", "governance"]
