"""The flow: the one place that orders the steps of a proposal.

profile → plan → model → transform → test → govern → render → sqlglot → dbt build (sandbox)
→ publish (one commit on a branch) . Every step reads and returns contracts; the user's
project and git tree are only touched by the final, atomic branch update.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Literal

import yaml

from agents import governance, quality
from agents.brains import Brain, DeterministicBrain
from dataeng_crew.contracts import BuildResult, CheckReport, ModelSpec, Proposal, StageTiming
from dataeng_crew.errors import BuildError, ConfigError, DataengCrewError, SqlCheckError
from dataeng_crew.render import render_pr_body, render_project_files
from dataeng_crew.settings import Workspace, default_warehouse, find_project, project_config, state_dir_for
from tools import git_local
from tools.dbt_runner import run_dbt
from tools.expectations import suite_json, validate_suites
from tools.project_files import validate_path, write_project_files
from tools.sqlcheck import CheckOutcome, check_and_compile
from tools.warehouse import load_folder, profile_warehouse, warehouse_schema

Progress = Callable[[str], None]
SANDBOX_IGNORE = shutil.ignore_patterns("target", "logs", "dbt_packages", ".dataeng-crew", "*.duckdb",
                                        "*.duckdb.wal", ".user.yml", "warehouse")


def slugify(text: str, limit: int = 48) -> str:
    """``"daily_sales mart"`` → ``daily-sales-mart``."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "proposal"


def resolve_workspace(project: Path | None) -> Workspace:
    """Find the dbt project, its git repository (if any) and the state folder."""
    project_dir = find_project(project)
    repo = git_local.repo_root(project_dir)
    return Workspace(project=project_dir, repo=repo, state_dir=state_dir_for(repo or project_dir))


def resolve_warehouse(ws: Workspace, warehouse: Path | None) -> Path:
    """The DuckDB file to profile: given, a folder loaded into DuckDB, or the project's profile target.

    Raises:
        ConfigError: When the warehouse does not exist.
    """
    path = Path(warehouse).resolve() if warehouse else default_warehouse(ws.project)
    if path.is_dir():
        return load_folder(path, ws.state_dir / "warehouses" / f"{path.name}.duckdb")
    if not path.is_file():
        hint = " Build the sample first: dataeng-crew sample" if not warehouse else ""
        raise ConfigError(f"warehouse not found: {path}.{hint}")
    return path


@contextmanager
def _stage(proposal: Proposal, name: str, progress: Progress) -> Iterator[None]:
    progress(name)
    started = time.perf_counter()
    try:
        yield
    finally:
        proposal.timings.append(StageTiming(stage=name, seconds=round(time.perf_counter() - started, 3)))


def write_sandbox_profile(sandbox: Path, profile_name: str, db_file: Path, threads: int = 4,
                          memory_limit: str = "4GB") -> Path:
    """A ``profiles.yml`` for the sandbox: DuckDB at ``db_file``, locked down.

    External access (file reads, ATTACH of other files, httpfs) and extension autoloading are off, so
    even SQL that slipped past sqlglot cannot read ``/etc/passwd`` or reach the network.
    """
    profiles_dir = sandbox / "profiles"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump({
        profile_name: {"target": "sandbox", "outputs": {"sandbox": {
            "type": "duckdb", "path": str(db_file), "threads": threads, "schema": "main",
            # defence in depth behind sqlglot: model SQL cannot read files or load extensions
            "config_options": {"enable_external_access": False, "autoload_known_extensions": False,
                               "autoinstall_known_extensions": False, "memory_limit": memory_limit,
                               "lock_configuration": True},
        }}}
    }))
    return profiles_dir


def prepare_sandbox(ws: Workspace, warehouse: Path, folder: Path) -> tuple[Path, Path, Path]:
    """Copy the project and the warehouse into ``folder``; return (project, profiles dir, db file)."""
    project_copy = folder / "project"
    if project_copy.exists():
        shutil.rmtree(project_copy)
    shutil.copytree(ws.project, project_copy, ignore=SANDBOX_IGNORE, symlinks=True)
    db_dir = folder / "warehouse"
    db_dir.mkdir(parents=True, exist_ok=True)
    db_file = db_dir / warehouse.name  # same stem = same DuckDB database name as the sources pin
    shutil.copyfile(warehouse, db_file)
    profiles_dir = write_sandbox_profile(folder, project_config(ws.project)["profile"], db_file)
    return project_copy, profiles_dir, db_file


def build_selector(models: list[ModelSpec]) -> list[str]:
    """``--select`` for the generated models, their parents and their tests."""
    return ["--select", *[f"+{m.name}+" for m in models]]


