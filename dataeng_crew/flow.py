"""The flow: the one place that orders the steps of a proposal.

profile → plan → model → transform → test → govern → render → sqlglot → dbt build (sandbox)
→ publish (one commit on a branch) . Every step reads and returns contracts; the user's
project and git tree are only touched by the final, atomic branch update.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Literal


from dataeng_crew.agents import governance, project_plan, quality
from dataeng_crew.agents.brains import Brain, DeterministicBrain
from dataeng_crew.agents.roles import RoleContext, registered_roles
from dataeng_crew.contracts import (
    ApprovalRequest,
    BuildResult,
    CheckReport,
    CostEstimate,
    ModelSpec,
    ModifiedFile,
    ProjectInventory,
    Proposal,
    SourceSpec,
    SourceTableSpec,
    WarehouseProfile,
)
from dataeng_crew.errors import (BuildError, ConfigError, DataengCrewError, SqlCheckError, Terminated,
                                 UnsafeArtifactError)
from dataeng_crew.locking import run_lock
from dataeng_crew.recorder import Recorder
from dataeng_crew.repair import errors_for, with_repairs
from dataeng_crew.render import render_pr_body, render_project_files
from dataeng_crew.review_steps import review_commands
from dataeng_crew.signals import held, sigterm_as_interrupt
from dataeng_crew.settings import Workspace, default_warehouse, find_project, state_dir_for
from dataeng_crew.tools import git_local, github_pr, sandbox
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.dialect import check_dialect, dialect_warnings, profile_dialect, transpile_models
from dataeng_crew.tools.audit import AuditLog, who
from dataeng_crew.tools.cost import explain, inline_models
from dataeng_crew.tools.expectations import suite_json, validate_suites
from dataeng_crew.tools.lineage import DatasetRef, Lineage, column_lineage
from dataeng_crew.tools.project_files import validate_path, write_project_files
from dataeng_crew.tools.prompt_safety import clean_text
from dataeng_crew.tools.sqlcheck import CheckOutcome, check_and_compile
from dataeng_crew.tools.project_inventory import project_inventory, project_profile
from dataeng_crew.tools.warehouse import load_folder, warehouse_schema

Progress = Callable[[str], None]
MAX_REQUEST_CHARS = 2_000


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


def base_commit(ws: Workspace) -> str | None:
    """The commit the sandbox and the proposal are built on: HEAD of the project's repository (None outside git
    or before the first commit: the working tree is used then)."""
    if ws.repo is None:
        return None
    try:
        return git_local.head_commit(ws.repo)
    except DataengCrewError:
        return None


def project_roots(inventory: ProjectInventory | None) -> tuple[str, ...]:
    """The project's own model and test paths, which proposals may write besides the defaults."""
    return tuple(inventory.model_paths + inventory.test_paths) if inventory is not None else ()


def build_selector(models: list[ModelSpec]) -> list[str]:
    """``--select`` for the generated models, their tests and everything those need.

    ``@model`` is the model, its descendants (its tests) and every ancestor of those, so a relationships test's
    target is built too; ``buildable`` keeps only tests whose parents are all built — a test the project (or an
    earlier, merged proposal) put on a model this build does not make is left out instead of failing on a missing
    table.
    """
    return ["--select", *[f"@{m.name}" for m in models], "--indirect-selection", "buildable"]


