"""`dataeng-crew rollback`: undo a proposal.

- Not merged: delete its branch (only if it still points at the proposal's commit).
- Published on GitHub too (``--publish github``): first close its open pull request and delete the
  GitHub branch (only if it still points at the proposal's remote commit), then the local branch.
- Its branch ends with a revision commit the tool made (``revise``): ONE commit on top of it that undoes that
  revision (never over a person's later commits: the branch must still end with it).
- Merged into the current branch: refuse to rewrite history; instead build a revert branch
  ``dataeng-crew/revert-<slug>`` with ONE commit that restores every file from the before copies
  (files the proposal added are removed), for review like any proposal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dataeng_crew.contracts import Proposal, Revision, RevisionState
from dataeng_crew.errors import PublishError
from dataeng_crew.history import find_proposal
from dataeng_crew.settings import Workspace
from dataeng_crew.tools import git_local, github_pr
from dataeng_crew.tools.github_pr import GithubOptions


@dataclass(frozen=True)
class RollbackResult:
    """What rollback did."""

    proposal_id: str
    action: str  # "branch_deleted" | "revision_reverted" | "revert_branch" | "nothing_to_do"
    branch: str | None
    commit: str | None
    message: str


def rollback(ws: Workspace, proposal_id: str | None = None, github: GithubOptions | None = None) -> RollbackResult:
    """Undo a published proposal (see module docstring).

    Args:
        ws: The workspace.
        proposal_id: Which proposal (a unique prefix); default: the latest published.
        github: Retry/throttle options for a proposal published on GitHub (repository and API come from it).

    Raises:
        PublishError: When the proposal is unknown, was never published, or its branch moved on.
    """
    if ws.repo is None:
        raise PublishError(f"{ws.project} is not in a git repository: nothing was published there")
    proposal = find_proposal(ws.state_dir, proposal_id)
    if proposal is None:
        which = repr(proposal_id) if proposal_id else "(none was published yet)"
        raise PublishError(f"no published proposal matches {which} in {ws.state_dir / 'proposals'}; "
                           "see `dataeng-crew history`")
    if proposal.status == "rolled_back":
        hint = "" if proposal_id else "; name an older one: `dataeng-crew rollback <proposal_id>`"
        return RollbackResult(proposal.proposal_id, "nothing_to_do", proposal.branch, None,
                              f"proposal {proposal.proposal_id} was rolled back already{hint}")
    if not proposal.branch or not proposal.commit:
        raise PublishError(f"proposal {proposal.proposal_id} was never published (status {proposal.status}): "
                           "nothing to undo; see `dataeng-crew history`")
    branch, commit = proposal.branch, proposal.commit
    if git_local.current_branch(ws.repo) == branch:
        raise PublishError(f"{branch} is checked out: switch to another branch (`git switch -`), then run "
                           f"`dataeng-crew rollback {proposal.proposal_id}` again")
    if git_local.is_merged(ws.repo, commit):
        return _revert(ws.repo, proposal)
    remote = _undo_on_github(proposal, github) if proposal.pull_request else ""
    tip = git_local.branch_commit(ws.repo, branch)
    if tip is None:
        _mark(proposal)
        return RollbackResult(proposal.proposal_id, "branch_deleted" if remote else "nothing_to_do", None, None,
                              remote + f"{branch} no longer exists locally" + ("" if remote else
                                                                              " and was not merged: nothing to undo"))
    revision = _latest_revision(ws, proposal, tip)
    if revision is not None:
        return _undo_revision(ws.repo, proposal, revision, tip)
    if tip != commit:
        raise PublishError(f"{branch} moved on since proposal {proposal.proposal_id} ({tip[:10]} ≠ {commit[:10]}); "
                           "refusing to delete work that is not the proposal's")
    git_local.delete_branch(ws.repo, branch, commit)
    _mark(proposal)
    return RollbackResult(proposal.proposal_id, "branch_deleted", branch, None,
                          remote + f"deleted {branch}; the working tree and other branches are untouched")


def _latest_revision(ws: Workspace, proposal: Proposal, tip: str) -> Revision | None:
    """The tool's revision round whose commit the proposal's branch ends with, if any."""
    from dataeng_crew.history import load_revisions

    return next((r for r in load_revisions(ws.state_dir)
                 if r.proposal_id == proposal.proposal_id and r.branch == proposal.branch and r.commit == tip), None)


def _undo_revision(repo: Path, proposal: Proposal, revision: Revision, tip: str) -> RollbackResult:
    """One commit on top of the revision restoring its parent's files; the state keeps the feedback handled (so
    the next ``revise`` does not apply it again) and loses the revision's edits."""
    parent = git_local._git(repo, "rev-parse", f"{tip}^")  # noqa: SLF001
    restore: dict[str, str] = {}
    delete: list[str] = []
    for path in [*revision.files, *revision.deleted]:
        before = git_local.read_at(repo, parent, path)
        if before is None:
            delete.append(path)
        else:
            restore[path] = before
    state = next((p for p in revision.files if p.endswith(".revisions.json")), None)
    now = git_local.read_at(repo, tip, state) if state else None
    if state and now is not None:  # feedback handled stays handled; the revision's edits go
        kept = RevisionState.model_validate_json(now)
        earlier = RevisionState.model_validate_json(restore[state]) if state in restore else \
            kept.model_copy(update={"edits": [], "rounds": 0})
        restore[state] = earlier.model_copy(update={"handled": kept.handled}).model_dump_json(indent=2) + "\n"
        if state in delete:
            delete.remove(state)
    message = (f"dataeng-crew: undo revision {revision.round} of {proposal.request}\n\nReverts {tip[:10]}; the "
               f"feedback it answered stays answered.\n\n{git_local.TRAILER}: {proposal.proposal_id}\n"
               f"Dataeng-Crew-Revision: undo {revision.round}")
    commit = git_local.commit_on_top(repo, proposal.branch or "", tip, restore, delete, message)
    return RollbackResult(proposal.proposal_id, "revision_reverted", proposal.branch, commit,
                          f"undid revision {revision.round} ({tip[:10]}) with {commit[:10]} on {proposal.branch}")


