"""What a job runs: the same flow as ``dataeng-crew propose`` / ``revise``, and how its outcome is recorded.

A proposal that needs an approval (governance or cost) is validated, then held: the flow's ``on_validated`` hook
stops it before anything is published. Once an approver approves, the job runs again with the hold lifted (the
flow re-validates on the then current base, so what is published is what was validated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dataeng_crew.errors import ApprovalPending, DataengCrewError
from dataeng_crew.service.config import ServeConfig
from dataeng_crew.service.store import Job


@dataclass
class JobOutcome:
    """How a job ended, as the store records it."""

    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    proposal_dir: str | None = None
    approvals: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    llm_usage: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JobContext:
    """What every job of one service shares."""

    project: Path
    config: ServeConfig
    progress: Callable[[str], None] = lambda _s: None


Runner = Callable[[Job, JobContext], JobOutcome]


def github_options(config: ServeConfig, _job: Job | None = None):  # noqa: ANN201 - GithubOptions (lazy import)
    """The GitHub options of a job (the config's repository and API)."""
    from dataeng_crew.tools.github_pr import GithubOptions

    return GithubOptions(repo=config.github.repo, api_url=config.github.api_url, draft=config.github.draft,
                         throttle=config.github.throttle)


def _hold_for_approval(proposal, _files: dict[str, str]) -> None:  # noqa: ANN001 - Proposal
    if proposal.approvals:
        who = sorted({a for req in proposal.approvals for a in req.approvers}) or ["an owner"]
        raise ApprovalPending(f"validated; held until {', '.join(who)} approve(s): "
                              + "; ".join(r for req in proposal.approvals for r in req.reasons))


def run_job(job: Job, ctx: JobContext) -> JobOutcome:
    """Run one job with the real flow (the default runner).

    Args:
        job: The job (``propose`` or ``revise``).
        ctx: Project, config and a progress callback (stage names).

    Returns:
        The outcome; errors become a failed outcome with the CLI's exit code, never an exception
        (``KeyboardInterrupt`` included: the flow has settled what git holds first).
    """
    if job.kind == "revise":
        return _revise(job, ctx)
    return _propose(job, ctx)


def _brain(ctx: JobContext):  # noqa: ANN202
    from dataeng_crew.agents.llm import select_brain

    return select_brain(ctx.config.llm, None, None, ctx.project)


def _propose(job: Job, ctx: JobContext) -> JobOutcome:
    from dataeng_crew import flow

    publish = job.options.get("publish") or ctx.config.publish
    gate = None if job.options.get("approved_by") or publish == "none" else _hold_for_approval
    try:
        proposal = flow.propose(job.request, project=ctx.project, warehouse=ctx.config.warehouse, publish=publish,
                                brain=_brain(ctx), progress=ctx.progress, github=github_options(ctx.config, job),
                                on_validated=gate, target_dialect=job.options.get("target_dialect"),
                                semantic_layer=job.options.get("semantic_layer"))
    except ApprovalPending as exc:
        return _from_proposal(_held(getattr(exc, "proposal", None)), "awaiting_approval", exc)
    except KeyboardInterrupt as exc:
        proposal = getattr(exc, "proposal", None)
        code = getattr(exc, "exit_code", 130)
        outcome = _from_proposal(proposal, proposal.status if proposal else "interrupted", None)
        outcome.exit_code = None if outcome.status == "published" else code
        outcome.error = proposal.error if proposal else "interrupted before the proposal started"
        return outcome
    except DataengCrewError as exc:
        return _from_proposal(getattr(exc, "proposal", None), "failed", exc)
    except Exception as exc:  # noqa: BLE001 - a bug: recorded, the service goes on
        return _from_proposal(getattr(exc, "proposal", None), "failed",
                              DataengCrewError(f"unexpected {type(exc).__name__}: {exc} (a bug in dataeng-crew)"))
    return _from_proposal(proposal, proposal.status, None)


def _held(proposal):  # noqa: ANN001, ANN202 - Proposal | None
    """The flow recorded the hold as a failure; its report says what it is: validated, not published."""
    if proposal is not None and proposal.proposal_dir:
        proposal.status = "validated"
        (Path(proposal.proposal_dir) / "report.json").write_text(proposal.model_dump_json(indent=2))
    return proposal


def _from_proposal(proposal, status: str, exc: DataengCrewError | None) -> JobOutcome:  # noqa: ANN001
    if proposal is None:
        return JobOutcome(status=status, error=str(exc) if exc else None, exit_code=exc.exit_code if exc else None)
    from dataeng_crew.reporting import summary

    result = summary(proposal)
    result["data_diffs"] = [d.model_dump() for d in proposal.data_diffs]
    if exc is not None:
        result["error"], result["exit_code"] = str(exc), exc.exit_code
    return JobOutcome(status=status, result=result, error=str(exc) if exc else None,
                      exit_code=exc.exit_code if exc else None, proposal_dir=proposal.proposal_dir,
                      approvals=[a.model_dump() for a in proposal.approvals],
                      timings=[t.model_dump() for t in proposal.timings],
                      llm_usage=[u.model_dump() for u in proposal.llm_usage])


def _revise(job: Job, ctx: JobContext) -> JobOutcome:
    from dataeng_crew import revise as revising

    pr = job.options.get("pr_number")
    try:
        revision = revising.revise(job.options.get("target"), project=ctx.project, warehouse=ctx.config.warehouse,
                                   comments=job.options.get("comments") or None, pr_number=pr,
                                   github=github_options(ctx.config, job), brain=_brain(ctx), progress=ctx.progress)
    except KeyboardInterrupt as exc:
        revision = getattr(exc, "revision", None)
        return JobOutcome(status="interrupted", result=revision.model_dump() if revision else {},
                          error="interrupted", exit_code=getattr(exc, "exit_code", 130))
    except DataengCrewError as exc:
        return JobOutcome(status="failed", error=str(exc), exit_code=exc.exit_code,
                          result={"error": str(exc), "exit_code": exc.exit_code})
    except Exception as exc:  # noqa: BLE001 - a bug: recorded, the service goes on
        return JobOutcome(status="failed", error=f"unexpected {type(exc).__name__}: {exc}", exit_code=1)
    status = "revised" if revision.commit else ("failed" if revision.status == "failed" else "unchanged")
    return JobOutcome(status=status, result=revision.model_dump())


def git_said(job: Job, project: Path) -> str:
    """After a crash: what git holds for a job that was running (its proposal's commit on its branch, or not).

    The proposal's folder is the job's, or the newest folder of the same request started after the job.
    """
    import json

    from dataeng_crew import flow
    from dataeng_crew.tools import git_local

    try:
        ws = flow.resolve_workspace(project)
    except DataengCrewError as exc:
        return f"git not read ({exc})"
    if ws.repo is None:
        return "not in a git repository: nothing was published"
    folder = Path(job.proposal_dir) if job.proposal_dir else None
    if folder is None and job.kind == "propose":
        stamp = (job.started_at or job.created_at)[:19].replace("-", "").replace(":", "")
        folders = sorted((ws.state_dir / "proposals").glob("*/report.json")) if ws.state_dir.is_dir() else []
        for report in reversed(folders):
            data = json.loads(report.read_text())
            if data.get("request") == flow.clean_request(job.request) and report.parent.name[:15] >= stamp:
                folder = report.parent
                break
    if folder is None:
        return "no proposal folder was made: nothing was published"
    branch = f"dataeng-crew/{flow.slugify(flow.clean_request(job.request))}"
    sha = git_local.proposal_commit(ws.repo, branch, folder.name)
    if sha:
        return f"git: {branch} ({sha[:10]}) holds proposal {folder.name} (published before the stop)"
    return f"git: {branch} does not hold proposal {folder.name}: nothing was published"
