"""The flow's GitHub publish step: a validated proposal → one commit on a GitHub branch and its PR.

The flow has already made the same commit on the local branch (so ``rollback`` and ``history`` work
the same for both); this sends the same files to GitHub with :mod:`tools.github_pr`.
"""

from __future__ import annotations

from dataeng_crew.ci import WORKFLOW_PATH, render_workflow
from dataeng_crew.contracts import Proposal, PullRequestRef
from dataeng_crew.tools import github_pr


def publish_proposal(proposal: Proposal, files: dict[str, str], body: str, message: str,
                     target: github_pr.GithubTarget, options: github_pr.GithubOptions, prefix: str) -> PullRequestRef:
    """Publish ``files`` (repo paths) on ``proposal.branch`` and open or update its pull request.

    Sets ``proposal.pull_request`` and adds any file the PR carried beyond the proposal's own (the CI
    workflow, with ``include_ci``) to ``proposal.files``.

    Args:
        proposal: The validated proposal (``branch`` set).
        files: ``{repo path: content}``, the same as the local commit.
        body: The PR description (``render_pr_body``).
        message: Commit message.
        target: Repository and API.
        options: Draft, reviewers, base, retries, CI.
        prefix: The dbt project's folder in the repository (``""`` or ``"dbt_project/"``).

    Raises:
        PublishError: GitHub failed (explained; re-running converges).
    """
    assert proposal.branch is not None
    extra = {WORKFLOW_PATH: render_workflow(prefix.rstrip("/") or ".")} if options.include_ci else None
    result = github_pr.publish(target, options, branch=proposal.branch, title=f"dataeng-crew: {proposal.request}",
                               body=body, message=message, files=files,
                               approval_kinds=[a.kind for a in proposal.approvals], extra_files=extra)
    proposal.files = sorted({*proposal.files, *result.files})
    proposal.pull_request = PullRequestRef(
        repo=result.repo, api_url=target.api_url, number=result.pr_number, url=result.pr_url, branch=result.branch,
        base=result.base, commit=result.commit, draft=options.draft, labels=result.labels,
        reviewers=result.reviewers, team_reviewers=result.team_reviewers, warnings=result.warnings)
    return proposal.pull_request
