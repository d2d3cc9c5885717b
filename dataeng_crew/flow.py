"""The flow: the one place that orders the stages of a proposal.

:func:`proposal_stages` lists them top to bottom — sandbox → build the project → profile → the roles (plan, model,
transform, test, govern) → sqlglot → governance guard → cost → render → dbt build (sandbox) → triage → Great
Expectations → MetricFlow → data diff → publish (one commit on a branch). Each stage is a small function over one
:class:`ProposalRun`; :func:`run_stages` runs them and records timing, trace, audit and lineage. The user's project
and git tree are only touched by the final, atomic branch update.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from dataeng_crew.agents import governance, project_plan, quality
from dataeng_crew.agents.brains import Brain, DeterministicBrain
from dataeng_crew.agents.roles import RoleContext, RoleInfo, registered_roles
from dataeng_crew.contracts import (
    ApprovalRequest,
    BuildResult,
    CheckReport,
    CostEstimate,
    ExpectationSuiteSpec,
    ModelSpec,
    ProjectInventory,
    Proposal,
    SourceSpec,
    SourceTableSpec,
    WarehouseProfile,
)
from dataeng_crew.errors import (BuildError, ConfigError, DataengCrewError, SqlCheckError, Terminated,
                                 UnsafeArtifactError)
from dataeng_crew.locking import run_lock
from dataeng_crew.recorder import Recorder, StageIO
from dataeng_crew.repair import errors_for, with_repairs
from dataeng_crew.render import render_pr_body, render_project_files
from dataeng_crew.reporting import (build_summary, describe_build_failure, describe_oracle, dumps,  # noqa: F401
                                    emit_model_lineage, model_dataset, modified_files, raw_dataset, save_changes,
                                    summary)
from dataeng_crew.review_steps import review_commands
from dataeng_crew import signals
from dataeng_crew.signals import held, sigterm_as_interrupt
from dataeng_crew.settings import Workspace, default_warehouse, find_project, parse_cache_dir, state_dir_for
from dataeng_crew.tools import git_local, github_pr, sandbox
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.dialect import check_dialect, dialect_warnings, profile_dialect, transpile_models
from dataeng_crew.tools.audit import AuditLog, who
from dataeng_crew.tools.cost import explain, inline_models
from dataeng_crew.tools import expectations
from dataeng_crew.tools.expectations import suite_json
from dataeng_crew.tools.lineage import Lineage
from dataeng_crew.tools.project_files import validate_path, write_project_files
from dataeng_crew.tools.prompt_safety import clean_text
from dataeng_crew.tools.sqlcheck import CheckOutcome, check_and_compile
from dataeng_crew.tools.project_inventory import cached_project_profile, parse_inputs_key, project_inventory
from dataeng_crew.tools.sql_style import wrap_long_lines
from dataeng_crew.tools.warehouse import load_folder, warehouse_schema
from dataeng_crew import warehouse_stages
from dataeng_crew.warehouse_stages import TargetOptions

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
    hold_lock: bool = True,
    warehouse_options: TargetOptions | None = None,
    profiles_dir: Path | None = None,
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
        hold_lock: Take the repository's run lock (``revise`` holds it already around its whole round).
        warehouse_options: Extract size and window, ``--validate-on-target`` (the project's dbt target is read
            here: a PostgreSQL one is extracted into DuckDB and is the default target dialect).
        profiles_dir: ``--profiles-dir`` (else dbt's lookup: ``$DBT_PROFILES_DIR``, the project, ``~/.dbt``).

    Returns:
        The proposal (also written as ``report.json`` in its folder).

    Raises:
        DataengCrewError: Any failure, after the report was written; nothing was published then.
    """
    brain = brain or DeterministicBrain()
    request = clean_request(request)
    ws = resolve_workspace(project)
    wh_opts = warehouse_options or TargetOptions()
    wh_opts.target = warehouse_stages.project_target(ws.project, profiles_dir, warehouse)
    default_dialect = warehouse_stages.target_dialect(wh_opts.target) or profile_dialect(ws.project)
    target_dialect = check_dialect(target_dialect or default_dialect)
    publish, github, gh_target = _publish_target(publish, github, ws)
    with sigterm_as_interrupt(), run_lock(ws.state_dir, f"propose {request}") if hold_lock else nullcontext():
        return _propose_locked(request, ws, warehouse, publish, brain, progress, target_dialect,
                               (gh_target, github), max_repair_rounds, on_validated, semantic_layer, ddl, wh_opts)


