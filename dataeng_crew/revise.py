"""`dataeng-crew revise`: reviewer feedback → ONE follow-up commit on the proposal's branch, replies, a data diff.

The order of one round:

1. find the branch and its tip (local branch, or the PR's head on GitHub) and the proposal's base (the parent of
   the oldest dataeng-crew commit on it); read the revision state the branch carries;
2. collect the feedback not answered yet (GitHub: "changes requested" reviews, review comments, ``/dataeng-crew
   revise`` comments, failed checks — only from users with write access; local: ``--comment`` text);
3. parse it into change requests (:mod:`agents.revision`) and re-run the flow on the tip's tree with a
   :class:`~dataeng_crew.agents.revision.RevisingBrain` (the same checks: sqlglot, dbt build in a sandbox, GX);
4. commit the changed files on top of the tip — never over a person's commit, and never overwriting a file a
   person changed after the proposal — refresh the PR body (with the data diff against the base build) and
   reply to each piece of feedback with what changed or why not.

With no new feedback nothing happens; rounds are bounded (``max_rounds``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from dataeng_crew import flow
from dataeng_crew.agents import governance
from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew.agents.llm import SECRET_TEXT
from dataeng_crew.agents.revision import RevisingBrain, describe, parse_feedback
from dataeng_crew.data_diffs import proposal_diffs
from dataeng_crew.contracts import (
    ChangeRequest,
    Feedback,
    FeedbackOutcome,
    ModelDiff,
    Proposal,
    Revision,
    RevisionState,
)
from dataeng_crew.errors import ConfigError, DataengCrewError, Terminated
from dataeng_crew.locking import run_lock
from dataeng_crew.render import render_pr_body
from dataeng_crew.settings import Workspace
from dataeng_crew.signals import held, signal_as_the_cause, sigterm_as_interrupt
from dataeng_crew.tools import git_local, github_pr
from dataeng_crew.tools.prompt_safety import clean_text

Progress = Callable[[str], None]
MAX_ROUNDS = 5
STATE_SUFFIX = ".revisions.json"
REF = re.compile(r"""\bref\(\s*['"]([^'"]+)['"]\s*\)""")


# -- where the branch lives ----------------------------------------------------------------------------------
class LocalBranch:
    """The proposal's branch in the local repository."""

    def __init__(self, repo: Path, branch: str) -> None:
        self.repo, self.branch = repo, branch
        tip = git_local.branch_commit(repo, branch)
        if tip is None:
            raise ConfigError(f"no local branch {branch!r}")
        self.tip = tip

    def chain(self) -> list[dict[str, Any]]:
        """Commits from the proposal's base to the tip, oldest first (sha, message, author, paths)."""
        base = git_local.proposal_base(self.repo, self.tip)
        if base is None:
            raise ConfigError(f"{self.branch} holds no commit dataeng-crew made as it made it (a commit with its "
                              "trailer whose files a person changed — an amend, a rebase — is the person's): revise "
                              "the branch by hand, or propose again on a new branch")
        self.base = base
        head = git_local._git(self.repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False)  # noqa: SLF001
        merged = git_local._git(self.repo, "merge-base", head, self.tip, check=False) if head else ""  # noqa: SLF001
        # the base branch is the checked-out one: the diff compares with what it holds now (when it is an ancestor)
        self.diff_base = merged if merged and git_local.current_branch(self.repo) != self.branch else base
        return git_local.branch_log(self.repo, base, self.tip)

    def files(self, rev: str, prefix: str) -> dict[str, bytes]:
        """Files under ``prefix`` at ``rev``."""
        return git_local.files_under(self.repo, rev, prefix)

    def read(self, rev: str, path: str) -> bytes | None:
        """One file at ``rev``, or None."""
        text = git_local.read_at(self.repo, rev, path)
        return None if text is None else text.encode()

    def commit(self, files: dict[str, str], deletions: list[str], message: str) -> str:
        """One commit on top of the tip."""
        return git_local.commit_on_top(self.repo, self.branch, self.tip, files, deletions, message)


