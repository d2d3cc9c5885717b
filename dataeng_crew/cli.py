"""Thin command-line interface. Heavy libraries (dbt, crewai, great_expectations) load lazily,
so ``dataeng-crew --help`` stays fast."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dataeng_crew import __version__
from dataeng_crew.errors import DataengCrewError

OFFLINE_ENV = {"CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false",
               "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _offline_defaults() -> None:
    import os

    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def _start_dbt() -> None:
    """The offline defaults, then the dbt worker: it imports dbt (~1.2 s) while this process profiles and plans."""
    _offline_defaults()
    from dataeng_crew.tools.dbt_runner import WORKER

    WORKER.start()


def _fail(exc: DataengCrewError, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        from dataeng_crew.flow import dumps

        click.echo(dumps({"status": "failed", **(extra or {}), "error": str(exc), "error_type": type(exc).__name__,
                          "exit_code": exc.exit_code}))
    from rich.markup import escape

    _console().print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
    sys.exit(exc.exit_code)


def _interrupted(exc: KeyboardInterrupt, as_json: bool, extra: dict | None = None) -> None:
    from dataeng_crew.errors import Terminated

    code = Terminated.exit_code if isinstance(exc, Terminated) else 130
    message = (extra or {}).get("error") or ("terminated (SIGTERM)" if code == 143 else "interrupted by the user") \
        + "; nothing was published, your project is unchanged"
    if as_json:
        import json

        click.echo(json.dumps({"status": "interrupted", **(extra or {}), "error": message, "exit_code": code},
                              indent=2, default=str))
    _console().print(f"[yellow]{'terminated' if code == 143 else 'interrupted'}:[/] {message}", markup=True,
                     highlight=False)
    sys.exit(code)


class _GuardedCommand(click.Command):
    """Every command: SIGTERM behaves like Ctrl-C, and no exception reaches the user as a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        from dataeng_crew.signals import sigterm_as_interrupt

        as_json = bool(ctx.params.get("as_json"))
        try:
            with sigterm_as_interrupt():
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt as exc:
            _interrupted(exc, as_json, _proposal_fields(exc))
        except DataengCrewError as exc:
            _fail(exc, as_json, _proposal_fields(exc))
        except OSError as exc:  # a read-only folder, a full disk: name the file
            from dataeng_crew.errors import ConfigError

            where = exc.filename or "a file"
            _fail(ConfigError(f"cannot access {where}: {exc.strerror or exc}"), as_json, _proposal_fields(exc))
        except Exception as exc:  # a bug: say so in one line, never a raw traceback
            _fail(DataengCrewError(f"unexpected {type(exc).__name__}: {exc} (a bug in dataeng-crew; nothing was "
                                   "published)"), as_json, _proposal_fields(exc))


def _proposal_fields(exc: BaseException) -> dict:
    proposal = getattr(exc, "proposal", None)
    if proposal is None:
        return {}
    from dataeng_crew.flow import summary

    return summary(proposal)


class _Guarded(click.Group):
    command_class = _GuardedCommand