def _publish_target(publish: str, github: github_pr.GithubOptions | None, ws: Workspace
                    ) -> tuple[str, github_pr.GithubOptions | None, Any]:
    """Where the proposal goes (``auto`` decided), checked before any work: a missing token, repository or git
    repository costs nothing."""
    gh_target = None
    if publish in ("github", "auto"):
        github = github or github_pr.GithubOptions()
        if publish == "auto":
            publish = "github" if github_pr.configured(github, ws.repo) else "local"
        if publish == "github":
            gh_target = github_pr.require_target(github, ws.repo)
    if publish in ("local", "github") and ws.repo is None:
        raise ConfigError(f"{ws.project} is not in a git repository: run `git init` and commit it, "
                          "or use --publish none")
    return publish, github, gh_target


def clean_request(request: str) -> str:
    """The request without control, bidi or zero-width characters, whitespace collapsed.

    It reaches the commit message, the PR, yml descriptions, DDL comments, the proposal's folder name, its report
    and lineage: nothing invisible may, and a secret pasted into it (a token, a URL's password) is removed.
    """
    from dataeng_crew.agents.llm import SECRET_TEXT

    return " ".join(SECRET_TEXT.sub(" ", clean_text(request or "", MAX_REQUEST_CHARS)).split())


def _propose_locked(request: str, ws: Workspace, warehouse: Path | None, publish: str, brain: Brain,
                    progress: Progress, target_dialect: str, gh: tuple, max_repair_rounds: int,
                    on_validated: Callable[[Proposal, dict[str, str]], None] | None = None,
                    semantic_layer: bool | None = None, ddl: Sequence[str] = (),
                    wh_opts: TargetOptions | None = None) -> Proposal:
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
        run = ProposalRun(proposal, ws, brain, folder, rec, RunOptions(publish, gh, max_repair_rounds, on_validated,
                                                                       semantic_layer, wh_opts or TargetOptions()),
                          warehouse)
        try:
            run_stages(run, proposal_stages())
        finally:
            if run.box is not None:
                sandbox.pin_profile(run.box)
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


@dataclass
class RunOptions:
    """How a proposal is published, and what its caller asked for besides the request."""

    publish: str = "none"
    github: tuple = (None, None)  # (the checked target, GithubOptions)
    max_repair_rounds: int = 2
    on_validated: Callable[[Proposal, dict[str, str]], None] | None = None
    semantic_layer: bool | None = None
    warehouse: TargetOptions = field(default_factory=TargetOptions)


@dataclass
class ProposalRun:
    """One proposal as its stages fill it in: each stage reads what earlier ones left and adds its own part."""

    proposal: Proposal
    ws: Workspace
    brain: Brain
    folder: Path
    rec: Recorder
    options: RunOptions
    warehouse_arg: Path | None = None
    base: str | None = None  # HEAD of the project's repository
    sandbox_base: str | None = None  # the commit the sandbox holds (None: the working tree)
    wh: Path | None = None
    box: sandbox.Sandbox | None = None
    inventory: ProjectInventory | None = None
    parsed: dict[str, Any] = field(default_factory=dict)  # the manifest dbt parsed: later commands reuse it
    parse_key: str = ""  # what dbt's parse of the sandbox project reads, digested (the caches' key)
    profile: WarehouseProfile | None = None
    policy: Any = None
    ctx: RoleContext | None = None
    sources: list[SourceSpec] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    suites: list[ExpectationSuiteSpec] = field(default_factory=list)
    outcome: CheckOutcome | None = None
    restricted: set[tuple[str, str]] = field(default_factory=set)
    translated: dict[str, Any] = field(default_factory=dict)
    layer_files: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    build: BuildResult | None = None
    body: str = ""
    unbuilt: frozenset[str] = frozenset()  # project marts that did not build in the sandbox

    @property
    def target(self):  # noqa: ANN201 - WarehouseTarget | None
        """The project's dbt target (None: none found, or ``--warehouse`` given with an unrenderable profile)."""
        return self.options.warehouse.target

    @property
    def prefix(self) -> str:
        """The project folder inside the repository, as a path prefix (``''`` at the root)."""
        return f"{self.ws.project_in_repo}/" if self.ws.project_in_repo else ""

    @property
    def publishing(self) -> bool:
        """Whether this run commits a branch (``local`` and ``github`` both do)."""
        return self.options.publish in ("local", "github")

    def read_existing(self, rel: str) -> str | None:
        """A project file as the proposal's base holds it (None when it does not exist there)."""
        if self.sandbox_base and self.ws.repo:
            return git_local.read_at(self.ws.repo, self.sandbox_base, self.prefix + rel)
        path = self.ws.project / rel
        return path.read_text() if path.is_file() else None

    def render(self, dialect: str = "duckdb") -> dict[str, str]:
        """Every file of the proposal, project-relative; each path is checked before anything is written."""
        roots = project_roots(self.inventory)
        files = render_project_files(self.sources, self.models, self.read_existing, dialect=dialect,
                                     inventory=self.inventory, ddl_dialects=self.proposal.ddl_dialects or [dialect])
        files.update(self.layer_files)
        if dialect != "duckdb":  # the committed SQL; the sandbox built the DuckDB SQL of the same models
            files.update({m.path: self.translated[m.name].sql for m in self.models})
        files.update({s.path: json.dumps(suite_json(s), indent=2) + "\n" for s in self.suites})
        for rel in files:
            validate_path(self.ws.project, rel, roots)
        return files