def propose(
    request: str,
    project: Path | None = None,
    warehouse: Path | None = None,
    publish: Literal["local", "none", "github", "auto"] = "local",
    brain: Brain | None = None,
    progress: Progress = lambda _msg: None,
    target_dialect: str | None = None,
    github: github_pr.GithubOptions | None = None,
    max_repair_rounds: int = 2,
    on_validated: Callable[[Proposal, dict[str, str]], None] | None = None,
    semantic_layer: bool | None = None,
    ddl: Sequence[str] = (),
) -> Proposal:
    """Turn a request into a validated dbt change, then publish it on a branch.

    Args:
        request: What to build, e.g. ``"daily_sales mart"``.
        project: dbt project folder (default: current folder or ``./dbt_project``).
        warehouse: DuckDB file or folder of data files (default: the project's DuckDB profile).
        publish: ``local`` (branch + one commit), ``github`` (the same local branch, plus one commit on a
            GitHub branch and a pull request), ``auto`` (github when a token and a repository are
            configured, else local) or ``none`` (validate only).
        brain: The roles' brain (default: deterministic).
        progress: Called with each stage's name (and each dialect warning).
        target_dialect: Dialect of the committed model SQL (default: the dbt profile's adapter, else duckdb);
            validation always builds the DuckDB SQL in the sandbox.
        github: Options for ``github`` (repository, API URL, draft, reviewers).
        max_repair_rounds: Rounds a model refused by sqlglot or dbt goes back to its author (LLM brains).
        semantic_layer: Commit the metric query's semantic layer (``semantic_models:``/``metrics:``) beside
            the mart: True, False, or None (when the project already has a semantic layer).
        on_validated: Called with the proposal and its files (project-relative) once every check passed,
            before publishing (``revise`` publishes them itself, on top of the branch tip).

    Returns:
        The proposal (also written as ``report.json`` in its folder).

    Raises:
        DataengCrewError: Any failure, after the report was written; nothing was published then.
    """
    brain = brain or DeterministicBrain()
    request = clean_request(request)
    ws = resolve_workspace(project)
    target_dialect = check_dialect(target_dialect or profile_dialect(ws.project))
    gh_target = None
    if publish in ("github", "auto"):  # checked before any work: a missing token or repository costs nothing
        github = github or github_pr.GithubOptions()
        if publish == "auto":
            publish = "github" if github_pr.configured(github, ws.repo) else "local"
        if publish == "github":
            gh_target = github_pr.require_target(github, ws.repo)
    if publish in ("local", "github") and ws.repo is None:
        raise ConfigError(f"{ws.project} is not in a git repository: run `git init` and commit it, "
                          "or use --publish none")
    with sigterm_as_interrupt(), run_lock(ws.state_dir, f"propose {request}"):
        return _propose_locked(request, ws, warehouse, publish, brain, progress, target_dialect,
                               (gh_target, github), max_repair_rounds, on_validated, semantic_layer, ddl)


def clean_request(request: str) -> str:
    """The request without control, bidi or zero-width characters, whitespace collapsed.

    It reaches the commit message, the PR, yml descriptions and DDL comments: nothing invisible may.
    """
    return " ".join(clean_text(request or "", MAX_REQUEST_CHARS).split())


def _propose_locked(request: str, ws: Workspace, warehouse: Path | None, publish: str, brain: Brain,
                    progress: Progress, target_dialect: str, gh: tuple, max_repair_rounds: int,
                    on_validated: Callable[[Proposal, dict[str, str]], None] | None = None,
                    semantic_layer: bool | None = None, ddl: Sequence[str] = ()) -> Proposal:
    now = dt.datetime.now(dt.timezone.utc)
    proposal_id = f"{now:%Y%m%dT%H%M%S}-{slugify(request or 'empty', 32)}"
    with held() as early:  # the folder and its report appear together: no empty folder on an early Ctrl-C
        folder = _new_folder(ws, proposal_id)
        proposal_id = folder.name
        proposal = Proposal(proposal_id=proposal_id, request=request, created_at=now.isoformat(timespec="seconds"),
                            brain=brain.name, proposal_dir=str(folder))
        # until the run ends, the report on disk says it did not finish (a SIGKILL leaves exactly that)
        (folder / "report.json").write_text(proposal.model_copy(update={
            "status": "interrupted", "error": "the run did not finish"}).model_dump_json(indent=2))
    lineage = Lineage(ws.state_dir)
    audit = AuditLog(ws.state_dir, who(ws.repo))
    args = {"request": request, "project": str(ws.project), "warehouse": str(warehouse or ""), "publish": publish,
            "brain": brain.name}
    root = lineage.start("dataeng_crew.propose")
    rec = Recorder(proposal=proposal, lineage=lineage, audit=audit, args=args, progress=progress, parent=root)
    started = time.perf_counter()
    outcome = "ok"
    try:
        if early.interrupt() is not None:
            raise early.interrupt()  # type: ignore[misc]
        if publish in ("local", "github") and ws.repo is not None:  # refuse before the work, not after it
            git_local.check_branch_movable(ws.repo, f"dataeng-crew/{slugify(request)}", git_local.head_commit(ws.repo))
        proposal.target_dialect = target_dialect
        proposal.ddl_dialects = [check_dialect(d) for d in ddl]
        _run(proposal, request, ws, warehouse, publish, brain, folder, rec, gh, max_repair_rounds, on_validated,
             semantic_layer)
    except KeyboardInterrupt as exc:
        with held():
            outcome = "terminated" if isinstance(exc, Terminated) else "interrupted"
            _settle_interrupted(proposal, ws, outcome, publish)
            lineage.fail(root, None, proposal.error or outcome)
            exc.proposal = proposal  # type: ignore[attr-defined] - the CLI reports what git holds
        raise
    except Exception as exc:
        proposal.status, outcome = "failed", f"error: {type(exc).__name__}"
        proposal.error = str(exc)
        lineage.fail(root, None, f"{type(exc).__name__}: {str(exc)[:500]}")
        exc.proposal = proposal  # type: ignore[attr-defined]
        raise
    else:
        lineage.complete(root)
    finally:
        with held():  # the audit line and the report are written whole, whatever arrives meanwhile
            audit.record("propose", args, outcome, time.perf_counter() - started, proposal.proposal_id)
            proposal.llm_usage = brain.usage_report() if hasattr(brain, "usage_report") else []
            (folder / "report.json").write_text(proposal.model_dump_json(indent=2))
    return proposal