class RemoteBranch:
    """The PR's head branch on GitHub (a person may have pushed commits the local repository never saw)."""

    def __init__(self, gh_repo: Any, branch: str, tip: str, base_sha: str = "", errors: Any = None) -> None:
        self.gh, self.branch, self.tip, self.base_sha = gh_repo, branch, tip, base_sha
        self.errors = errors or (lambda _step: contextlib.nullcontext())  # GitHub errors → explained PublishError

    def chain(self) -> list[dict[str, Any]]:
        """Commits from the proposal's base to the tip, oldest first."""
        from dataeng_crew.tools import github_review

        with self.errors("reading the branch's commits"):
            commits = github_review.branch_commits(self.gh, self.tip, self.base_sha, git_local.is_own_message)
            for c in commits:  # the tool's only when its content is what it recorded (an amend keeps the trailer)
                c["own"] = github_review.is_own_remote(self.gh, c)
        own = [i for i, c in enumerate(commits) if c["own"]]
        if not own:
            raise ConfigError(f"{self.branch} on GitHub holds no commit dataeng-crew made as it made it (an amended "
                              "or rebased one is a person's): revise the branch by hand, or propose again")
        oldest = own[-1]
        self.base = commits[oldest]["parents"][0] if commits[oldest]["parents"] else None
        # the PR's base branch, when the branch contains it (the base moved on otherwise: the proposal's base)
        self.diff_base = self.base_sha if self.base_sha in {c["sha"] for c in commits} else self.base
        out = []
        with self.errors("reading the branch's commits"):
            for c in reversed(commits[:oldest + 1]):
                out.append({"sha": c["sha"], "message": c["message"], "author": "", "own": c["own"],
                            "paths": github_review.changed_paths(self.gh, c)})
        return out

    def files(self, rev: str, prefix: str) -> dict[str, bytes]:
        """Files under ``prefix`` at ``rev`` on GitHub."""
        from dataeng_crew.tools import github_review

        with self.errors("reading the branch's files"):
            return github_review.branch_files(self.gh, rev, prefix)

    def read(self, rev: str, path: str) -> bytes | None:
        """One file at ``rev`` on GitHub, or None."""
        from dataeng_crew.tools import github_review

        with self.errors("reading the revision state"):
            return github_review.read_file(self.gh, rev, path)

    def commit(self, files: dict[str, str], deletions: list[str], message: str) -> str:
        """One commit on top of the remote tip (fast-forward only)."""
        from dataeng_crew.tools import github_review

        with self.errors("committing on top of the branch (it may have moved meanwhile: run revise again)"):
            return github_review.commit_on_top(self.gh, self.branch, self.tip, files, deletions, message)


# -- helpers -------------------------------------------------------------------------------------------------
def local_feedback(texts: list[str], author: str) -> list[Feedback]:
    """``--comment`` texts (or file contents) as feedback; the id is the text's hash, so the same text is one."""
    out = []
    for text in texts:
        body = "\n".join(SECRET_TEXT.sub("[redacted]", clean_text(line, 400))
                         for line in text.replace("\r\n", "\n").split("\n"))[:4000]
        out.append(Feedback(id="local:" + hashlib.sha256(body.encode()).hexdigest()[:12], kind="local",
                            author=author, body=body))
    return out


def _request_of(message: str) -> str:
    first = message.splitlines()[0] if message else ""
    return re.sub(r"\s+\(revision \d+\)$", "", first.removeprefix("dataeng-crew: ").removeprefix("revise: "))


def _proposal_id_of(message: str) -> str | None:
    m = re.search(rf"^{git_local.TRAILER}: (\S+)", message, re.MULTILINE) or re.search(
        r"^Proposal (\S+)\. Models: ", message, re.MULTILINE)
    return m[1].rstrip(".") if m else None


def state_file(branch: str, prefix: str) -> str:
    """Where a branch keeps its revision state: ``proposals/<branch slug>.revisions.json`` (the only file of the
    review loop on the branch; the PR text is the PR's, never committed)."""
    return f"{prefix}proposals/{branch.rsplit('/', 1)[-1]}{STATE_SUFFIX}"