@dataclass(frozen=True)
class Stage:
    """One step of a proposal. A stage with a name is timed, traced, audited and has an OpenLineage run; a
    step without one (bookkeeping between stages) is not."""

    run: Callable[[ProposalRun, StageIO], None]
    name: str = ""
    role: str = "tool"
    action: str = ""
    when: Callable[[ProposalRun], bool] = lambda _run: True


def run_stages(run: ProposalRun, stages: Sequence[Stage]) -> None:
    """Run ``stages`` in order over one proposal, recording each named one; a signal whose exception was dropped
    (it landed in a finalizer) stops the run at the next stage, as Ctrl-C does."""
    for stage in stages:
        signals.raise_if_interrupted()
        if not stage.when(run):
            continue
        if not stage.name:
            stage.run(run, StageIO())
            continue
        with run.rec.stage(stage.name, stage.role, stage.action) as io, signals.signal_as_the_cause():
            stage.run(run, io)


# -- the stages, in the order they run ---------------------------------------------------------------------
def start_workers(_run: ProposalRun, _io: StageIO) -> None:
    """Great Expectations is imported in its own process while the sandbox is prepared and dbt builds."""
    expectations.WORKER.start()


def _checks_metric(run: ProposalRun) -> bool:
    return run.proposal.plan is not None and run.proposal.plan.kind == "metric"


def preload_oracle(_run: ProposalRun, _io: StageIO) -> None:
    """MetricFlow's engine is imported while dbt builds (this process only waits then)."""
    from dataeng_crew.tools.metricflow import preload_engine

    preload_engine()


def check_base(run: ProposalRun, _io: StageIO) -> None:
    """The committed project a proposal is built on; refused before any work when it cannot be published."""
    ws = run.ws
    run.base = base_commit(ws)
    if run.publishing and run.base is None and ws.repo is not None:
        git_local.head_commit(ws.repo)  # raises PublishError: the repository has no commit yet
    committed = run.base is not None and ws.repo is not None and git_local.read_at(
        ws.repo, run.base, run.prefix + "dbt_project.yml") is not None
    if run.publishing and run.base is not None and not committed:
        raise ConfigError(f"{ws.project}/dbt_project.yml is not committed in {ws.repo}: a proposal is validated on, "
                          "and committed on top of, the committed project. Commit the project first, or use --publish none")
    run.sandbox_base = run.base if committed else None  # an uncommitted project (--publish none): its folder


def prepare(run: ProposalRun, io: StageIO) -> None:
    """The sandbox: the project at its base commit, a new DuckDB file reading the warehouse attached read-only."""
    ws = run.ws
    run.wh = resolve_warehouse(ws, run.warehouse_arg)
    run.box = sandbox.prepare_sandbox(ws.project, run.wh, run.folder / "sandbox",
                                      ws.repo if run.sandbox_base else None, run.sandbox_base, ws.project_in_repo,
                                      parse_cache=parse_cache_dir(ws.state_dir))
    io.observation = f"sandbox from {'commit ' + run.sandbox_base[:12] if run.sandbox_base else 'the working tree'}"


