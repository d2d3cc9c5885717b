"""dbt's JSON schemas, built once per installed dbt and read back by later processes.

On a process's first command dbt validates ``dbt_project.yml``, the profile and node configs against JSON schemas
that mashumaro builds from dbt's dataclasses (~0.5 s of CPU: in a proposal it is on the critical path, in the dbt
worker before the build). A schema is a function of the class, hence of the installed packages: each one built is
kept in a file named for their versions, and a later process takes it from there instead of building it. Another
version of any of them names another file; an unreadable file is ignored (the schemas are built as before).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

CACHE_ENV = "DATAENG_CREW_CACHE_DIR"
PACKAGES = ("dbt-core", "dbt-common", "dbt-adapters", "dbt-duckdb", "dbt-postgres", "dbt-spark", "mashumaro",
            "jsonschema")

_STORE: dict[str, Any] = {}
_LOADED: set[str] = set()  # the names the file held when it was read


def cache_dir() -> Path:
    """Where the schema files go: ``$DATAENG_CREW_CACHE_DIR``, else the user's cache folder."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dataeng-crew"


def versions_key() -> str:
    """A digest of the Python version and the versions of the packages the schemas come from."""
    parts = [sys.version.split()[0]]
    for name in PACKAGES:
        try:
            parts.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} absent")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def cache_file() -> Path:
    """The file for the installed versions."""
    return cache_dir() / f"dbt-schemas-{versions_key()}.json"


def install() -> None:
    """Make dbt take its schemas from the file (once per process; building those it lacks as before)."""
    from dbt_common.dataclass_schema import dbtClassMixin

    current = dbtClassMixin.__dict__["json_schema"].__func__
    if getattr(current, "dataeng_crew_cache", False):
        return
    build: Callable[[type], Any] = current.__wrapped__  # dbt's own, under its lru_cache
    try:
        held = json.loads(cache_file().read_text())
        if isinstance(held, dict):
            _STORE.update(held)
            _LOADED.update(held)
    except (OSError, ValueError):
        pass

    @functools.lru_cache
    def json_schema(cls: type) -> Any:
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name not in _STORE:
            _STORE[name] = build(cls)
        return _STORE[name]

    json_schema.dataeng_crew_cache = True  # type: ignore[attr-defined]
    dbtClassMixin.json_schema = classmethod(json_schema)  # type: ignore[method-assign,assignment]


def save() -> None:
    """Write the schemas built since the file was read (nothing when none was; a failed write is ignored)."""
    if set(_STORE) <= _LOADED:
        return
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".dbt-schemas-", delete=False) as tmp:
            json.dump(_STORE, tmp)
        os.replace(tmp.name, path)
        _LOADED.update(_STORE)
    except OSError:
        pass