def load_state(files: dict[str, bytes], chain: list[dict[str, Any]], prefix: str, branch: str
               ) -> tuple[RevisionState, str]:
    """The branch's revision state and its file path (from the first own commit when there is none yet)."""
    first = next(c for c in chain if c["own"])
    path = state_file(branch, prefix)
    if path in files:
        return RevisionState.model_validate_json(files[path]), path
    return RevisionState(proposal_id=_proposal_id_of(str(first["message"])) or branch.rsplit("/", 1)[-1],
                         request=_request_of(str(first["message"]))), path


def data_diffs(ws: Workspace, wh: Path, branch: Any, base: str, prefix: str, proposal: Proposal,
               files: dict[str, str], folder: Path, progress: Progress, removed: list[str] | None = None
               ) -> tuple[list[ModelDiff], Path | None]:
    """:func:`~dataeng_crew.data_diffs.proposal_diffs` against ``base`` on the branch (local or GitHub)."""
    assert proposal.warehouse is not None
    return proposal_diffs(proposal.models, files, Path(proposal.warehouse), lambda p: branch.files(base, p), prefix,
                          wh, governance.load_policy(ws.project), folder, progress, removed)


def without_models(yml: str, names: set[str]) -> str:
    """A dbt properties file without the ``models:`` entries called ``names`` (the project's other lines kept)."""
    import yaml

    from dataeng_crew.render import dump_yaml, edit_entries

    doc = yaml.safe_load(yml) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        return yml
    kept = [m for m in doc["models"] if not (isinstance(m, dict) and m.get("name") in names)]
    if len(kept) == len(doc["models"]):
        return yml
    return edit_entries(yml, "models", drops=names) or dump_yaml({**doc, "models": kept})


def reply_text(outcome_changes: list[ChangeRequest], refusals: list[str], commit: str | None) -> str:
    """The answer to one piece of feedback."""
    lines = []
    if outcome_changes and commit:
        lines.append(f"Done in {commit[:10]}: " + "; ".join(describe(c) for c in outcome_changes) + ".")
    lines += refusals
    return "\n\n".join(lines) or "Nothing to change."


def review_section(state: RevisionState, outcomes: list[FeedbackOutcome]) -> str:
    """The ``## Review rounds`` section of the PR body."""
    lines = ["## Review rounds", "", f"Round {state.rounds} of at most {MAX_ROUNDS}. Changes applied so far, in order:", ""]
    lines += [f"- {describe(e)} (asked: “{clean_text(e.text, 120)}”)" for e in state.edits] or ["- none"]
    refused = [o for o in outcomes if o.status == "refused"]
    if refused:
        lines += ["", "Not done this round:", ""] + [f"- {clean_text(o.reply, 300)}" for o in refused]
    return "\n".join(lines) + "\n"