def read_inventory(run: ProposalRun, io: StageIO) -> None:
    """``dbt parse`` of the sandbox project into its inventory; only files changed since the last proposal's
    parse are parsed again, and later dbt commands reuse the manifest. When nothing a parse reads changed since
    an earlier proposal, its inventory is reused and dbt does not run."""
    assert run.box is not None
    cache = parse_cache_dir(run.ws.state_dir)
    run.parse_key = parse_inputs_key(run.box.project, run.box.profiles_dir)
    inv = run.inventory = project_inventory(run.box.project, run.box.profiles_dir, run.box.folder, run.parsed, cache,
                                            run.parse_key)
    sandbox.remember_parse(run.box, cache)
    io.observation = (f"{len(inv.models)} models, {len(inv.sources)} sources, {len(inv.seeds)} seeds, "
                      f"{len(inv.tests)} tests, packages: {', '.join(inv.packages) or 'none'}")


def build_project(run: ProposalRun, io: StageIO) -> None:
    """The project's seeds and models, built in the sandbox: what the new models build on (the marts and
    intermediate models dataeng-crew made are not: they are never building blocks, and the sandbox build makes what
    a new model needs).

    A staging or intermediate model that fails stops the proposal (nothing can be built on it); a mart that
    fails is only left out of planning, and the trace says so.
    """
    assert run.box is not None and run.inventory is not None
    models = [m.name for m in run.inventory.models  # generated marts are never building blocks: not built here
              if m.layer == "staging" or not m.made_by_crew]
    results = sandbox.build_existing(run.box, bool(run.inventory.seeds), models, run.parsed.get("manifest"))
    marts = {m.name for m in run.inventory.models if m.layer == "marts"}
    failed = {n.unique_id.rsplit(".", 1)[-1] for r in results for n in r.nodes
              if n.status not in ("success", "pass")}
    broken = [r for r in results if not r.success and (r.error and not r.nodes or failed - marts)]
    if broken:
        raise BuildError("the project's own seeds/models do not build on the base commit, so nothing can "
                         "be built on them:\n" + describe_build_failure(broken[0]))
    run.unbuilt = frozenset(failed & marts)
    io.observation = (f"seeds loaded: {len(run.inventory.seeds)}; models built: {len(models) - len(run.unbuilt)}"
                      + (f"; marts that did not build (left out of planning): {', '.join(sorted(run.unbuilt))}"
                         if run.unbuilt else ""))


def profile_warehouse(run: ProposalRun, io: StageIO) -> None:
    """Profile every relation the project has (sources, seeds, models) and set up the roles' context."""
    assert run.box is not None and run.wh is not None
    profile = run.profile = cached_project_profile(run.box.db_file, run.inventory, parse_cache_dir(run.ws.state_dir),
                                                   run.parse_key, unbuilt=run.unbuilt)
    io.inputs = [raw_dataset(run.wh, t) for t in profile.tables if t.origin != "model"]
    by_origin: dict[str, int] = {}
    for t in profile.tables:
        by_origin[t.origin] = by_origin.get(t.origin, 0) + 1
    io.observation = (f"{len(profile.tables)} tables ({', '.join(f'{v} {k}' for k, v in sorted(by_origin.items()))}), "
                      f"{len(profile.foreign_keys)} foreign keys")
    run.policy = governance.load_policy(run.ws.project)
    run.ctx = RoleContext(request=run.proposal.request, profile=profile, brain=run.brain, policy=run.policy)


def role_stages() -> list[Stage]:
    """One stage per registered role (planner, modeler, transformer, quality, governance, and any role added)."""
    def step(role: RoleInfo) -> Callable[[ProposalRun, StageIO], None]:
        def play(run: ProposalRun, io: StageIO) -> None:
            assert run.ctx is not None
            io.thought, io.observation = role.step(run.ctx)  # type: ignore[misc]
            run.proposal.plan = run.ctx.plan
        return play
    return [Stage(step(r), r.stage, r.name, r.action) for r in registered_roles() if r.step is not None]


def place_models(run: ProposalRun, _io: StageIO) -> None:
    """The roles' models at the project's own paths (never over a model the project has), laid out in lines of
    at most 80 characters."""
    ctx = run.ctx
    if ctx is None or ctx.plan is None:
        raise DataengCrewError("no registered role produced a plan")
    run.sources, run.suites = ctx.sources, ctx.suites
    run.models = [m.model_copy(update={"sql": wrap_long_lines(m.sql)})  # ≤ 80 columns, as dbt's style guide
                  for m in project_plan.place_models(ctx.models, run.inventory)]
    run.proposal.sources, run.proposal.models, run.proposal.policies = run.sources, run.models, ctx.policies


