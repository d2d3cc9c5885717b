"""dbt compile/build of ONE model in a scratch sandbox: the crew's agents try their SQL before answering.

The project and the warehouse are copied (as the flow's validation build does), the model, its upstream
models and the sources are rendered into the copy, and dbt runs on it with the locked-down sandbox
profile. The user's project and warehouse are never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from dataeng_crew.contracts import BuildResult, ModelSpec, SourceSpec
from dataeng_crew.errors import ConfigError


def dbt_single_model(project: Path, warehouse: Path, model: ModelSpec, sources: list[SourceSpec],
                     upstream: list[ModelSpec], workdir: Path,
                     command: Literal["compile", "build"] = "compile") -> BuildResult:
    """``dbt compile|build --select <model>`` on a sandbox copy holding the model and its upstream models.

    Args:
        project: The user's dbt project (copied, never written).
        warehouse: The DuckDB warehouse (copied, never written).
        model: The model to try.
        sources: Sources the models read.
        upstream: Other models the model may ref() (built first with ``build``).
        workdir: Scratch folder for the sandbox.
        command: ``compile`` (fast, no data) or ``build`` (runs the model and its tests).

    Returns:
        dbt's outcome, per node.

    Raises:
        ConfigError: When the project or warehouse is missing.
    """
    from dataeng_crew.flow import prepare_sandbox, resolve_workspace
    from dataeng_crew.render import render_project_files
    from dataeng_crew.tools.dbt_runner import run_dbt
    from dataeng_crew.tools.project_files import write_project_files

    if not Path(warehouse).is_file():
        raise ConfigError(f"warehouse not found: {warehouse}")
    ws = resolve_workspace(project)
    project_copy, profiles_dir, _db = prepare_sandbox(ws, Path(warehouse), workdir)
    models = [m for m in upstream if m.name != model.name] + [model]
    write_project_files(project_copy, render_project_files(sources, models))
    select = f"+{model.name}" if command == "build" else model.name
    return run_dbt([command, "--select", select], project_copy, profiles_dir, target_path=workdir / "target",
                   log_path=workdir / "logs", write_json=False)