# -- the round -----------------------------------------------------------------------------------------------
def revise(target: str | None = None, project: Path | None = None, warehouse: Path | None = None,
           comments: list[str] | None = None, pr_number: int | None = None,
           github: github_pr.GithubOptions | None = None, brain: Any = None, progress: Progress = lambda _m: None,
           max_rounds: int = MAX_ROUNDS, token: str | None = None) -> Revision:
    """Run one review round on a proposal's branch.

    Args:
        target: A branch (``dataeng-crew/<slug>``) or a proposal id; with ``pr_number`` it is ignored.
        project: dbt project folder.
        warehouse: DuckDB file or data folder (default: the project's profile).
        comments: Local feedback texts (``--comment``, ``--comment-file``).
        pr_number: A GitHub PR: read its reviews, comments and checks; commit on its head; reply there.
        github: Repository and API options.
        brain: The inner brain (default: deterministic).
        progress: Called with each stage.
        max_rounds: Rounds after which feedback is answered but no longer applied.
        token: GitHub token (default: ``GITHUB_TOKEN``).

    Returns:
        What the round did (also written as ``revision.json`` under ``.dataeng-crew/revisions/``).

    Raises:
        DataengCrewError: Configuration, GitHub or the revised proposal's checks failed; nothing was committed.
    """
    ws = flow.resolve_workspace(project)
    if ws.repo is None:
        raise ConfigError(f"{ws.project} is not in a git repository; revise works on a proposal's branch")
    wh = flow.resolve_warehouse(ws, warehouse)
    # one writer at a time: from reading the tip to writing the ref (a propose of the same request waits)
    with sigterm_as_interrupt(), run_lock(ws.state_dir, f"revise {target or f'PR #{pr_number}'}"):
        branch, feedback, answered, ignored, gh_repo = _open_branch(ws, target, comments, pr_number, github, token)
        now = dt.datetime.now(dt.timezone.utc)
        folder = ws.state_dir / "revisions" / f"{now:%Y%m%dT%H%M%S%f}"
        folder.mkdir(parents=True)
        for why in ignored:
            progress(f"ignored {why}")
        prefix = f"{ws.project_in_repo}/" if ws.project_in_repo else ""
        revision, new = _new_revision(branch, feedback, answered, prefix, pr_number, folder)
        rnd = RevisionRound(revision, ws, wh, prefix, branch, new, brain or DeterministicBrain(), folder, progress,
                            max_rounds, gh_repo)
        try:
            if new and _load_round_state(rnd):
                with signal_as_the_cause():
                    _round(rnd)
            else:
                progress("no new feedback: nothing to do")
        except KeyboardInterrupt as exc:
            with held():
                _settle_interrupted(rnd, exc)
                exc.revision = revision  # type: ignore[attr-defined] - the CLI reports what git holds
            raise
        except DataengCrewError as exc:
            revision.status, revision.error = "failed", str(exc)
            raise
        finally:
            with held():
                (folder / "revision.json").write_text(revision.model_dump_json(indent=2))
    return revision


def _new_revision(branch: Any, feedback: list[Feedback], answered: set[str], prefix: str, pr_number: int | None,
                  folder: Path) -> tuple[Revision, list[Feedback]]:
    """The round's record and its new feedback. Cheap first: the branch's state file names the feedback already
    handled; nothing else is read when nothing is new."""
    raw = branch.read(branch.tip, state_file(branch.branch, prefix))
    known = RevisionState.model_validate_json(raw) if raw else None
    new = [f for f in feedback if f.id not in (known.handled if known else []) and f.id not in answered]
    return Revision(proposal_id=known.proposal_id if known else "", branch=branch.branch, status="no_new_feedback",
                    round=known.rounds if known else 0, request=known.request if known else "",
                    tip_before=branch.tip, pr_number=pr_number, revision_dir=str(folder), feedback=new), new


def _settle_interrupted(r: RevisionRound, exc: KeyboardInterrupt) -> None:
    """After Ctrl-C/SIGTERM, make the record say what git holds: the branch has this round's commit (the ref was
    written before the signal arrived) or nothing was committed."""
    rev = r.revision
    word = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted by the user"
    commit = r.commit
    if commit is None and isinstance(r.branch, LocalBranch):
        now = git_local.branch_commit(r.branch.repo, r.branch.branch)
        if now and now != rev.tip_before and f"Dataeng-Crew-Revision: {r.state.rounds}" in git_local._git(  # noqa: SLF001
                r.branch.repo, "log", "-1", "--format=%B", now):
            commit = now
    rev.status, rev.commit = "interrupted", commit
    if commit:
        rev.error = (f"{word} after the commit was written: {rev.branch} ({commit[:10]}) holds revision "
                     f"{r.state.rounds}; replies to the feedback may be missing — run revise again to post them")
    elif r.gh_repo is not None and r.applied:
        rev.error = f"{word}; the pull request's branch may have moved: check {rev.branch} before running revise again"
    else:
        rev.error = f"{word}; nothing was committed"