def sqlglot_check(run: ProposalRun, io: StageIO) -> None:
    """Every model parsed, qualified and compiled by sqlglot; a refused model goes back to its author."""
    run.outcome, run.models = with_repairs(
        run.proposal, run.brain, run.models, lambda ms: _sqlglot(run.proposal, ms, run.sources, run.profile),
        errors_for(run.proposal), "sqlglot", run.options.max_repair_rounds)
    io.observation = f"{len(run.models)} models: one safe query each, every table and column known"


def guard_governance(run: ProposalRun, _io: StageIO) -> None:
    """Restricted columns reaching a mart (through lineage, the project's models included) are masked."""
    proposal, policy, outcome = run.proposal, run.policy, run.outcome
    assert outcome is not None
    run.restricted = {(m.name, c.name) for m in run.models for c in m.columns
                      if c.meta.get("classification") in policy.restricted_classifications}
    read = governance.classify_read_relations(run.models, run.profile)  # the project's own models and seeds
    run.restricted |= {(p.model, p.column) for p in read if p.classification in policy.restricted_classifications
                       and p.confidence >= policy.min_confidence}
    proposal.policies = proposal.policies + read
    marts = [m for m in run.models if m.layer == "marts"]
    exposures = governance.find_exposures(marts, outcome.compiled, outcome.schema, run.restricted,
                                          policy.mart_pii_action)
    if exposures:
        masked = {m.name: m for m in governance.mask_marts(marts, exposures)}
        run.models = proposal.models = [masked.get(m.name, m) for m in run.models]
        run.outcome = _sqlglot(proposal, run.models, run.sources, run.profile)  # the masked marts are what runs
        run.suites = quality.expectation_suites(run.models, run.profile, proposal.plan)  # of the masked marts
    proposal.exposures, proposal.suites = exposures, run.suites
    proposal.approvals = governance.approvals(run.models, proposal.policies, exposures, policy)


def cost_guardrail(run: ProposalRun, io: StageIO) -> None:
    """EXPLAIN each mart on the warehouse; a scan over the policy's threshold needs an approver."""
    assert run.box is not None and run.outcome is not None
    proposal, policy = run.proposal, run.policy
    proposal.costs = estimate_costs(run.models, run.outcome, run.box.db_file, policy)
    over = [c for c in proposal.costs if c.over_threshold]
    if over:
        proposal.approvals.append(ApprovalRequest(kind="cost", approvers=policy.cost_approvers, reasons=[
            f"{c.model}: ~{c.rows_scanned:,} rows scanned > {c.threshold:,}" for c in over]))
    io.observation = "; ".join(c.explanation for c in proposal.costs) or "no mart"


def transpile(run: ProposalRun, io: StageIO) -> None:
    """The committed SQL in the target dialect, parsed back to be sure it reads."""
    proposal = run.proposal
    run.translated = transpile_models(run.models, proposal.target_dialect)
    proposal.dialect_warnings = dialect_warnings(run.translated)
    for warning in proposal.dialect_warnings:
        run.rec.progress(f"warning ({proposal.target_dialect}): {warning}")
    io.observation = (f"{len(run.translated)} models parsed back in {proposal.target_dialect}; "
                      f"{len(proposal.dialect_warnings)} warning(s)")


def semantic_layer_files(run: ProposalRun, _io: StageIO) -> None:
    """The metric query's semantic layer beside the mart, when the project keeps one (or was asked to)."""
    from dataeng_crew.agents.query_layer import proposal_layer_files

    plan = run.proposal.plan
    mart = next((m for m in run.models if m.layer == "marts"), None)
    if mart is None or plan is None:
        return
    run.layer_files, note = proposal_layer_files(plan, run.profile, mart, run.ws.project, run.options.semantic_layer)
    if note:
        run.proposal.plan = plan.model_copy(update={"interpretations": plan.interpretations + [note]})


def render(run: ProposalRun, io: StageIO) -> None:
    """The project files of the proposal (DuckDB SQL: what the sandbox builds)."""
    run.files = run.render()
    io.observation = f"{len(run.files)} files"


