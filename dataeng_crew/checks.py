"""`dataeng-crew check` and `validate`: sqlglot, dbt build and GX suites on a sandbox copy of the project."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

from pydantic import Field

from dataeng_crew.errors import BuildError, ConfigError
from dataeng_crew.contracts import (
    LEGACY_SUITES_FOLDER,
    SUITES_FOLDER,
    CheckReport,
    ExpectationSpec,
    ExpectationSuiteSpec,
    ModelDiff,
    SqlIssue,
    SuiteResult,
)
from dataeng_crew.flow import resolve_warehouse, resolve_workspace
from dataeng_crew.tools.project_inventory import has_seeds
from dataeng_crew.tools.sandbox import SKIP_SEEDS, prepare_sandbox
from dataeng_crew.settings import Workspace
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.expectations import expectation_class
from dataeng_crew.tools.sqlcheck import check_compiled


def _sandbox(project: Path | None, warehouse: Path | None, kind: str, progress: Callable[[str], None]
             ) -> tuple[Workspace, Path, Path, Path, Path]:
    """Resolve the project and warehouse and copy both into ``.dataeng-crew/<kind>/<timestamp>``.

    The copy is the project's working tree (what the user is checking), with its installed packages.

    Returns:
        ``(workspace, folder, project copy, profiles dir, DuckDB file)``.
    """
    ws = resolve_workspace(project)
    wh = resolve_warehouse(ws, warehouse)
    folder = ws.state_dir / kind / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    progress("sandbox copy")
    box = prepare_sandbox(ws.project, wh, folder)
    if has_seeds(box.project):
        progress("dbt seed")
        seeded = box.dbt(["seed", "--target", "seed"])
        if not seeded.success:
            raise BuildError("dbt seed failed in the sandbox: " + (seeded.error or "; ".join(
                f"{n.unique_id}: {(n.message or n.status)[:200]}" for n in seeded.failed_nodes)))
    return ws, folder, box.project, box.profiles_dir, box.db_file


def check_project(project: Path | None, warehouse: Path | None,
                  progress: Callable[[str], None] = lambda _s: None) -> CheckReport:
    """Compile the project in a sandbox, check each model's compiled SQL, then build it.

    Compiled SQL is checked against the allow-list (one query, no DDL/DML/commands, no file
    reads) before anything runs; the build only runs when every model passes.

    Args:
        project: dbt project folder (default: current folder or ``./dbt_project``).
        warehouse: DuckDB file or data folder (default: the project's DuckDB profile).
        progress: Called with each stage's name.

    Returns:
        The check report.
    """
    _ws, folder, project_copy, profiles_dir, _db = _sandbox(project, warehouse, "checks", progress)
    target = folder / "target"
    progress("dbt compile")
    compiled = run_dbt(["compile", *SKIP_SEEDS], project_copy, profiles_dir, target_path=target, log_path=folder / "logs")
    report = CheckReport(build=compiled)
    if not compiled.success:
        return report
    manifest = json.loads((target / "manifest.json").read_text())
    progress("sqlglot check")
    issues: list[SqlIssue] = []
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n.get("compiled_code")]
    for node in models:
        found, _ = check_compiled(node["name"], node["compiled_code"], schema={}, expected_columns=None)
        issues += [i for i in found if i.kind not in {"unknown_table", "unknown_column"}]
    report = CheckReport(sql_issues=issues, models_checked=len(models))
    if issues:
        return report
    progress("dbt build (sandbox)")
    report.build = run_dbt(["build", *SKIP_SEEDS], project_copy, profiles_dir, target_path=target, log_path=folder / "logs")
    return report


def load_suites(project: Path, models: list[str] | None = None) -> list[ExpectationSuiteSpec]:
    """GX suites saved under ``gx/expectations/`` (and the older ``suites/``), as contracts; only ``models``
    when given."""
    suites = []
    paths = [*sorted((project / SUITES_FOLDER).glob("*.json")), *sorted((project / LEGACY_SUITES_FOLDER).glob("*.json"))]
    for path in paths:
        data = json.loads(path.read_text())
        model = (data.get("meta") or {}).get("dataeng_crew", {}).get("model") or path.stem
        if models and model not in models:
            continue
        expectations = [ExpectationSpec(type=expectation_class(e["type"]),
                                        kwargs=e.get("kwargs", {})) for e in data.get("expectations", [])]
        suites.append(ExpectationSuiteSpec(name=data.get("name", path.stem), model=model, expectations=expectations))
    return suites


class ValidationReport(CheckReport):
    """`dataeng-crew validate`: the dbt build/tests and the GX suites."""

    suite_results: list[SuiteResult] = Field(default_factory=list)
    diffs: list[ModelDiff] = Field(default_factory=list, description="Data diff against --diff-base (issue 17).")

    @property
    def passed(self) -> bool:
        """dbt build green and every expectation met."""
        return (self.build is not None and self.build.success
                and all(not r.failed and not r.error for r in self.suite_results))


def validate_project(project: Path | None, warehouse: Path | None, models: list[str] | None = None,
                     progress: Callable[[str], None] = lambda _s: None, state: Path | None = None,
                     defer: bool = False, diff_base: Path | None = None) -> ValidationReport:
    """Re-run dbt build (models + tests) and the GX suites of the current project on a sandbox copy.

    Args:
        project: dbt project folder (default: current folder or ``./dbt_project``).
        warehouse: DuckDB file or data folder (default: the project's DuckDB profile).
        models: Model names to validate (default: all).
        progress: Called with each stage's name.
        state: A dbt state folder (the base branch's ``manifest.json``): slim CI. Builds the modified
            nodes, everything downstream and their ancestors (``+state:modified+``): the sandbox holds
            raw data only, so unmodified parents must be built to be read.
        defer: With ``state``: build only ``state:modified+`` and ``--defer`` unselected parents to the
            relations in the state manifest (for a warehouse that already holds the base's models).
        diff_base: The base branch's dbt project folder: every model whose SQL differs from it is diffed
            against the base's build of it (schema, row counts, key-joined values), built in a sandbox.

    Returns:
        The build result and one GX result per suite.

    Raises:
        ConfigError: When ``state`` holds no ``manifest.json``, or a named model does not exist.
    """
    from dataeng_crew.tools.expectations import validate_suites

    ws, folder, project_copy, profiles_dir, db_file = _sandbox(project, warehouse, "validations", progress)
    progress("dbt build")
    # cautious: a test runs only when every model it touches is selected (no half-built relationships)
    select = ["--select", *[f"+{m}" for m in models], "--indirect-selection", "cautious"] if models else []
    if state is not None:  # slim CI: what changed against the base manifest, and everything downstream of it
        if not (Path(state) / "manifest.json").is_file():
            raise ConfigError(f"--state {state}: no manifest.json there (build one with `dbt parse --target-path DIR` "
                              "on the base branch)")
        graph = "state:modified+" if defer else "+state:modified+"
        select = ["--select", *([f"{graph},+{m}" for m in models or []] or [graph]),
                  *(["--defer"] if defer else []), "--state", str(Path(state).resolve())]
    build = run_dbt(["build", *select, *SKIP_SEEDS], project_copy, profiles_dir, target_path=folder / "target",
                    log_path=folder / "logs")
    report = ValidationReport(build=build, models_checked=sum(n.resource_type == "model" for n in build.nodes))
    if models and state is None and not build.error:  # a typo in CI must fail, not pass with nothing checked
        names = {n.unique_id.split(".")[-1] for n in build.nodes if n.resource_type in {"model", "seed", "snapshot"}}
        unknown = [m for m in models if m not in names]
        if unknown:
            raise ConfigError(f"validate: no model named {', '.join(unknown)} in {ws.project} (dbt selected nothing "
                              "for it); check the spelling with `dbt ls --resource-type model`")
    if build.success:
        progress("Great Expectations")
        built = {n.unique_id.split(".")[-1] for n in build.nodes if n.resource_type == "model"}
        suites = load_suites(ws.project, models)
        report.suite_results = validate_suites(db_file, [s for s in suites if s.model in built] if state else suites)
        if diff_base is not None:
            from dataeng_crew.data_diffs import validation_diffs

            progress("data diff against the base")
            report.diffs = validation_diffs(project_copy, folder / "target" / "manifest.json", db_file, Path(diff_base),
                                            resolve_warehouse(ws, warehouse), folder / "diff", progress)
    return report