def _open_branch(ws: Workspace, target: str | None, comments: list[str] | None, pr_number: int | None,
                 github: github_pr.GithubOptions | None, token: str | None) -> tuple[Any, list[Feedback], set[str],
                                                                                      list[str], Any]:
    """The branch to revise (local, or the PR's head on GitHub) and the feedback on it.

    Returns:
        ``(branch, feedback, ids already answered, why some feedback is ignored, the GitHub repository or None)``.
    """
    assert ws.repo is not None
    if pr_number is None:
        author = git_local._git(ws.repo, "config", "user.name", check=False) or "you"  # noqa: SLF001
        return LocalBranch(ws.repo, resolve_branch(ws, target)), local_feedback(comments or [], author), set(), [], None
    from dataeng_crew.tools import github_review

    github = github or github_pr.GithubOptions()
    gh_target = github_pr.require_target(github, ws.repo)
    token = token or github_pr.token_from_env()
    gh_repo = github_pr.connect(gh_target, github, token)
    with github_pr.github_errors(gh_target, github, token) as step:
        step("reading the reviewer's feedback")
        read = github_review.read_feedback(gh_repo, pr_number)

    @contextlib.contextmanager
    def errors(name: str) -> Iterator[None]:
        with github_pr.github_errors(gh_target, github, token) as step:  # type: ignore[arg-type]
            step(name)
            yield

    branch = RemoteBranch(gh_repo, read.head_branch, read.head_sha, read.base_sha, errors)
    return branch, read.feedback, read.answered, read.ignored, gh_repo


def _load_round_state(r: RevisionRound) -> bool:
    """Read the branch's commits, files and revision state; whether any feedback is still new."""
    r.chain = r.branch.chain()
    r.tip_files = r.branch.files(r.branch.tip, r.prefix)
    r.state, r.state_path = load_state(r.tip_files, r.chain, r.prefix, r.branch.branch)
    r.new = [f for f in r.new if f.id not in r.state.handled]
    rev = r.revision
    rev.proposal_id, rev.round, rev.request = r.state.proposal_id, r.state.rounds, r.state.request
    rev.base, rev.feedback = r.branch.base, r.new
    return bool(r.new)


def resolve_branch(ws: Workspace, target: str | None) -> str:
    """The branch of ``target``: a branch name, a proposal id (its report), or ``dataeng-crew/<slug>`` of a slug."""
    assert ws.repo is not None
    if not target:
        raise ConfigError("revise needs a PROPOSAL id, a BRANCH or --pr N")
    if git_local.branch_commit(ws.repo, target):
        return target
    report = ws.state_dir / "proposals" / target / "report.json"
    if report.is_file():
        branch = json.loads(report.read_text()).get("branch")
        if branch:
            return branch
    if git_local.branch_commit(ws.repo, f"dataeng-crew/{target}"):
        return f"dataeng-crew/{target}"
    raise ConfigError(f"{target!r} is neither a local branch nor a proposal id with a branch")


def _person_paths(chain: list[dict[str, Any]]) -> dict[str, str]:
    """Paths changed by commits dataeng-crew did not make → the commit that changed them last."""
    out: dict[str, str] = {}
    for commit in chain:
        if not commit["own"]:
            for path in commit["paths"]:
                out[str(path)] = f"{str(commit['sha'])[:10]}" + (f" by {commit['author']}" if commit.get("author") else "")
    return out


@dataclass
class RevisionRound:
    """One review round as its steps fill it in."""

    revision: Revision
    ws: Workspace
    wh: Path
    prefix: str
    branch: Any
    new: list[Feedback]
    inner: Any
    folder: Path
    progress: Progress
    max_rounds: int
    gh_repo: Any
    chain: list[dict[str, Any]] = field(default_factory=list)
    tip_files: dict[str, bytes] = field(default_factory=dict)
    state: RevisionState = field(default_factory=lambda: RevisionState(proposal_id="", request=""))
    state_path: str = ""
    parsed: dict[str, tuple[list[ChangeRequest], list[str]]] = field(default_factory=dict)
    edits: list[ChangeRequest] = field(default_factory=list)  # the new change requests
    exported: set[str] = field(default_factory=set)  # what the sandbox build sees of the tip
    proposal: Proposal | None = None
    files: dict[str, str] = field(default_factory=dict)
    applied: list[ChangeRequest] = field(default_factory=list)
    writes: dict[str, str] = field(default_factory=dict)
    deletions: list[str] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # models the revision no longer makes
    commit: str | None = None

    @property
    def own_paths(self) -> set[str]:
        """Paths the tool's own commits on the branch touched."""
        return {str(p) for c in self.chain if c["own"] for p in c["paths"]}

    @property
    def md_path(self) -> str:
        """Where an older version committed the PR text."""
        return self.state_path.removesuffix(STATE_SUFFIX) + ".md"