def _new_folder(ws: Workspace, proposal_id: str) -> Path:
    folder = ws.state_dir / "proposals" / proposal_id
    suffix = 1
    while True:  # two runs in the same second get distinct folders
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            suffix += 1
            folder = ws.state_dir / "proposals" / f"{proposal_id}-{suffix}"


def _settle_interrupted(proposal: Proposal, ws: Workspace, outcome: str, publish: str) -> None:
    """After Ctrl-C/SIGTERM, make the report say what git holds: the branch either has this proposal's commit
    (the ref was written before the signal arrived) or nothing was published."""
    word = "terminated (SIGTERM)" if outcome == "terminated" else "interrupted by the user"
    sha = git_local.proposal_commit(ws.repo, proposal.branch, proposal.proposal_id) \
        if ws.repo and proposal.branch else None
    if sha:
        proposal.status, proposal.commit = "published", sha
        remote = " (its GitHub pull request may be incomplete: run the request again to finish it)" \
            if publish == "github" and proposal.pull_request is None else ""
        proposal.error = (f"{word} after the branch was written: {proposal.branch} ({sha[:10]}) holds proposal "
                          f"{proposal.proposal_id}{remote}; `dataeng-crew rollback {proposal.proposal_id}` undoes it")
    else:
        proposal.status, proposal.branch, proposal.commit = "interrupted", None, None
        proposal.error = f"{word}; nothing was published"


