"""`dataeng-crew check`: sqlglot on every compiled model, then dbt build, on a sandbox copy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

from dataeng_crew.contracts import CheckReport, SqlIssue
from dataeng_crew.flow import prepare_sandbox, resolve_warehouse, resolve_workspace
from tools.dbt_runner import run_dbt
from tools.sqlcheck import check_compiled


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
    ws = resolve_workspace(project)
    wh = resolve_warehouse(ws, warehouse)
    folder = ws.state_dir / "checks" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    progress("sandbox copy")
    project_copy, profiles_dir, _db = prepare_sandbox(ws, wh, folder)
    target = folder / "target"
    progress("dbt compile")
    compiled = run_dbt(["compile"], project_copy, profiles_dir, target_path=target, log_path=folder / "logs")
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
    report.build = run_dbt(["build"], project_copy, profiles_dir, target_path=target, log_path=folder / "logs")
    return report