@click.group(cls=_Guarded, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dataeng-crew")
def main() -> None:
    """A crew of agents that turns an analytics request into a validated dbt change and a PR."""


@main.command()
@click.argument("request")
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--warehouse", type=click.Path(path_type=Path), help="DuckDB file or folder of CSV/Parquet files.")
@click.option("--publish", type=click.Choice(["local", "github", "none"]), default=None,
              help="local: one commit on branch dataeng-crew/<slug>; github: the same, plus that branch and a pull "
                   "request on GitHub; none: validate only. Default: github when GITHUB_TOKEN and a repository "
                   "(--repo or the remote origin) are configured, else local.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result at the end.")
@click.option("--target-dialect", type=click.Choice(["duckdb", "postgres", "snowflake", "bigquery", "databricks", "spark"]),
              default=None, help="Warehouse dialect of the committed model SQL (default: the dbt profile's adapter "
                                 "type, else duckdb). Validation still builds the DuckDB SQL in the sandbox.")
# -- the project's own warehouse (a PostgreSQL or Spark target in its dbt profile) --
@click.option("--profiles-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder of the profiles.yml to read (default: $DBT_PROFILES_DIR, the project, ~/.dbt).")
@click.option("--extract-rows", type=click.IntRange(1, None), default=100_000, show_default=True,
              help="PostgreSQL/Spark warehouse: rows sampled per table into the DuckDB extract the checks run on.")
@click.option("--extract-window-days", type=click.IntRange(0, None), default=365, show_default=True,
              help="PostgreSQL/Spark warehouse: days kept before a sampled table's newest time (0: no window).")
@click.option("--validate-on-target", is_flag=True,
              help="Also build the committed SQL in a scratch schema dataeng_crew_<id> of the PostgreSQL/Spark warehouse, "
                   "test it there, compare the marts with DuckDB, then drop the schema.")
@click.option("--ddl", "ddl", multiple=True, metavar="DIALECT",
              type=click.Choice(["duckdb", "postgres", "snowflake", "bigquery", "databricks", "spark"]),
              help="Also write CREATE TABLE DDL for DIALECT under ddl/ (repeatable; default: the target dialect only).")
# -- GitHub (--publish github) --
@click.option("--repo", "gh_repo", metavar="OWNER/NAME", help="GitHub repository (default: from the remote origin).")
@click.option("--github-url", metavar="URL", help="GitHub API root, e.g. https://ghe.example.com/api/v3.")
@click.option("--ready", is_flag=True, help="Open the pull request for review instead of as a draft.")
@click.option("--reviewer", "reviewers", multiple=True, metavar="USER|ORG/TEAM",
              help="Request a review (repeatable; default: CODEOWNERS of the changed files).")
@click.option("--base", "gh_base", metavar="BRANCH", help="Base branch of the pull request (default: the repo's default).")
@click.option("--with-ci", is_flag=True, help="Add the dataeng-crew PR workflow to the commit if the repo lacks it "
                                              "(the token then also needs Workflows: read and write).")
# --- LLM crew (issue 5) ---
@click.option("--llm", help="openai/<model>, anthropic/<model>, ollama/<model>, <model> with --llm-base-url, or none "
              "(default: DATAENG_CREW_LLM, the config file, then OPENAI_API_KEY/ANTHROPIC_API_KEY).")
@click.option("--llm-base-url", help="Any OpenAI-compatible server, e.g. http://localhost:11434/v1.")
@click.option("--max-repair-rounds", type=click.IntRange(0, 10), default=2, show_default=True,
              help="Rounds a model refused by sqlglot or dbt goes back to the role that wrote it.")
@click.option("--on-llm-error", type=click.Choice(["fallback", "fail"]), default=None,
              help="Provider down: the deterministic brain plays the role (fallback, default) or stop (fail).")
@click.option("--semantic-layer/--no-semantic-layer", default=None,
              help="Commit the metric query's semantic_models:/metrics: beside the mart (default: when the project "
                   "already has a semantic layer).")
def propose(request: str, project: Path | None, warehouse: Path | None, publish: str | None, as_json: bool,
            gh_repo: str | None, github_url: str | None, ready: bool, reviewers: tuple[str, ...], gh_base: str | None,
            with_ci: bool, target_dialect: str | None, llm: str | None, llm_base_url: str | None,
            max_repair_rounds: int, on_llm_error: str | None, semantic_layer: bool | None,
            ddl: tuple[str, ...], profiles_dir: Path | None = None, extract_rows: int = 100_000,
            extract_window_days: int = 365, validate_on_target: bool = False) -> None:
    """Propose dbt models, tests and docs for REQUEST (e.g. "daily_sales mart")."""
    _start_dbt()
    from dataeng_crew.agents.llm import select_brain
    from dataeng_crew import flow
    from dataeng_crew.tools.github_pr import GithubOptions
    from dataeng_crew.warehouse_stages import TargetOptions

    github = GithubOptions(repo=gh_repo, api_url=github_url, draft=not ready, reviewers=reviewers, base=gh_base,
                           include_ci=with_ci)

    console = _console()
    try:
        brain = select_brain(llm, llm_base_url, on_llm_error, project,
                             notice=lambda msg: console.print(f"[dim]{msg}[/]", markup=True))
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return

    def progress(stage: str) -> None:
        if stage.startswith("warning ("):
            console.print(f"⚠ {stage}", style="yellow", markup=False)
        else:
            console.print(f"[cyan]→[/] {stage}")

    try:
        proposal = flow.propose(request, project=project, warehouse=warehouse, publish=publish or ("github" if gh_repo or github_url else "auto"),  # type: ignore[arg-type]
                                progress=progress, github=github, target_dialect=target_dialect,
                                brain=brain, max_repair_rounds=max_repair_rounds, semantic_layer=semantic_layer,
                                ddl=ddl, profiles_dir=profiles_dir, warehouse_options=TargetOptions(
                                    extract_rows=extract_rows, extract_window_days=extract_window_days or None,
                                    validate_on_target=validate_on_target))
    except KeyboardInterrupt as exc:
        _interrupted(exc, as_json, _proposal_fields(exc))
        return
    except DataengCrewError as exc:
        _fail(exc, as_json, _proposal_fields(exc))
        return
    except Exception as exc:  # a bug or an artifact no contract check caught: say so, never a raw traceback
        _fail(DataengCrewError(f"unexpected {type(exc).__name__}: {exc} (nothing was published; the proposal's "
                               "report.json under .dataeng-crew/proposals/ has the details)"), as_json,
              _proposal_fields(exc))
        return
    data = flow.summary(proposal)
    build = proposal.checks.build
    passed = sum(1 for n in build.nodes if n.status in {"pass", "success"}) if build else 0
    console.print(f"[green]✓[/] {len(proposal.models)} models; dbt build: {passed}/{len(build.nodes) if build else 0} "
                  f"nodes passed in {build.elapsed_seconds if build else 0:.1f} s")
    if proposal.branch:
        console.print(f"[green]✓[/] branch [bold]{proposal.branch}[/] ({(proposal.commit or '')[:10]}); "
                      f"PR description: {proposal.pr}")
    if proposal.pull_request:
        pr = proposal.pull_request
        console.print(f"[green]✓[/] pull request #{pr.number} ({'draft' if pr.draft else 'ready for review'}): "
                      f"{pr.url} — labels {', '.join(pr.labels)}")
        for warning in pr.warnings:
            console.print(f"[yellow]![/] {warning}", markup=True)
    console.print(f"  warehouse with the built models: {proposal.warehouse}")
    from dataeng_crew.tools.warehouse import attachments

    for db in attachments(Path(proposal.warehouse)) if proposal.warehouse else []:
        console.print(f"  (its raw relations are views over {db['path']}: in a DuckDB shell, first "
                      f"ATTACH '{db['path']}' AS {db['alias']} (READ_ONLY))", markup=False)
    for usage in proposal.llm_usage:
        console.print(f"  {usage.role}: {usage.calls} LLM calls, {usage.tokens_in:,} tokens in, {usage.tokens_out:,} out"
                      + (f" [yellow](deterministic fallback: {usage.fallback})[/]" if usage.fallback else ""),
                      markup=True)
    if as_json:
        click.echo(flow.dumps(data))


@main.command()
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--out", type=click.Path(path_type=Path), help="DuckDB file to write (default: the project's profile path).")
@click.option("--init", "init_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Create a runnable sample anywhere: dbt project + warehouse + git repository in DIR (new or empty).")
@click.option("--scale", type=int, default=5_000, show_default=True, help="Number of orders (up to millions).")
@click.option("--seed", type=int, default=42, show_default=True)
def sample(project: Path | None, out: Path | None, init_dir: Path | None, scale: int, seed: int) -> None:
    """Build the sample shop warehouse (messy raw data) into a DuckDB file, or a whole sample project (--init)."""
    from dataeng_crew.settings import default_warehouse, find_project
    from dataeng_crew.tools.sample_data import build_sample_warehouse, init_sample_project

    try:
        if init_dir is not None:
            info = init_sample_project(init_dir, scale=scale, seed=seed)
        else:
            target = out or default_warehouse(find_project(project))
            info = build_sample_warehouse(target, scale=scale, seed=seed)
    except DataengCrewError as exc:
        _fail(exc, False)
        return
    counts = ", ".join(f"{t} {n:,}" for t, n in info.row_counts.items())
    _console().print(f"[green]✓[/] {info.path} (schema {info.schema}): {counts}")
    if init_dir is not None:
        _console().print(f"[green]✓[/] sample dbt project and git repository in {Path(init_dir).resolve()}; next:\n"
                         f"  cd {Path(init_dir).resolve()} && dataeng-crew propose \"daily_sales mart\"")


@main.command()
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--warehouse", type=click.Path(path_type=Path), help="DuckDB file or folder of CSV/Parquet files.")
@click.option("--json", "as_json", is_flag=True)
def check(project: Path | None, warehouse: Path | None, as_json: bool) -> None:
    """Check the current project: sqlglot on compiled SQL, then dbt build on a sandbox copy."""
    _offline_defaults()
    from dataeng_crew import checks, flow

    console = _console()
    try:
        result = checks.check_project(project, warehouse, progress=lambda s: console.print(f"[cyan]→[/] {s}"))
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    for issue in result.sql_issues:
        console.print(f"[red]✗[/] {issue.model}: [{issue.kind}] {issue.message}", markup=False)
    build = result.build
    if build:
        for node in build.failed_nodes:
            console.print(f"[red]✗[/] {node.unique_id}: {node.status} {node.message or ''}", markup=False)
        if build.error and not build.failed_nodes:  # dbt stopped before any node ran: a Jinja error, a missing ref
            console.print(f"[red]✗[/] dbt {' '.join(build.command[:1])}: {build.error[:1500]}", markup=False)
        console.print(f"dbt build: {'passed' if build.success else 'FAILED'} ({len(build.nodes)} nodes)")
    if as_json:
        click.echo(flow.dumps(result.model_dump()))
    sys.exit(0 if result.passed else 1)


@main.command()
@click.argument("models", nargs=-1)
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--warehouse", type=click.Path(path_type=Path), help="DuckDB file or folder of CSV/Parquet files.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--state", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Slim CI: a dbt state folder (the base branch's manifest.json); builds state:modified+ with --defer.")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Append a Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--defer", is_flag=True, help="With --state: build only state:modified+ and defer unmodified parents "
                                            "to the state's relations (the warehouse must hold them).")