def _run(proposal: Proposal, request: str, ws: Workspace, warehouse: Path | None, publish: str,
         brain: Brain, folder: Path, rec: Recorder, gh: tuple = (None, None),
         max_repair_rounds: int = 2, on_validated: Callable[[Proposal, dict[str, str]], None] | None = None,
         semantic_layer: bool | None = None) -> None:
    base = base_commit(ws)
    if publish in ("local", "github") and base is None and ws.repo is not None:
        git_local.head_commit(ws.repo)  # raises PublishError before any work: the repository has no commit yet
    committed = base is not None and ws.repo is not None and git_local.read_at(
        ws.repo, base, (f"{ws.project_in_repo}/" if ws.project_in_repo else "") + "dbt_project.yml") is not None
    if publish in ("local", "github") and base is not None and not committed:
        raise ConfigError(f"{ws.project}/dbt_project.yml is not committed in {ws.repo}: a proposal is validated on, "
                          "and committed on top of, the committed project. Commit the project first, or use --publish none")
    sandbox_base = base if committed else None  # an uncommitted project (--publish none) is read from its folder
    with rec.stage("sandbox + project inventory (dbt parse)", "tool", "sandbox.prepare_sandbox; project_inventory") as io:
        wh = resolve_warehouse(ws, warehouse)
        box = sandbox.prepare_sandbox(ws.project, wh, folder / "sandbox", ws.repo if sandbox_base else None,
                                      sandbox_base, ws.project_in_repo)
        inventory = project_inventory(box.project, box.profiles_dir, box.folder)
        io.observation = (f"{len(inventory.models)} models, {len(inventory.sources)} sources, {len(inventory.seeds)} "
                          f"seeds, {len(inventory.tests)} tests, packages: {', '.join(inventory.packages) or 'none'}; "
                          f"sandbox from {'commit ' + sandbox_base[:12] if sandbox_base else 'the working tree'}")
    upstream = [m.name for m in inventory.models if m.layer != "marts"]
    if inventory.seeds or upstream:
        with rec.stage("build the project's models (sandbox)", "tool", "dbt seed; dbt run --select +<staging>") as io:
            for result in sandbox.build_existing(box, bool(inventory.seeds), upstream):
                if not result.success:
                    raise BuildError("the project's own seeds/models do not build on the base commit, so nothing can "
                                     "be built on them:\n" + describe_build_failure(result))
            io.observation = f"seeds loaded: {len(inventory.seeds)}; models built: {', '.join(upstream) or 'none'}"
    with rec.stage("profile warehouse", "tool", "project_inventory.project_profile") as io:
        profile = project_profile(box.db_file, inventory)
        io.inputs = [raw_dataset(wh, t) for t in profile.tables if t.origin != "model"]
        by_origin: dict[str, int] = {}
        for t in profile.tables:
            by_origin[t.origin] = by_origin.get(t.origin, 0) + 1
        io.observation = (f"{len(profile.tables)} tables ({', '.join(f'{v} {k}' for k, v in sorted(by_origin.items()))}), "
                          f"{len(profile.foreign_keys)} foreign keys")
    policy = governance.load_policy(ws.project)
    ctx = RoleContext(request=request, profile=profile, brain=brain, policy=policy)
    for role in registered_roles():  # planner, modeler, transformer, quality, governance, and any role added
        if role.step is None:
            continue
        with rec.stage(role.stage, role.name, role.action) as io:
            io.thought, io.observation = role.step(ctx)
            proposal.plan = ctx.plan
    if ctx.plan is None:
        raise DataengCrewError("no registered role produced a plan")
    sources, suites, policies = ctx.sources, ctx.suites, ctx.policies
    models = project_plan.place_models(ctx.models, inventory)  # the project's paths; never over its own models
    proposal.sources, proposal.models, proposal.policies = sources, models, policies
    roots = project_roots(inventory)
    prefix = f"{ws.project_in_repo}/" if ws.project_in_repo else ""

    def read_existing(rel: str) -> str | None:
        if sandbox_base and ws.repo:
            return git_local.read_at(ws.repo, sandbox_base, prefix + rel)
        path = ws.project / rel
        return path.read_text() if path.is_file() else None

    with rec.stage("sqlglot check", "tool", "sqlcheck.check_and_compile(models)") as io:
        outcome, models = with_repairs(proposal, brain, models, lambda ms: _sqlglot(proposal, ms, sources, profile),
                                       errors_for(proposal), "sqlglot", max_repair_rounds)
        io.observation = f"{len(models)} models: one safe query each, every table and column known"
    with rec.stage("governance: marts vs restricted columns", "governance", "governance.find_exposures") as io:
        restricted = {(m.name, c.name) for m in models for c in m.columns
                      if c.meta.get("classification") in policy.restricted_classifications}
        read = governance.classify_read_relations(models, profile)  # the project's own models and seeds
        restricted |= {(p.model, p.column) for p in read if p.classification in policy.restricted_classifications
                       and p.confidence >= policy.min_confidence}
        policies = policies + read
        proposal.policies = policies
        marts = [m for m in models if m.layer == "marts"]
        exposures = governance.find_exposures(marts, outcome.compiled, outcome.schema, restricted,
                                              policy.mart_pii_action)
        if exposures:
            masked = {m.name: m for m in governance.mask_marts(marts, exposures)}
            models = [masked.get(m.name, m) for m in models]
            proposal.models = models
            outcome = _sqlglot(proposal, models, sources, profile)  # the masked marts are what runs
        proposal.exposures = exposures
        proposal.approvals = governance.approvals(models, policies, exposures, policy)
    with rec.stage("cost guardrail (EXPLAIN)", "tool", "cost.explain(mart)") as io:
        proposal.costs = estimate_costs(models, outcome, box.db_file, policy)
        over = [c for c in proposal.costs if c.over_threshold]
        if over:
            proposal.approvals.append(ApprovalRequest(kind="cost", approvers=policy.cost_approvers, reasons=[
                f"{c.model}: ~{c.rows_scanned:,} rows scanned > {c.threshold:,}" for c in over]))
        io.observation = "; ".join(c.explanation for c in proposal.costs) or "no mart"
    suites = quality.expectation_suites(models, profile, proposal.plan) if exposures else suites  # masked marts changed
    proposal.suites = suites
    translated = {}
    if proposal.target_dialect != "duckdb":
        with rec.stage(f"transpile to {proposal.target_dialect}", "tool", "dialect.transpile_models") as io:
            translated = transpile_models(models, proposal.target_dialect)
            proposal.dialect_warnings = dialect_warnings(translated)
            for warning in proposal.dialect_warnings:
                rec.progress(f"warning ({proposal.target_dialect}): {warning}")
            io.observation = (f"{len(translated)} models parsed back in {proposal.target_dialect}; "
                              f"{len(proposal.dialect_warnings)} warning(s)")

    from dataeng_crew.agents.query_layer import proposal_layer_files

    mart = next((m for m in models if m.layer == "marts"), None)
    layer_files, layer_note = proposal_layer_files(proposal.plan, profile, mart, ws.project, semantic_layer) \
        if mart is not None and proposal.plan is not None else ({}, "")
    if layer_note:
        proposal.plan = proposal.plan.model_copy(update={  # type: ignore[union-attr]
            "interpretations": proposal.plan.interpretations + [layer_note]})  # type: ignore[union-attr]

    def render(dialect: str = "duckdb") -> dict[str, str]:
        files = render_project_files(sources, models, read_existing, dialect=dialect, inventory=inventory,
                                     ddl_dialects=proposal.ddl_dialects or [dialect])
        files.update(layer_files)
        if dialect != "duckdb":  # the committed SQL; the sandbox built the DuckDB SQL of the same models
            files.update({m.path: translated[m.name].sql for m in models})
        files.update({s.path: json.dumps(suite_json(s), indent=2) + "\n" for s in suites})
        for rel in files:  # every path is checked before anything is written anywhere
            validate_path(ws.project, rel, roots)
        return files

    with rec.stage("render", "tool", "render.render_project_files") as io:
        files = render()
        io.observation = f"{len(files)} files"
    with rec.stage("dbt build (sandbox)", "tool", "dbt build --select +model+ (sandbox)") as io:
        project_copy, profiles_dir, db_file = box.project, box.profiles_dir, box.db_file
        proposal.warehouse = str(db_file)

        def rebuild(attempt: list[ModelSpec]) -> BuildResult:  # a repaired model is checked by sqlglot again
            nonlocal outcome, models, files
            if attempt is not models:
                repaired = [m for m in attempt if m.layer == "marts" and m not in models]
                outcome, models = _sqlglot(proposal, attempt, sources, profile), attempt
                leaks = governance.find_exposures(repaired, outcome.compiled, outcome.schema, restricted,
                                                  policy.mart_pii_action)
                if leaks:  # the lineage guard ran before this repair: a repaired mart may not add an exposure
                    raise UnsafeArtifactError("a repaired mart exposes restricted columns: " + ", ".join(
                        f"{e.model}.{e.column}" for e in leaks))
                files = render()
            return _build(proposal, project_copy, profiles_dir, folder, attempt, files, roots)
        build, models = with_repairs(proposal, brain, models, rebuild, errors_for(proposal), "dbt build",
                                     max_repair_rounds, ok=lambda b: b.success)
        io.inputs = [raw_dataset(wh, t) for t in profile.tables if t.name in (proposal.plan.source_tables or [])]
        io.outputs = [model_dataset(db_file, m) for m in models]
        io.observation = _build_summary(build)
    if not build.success:
        with rec.stage("triage failing tests", "quality", "quality.triage(build)") as io:
            models, sources, decisions = brain.triage(build, models, sources, db_file)
            proposal.triage, proposal.models, proposal.sources = decisions, models, sources
            if decisions:
                files = render()
                build = _build(proposal, project_copy, profiles_dir, folder, models, files, roots)
        if not build.success:
            raise BuildError(describe_build_failure(build))
    with rec.stage("Great Expectations", "tool", "expectations.validate_suites") as io:
        proposal.suite_results = validate_suites(db_file, suites)
        io.inputs = [model_dataset(db_file, m) for m in models]
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
    if proposal.plan is not None and proposal.plan.kind == "metric":
        with rec.stage("MetricFlow oracle", "tool", "query_layer.oracle(plan)") as io:
            from dataeng_crew.agents.query_layer import oracle

            proposal.oracle = oracle(proposal.plan, profile, project_copy, profiles_dir, folder / "oracle",
                                     layer_in_project=bool(layer_files))
            io.observation = describe_oracle(proposal.oracle)
            if proposal.oracle.differences:
                raise BuildError("the mart disagrees with MetricFlow computing the same metric query on the "
                                 f"generated semantic layer ({describe_oracle(proposal.oracle)}); nothing was "
                                 "published:\n  " + "\n  ".join(proposal.oracle.detail[:5]))
    emit_model_lineage(rec, models, outcome, wh, db_file, sources)  # triage changed tests, not SQL
    proposal.status = "validated"
    proposal.llm_usage = brain.usage_report() if hasattr(brain, "usage_report") else []  # for the PR body
    slug = slugify(request)
    if proposal.target_dialect != "duckdb":
        if any(m.name not in translated or m.sql != translated[m.name].source for m in models):  # triage changes tests, not SQL; be sure
            translated = transpile_models(models, proposal.target_dialect)
        files = render(proposal.target_dialect)
    proposal.modified = modified_files(files, read_existing, prefix)
    if sandbox_base is not None and ws.repo is not None:  # the PR's data diff, against the base branch's build
        with rec.stage("data diff against the base build", "tool", "data_diff.diff_model") as io:
            import duckdb

            from dataeng_crew.data_diffs import proposal_diffs  # it imports this module

            try:
                proposal.data_diffs, _ = proposal_diffs(
                    models, files, db_file, lambda sub: git_local.files_under(ws.repo, sandbox_base, sub), prefix, wh, policy,
                    folder / "diff", rec.progress)
                io.observation = ", ".join(f"{d.model}: {d.status}" for d in proposal.data_diffs) or "no model changed"
            except duckdb.Error as exc:  # the diff informs the review; it never blocks a validated proposal
                io.observation = f"data diff not computed: {str(exc)[:300]}"
    if on_validated is not None:  # revise: the validated files go on top of an existing branch
        on_validated(proposal, files)
    if publish in ("local", "github"):  # github also makes the local branch: rollback and history keep working
        proposal.branch = f"dataeng-crew/{slug}"
        proposal.pr = str(folder / "PR.md")
        proposal.files = sorted(prefix + rel for rel in files)  # the PR text is the PR's, never a project file
        proposal.status = "published"
        proposal.review_commands = review_commands(ws.project, ws.repo, prefix, proposal.branch, wh,
                                                   remote=publish == "github",
                                                   masked=any(e.action == "hash" for e in proposal.exposures))
        body = render_pr_body(proposal)
        with rec.stage("publish (local branch)", "tool", "git_local.commit_to_branch") as io:
            assert ws.repo is not None and base is not None
            message = git_local.with_trailer(f"dataeng-crew: {request}\n\nProposal {proposal.proposal_id}. Models: "
                                             + ", ".join(m.name for m in models) + ".\nValidated by sqlglot and dbt "
                                             "build on a sandbox copy of the warehouse.", proposal.proposal_id)
            save_changes(folder, ws.repo, base, {prefix + k: v for k, v in files.items()})
            try:
                proposal.commit = git_local.commit_to_branch(
                    ws.repo, base, proposal.branch, {prefix + k: v for k, v in files.items()}, message)
            except DataengCrewError:
                proposal.status, proposal.branch, proposal.commit = "validated", None, None
                raise
        if publish == "github":
            from dataeng_crew.publish_github import publish_proposal

            with rec.stage("publish (GitHub pull request)", "tool", "github_pr.publish") as io:
                publish_proposal(proposal, {prefix + k: v for k, v in files.items()}, body,
                                 message, gh[0], gh[1], prefix)
                io.observation = f"{proposal.pull_request.url} on {proposal.pull_request.branch}"
    else:
        proposal.pr = str(folder / "PR.md")
        body = render_pr_body(proposal)
    (folder / "PR.md").write_text(body)


