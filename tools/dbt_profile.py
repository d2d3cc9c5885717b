"""The project's dbt profile, read as dbt reads it: which warehouse the tool profiles and validates against.

dbt's lookup order for ``profiles.yml``: ``--profiles-dir``, ``$DBT_PROFILES_DIR``, the project folder, ``~/.dbt``.
The profile is the one ``dbt_project.yml`` names; the target is ``target:`` of that profile (or the one asked
for). ``{{ env_var('NAME', 'default') }}`` is rendered from the environment. The password (a Spark target's
token) is kept in a :class:`pydantic.SecretStr` and never appears in a message, a file or ``--json`` output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dataeng_crew.contracts import WarehouseTarget
from dataeng_crew.errors import ConfigError
from dataeng_crew.settings import read_yaml

PROFILES_ENV = "DBT_PROFILES_DIR"
ENV_VAR = re.compile(r"""\{\{\s*env_var\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])(.*?)\3\s*)?\)\s*(\|\s*(int|as_number|as_text)\s*)?\}\}""")
JINJA = re.compile(r"\{\{|\{%")


def profiles_dir(project: Path, explicit: Path | None = None) -> Path | None:
    """The folder whose ``profiles.yml`` dbt would read for ``project`` (None when there is none).

    Args:
        project: The dbt project folder.
        explicit: ``--profiles-dir``, when given (wins over everything).
    """
    candidates = [explicit, os.environ.get(PROFILES_ENV) or None, project, Path.home() / ".dbt"]
    for folder in candidates:
        if folder is not None and (Path(folder) / "profiles.yml").is_file():
            return Path(folder)
    return None


def render_env(value: object, where: str) -> object:
    """``value`` with each ``{{ env_var('X', 'default') }}`` replaced from the environment (recursively).

    Raises:
        ConfigError: When a variable is unset and has no default, or other Jinja is used (names ``where``).
    """
    if isinstance(value, dict):
        return {k: render_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_env(v, where) for v in value]
    if not isinstance(value, str) or not JINJA.search(value):
        return value

    def one(match: re.Match) -> str:
        name, default = match.group(2), match.group(4)
        found = os.environ.get(name, default)
        if found is None:
            raise ConfigError(f"{where}: environment variable {name} is not set (and env_var() gives no default)")
        return found

    rendered = ENV_VAR.sub(one, value)
    if JINJA.search(rendered):
        raise ConfigError(f"{where}: only {{{{ env_var(...) }}}} is understood in profiles.yml values")
    return rendered


def _profile_name(project: Path) -> str:
    data = read_yaml(project / "dbt_project.yml") or {}
    name = data.get("profile") if isinstance(data, dict) else None
    if not name:
        raise ConfigError(f"{project}/dbt_project.yml names no profile")
    return str(name)


def read_target(project: Path, explicit_dir: Path | None = None, target: str | None = None) -> WarehouseTarget | None:
    """The project's dbt target, rendered (None when no ``profiles.yml`` is found or it lacks the profile).

    Args:
        project: The dbt project folder.
        explicit_dir: ``--profiles-dir``.
        target: A target name other than the profile's default.

    Raises:
        ConfigError: When the profile names a target it does not define, or a value cannot be rendered;
            the message names the profile and target, never a credential.
    """
    folder = profiles_dir(project, explicit_dir)
    if folder is None:
        return None
    profile = _profile_name(project)
    data = read_yaml(folder / "profiles.yml") or {}  # a broken file: its name, line and problem
    prof = data.get(profile) if isinstance(data, dict) else None
    if not isinstance(prof, dict):
        return None
    name = target or str(render_env(prof.get("target", "dev"), f"profile {profile}.target"))
    outputs = prof.get("outputs") if isinstance(prof.get("outputs"), dict) else {}
    output = outputs.get(name)
    if not isinstance(output, dict):
        raise ConfigError(f"profile {profile!r} in {folder}/profiles.yml has no target {name!r}")
    out = render_env(output, f"profile {profile!r}, target {name!r}")
    assert isinstance(out, dict)
    return _target(profile, name, folder, out)


def target_environment(project: Path, explicit_dir: Path | None = None) -> tuple[Path, str, list[str]]:
    """Where the project's profile is, its default target's adapter type, and the environment variables that
    target reads (``env_var('NAME')``): what a CI workflow must provide (from secrets). Nothing is rendered: the
    variables need not be set here.

    Raises:
        ConfigError: When no ``profiles.yml`` is found, or it lacks the project's profile or its target.
    """
    folder = profiles_dir(project, explicit_dir)
    if folder is None:
        raise ConfigError(f"no profiles.yml for {project} (looked in --profiles-dir, ${PROFILES_ENV}, the project, "
                          "~/.dbt)")
    profile = _profile_name(project)
    data = read_yaml(folder / "profiles.yml") or {}
    prof = data.get(profile) if isinstance(data, dict) else None
    outputs = prof.get("outputs") if isinstance(prof, dict) and isinstance(prof.get("outputs"), dict) else {}
    name = str(prof.get("target", "dev")) if isinstance(prof, dict) else ""
    output = outputs.get(name)
    if not isinstance(output, dict):
        raise ConfigError(f"profile {profile!r} in {folder}/profiles.yml has no target {name!r}")
    names: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            names.extend(m.group(2) for m in ENV_VAR.finditer(value) if m.group(2) not in names)
    walk(output)
    return folder, str(output.get("type", "")).lower(), names


SPARK_PORTS = {"thrift": 10000, "http": 443}
# dbt-spark settings kept beside the target (never the token or password: those are the target's secret)
SPARK_OPTIONS = ("cluster", "endpoint", "organization", "auth", "kerberos_service_name", "use_ssl", "connect_timeout",
                 "connect_retries", "server_side_parameters", "driver")


def _target(profile: str, name: str, folder: Path, out: dict) -> WarehouseTarget:
    kind = str(out.get("type", "")).lower()
    method = str(out.get("method") or "").lower() or None
    default_port = 5432 if kind == "postgres" else SPARK_PORTS.get(method or "") if kind == "spark" else None
    port = out.get("port") or default_port
    try:
        port = int(port) if port is not None else None
    except ValueError:
        raise ConfigError(f"profile {profile!r}, target {name!r}: port is not a number") from None
    secret = out.get("password") or out.get("pass") or (out.get("token") if kind == "spark" else None) or ""
    options = {k: out[k] for k in SPARK_OPTIONS if kind == "spark" and out.get(k) is not None}
    if kind == "spark" and method not in ("session", "thrift", "http"):
        raise ConfigError(f"profile {profile!r}, target {name!r}: a spark target needs `method:` session, thrift or "
                          f"http (got {method!r})")
    return WarehouseTarget(
        profile=profile, target=name, profiles_dir=str(folder), type=kind,
        host=str(out.get("host") or "") or None, port=port, user=str(out.get("user") or "") or None,
        password=str(secret), dbname=str(out.get("dbname") or out.get("database") or "") or None,
        schema=str(out.get("schema") or "") or None, path=str(out.get("path") or "") or None,
        method=method, options=options)