@click.option("--diff-base", type=click.Path(path_type=Path, file_okay=False, exists=True), metavar="DIR",
              help="The base branch's dbt project: data diff (schema, rows, values) of every changed model against "
                   "its base build, in the summary and --markdown.")
@click.option("--on-target", is_flag=True,
              help="Build MODELS (default: all) and their tests in a scratch schema dataeng_crew_<run id> of the "
                   "PostgreSQL or Spark warehouse the project's dbt profile names, then drop it (init-ci --on-target).")
@click.option("--profiles-dir", type=click.Path(path_type=Path, file_okay=False),
              help="With --on-target: folder of the profiles.yml to read (default: dbt's lookup).")
@click.option("--run-id", default=None, metavar="ID", help="With --on-target: names the scratch schema (default: a "
                                                            "timestamp; CI: the pull request and attempt).")
def validate(models: tuple[str, ...], project: Path | None, warehouse: Path | None, as_json: bool,
             state: Path | None, markdown: Path | None, defer: bool, diff_base: Path | None, on_target: bool = False,
             profiles_dir: Path | None = None, run_id: str | None = None) -> None:
    """Re-run dbt tests and Great Expectations suites for MODELS (default: all) on a sandbox copy."""
    import os

    _start_dbt()
    from rich.table import Table

    from dataeng_crew import checks, flow

    console = _console()
    try:
        if markdown is not None and not Path(markdown).parent.resolve().is_dir():
            from dataeng_crew.errors import ConfigError

            raise ConfigError(f"--markdown {markdown}: folder {Path(markdown).parent} does not exist")
        if on_target:
            _validate_on_target(models, project, profiles_dir, run_id, markdown, as_json)
        report = checks.validate_project(project, warehouse, list(models) or None,
                                         progress=lambda s: console.print(f"[cyan]→[/] {s}"), state=state,
                                         defer=defer, diff_base=diff_base)
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    table = Table(title="dataeng-crew validate")
    for col in ("check", "object", "result", "detail"):
        table.add_column(col)
    build = report.build
    for node in (build.nodes if build else []):
        if node.resource_type in {"test", "model"}:
            ok = node.status in {"pass", "success"}
            table.add_row("dbt " + node.resource_type, node.unique_id.split(".")[2],
                          "[green]pass[/]" if ok else f"[red]{node.status}[/]",
                          "" if ok else (node.message or "")[:80])
    for r in report.suite_results:
        ok = not r.failed and not r.error
        table.add_row("GX suite", r.suite, "[green]pass[/]" if ok else "[red]fail[/]",
                      f"{r.passed}/{r.evaluated} expectations on {r.rows_validated:,} rows" + (f" {r.error}" if r.error else ""))
    console.print(table)
    if os.environ.get("GITHUB_ACTIONS") == "true":  # annotations on the check run: `revise --pr` reads failing models
        for node in (build.nodes if build else []):
            if node.resource_type == "model" and node.status not in {"pass", "success", "skipped"}:
                message = " ".join((node.message or "").replace("|", "/").split())[:300]
                click.echo(f"::error title=dataeng-crew validate::| dbt model | `{node.unique_id.split('.')[-1]}` | "
                           f"**{node.status}** | {message} |")
    for diff in report.diffs:
        console.print(f"data diff {diff.model}: {diff.status}, rows {diff.base_rows if diff.base_rows is not None else '–'}"
                      f" → {diff.head_rows}, changed {diff.rows_changed if diff.rows_changed is not None else '–'}",
                      markup=False)
    if build and build.error:
        console.print(f"[red]dbt:[/] {build.error[:500]}", markup=True)
    if markdown:
        from dataeng_crew.ci import validation_markdown

        with open(markdown, "a", encoding="utf-8") as fh:
            fh.write(validation_markdown(report, state, defer))
    if as_json:
        click.echo(flow.dumps(report.model_dump()))
    sys.exit(0 if report.passed else 1)