def _build(proposal: Proposal, project_copy: Path, profiles_dir: Path, folder: Path, models: list[ModelSpec],
           files: dict[str, str], roots: tuple[str, ...] = ()) -> BuildResult:
    write_project_files(project_copy, files, roots)
    build = run_dbt(["build", *build_selector(models), *sandbox.SKIP_SEEDS], project_copy, profiles_dir,
                    target_path=folder / "sandbox" / "target", log_path=folder / "sandbox" / "logs", write_json=False)
    proposal.checks.build = build
    return build


def project_relations(profile: WarehouseProfile) -> tuple[list[SourceSpec], dict[str, dict[str, str]]]:
    """What generated SQL may read besides its own models: the project's declared sources, and its models and
    seeds (by ``ref`` name) with their columns."""
    declared: dict[str, SourceSpec] = {}
    refs: dict[str, dict[str, str]] = {}
    for t in profile.tables:
        if t.origin in ("model", "seed") and t.ref_name:
            refs[t.ref_name] = {c.name: c.data_type for c in t.columns}
        elif t.origin == "source" and t.ref_name and "." in t.ref_name:
            src, table = t.ref_name.split(".", 1)
            spec = declared.setdefault(src, SourceSpec(name=src, database=t.database, schema_name=t.schema_name,
                                                       description="declared by the project", tables=[]))
            spec.tables.append(SourceTableSpec(name=table, description=""))
    return list(declared.values()), refs


