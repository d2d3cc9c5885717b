"""Settings: where the dbt project, the warehouse and the tool's state live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dataeng_crew.errors import ConfigError

STATE_DIR_NAME = ".dataeng-crew"


def find_project(project: Path | None) -> Path:
    """The dbt project folder: ``project``, or the current folder, or ``./dbt_project``.

    Raises:
        ConfigError: When no ``dbt_project.yml`` is found.
    """
    candidates = [Path(project)] if project else [Path.cwd(), Path.cwd() / "dbt_project"]
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate.resolve()
    where = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"no dbt_project.yml in {where}; pass --project DIR")


def project_config(project: Path) -> dict:
    """Parsed ``dbt_project.yml``."""
    data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    if not isinstance(data, dict) or not data.get("profile"):
        raise ConfigError(f"{project / 'dbt_project.yml'} has no 'profile:' entry")
    return data


def default_warehouse(project: Path) -> Path:
    """The DuckDB file the project's own ``profiles.yml`` points at (default target).

    Raises:
        ConfigError: When the project has no DuckDB profile to infer it from.
    """
    profiles = project / "profiles.yml"
    profile_name = project_config(project)["profile"]
    if profiles.is_file():
        data = yaml.safe_load(profiles.read_text()) or {}
        prof = data.get(profile_name) or {}
        output = (prof.get("outputs") or {}).get(prof.get("target", "dev")) or {}
        if output.get("type") == "duckdb" and output.get("path") and "{{" not in str(output["path"]):
            path = Path(output["path"])
            return path if path.is_absolute() else (project / path).resolve()
    raise ConfigError("cannot tell which warehouse to use: pass --warehouse PATH (a DuckDB file or a folder of "
                      "CSV/Parquet files)")


@dataclass(frozen=True)
class Workspace:
    """Resolved locations for one run."""

    project: Path
    repo: Path | None
    state_dir: Path

    @property
    def project_in_repo(self) -> str:
        """The project folder relative to the repository root, posix ('' at the root)."""
        if self.repo is None:
            return ""
        rel = self.project.relative_to(self.repo).as_posix()
        return "" if rel == "." else rel


def state_dir_for(root: Path) -> Path:
    """``<root>/.dataeng-crew``, created with a ``.gitignore`` so git never sees it."""
    state = root / STATE_DIR_NAME
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# dataeng-crew state: proposals, sandboxes, logs\n*\n")
    return state