def _undo_on_github(proposal: Proposal, options: GithubOptions | None) -> str:
    """Close the proposal's open PR and delete its GitHub branch; a sentence saying what was done."""
    pr = proposal.pull_request
    assert pr is not None
    options = options or GithubOptions()
    target = github_pr.GithubTarget(repo=pr.repo, api_url=pr.api_url)
    repo = github_pr.connect(target, options)
    with github_pr.github_errors(target, options) as step:
        step(f"closing pull request #{pr.number} and deleting {pr.branch}")
        done = github_pr.close_pull_request(repo, pr.branch, pr.commit)
        return f"on GitHub ({pr.repo}): {'; '.join(done)}. Locally: "
    raise AssertionError("unreachable")  # pragma: no cover


def _revert(repo: Path, proposal: Proposal) -> RollbackResult:
    folder = Path(proposal.proposal_dir or "")
    manifest_path = folder / "changes" / "manifest.json"
    if not manifest_path.is_file():
        raise PublishError(f"proposal {proposal.proposal_id} was merged but its before copies are missing "
                           f"({manifest_path}); revert its commit {proposal.commit} with git instead")
    manifest = json.loads(manifest_path.read_text())
    restore: dict[str, str] = {}
    delete: list[str] = []
    for entry in manifest["files"]:
        if entry["existed_before"]:
            restore[entry["path"]] = (folder / "changes" / "before" / entry["path"]).read_text()
        else:
            delete.append(entry["path"])
    slug = (proposal.branch or "proposal").split("/", 1)[-1]
    branch = f"dataeng-crew/revert-{slug}"
    head = git_local.head_commit(repo)
    commit = git_local.commit_to_branch(
        repo, head, branch, restore, f"Revert dataeng-crew proposal {proposal.proposal_id}\n\n"
        f"Restores {len(restore)} file(s) and removes {len(delete)} added by {proposal.commit}.", deletions=delete,
        proposal_id=f"revert-{proposal.proposal_id}")
    return RollbackResult(proposal.proposal_id, "revert_branch", branch, commit,
                          f"{proposal.branch} was merged: review and merge {branch} to undo it")


def _mark(proposal: Proposal) -> None:
    report = Path(proposal.proposal_dir or "") / "report.json"
    if report.is_file():
        report.write_text(proposal.model_copy(update={"status": "rolled_back"}).model_dump_json(indent=2))