def _attempt_build(run: ProposalRun, attempt: list[ModelSpec]) -> BuildResult:
    """Build ``attempt`` in the sandbox; a repaired model is checked by sqlglot and the lineage guard again."""
    if attempt is not run.models:
        repaired = [m for m in attempt if m.layer == "marts" and m not in run.models]
        run.outcome, run.models = _sqlglot(run.proposal, attempt, run.sources, run.profile), attempt
        leaks = governance.find_exposures(repaired, run.outcome.compiled, run.outcome.schema, run.restricted,
                                          run.policy.mart_pii_action)
        if leaks:  # the guard ran before this repair: a repaired mart may not add an exposure
            raise UnsafeArtifactError("a repaired mart exposes restricted columns: " + ", ".join(
                f"{e.model}.{e.column}" for e in leaks))
        run.files = run.render()
    return _build(run, attempt)


def sandbox_build(run: ProposalRun, io: StageIO) -> None:
    """``dbt build`` of the new models, their tests and what they need; a model dbt refuses goes back to its author."""
    assert run.box is not None and run.wh is not None
    run.proposal.warehouse = str(run.box.db_file)
    run.build, run.models = with_repairs(run.proposal, run.brain, run.models, lambda ms: _attempt_build(run, ms),
                                         errors_for(run.proposal), "dbt build", run.options.max_repair_rounds,
                                         ok=lambda b: b.success)
    read = run.proposal.plan.source_tables if run.proposal.plan else []
    io.inputs = [raw_dataset(run.wh, t) for t in run.profile.tables if t.name in (read or [])]
    io.outputs = [model_dataset(run.box.db_file, m) for m in run.models]
    io.observation = build_summary(run.build)


def _build_failed(run: ProposalRun) -> bool:
    return run.build is not None and not run.build.success


def triage(run: ProposalRun, _io: StageIO) -> None:
    """Failing data tests: the quality role decides which are wrong about the data (loosened, stated) and which
    found a real problem (kept: the build fails)."""
    assert run.box is not None
    models, sources, decisions = run.brain.triage(run.build, run.models, run.sources, run.box.db_file)
    run.proposal.triage, run.proposal.models, run.proposal.sources = decisions, models, sources
    run.models, run.sources = models, sources
    if decisions:
        run.files = run.render()
        run.build = _build(run, run.models)


def require_build(run: ProposalRun, _io: StageIO) -> None:
    """Nothing goes further than a build that failed."""
    if _build_failed(run):
        raise BuildError(describe_build_failure(run.build))  # type: ignore[arg-type]


def great_expectations(run: ProposalRun, io: StageIO) -> None:
    """The marts' suites validated on the built tables; a failing expectation goes to triage once."""
    assert run.box is not None
    proposal, db_file = run.proposal, run.box.db_file
    proposal.suite_results = expectations.WORKER.validate(db_file, run.suites)
    io.inputs = [model_dataset(db_file, m) for m in run.models]
    if any(r.failed for r in proposal.suite_results):
        run.suites, decisions = run.brain.triage_suites(proposal.suite_results, run.suites, db_file)
        proposal.triage += decisions
        proposal.suites = run.suites
        proposal.suite_results = expectations.WORKER.validate(db_file, run.suites)
        run.files = run.render()  # the loosened suites are what gets committed
    broken = [r for r in proposal.suite_results if r.error]
    if broken:
        raise BuildError("Great Expectations could not validate: " + "; ".join(f"{r.suite}: {r.error}" for r in broken))


def metricflow_oracle(run: ProposalRun, io: StageIO) -> None:
    """MetricFlow computes the same metric query on the generated semantic layer; any difference stops it."""
    from dataeng_crew.agents.query_layer import oracle

    assert run.box is not None and run.proposal.plan is not None
    proposal = run.proposal
    proposal.oracle = oracle(proposal.plan, run.profile, run.box.project, run.box.profiles_dir, run.folder / "oracle",
                             layer_in_project=bool(run.layer_files),
                             saved_parse=run.box.folder / "target" / sandbox.PARTIAL_PARSE)
    io.observation = describe_oracle(proposal.oracle)
    if proposal.oracle.differences:
        raise BuildError("the mart disagrees with MetricFlow computing the same metric query on the generated "
                         f"semantic layer ({describe_oracle(proposal.oracle)}); nothing was published:\n  "
                         + "\n  ".join(proposal.oracle.detail[:5]))