def _round(r: RevisionRound) -> None:
    """Parse → propose again on the tip's tree → plan the commit → never over a person's file → diff → commit →
    reply to each piece of feedback."""
    _parse(r)
    if r.edits:
        r.progress(f"{len(r.edits)} change request(s): " + "; ".join(describe(e) for e in r.edits))
        _export_tip(r)
        _propose_again(r)
    if r.applied:
        _plan_commit(r)
    if r.applied and _clear_of_people(r):
        _diff_and_commit(r)
    by_feedback = {f.id: ([e for e in r.applied if e.feedback_id == f.id], r.parsed[f.id][1]) for f in r.new}
    _finish(r.revision, r.new, by_feedback, r.commit, r.gh_repo, r.progress)
    if not r.commit:
        r.revision.status = "nothing_applied"


def _parse(r: RevisionRound) -> None:
    """The change requests in the new feedback; none past the round limit."""
    r.parsed = {f.id: parse_feedback(f) for f in r.new}
    r.edits = [c for f in r.new for c in r.parsed[f.id][0]]
    if r.state.rounds >= r.max_rounds and r.edits:
        why = (f"cannot do this offline: this proposal already had {r.state.rounds} revision rounds (at most "
               f"{r.max_rounds}); edit the branch by hand or propose again")
        r.parsed = {fid: ([], [*refusals, why]) for fid, (_c, refusals) in r.parsed.items()}
        r.edits = []


def _export_tip(r: RevisionRound) -> None:
    """The tip's tree without the proposal's own models: they are generated again (left in, a renamed or
    re-grained mart's old files, and the tests on them, would sit beside the new one in the sandbox build)."""
    person = _person_paths(r.chain)
    prefix, export = r.prefix, r.folder / "tip"
    # a model a person edited stays as they wrote it, and so do the models it refers to (else it cannot parse)
    kept = {m for p in person if p.endswith(".sql") and p in r.tip_files
            for m in REF.findall(r.tip_files[p].decode(errors="replace"))}
    own_models = {p for p in r.own_paths if p.startswith(f"{prefix}models/") and p.endswith(".sql")
                  and p not in person and Path(p).stem not in kept}
    own_stems = {Path(p).stem for p in own_models}
    for path, content in r.tip_files.items():
        if path in own_models or (path.startswith(f"{prefix}models/") and path.endswith(".yml")
                                  and Path(path).stem in own_stems and path not in person):
            continue  # the model and its per-model yml
        if own_stems and path.startswith(f"{prefix}models/") and path.endswith(".yml"):
            content = without_models(content.decode(), own_stems).encode()
        dest = export / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        r.exported.add(path)