def _sqlglot(proposal: Proposal, models: list[ModelSpec], sources, profile) -> CheckOutcome:  # noqa: ANN001
    declared, refs = project_relations(profile)
    own = {s.name for s in sources}
    outcome = check_and_compile(models, [*sources, *(d for d in declared if d.name not in own)],
                                warehouse_schema(profile), model_database=profile.database, existing_models=refs)
    proposal.checks = CheckReport(sql_issues=outcome.issues, models_checked=len(models))
    if outcome.issues:
        raise SqlCheckError("sqlglot refused the generated SQL:\n" + "\n".join(
            f"  {i.model}: [{i.kind}] {i.message}" for i in outcome.issues))
    return outcome


def modified_files(files: dict[str, str], read_existing: Callable[[str], str | None], prefix: str = "") -> list[ModifiedFile]:
    """Every existing project file the proposal changes, with a unified diff (for the PR)."""
    import difflib

    out = []
    for rel, after in sorted(files.items()):
        before = read_existing(rel)
        if before is None or before == after:
            continue
        diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                            f"a/{prefix}{rel}", f"b/{prefix}{rel}"))
        out.append(ModifiedFile(path=prefix + rel, diff=diff))
    return out


def raw_dataset(warehouse: Path, table) -> DatasetRef:  # noqa: ANN001 - TableProfile
    """An OpenLineage dataset for a raw table: namespace is the DuckDB file, with its schema."""
    return DatasetRef(namespace=f"duckdb://{warehouse.resolve()}", name=table.fqn,
                      columns=tuple((c.name, c.data_type, "") for c in table.columns))