def mark_validated(run: ProposalRun, _io: StageIO) -> None:
    """Every check passed: the model lineage is emitted and the committed files are rendered in the target dialect
    (the proposal lists them, published or not)."""
    assert run.box is not None and run.wh is not None and run.outcome is not None
    proposal = run.proposal
    emit_model_lineage(run.rec, run.models, run.outcome, run.wh, run.box.db_file, run.sources)
    proposal.status = "validated"
    proposal.llm_usage = run.brain.usage_report() if hasattr(run.brain, "usage_report") else []  # for the PR body
    if proposal.target_dialect != "duckdb":
        if any(m.name not in run.translated or m.sql != run.translated[m.name].source for m in run.models):
            run.translated = transpile_models(run.models, proposal.target_dialect)  # triage changes tests; be sure
        run.files = run.render(proposal.target_dialect)
    proposal.modified = modified_files(run.files, run.read_existing, run.prefix)
    proposal.files = sorted(run.prefix + rel for rel in run.files)  # the PR text is the PR's, never a project file


def data_diff(run: ProposalRun, io: StageIO) -> None:
    """The PR's data diff against the base branch's build; it informs the review, it never blocks."""
    import duckdb

    from dataeng_crew.data_diffs import proposal_diffs

    assert run.box is not None and run.wh is not None and run.ws.repo is not None
    repo, base = run.ws.repo, run.sandbox_base
    try:
        run.proposal.data_diffs, _ = proposal_diffs(
            run.models, run.files, run.box.db_file, lambda sub: git_local.files_under(repo, base, sub), run.prefix,
            run.wh, run.policy, run.folder / "diff", run.rec.progress)
        io.observation = ", ".join(f"{d.model}: {d.status}" for d in run.proposal.data_diffs) or "no model changed"
    except duckdb.Error as exc:
        io.observation = f"data diff not computed: {str(exc)[:300]}"


def hand_over(run: ProposalRun, _io: StageIO) -> None:
    """``revise``: the validated files go on top of an existing branch, by the caller."""
    run.options.on_validated(run.proposal, run.files)  # type: ignore[misc]


def prepare_publication(run: ProposalRun, _io: StageIO) -> None:
    """The branch and the review commands of a published proposal."""
    proposal, ws = run.proposal, run.ws
    proposal.branch = f"dataeng-crew/{slugify(proposal.request)}"
    proposal.status, proposal.pr = "published", str(run.folder / "PR.md")
    wh = run.wh if proposal.extract is None else None  # a PostgreSQL profile reads the warehouse itself
    proposal.review_commands = review_commands(ws.project, ws.repo, run.prefix, proposal.branch, wh,
                                               remote=run.options.publish == "github",
                                               masked=any(e.action == "hash" for e in proposal.exposures))


def _message(run: ProposalRun) -> str:
    proposal = run.proposal
    return git_local.with_trailer(f"dataeng-crew: {proposal.request}\n\nProposal {proposal.proposal_id}. Models: "
                                  + ", ".join(m.name for m in run.models) + ".\nValidated by sqlglot and dbt build "
                                  "on a sandbox of the warehouse.", proposal.proposal_id)


def publish_local(run: ProposalRun, _io: StageIO) -> None:
    """One commit on the proposal's branch, written atomically; before/after copies kept in its folder."""
    proposal, repo = run.proposal, run.ws.repo
    assert repo is not None and run.base is not None
    run.body = render_pr_body(proposal)
    files = {run.prefix + k: v for k, v in run.files.items()}
    save_changes(run.folder, repo, run.base, files)
    try:
        proposal.commit = git_local.commit_to_branch(repo, run.base, proposal.branch, files, _message(run))
    except DataengCrewError:
        proposal.status, proposal.branch, proposal.commit = "validated", None, None
        raise


def publish_github(run: ProposalRun, io: StageIO) -> None:
    """The same commit on a GitHub branch, and a pull request."""
    from dataeng_crew.publish_github import publish_proposal

    proposal = run.proposal
    publish_proposal(proposal, {run.prefix + k: v for k, v in run.files.items()}, run.body, _message(run),
                     run.options.github[0], run.options.github[1], run.prefix)
    io.observation = f"{proposal.pull_request.url} on {proposal.pull_request.branch}"


def write_pr_text(run: ProposalRun, _io: StageIO) -> None:
    """The PR text in the proposal's folder (the pull request's body; never a project file)."""
    run.proposal.pr = str(run.folder / "PR.md")
    (run.folder / "PR.md").write_text(run.body or render_pr_body(run.proposal))


