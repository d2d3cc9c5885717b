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
    from dataeng_crew.tools.dbt_files import render_project_files
    from dataeng_crew.tools.project_files import write_project_files
    from dataeng_crew.tools.sandbox import prepare_sandbox

    if not Path(warehouse).is_file():
        raise ConfigError(f"warehouse not found: {warehouse}")
    if not (Path(project) / "dbt_project.yml").is_file():
        raise ConfigError(f"no dbt_project.yml in {project}")
    box = prepare_sandbox(Path(project), Path(warehouse), workdir)
    models = [m for m in upstream if m.name != model.name] + [model]
    roots = tuple({m.root for m in models})
    write_project_files(box.project, render_project_files(sources, models), roots)
    select = f"+{model.name}" if command == "build" else model.name
    return box.dbt([command, "--select", select])