def model_dataset(db_file: Path, model: ModelSpec, lineage_pairs: dict | None = None,
                  namespaces: dict[str, str] | None = None) -> DatasetRef:
    """An OpenLineage dataset for a built model (sandbox DuckDB), with schema and column lineage."""
    ns = f"duckdb://{db_file.resolve()}"
    column_lineage = tuple(
        (col, tuple(((namespaces or {}).get(table, ns), table, field) for table, field in pairs))
        for col, pairs in (lineage_pairs or {}).items() if pairs)
    return DatasetRef(namespace=ns, name=f"{db_file.stem}.main.{model.name}",
                      columns=tuple((c.name, c.data_type or "", c.description) for c in model.columns),
                      column_lineage=column_lineage)


def _build_summary(build: BuildResult) -> str:
    counts: dict[str, int] = {}
    for n in build.nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    return ("passed" if build.success else "FAILED") + ": " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def emit_model_lineage(rec: Recorder, models: list[ModelSpec], outcome: CheckOutcome, wh: Path, db_file: Path,
                       sources) -> None:  # noqa: ANN001
    """One OpenLineage run per generated model: inputs, output schema and sqlglot column lineage."""
    raw_ns = f"duckdb://{wh.resolve()}"
    raw_tables = {f"{s.database}.{s.schema_name}.{t.relation_name}" for s in sources for t in s.tables}
    for model in models:
        sql = outcome.compiled.get(model.name)
        if not sql:
            continue
        pairs = column_lineage(sql, outcome.schema, [c.name for c in model.columns])
        upstream = sorted({table for col in pairs.values() for table, _ in col})
        namespaces = {t: raw_ns for t in upstream if t in raw_tables}
        ref = rec.lineage.start(f"dataeng_crew.model.{model.name}", rec.parent)
        inputs = [DatasetRef(namespace=namespaces.get(t, f"duckdb://{db_file.resolve()}"), name=t) for t in upstream]
        rec.lineage.complete(ref, rec.parent, inputs, [model_dataset(db_file, model, pairs, namespaces)])