def proposal_stages() -> list[Stage]:
    """The stages of a proposal, top to bottom."""
    return [
        Stage(check_base),
        Stage(start_workers),
        Stage(warehouse_stages.extract_warehouse, "extract the warehouse into DuckDB",
              action="extract.extract_target", when=warehouse_stages.reads_target),
        Stage(prepare, "sandbox", action="sandbox.prepare_sandbox"),
        Stage(read_inventory, "project inventory (dbt parse)", action="project_inventory.project_inventory"),
        Stage(build_project, "build the project's models (sandbox)", action="dbt seed; dbt run (every model)",
              when=lambda r: bool(r.inventory and (r.inventory.seeds or r.inventory.models))),
        Stage(profile_warehouse, "profile warehouse", action="project_inventory.project_profile"),
        *role_stages(),
        Stage(place_models),
        Stage(sqlglot_check, "sqlglot check", action="sqlcheck.check_and_compile(models)"),
        Stage(guard_governance, "governance: marts vs restricted columns", "governance", "governance.find_exposures"),
        Stage(warehouse_stages.check_grants, "grants: roles the target has", "governance",
              "target_build.existing_roles", when=lambda r: r.proposal.target_dialect != "duckdb"),
        Stage(cost_guardrail, "cost guardrail (EXPLAIN)", action="cost.explain(mart)"),
        Stage(transpile, "transpile to the target dialect", action="dialect.transpile_models",
              when=lambda r: r.proposal.target_dialect != "duckdb"),
        Stage(semantic_layer_files),
        Stage(render, "render", action="render.render_project_files"),
        Stage(preload_oracle, when=_checks_metric),
        Stage(sandbox_build, "dbt build (sandbox)", action="dbt build --select @model (sandbox)"),
        Stage(triage, "triage failing tests", "quality", "quality.triage(build)", when=_build_failed),
        Stage(require_build),
        Stage(great_expectations, "Great Expectations", action="expectations.validate_suites"),
        Stage(metricflow_oracle, "MetricFlow oracle", action="query_layer.oracle(plan)", when=_checks_metric),
        Stage(mark_validated),
        Stage(lambda r, io: warehouse_stages.validate_on_target(r, io, build_selector(r.models)),
              "validate on the target (scratch schema)", action="dbt build (scratch schema of the warehouse)",
              when=lambda r: r.options.warehouse.validate_on_target),
        Stage(data_diff, "data diff against the base build", action="data_diff.diff_model",
              when=lambda r: r.sandbox_base is not None and r.ws.repo is not None),
        Stage(hand_over, when=lambda r: r.options.on_validated is not None),
        Stage(prepare_publication, when=lambda r: r.publishing),
        Stage(publish_local, "publish (local branch)", action="git_local.commit_to_branch", when=lambda r: r.publishing),
        Stage(publish_github, "publish (GitHub pull request)", action="github_pr.publish",
              when=lambda r: r.options.publish == "github"),
        Stage(write_pr_text),
    ]


def _build(run: ProposalRun, models: list[ModelSpec]) -> BuildResult:
    """Write the proposal's files into the sandbox project and ``dbt build`` its models (results in memory)."""
    box = run.box
    assert box is not None
    write_project_files(box.project, run.files, project_roots(run.inventory))
    build = run_dbt(["build", *build_selector(models), *sandbox.SKIP_SEEDS], box.project, box.profiles_dir,
                    target_path=box.folder / "target", log_path=box.folder / "logs", write_json=False)
    run.proposal.checks.build = build
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
    merged = {s.name: s for s in sources}
    for spec in declared:  # the project's declared tables of a source the proposal also adds a table to stay known
        mine = merged.get(spec.name)
        have = {t.name for t in mine.tables} if mine else set()
        extra = [t for t in spec.tables if t.name not in have]
        merged[spec.name] = spec if mine is None else mine.model_copy(update={"tables": [*mine.tables, *extra]})
    outcome = check_and_compile(models, list(merged.values()), warehouse_schema(profile),
                                model_database=profile.database, existing_models=refs)
    proposal.checks = CheckReport(sql_issues=outcome.issues, models_checked=len(models))
    if outcome.issues:
        raise SqlCheckError("sqlglot refused the generated SQL:\n" + "\n".join(
            f"  {i.model}: [{i.kind}] {i.message}" for i in outcome.issues))
    return outcome


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