def _validate_on_target(models: tuple[str, ...], project: Path | None, profiles_dir: Path | None,
                        run_id: str | None, markdown: Path | None, as_json: bool) -> None:
    """``validate --on-target``: the project built in a scratch schema of its own warehouse; exits 0 or 1."""
    import datetime as dt
    import tempfile

    from dataeng_crew import flow
    from dataeng_crew.ci import target_markdown
    from dataeng_crew.tools.dbt_profile import read_target
    from dataeng_crew.warehouse_stages import validate_project_on_target

    ws = flow.resolve_workspace(project)
    run_id = run_id or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    selector = ["--select", *models] if models else []
    target = read_target(ws.project, profiles_dir)
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-on-target-") as tmp:
        result = validate_project_on_target(ws.project, target, Path(tmp), run_id, selector)
    assert target is not None  # validate_project_on_target refused a project without one
    label = target.label
    _console().print(f"{'[green]✓[/]' if result.success else '[red]✗[/]'} {label}, schema {result.schema_}: "
                     f"{result.tests_passed} tests passed, {result.tests_failed} failed; scratch schema dropped: "
                     f"{result.dropped}" + (f"\n  dbt: {result.error[:1500]}" if result.error else ""), markup=True,
                     highlight=False)
    if markdown:
        with open(markdown, "a", encoding="utf-8") as fh:
            fh.write(target_markdown(result, label))
    if as_json:
        click.echo(flow.dumps(result.model_dump(by_alias=True)))
    sys.exit(0 if result.success and result.dropped else 1)