def _propose_again(r: RevisionRound) -> None:
    """The flow's stages on the exported tip with every change asked so far; which of the new edits applied."""
    revising = RevisingBrain(r.inner, r.state.request, [*r.state.edits, *r.edits])
    captured: dict[str, Any] = {}

    def capture(proposal: Proposal, files: dict[str, str]) -> None:
        captured["proposal"], captured["files"] = proposal, dict(files)

    try:
        flow.propose(r.state.request, project=r.folder / "tip" / r.prefix if r.prefix else r.folder / "tip",
                     warehouse=r.wh, publish="none", brain=revising, progress=r.progress, on_validated=capture,
                     hold_lock=False)  # revise holds the repository's lock around the whole round
    except DataengCrewError as exc:
        why = f"cannot do this offline: the revised proposal failed its checks — {str(exc).splitlines()[0][:300]}"
        _finish(r.revision, r.new, {f.id: ([], [*r.parsed[f.id][1], why] if r.parsed[f.id][0] else r.parsed[f.id][1])
                                    for f in r.new}, None, r.gh_repo, r.progress)
        raise
    refused, offset = revising.result.refused, len(r.state.edits)
    r.applied = [e for i, e in enumerate(r.edits) if offset + i not in refused]
    for i, edit in enumerate(r.state.edits):
        if i in refused:
            r.progress(f"an earlier change no longer applies and is dropped: {describe(edit)} — {refused[i]}")
    for i, edit in enumerate(r.edits):
        if offset + i in refused:
            r.parsed[edit.feedback_id][1].append(refused[offset + i])
    if r.applied:
        r.proposal, r.files = captured["proposal"], captured["files"]
        r.proposal.request = revising.effective or r.state.request
        r.state.edits = [*(e for i, e in enumerate(r.state.edits) if i not in refused), *r.applied]
        r.state.rounds += 1
        r.state.handled = sorted({*r.state.handled, *(f.id for f in r.new)})


def _plan_commit(r: RevisionRound) -> None:
    """What the follow-up commit writes and deletes: the tree the sandbox built."""
    prefix, tip, own = r.prefix, r.tip_files, r.own_paths
    r.writes = {prefix + rel: content for rel, content in r.files.items() if tip.get(prefix + rel) != content.encode()}
    produced = {prefix + rel for rel in r.files} | {r.md_path, r.state_path}
    r.gone = {Path(p).stem for p in own if p in tip and p not in produced and p.endswith(".sql")
              and p.startswith(f"{prefix}models/")}
    # a file the sandbox build saw (the sources yml …) stays, unless it belongs to a model that is gone
    r.deletions = sorted(p for p in own if p in tip and p not in produced
                         and (p not in r.exported or Path(p).stem in r.gone) and not p.startswith(f"{prefix}proposals/"))
    if r.md_path in tip and r.md_path in own:  # an older version committed the PR text: it goes
        r.deletions.append(r.md_path)
    for path, content in sorted(r.files.items()):  # the yml entries of a model the revision removed go too
        if r.gone and path.startswith("models/") and path.endswith(".yml"):
            pruned = without_models(content, r.gone)
            if pruned != content:
                r.writes[prefix + path] = pruned


def _clear_of_people(r: RevisionRound) -> bool:
    """Whether the commit leaves every file a person changed after the proposal alone; else nothing is applied."""
    person = _person_paths(r.chain)
    conflicts = sorted(p for p in {*r.writes, *r.deletions, r.md_path, r.state_path} if p in person)
    if conflicts:
        why = ("cannot do this offline: a person changed " + ", ".join(f"{p} ({person[p]})" for p in conflicts)
               + " after the proposal; the revision would overwrite it — revise those files by hand")
        r.applied = []
        for f in r.new:
            r.parsed[f.id] = ([], [*r.parsed[f.id][1], why])
    return not conflicts