def propose(
    request: str,
    project: Path | None = None,
    warehouse: Path | None = None,
    publish: Literal["local", "none"] = "local",
    brain: Brain | None = None,
    progress: Progress = lambda _msg: None,
) -> Proposal:
    """Turn a request into a validated dbt change, then publish it on a branch.

    Args:
        request: What to build, e.g. ``"daily_sales mart"``.
        project: dbt project folder (default: current folder or ``./dbt_project``).
        warehouse: DuckDB file or folder of data files (default: the project's DuckDB profile).
        publish: ``local`` (branch + one commit) or ``none`` (validate only).
        brain: The roles' brain (default: deterministic).
        progress: Called with each stage's name.

    Returns:
        The proposal (also written as ``report.json`` in its folder).

    Raises:
        DataengCrewError: Any failure, after the report was written; nothing was published then.
    """
    brain = brain or DeterministicBrain()
    ws = resolve_workspace(project)
    now = dt.datetime.now(dt.timezone.utc)
    proposal_id = f"{now:%Y%m%dT%H%M%S}-{slugify(request or 'empty', 32)}"
    if publish == "local" and ws.repo is None:
        raise ConfigError(f"{ws.project} is not in a git repository: run `git init` and commit it, "
                          "or use --publish none")
    folder = ws.state_dir / "proposals" / proposal_id
    folder.mkdir(parents=True, exist_ok=True)
    proposal = Proposal(proposal_id=proposal_id, request=request, created_at=now.isoformat(timespec="seconds"),
                        brain=brain.name, proposal_dir=str(folder))
    try:
        _run(proposal, request, ws, warehouse, publish, brain, folder, progress)
    except KeyboardInterrupt:
        proposal.status = "interrupted"
        proposal.error = "interrupted by the user; nothing was published"
        raise
    except DataengCrewError as exc:
        proposal.status = "failed"
        proposal.error = str(exc)
        raise
    finally:
        (folder / "report.json").write_text(proposal.model_dump_json(indent=2))
    return proposal


def _run(proposal: Proposal, request: str, ws: Workspace, warehouse: Path | None, publish: str,
         brain: Brain, folder: Path, progress: Progress) -> None:
    with _stage(proposal, "profile warehouse", progress):
        wh = resolve_warehouse(ws, warehouse)
        profile = profile_warehouse(wh)
    with _stage(proposal, "plan", progress):
        proposal.plan = brain.plan(request, profile)
    with _stage(proposal, "model staging", progress):
        sources, staging = brain.model(proposal.plan, profile)
    with _stage(proposal, "transform marts", progress):
        marts = brain.transform(proposal.plan, profile, staging)
    with _stage(proposal, "quality tests", progress):
        sources, models, suites = brain.test(proposal.plan, sources, staging + marts, profile)
    policy = governance.load_policy(ws.project)
    with _stage(proposal, "governance", progress):
        models, policies = brain.govern(models, profile, policy)
    proposal.sources, proposal.models, proposal.policies = sources, models, policies

    base = git_local.head_commit(ws.repo) if publish == "local" and ws.repo else None
    prefix = f"{ws.project_in_repo}/" if ws.project_in_repo else ""

    def read_existing(rel: str) -> str | None:
        if base and ws.repo:
            return git_local.read_at(ws.repo, base, prefix + rel)
        path = ws.project / rel
        return path.read_text() if path.is_file() else None

    with _stage(proposal, "sqlglot check", progress):
        outcome = _sqlglot(proposal, models, sources, profile)
    with _stage(proposal, "governance: marts vs restricted columns", progress):
        restricted = {(m.name, c.name) for m in models for c in m.columns
                      if c.meta.get("classification") in policy.restricted_classifications}
        marts = [m for m in models if m.layer == "marts"]
        exposures = governance.find_exposures(marts, outcome.compiled, outcome.schema, restricted,
                                              policy.mart_pii_action)
        if exposures:
            masked = {m.name: m for m in governance.mask_marts(marts, exposures)}
            models = [masked.get(m.name, m) for m in models]
            proposal.models = models
            _sqlglot(proposal, models, sources, profile)
        proposal.exposures = exposures
        proposal.approvals = governance.approvals(models, policies, exposures, policy)
    suites = quality.expectation_suites(models, profile) if exposures else suites  # masked marts changed
    proposal.suites = suites

    def render() -> dict[str, str]:
        files = render_project_files(sources, models, read_existing)
        files.update({s.path: json.dumps(suite_json(s), indent=2) + "\n" for s in suites})
        for rel in files:  # every path is checked before anything is written anywhere
            validate_path(ws.project, rel)
        return files

    with _stage(proposal, "render", progress):
        files = render()
    with _stage(proposal, "dbt build (sandbox)", progress):
        project_copy, profiles_dir, db_file = prepare_sandbox(ws, wh, folder / "sandbox")
        proposal.warehouse = str(db_file)
        build = _build(proposal, project_copy, profiles_dir, folder, models, files)
    if not build.success:
        with _stage(proposal, "triage failing tests", progress):
            models, sources, decisions = brain.triage(build, models, sources, db_file)
            proposal.triage, proposal.models, proposal.sources = decisions, models, sources
            if decisions:
                files = render()
                build = _build(proposal, project_copy, profiles_dir, folder, models, files)
        if not build.success:
            raise BuildError(describe_build_failure(build))
    with _stage(proposal, "Great Expectations", progress):
        proposal.suite_results = validate_suites(db_file, suites)
        if any(r.failed for r in proposal.suite_results):
            suites, decisions = brain.triage_suites(proposal.suite_results, suites, db_file)
            proposal.triage += decisions
            proposal.suites = suites
            proposal.suite_results = validate_suites(db_file, suites)
            files = render()  # the loosened suites are what gets committed
        broken = [r for r in proposal.suite_results if r.error]
        if broken:
            raise BuildError("Great Expectations could not validate: " + "; ".join(
                f"{r.suite}: {r.error}" for r in broken))
    proposal.status = "validated"
    slug = slugify(request)
    pr_rel = f"proposals/{slug}.md"
    if publish == "local":
        proposal.branch = f"dataeng-crew/{slug}"
        proposal.pr = str(folder / "PR.md")
        proposal.files = sorted(prefix + rel for rel in [*files, pr_rel])
        proposal.status = "published"
        body = render_pr_body(proposal)
        with _stage(proposal, "publish (local branch)", progress):
            assert ws.repo is not None and base is not None
            message = f"dataeng-crew: {request}\n\nProposal {proposal.proposal_id}. Models: " + ", ".join(
                m.name for m in models) + ".\nValidated by sqlglot and dbt build on a sandbox copy of the warehouse."
            try:
                proposal.commit = git_local.commit_to_branch(
                    ws.repo, base, proposal.branch, {**{prefix + k: v for k, v in files.items()}, prefix + pr_rel: body},
                    message)
            except DataengCrewError:
                proposal.status, proposal.branch, proposal.commit = "validated", None, None
                raise
    else:
        proposal.pr = str(folder / "PR.md")
        body = render_pr_body(proposal)
    (folder / "PR.md").write_text(body)