@main.command(name="init-ci")
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--warehouse", "ci_warehouse", default="", metavar="PATH",
              help="DuckDB file or data folder in the repository that CI validates against (default: the profile's).")
@click.option("--setup", default="", metavar="COMMAND", help="Shell command that creates the warehouse in CI.")
@click.option("--pip-spec", default="dataeng-crew", show_default=True, help="What CI pip-installs for dataeng-crew.")
@click.option("--force", is_flag=True, help="Overwrite an existing, different workflow file.")
@click.option("--revise", "with_revise", is_flag=True,
              help="Also install the review-loop workflow (dataeng-crew revise on 'changes requested' reviews and "
                   "'/dataeng-crew revise' comments, for users with write access).")
@click.option("--on-target", "on_target", is_flag=True,
              help="Install the on-target workflow instead (.github/workflows/dataeng-crew-target.yml): every PR "
                   "built and tested in a scratch schema of the PostgreSQL/Spark warehouse the dbt profile names.")
@click.option("--profiles-dir", type=click.Path(path_type=Path, file_okay=False),
              help="With --on-target: the folder in the repository holding the profiles.yml CI reads.")
def init_ci(project: Path | None, ci_warehouse: str, setup: str, pip_spec: str, force: bool, with_revise: bool,
            on_target: bool = False, profiles_dir: Path | None = None) -> None:
    """Install the pull-request workflow (.github/workflows/dataeng-crew-pr.yml): dataeng-crew validate on every PR."""
    from dataeng_crew import flow
    from dataeng_crew.ci import install_target_workflow, install_workflow

    try:
        ws = flow.resolve_workspace(project)
        if ws.repo is None:
            from dataeng_crew.errors import ConfigError

            raise ConfigError(f"{ws.project} is not in a git repository: the workflow goes to <repo>/.github/workflows")
        if on_target:
            path, secrets = install_target_workflow(ws.repo, ws.project, profiles_dir, pip_spec, force)
            _console().print(f"[green]✓[/] {path} — commit it, and add these repository secrets: "
                             f"{', '.join(secrets) or 'none'}; every pull request then runs "
                             "`dataeng-crew validate --on-target`")
            return
        path = install_workflow(ws.repo, ws.project, ci_warehouse, setup, pip_spec, force)
        if with_revise:
            from dataeng_crew.ci import install_revise_workflow

            revise_path = install_revise_workflow(ws.repo, ws.project, ci_warehouse, setup, pip_spec, force)
    except DataengCrewError as exc:
        _fail(exc, False)
        return
    _console().print(f"[green]✓[/] {path} — commit it; every pull request then runs `dataeng-crew validate`")
    if with_revise:
        _console().print(f"[green]✓[/] {revise_path} — 'changes requested' reviews and '/dataeng-crew revise' comments "
                         "by users with write access then run `dataeng-crew revise --pr N`")


