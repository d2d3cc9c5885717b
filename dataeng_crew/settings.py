"""Settings: where the dbt project, the warehouse and the tool's state live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dataeng_crew.errors import ConfigError

STATE_DIR_NAME = ".dataeng-crew"
# The key of the governance masking hash: set where dbt runs (the scheduler, CI), never committed; the tool's own
# sandbox builds use a random key of their own, so the real one never reaches the tool's dbt process.
PII_KEY_ENV = "DATAENG_CREW_PII_KEY"
PARSE_CACHE_ENV = "DATAENG_CREW_PARSE_CACHE"  # where dbt's saved parse is kept between proposals


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


def read_yaml(path: Path) -> object:
    """Parsed YAML of ``path``.

    Raises:
        ConfigError: When the file cannot be read or is not valid YAML (the message names file and line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None


def project_config(project: Path) -> dict:
    """Parsed ``dbt_project.yml``.

    Raises:
        ConfigError: When it is unreadable, not YAML, or has no ``profile:``.
    """
    data = read_yaml(project / "dbt_project.yml") or {}
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
        data = read_yaml(profiles) or {}
        prof = data.get(profile_name) if isinstance(data, dict) else None
        prof = prof if isinstance(prof, dict) else {}
        outputs = prof.get("outputs") if isinstance(prof.get("outputs"), dict) else {}
        output = outputs.get(prof.get("target", "dev")) or {}
        output = output if isinstance(output, dict) else {}
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


def parse_cache_dir(state_dir: Path) -> Path:
    """Where dbt's saved parse of the last sandbox is kept: ``<state>/parse``; with ``$DATAENG_CREW_PARSE_CACHE``,
    a folder of this process under it, shared by every project the process proposes in (the eval's scratch copies
    of one sample project: the next parse finds nothing changed). One per process: proposals of one process run
    one after another, so its link to the current sandbox is never switched under a running one."""
    import os

    root = os.environ.get(PARSE_CACHE_ENV)
    return Path(root) / f"pid-{os.getpid()}" if root else state_dir / "parse"


def state_dir_for(root: Path) -> Path:
    """``<root>/.dataeng-crew``, created with a ``.gitignore`` so git never sees it."""
    state = root / STATE_DIR_NAME
    try:
        state.mkdir(parents=True, exist_ok=True)
        ignore = state / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# dataeng-crew state: proposals, sandboxes, logs\n*\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the state folder {state}: {exc.strerror or exc} (dataeng-crew keeps its "
                          "proposals, sandboxes and logs there; the repository must be writable)") from None
    return state