def _diff_and_commit(r: RevisionRound) -> None:
    """The data diff against the base build, the follow-up commit with the state file, the refreshed PR body."""
    rev, proposal, state, branch = r.revision, r.proposal, r.state, r.branch
    assert proposal is not None
    if proposal.checks.build is not None:
        nodes = proposal.checks.build.nodes
        rev.build_summary = f"dbt build: {sum(n.status in {'pass', 'success'} for n in nodes)}/{len(nodes)} nodes passed"
    r.progress("data diff against the base build")
    rev.diff_base = branch.diff_base or rev.base
    removed = [p for p in r.deletions if Path(p).stem in r.gone and p.endswith(".sql")]
    diffs, base_db = data_diffs(r.ws, r.wh, branch, rev.diff_base or branch.tip, r.prefix, proposal, r.files,
                                r.folder, r.progress, removed)
    rev.diffs, rev.head_warehouse = diffs, proposal.warehouse
    rev.base_warehouse = str(base_db) if base_db else None
    proposal.branch, proposal.status, proposal.data_diffs = branch.branch, "published", diffs
    body = render_pr_body(proposal) + "\n" + review_section(state, [])
    r.writes[r.state_path] = state.model_dump_json(indent=2) + "\n"
    message = (f"dataeng-crew: {proposal.request} (revision {state.rounds})\n\n"
               + "\n".join(f"- {describe(e)}" for e in r.applied)
               + f"\n\nFollow-up on {branch.tip[:10]}; validated by sqlglot and dbt build on a sandbox."
               + f"\n\n{git_local.TRAILER}: {state.proposal_id}\nDataeng-Crew-Revision: {state.rounds}")
    r.progress(f"commit on top of {branch.branch} ({branch.tip[:10]})")
    r.commit = rev.commit = branch.commit(r.writes, r.deletions, message)
    rev.files, rev.deleted = sorted(r.writes), r.deletions
    rev.round, rev.status, rev.request = state.rounds, "revised", proposal.request
    (r.folder / "PR.md").write_text(body)
    if r.gh_repo is not None:
        rev.remote_commit = r.commit
        with branch.errors("refreshing the pull request body"):
            r.gh_repo.get_pull(rev.pr_number).edit(title=f"dataeng-crew: {proposal.request}",
                                                   body=github_pr.fit_body(body, "_(cut to fit GitHub)_"))
        rev.local_branch = _follow_locally(r.ws.repo, branch.branch, rev.tip_before or "", r.commit)
        r.progress(rev.local_branch)


def _follow_locally(repo: Path | None, branch: str, before: str, commit: str) -> str:
    """After a commit on GitHub: move the local branch to it when the local branch is the tool's and was at the
    pull request's head before the round (fetched from ``origin``, compare-and-swap); else say why not."""
    local = git_local.branch_commit(repo, branch) if repo else None
    if repo is None or local is None:
        return f"no local branch {branch}: nothing to move"
    if git_local.current_branch(repo) == branch:
        return f"the local {branch} was not moved: it is checked out (`git pull` it)"
    if local != before:
        return (f"the local {branch} ({local[:10]}) was not moved: it is not the pull request's head before this "
                f"round ({before[:10]}; commits pushed to GitHub or made here differ) — `git fetch` and compare")
    fetched = subprocess.run(["git", "-C", str(repo), "fetch", "--quiet", "origin", f"refs/heads/{branch}"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "GIT_TERMINAL_PROMPT": "0",
                                  "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=10"})
    head = git_local._git(repo, "rev-parse", "--verify", "--quiet", "FETCH_HEAD", check=False)  # noqa: SLF001
    if fetched.returncode != 0 or head != commit:
        return (f"the local {branch} was not moved: `git fetch origin {branch}` did not bring {commit[:10]} "
                f"({(fetched.stderr or '').strip().splitlines()[-1][:120] if fetched.stderr else 'another head'})")
    git_local._git(repo, "update-ref", "-m", "dataeng-crew revise --pr", f"refs/heads/{branch}", commit, before)  # noqa: SLF001
    return f"moved the local {branch} to {commit[:10]}"


def _finish(revision: Revision, new: list[Feedback], by_feedback: dict[str, tuple[list[ChangeRequest], list[str]]],
            commit: str | None, gh_repo: Any, progress: Progress) -> None:
    """Outcomes and replies (posted on GitHub when there is a PR)."""
    revision.outcomes = []
    for f in new:
        changes, refusals = by_feedback[f.id]
        status = "applied" if changes and commit else "refused" if refusals else "ignored"
        text = reply_text(changes, refusals, commit)
        revision.outcomes.append(FeedbackOutcome(feedback_id=f.id, status=status, reply=text, changes=changes))
        progress(f"reply to {f.id}: {text[:200]}")
        if gh_repo is not None and revision.pr_number is not None:
            from dataeng_crew.tools import github_review

            try:
                github_review.reply(gh_repo, revision.pr_number, f, text)
            except Exception as exc:  # noqa: BLE001 - a reply that fails must not undo the commit
                progress(f"could not reply to {f.id}: {type(exc).__name__}")