def save_changes(folder: Path, repo: Path, base: str, files: dict[str, str]) -> None:
    """Before/after copies of every file the proposal changes, and a manifest with their hashes."""
    import hashlib

    changes = folder / "changes"
    manifest = []
    for path, content in sorted(files.items()):
        before = git_local.read_at(repo, base, path)
        if before is not None:
            (changes / "before" / path).parent.mkdir(parents=True, exist_ok=True)
            (changes / "before" / path).write_text(before)
        (changes / "after" / path).parent.mkdir(parents=True, exist_ok=True)
        (changes / "after" / path).write_text(content)
        manifest.append({"path": path, "existed_before": before is not None,
                         "before_sha256": hashlib.sha256(before.encode()).hexdigest() if before is not None else None,
                         "after_sha256": hashlib.sha256(content.encode()).hexdigest()})
    (changes / "manifest.json").write_text(json.dumps({"base": base, "files": manifest}, indent=2))


def estimate_costs(models: list[ModelSpec], outcome: CheckOutcome, warehouse: Path, policy) -> list[CostEstimate]:  # noqa: ANN001
    """EXPLAIN every mart (model references inlined) on the raw warehouse; advise a materialization."""
    estimates = []
    for mart in (m for m in models if m.layer == "marts"):
        sql = outcome.compiled.get(mart.name)
        if not sql:
            continue
        try:
            scanned, produced = explain(warehouse, inline_models(sql, outcome.compiled))
        except Exception as exc:  # noqa: BLE001 — an estimate that cannot be made never stops a proposal
            why = str(exc).splitlines()[0][:200]
            estimates.append(CostEstimate(
                model=mart.name, rows_scanned=0, rows_produced=None, threshold=policy.max_rows_scanned,
                over_threshold=False, materialization_advice="table",
                explanation=f"{mart.name}: no estimate — EXPLAIN could not plan it on the warehouse ({why}); the "
                            "sandbox build below is the check"))
            continue
        advice = "incremental" if scanned > policy.incremental_above_rows else "table"
        estimates.append(CostEstimate(
            model=mart.name, rows_scanned=scanned, rows_produced=produced, threshold=policy.max_rows_scanned,
            over_threshold=scanned > policy.max_rows_scanned, materialization_advice=advice,
            explanation=f"{mart.name}: EXPLAIN estimates ~{scanned:,} rows scanned, ~{produced or 0:,} produced; "
                        f"advice: {advice} (incremental above {policy.incremental_above_rows:,} rows scanned)"))
    return estimates


def describe_oracle(result) -> str:  # noqa: ANN001 - OracleResult
    """The oracle's verdict in a few words (PR body, trace, eval)."""
    if result.skipped_reason:
        return f"MetricFlow could not check it: {result.skipped_reason}"
    verdict = "agrees with" if not result.differences else "DISAGREES with"
    return f"{verdict} MetricFlow: {result.rows} rows, {result.differences} differences"


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
        "oracle": proposal.oracle.model_dump() if proposal.oracle is not None else None,
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
        "pull_request": proposal.pull_request.model_dump() if proposal.pull_request else None,
        "warehouse": proposal.warehouse,
        "report": str(Path(proposal.proposal_dir) / "report.json") if proposal.proposal_dir else None,
        "error": proposal.error,
        "timings": {t.stage: t.seconds for t in proposal.timings},
        "target_dialect": proposal.target_dialect,
        "dialect_warnings": proposal.dialect_warnings,
        "llm_usage": [u.model_dump() for u in proposal.llm_usage],
        "repairs": [r.model_dump(exclude={"sql_before", "sql_after"}) for r in proposal.repairs],
    }


def dumps(data: dict) -> str:
    """JSON for the terminal."""
    return json.dumps(data, indent=2, default=str)