def _build(proposal: Proposal, project_copy: Path, profiles_dir: Path, folder: Path, models: list[ModelSpec],
           files: dict[str, str]) -> BuildResult:
    write_project_files(project_copy, files)
    build = run_dbt(["build", *build_selector(models)], project_copy, profiles_dir,
                    target_path=folder / "sandbox" / "target", log_path=folder / "sandbox" / "logs", write_json=False)
    proposal.checks.build = build
    return build


def _sqlglot(proposal: Proposal, models: list[ModelSpec], sources, profile) -> CheckOutcome:  # noqa: ANN001
    outcome = check_and_compile(models, sources, warehouse_schema(profile), model_database=profile.database)
    proposal.checks = CheckReport(sql_issues=outcome.issues, models_checked=len(models))
    if outcome.issues:
        raise SqlCheckError("sqlglot refused the generated SQL:\n" + "\n".join(
            f"  {i.model}: [{i.kind}] {i.message}" for i in outcome.issues))
    return outcome


def describe_build_failure(build: BuildResult) -> str:
    """A short, readable account of why a dbt build failed."""
    lines = ["dbt build failed on the sandbox copy; nothing was published."]
    if build.error:
        lines.append(f"  dbt: {build.error[:800]}")
    for node in build.failed_nodes:
        lines.append(f"  {node.unique_id}: {node.status}" + (f" — {node.message[:400]}" if node.message else ""))
    return "\n".join(lines)


def summary(proposal: Proposal) -> dict:
    """The ``--json`` object printed by ``propose``."""
    db = Path(proposal.warehouse).stem if proposal.warehouse else None
    return {
        "proposal_id": proposal.proposal_id,
        "status": proposal.status,
        "request": proposal.request,
        "brain": proposal.brain,
        "branch": proposal.branch,
        "commit": proposal.commit,
        "models": [{"name": m.name, "path": m.path, "layer": m.layer,
                    "relation": f"{db}.main.{m.name}" if db else None} for m in proposal.models],
        "build": None if proposal.checks.build is None else {
            "success": proposal.checks.build.success,
            "nodes": [{"unique_id": n.unique_id, "status": n.status, "failures": n.failures}
                      for n in proposal.checks.build.nodes],
        },
        "sql_issues": [i.model_dump() for i in proposal.checks.sql_issues],
        "needs_approval": [a.model_dump() for a in proposal.approvals],
        "pii_exposures": [e.model_dump() for e in proposal.exposures],
        "pr": proposal.pr,
        "warehouse": proposal.warehouse,
        "report": str(Path(proposal.proposal_dir) / "report.json") if proposal.proposal_dir else None,
        "error": proposal.error,
        "timings": {t.stage: t.seconds for t in proposal.timings},
    }


def dumps(data: dict) -> str:
    """JSON for the terminal."""
    return json.dumps(data, indent=2, default=str)
