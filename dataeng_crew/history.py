"""`dataeng-crew history`: past proposals of a project, newest first, from their reports."""

from __future__ import annotations

from pathlib import Path

from dataeng_crew.contracts import Proposal, Revision
from dataeng_crew.errors import PublishError


def load_proposals(state_dir: Path) -> list[Proposal]:
    """Every readable ``report.json`` under ``<state_dir>/proposals``, newest first."""
    out = []
    for report in sorted((state_dir / "proposals").glob("*/report.json"), reverse=True):
        try:
            out.append(Proposal.model_validate_json(report.read_text()))
        except ValueError:
            continue  # a report from an older version of the tool: skipped, never fatal
    return out


def load_revisions(state_dir: Path) -> list[Revision]:
    """Every ``revise`` round that committed (its ``revision.json`` names a commit), newest first."""
    out = []
    for record in sorted((state_dir / "revisions").glob("*/revision.json"), reverse=True):
        try:
            revision = Revision.model_validate_json(record.read_text())
        except ValueError:
            continue
        if revision.commit and not revision.pr_number:  # a --pr round's commit is on GitHub, not in this clone
            out.append(revision)
    return out


def find_proposal(state_dir: Path, proposal_id: str | None) -> Proposal | None:
    """The proposal with ``proposal_id``, or the newest published or rolled-back one.

    An exact id wins over a prefix (``…-mart`` is a prefix of ``…-mart-2``); without an id the newest
    proposal that ever reached git is returned, even when it was rolled back already, so a second
    ``rollback`` says so instead of undoing an older proposal.

    Raises:
        PublishError: When the prefix matches several proposals (they are named).
    """
    proposals = load_proposals(state_dir)
    if proposal_id is None:
        return next((p for p in proposals if p.status in {"published", "rolled_back"}), None)
    exact = [p for p in proposals if p.proposal_id == proposal_id]
    if exact:
        return exact[0]
    matches = [p for p in proposals if p.proposal_id.startswith(proposal_id)]
    if len(matches) > 1:
        raise PublishError(f"{proposal_id!r} matches {len(matches)} proposals: "
                           + ", ".join(p.proposal_id for p in matches[:10]) + "; give more of the id")
    return matches[0] if matches else None


def git_state(repo: Path | None, proposal: Proposal) -> str:
    """What git holds for a proposal now, so history never claims more than git does.

    Returns:
        ``branch at commit``, ``merged``, ``branch moved on``, ``branch gone`` or ``-`` (never published).
    """

    return commit_state(repo, proposal.branch, proposal.commit)


def commit_state(repo: Path | None, branch: str | None, commit: str | None) -> str:
    """What git holds for one of the tool's commits on ``branch`` (see :func:`git_state`)."""
    from dataeng_crew.tools import git_local

    if repo is None or not branch or not commit:
        return "-"
    tip = git_local.branch_commit(repo, branch)
    if tip == commit:
        return "branch at commit"
    if git_local.is_merged(repo, commit):
        return "merged"
    if tip and git_local.is_merged(repo, commit, into=tip):
        return "commits on top"
    return "branch moved on" if tip else "branch gone"