@main.command()
@click.argument("target", required=False, metavar="[PROPOSAL|BRANCH]")
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--warehouse", type=click.Path(path_type=Path), help="DuckDB file or folder of CSV/Parquet files.")
@click.option("--comment", "comments", multiple=True, metavar="TEXT", help="Feedback for a local proposal (repeatable).")
@click.option("--comment-file", "comment_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="A file holding feedback (repeatable).")
@click.option("--pr", "pr_number", type=int, metavar="N", help="A GitHub pull request: its reviews, comments and checks.")
@click.option("--repo", "gh_repo", metavar="OWNER/NAME", help="GitHub repository (default: from the remote origin).")
@click.option("--github-url", metavar="URL", help="GitHub API root, e.g. https://ghe.example.com/api/v3.")
@click.option("--max-rounds", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Revision rounds after which feedback is answered but no longer applied.")
@click.option("--llm", help="As for propose (default: DATAENG_CREW_LLM, the config file, API keys; else deterministic).")
@click.option("--llm-base-url", help="Any OpenAI-compatible server.")
@click.option("--on-llm-error", type=click.Choice(["fallback", "fail"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result at the end.")
def revise(target: str | None, project: Path | None, warehouse: Path | None, comments: tuple[str, ...],
           comment_files: tuple[Path, ...], pr_number: int | None, gh_repo: str | None, github_url: str | None,
           max_rounds: int, llm: str | None, llm_base_url: str | None, on_llm_error: str | None, as_json: bool) -> None:
    """Revise a proposal from review feedback: ONE follow-up commit on its branch, and a reply to each comment."""
    _start_dbt()
    from dataeng_crew.agents.llm import select_brain
    from dataeng_crew import flow
    from dataeng_crew import revise as revising
    from dataeng_crew.tools.github_pr import GithubOptions

    console = _console()
    try:
        from dataeng_crew.errors import ConfigError

        texts = list(comments)
        for path in comment_files:
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError as exc:
                raise ConfigError(f"--comment-file {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        if pr_number is None and not texts:
            raise ConfigError("nothing to revise from: pass --comment TEXT, --comment-file FILE or --pr N")
        brain = select_brain(llm, llm_base_url, on_llm_error, project,
                             notice=lambda msg: console.print(f"[dim]{msg}[/]", markup=True))
        result = revising.revise(target, project=project, warehouse=warehouse, comments=texts, pr_number=pr_number,
                                 github=GithubOptions(repo=gh_repo, api_url=github_url), brain=brain,
                                 progress=lambda s: console.print(f"[cyan]→[/] {s}", markup=True), max_rounds=max_rounds)
    except KeyboardInterrupt as exc:  # the record says what git holds: the commit, or nothing committed
        revision = getattr(exc, "revision", None)
        _interrupted(exc, as_json, revision.model_dump() if revision is not None else
                     {"error": "interrupted before the branch was read; nothing was committed"})
        return
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    if result.commit:
        console.print(f"[green]✓[/] {result.branch}: revision {result.round} committed as {result.commit[:10]} on top of "
                      f"{(result.tip_before or '')[:10]} ({result.build_summary})")
    else:
        console.print(f"[yellow]•[/] {result.branch}: {result.status.replace('_', ' ')}; nothing committed")
    for outcome in result.outcomes:
        console.print(f"  {outcome.feedback_id} [{outcome.status}]: {outcome.reply}", markup=False)
    if as_json:
        click.echo(flow.dumps(result.model_dump()))


@main.command(name="eval")
@click.argument("cases_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True)
def eval_(cases_dir: Path, as_json: bool) -> None:
    """Run the eval cases in CASES_DIR and score the produced tables against gold (Spider2-style)."""
    _offline_defaults()
    from rich.table import Table

    from dataeng_crew import evaluate, flow

    console = _console()
    try:
        results = evaluate.run_eval(cases_dir, progress=lambda name: console.print(f"[cyan]→[/] {name}"))
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    table = Table(title="dataeng-crew eval")
    for col in ("case", "request", "score", "gold columns matched", "rows (gold/produced)", "MetricFlow", "seconds",
                "error"):
        table.add_column(col)
    for r in results:
        table.add_row(r.case, r.request, f"{r.score:.0f}", f"{r.matched}/{r.gold_columns}",
                      f"{r.gold_rows}/{r.produced_rows}", r.oracle or "—", f"{r.seconds:.1f}", r.error or "")
    console.print(table)
    total = sum(r.score for r in results)
    agreed = sum(1 for r in results if r.oracle and r.oracle.startswith("agrees"))
    unchecked = sum(1 for r in results if r.oracle and "could not" in r.oracle)
    console.print(f"total: {total:.0f}/{len(results)}; MetricFlow agrees on {agreed} metric marts "
                  f"({sum(1 for r in results if r.oracle) - unchecked} checked, {unchecked} it cannot express)")
    if as_json:
        click.echo(flow.dumps({"total": total, "cases": len(results), "results": [r.model_dump() for r in results]}))
    sys.exit(0 if total == len(results) else 1)


@main.command()
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--warehouse", type=click.Path(path_type=Path), help="DuckDB file or data folder to suggest marts for.")
@click.option("--json", "as_json", is_flag=True)
def capabilities(project: Path | None, warehouse: Path | None, as_json: bool) -> None:
    """What the crew can do; with a warehouse, concrete requests it can build there."""
    from dataeng_crew.agents.capabilities import capabilities as describe
    from dataeng_crew import flow

    import tempfile

    profile = None
    try:
        with tempfile.TemporaryDirectory(prefix="dataeng-crew-capabilities-") as tmp:  # a loaded folder leaves nothing
            if warehouse is not None and Path(warehouse).is_dir():
                from dataeng_crew.tools.warehouse import load_folder

                path: Path | None = load_folder(Path(warehouse), Path(tmp) / f"{Path(warehouse).name}.duckdb")
            elif warehouse is not None:
                path = Path(warehouse)
            elif project is not None:
                path = flow.resolve_warehouse(flow.resolve_workspace(project), None)
            else:
                path = None
            if path is not None:
                from dataeng_crew.tools.warehouse import profile_warehouse

                profile = profile_warehouse(path)
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    data = describe(profile)
    if as_json:
        click.echo(flow.dumps(data))
        return
    console = _console()
    for role in data["roles"]:
        examples = f"  e.g. {', '.join(repr(e) for e in role['examples'])}" if role["examples"] else ""
        console.print(f"[bold]{role['name']}[/]: {role['builds']}{examples}")
    from rich.markup import escape

    console.print("[bold]request patterns[/]: " + escape(" | ".join(data.get("patterns", []))))
    console.print("[bold]refused[/]: " + escape(" | ".join(data.get("refused", []))))
    for s in data.get("suggestions", []):
        console.print(f"[green]→[/] dataeng-crew propose \"{s['request']}\"   [dim]({s['from']})[/]")


@main.command()
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--json", "as_json", is_flag=True)
def history(project: Path | None, as_json: bool) -> None:
    """Past proposals, newest first: status, branch, commit and PR description."""
    from dataeng_crew import flow
    from dataeng_crew.history import commit_state, git_state, load_proposals, load_revisions

    try:
        ws = flow.resolve_workspace(project)
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    rows = [{"proposal_id": p.proposal_id, "status": p.status, "request": p.request, "branch": p.branch,
             "commit": p.commit, "pr": p.pr, "created_at": p.created_at, "in_git": git_state(ws.repo, p)}
            for p in load_proposals(ws.state_dir)]
    revisions = [{"proposal_id": r.proposal_id, "round": r.round, "status": r.status, "request": r.request,
                  "branch": r.branch, "commit": r.commit, "in_git": commit_state(ws.repo, r.branch, r.commit)}
                 for r in load_revisions(ws.state_dir)]
    if as_json:
        click.echo(flow.dumps({"proposals": rows, "revisions": revisions}))
        return
    from rich.table import Table

    table = Table(title="dataeng-crew history")
    for col in ("proposal", "status", "request", "branch", "in git", "PR description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["proposal_id"], r["status"], r["request"], r["branch"] or "", r["in_git"], r["pr"] or "",
                      )
        for rev in (v for v in revisions if v["proposal_id"] == r["proposal_id"]):
            table.add_row(f"  revision {rev['round']} ({(rev['commit'] or '')[:10]})", rev["status"], rev["request"],
                          rev["branch"], rev["in_git"], "")
    _console().print(table)


@main.command()
@click.argument("proposal_id", required=False)
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--json", "as_json", is_flag=True)
def rollback(proposal_id: str | None, project: Path | None, as_json: bool) -> None:
    """Undo PROPOSAL_ID (default: the latest published): undo its latest revision (one commit on top), delete its
    branch, or propose a revert if merged."""
    import dataclasses

    from dataeng_crew import flow
    from dataeng_crew.rollback import rollback as undo
    from dataeng_crew.tools.audit import AuditLog, who

    from dataeng_crew.locking import run_lock

    try:
        ws = flow.resolve_workspace(project)
        with run_lock(ws.state_dir, f"rollback {proposal_id or ''}".strip()):
            result = undo(ws, proposal_id)
    except DataengCrewError as exc:
        _fail(exc, as_json)
        return
    AuditLog(ws.state_dir, who(ws.repo)).record("rollback", {"proposal_id": result.proposal_id}, result.action, 0.0,
                                                result.proposal_id)
    if as_json:
        click.echo(flow.dumps(dataclasses.asdict(result)))
    _console().print(f"[green]✓[/] {result.message}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), help="dbt project folder.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Config file: API tokens, webhook secret, publishing (default: .dataeng-crew/serve.yml).")
def serve(host: str, port: int, project: Path | None, config_path: Path | None) -> None:
    """Run the bot service: an HTTP API, a GitHub webhook, metrics and a status page (see the README)."""
    _offline_defaults()
    from dataeng_crew.service.server import serve as run_service

    run_service(host, port, project, config_path)


def entry() -> None:
    """The console script: :func:`main`, then a quick exit.

    Once the command has finished, its threads ended (as at interpreter exit: thread pools are told to stop, the
    others joined), its exit handlers run (the workers stopped, logs closed) and its output flushed, the process
    ends without tearing down the modules it imported (dbt's, sqlglot's, pydantic's: ~0.25 s of a proposal).
    """
    import atexit
    import os
    import threading

    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # outside a command (click's own parsing): as Python would
        code = 130
    threading._shutdown()  # what the interpreter does first at exit: thread pools stopped, other threads joined
    atexit._run_exitfuncs()
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    entry()
