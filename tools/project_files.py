"""Project file writer restricted to the paths an agent may write.

Allowed: ``models/**.sql|yml``, ``tests/**.sql|yml``, the GX suites folder (``gx/expectations``) and ``ddl/`` (rendered DDL). Refused: ``..``,
absolute paths, symlinks, ``macros/``, ``dbt_project.yml``, ``profiles.yml``, ``packages.yml`` and
``.py`` models. Every path is validated before the first byte is written.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from dataeng_crew.errors import UnsafeArtifactError

ALLOWED_ROOTS = ("models", "tests", "gx", "suites", "ddl")
ALLOWED_SUFFIXES = {".sql", ".yml", ".yaml", ".json", ".md"}
FORBIDDEN_ROOTS = {"macros", "dbt_packages", "target", "logs", "seeds", "snapshots", "analyses", ".git", ".github"}
FORBIDDEN_NAMES = {"dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml"}


def validate_path(root: Path, relative: str, extra_roots: tuple[str, ...] = ()) -> Path:
    """Check that ``relative`` may be written under ``root`` and return the absolute path.

    Args:
        root: The dbt project root.
        relative: The path to write.
        extra_roots: The project's own model and test paths (``model-paths``/``test-paths``), single folders.

    Raises:
        UnsafeArtifactError: When the path breaks the allow-list.
    """
    if "\\" in relative or "//" in relative or relative != relative.strip() or "\x00" in relative:
        raise UnsafeArtifactError(f"refused path {relative!r}: empty segments, backslashes or blanks")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith(("/", "~")) or ":" in relative:
        raise UnsafeArtifactError(f"refused path {relative!r}: absolute paths are not allowed")
    if any(part in {"..", "."} for part in pure.parts) or not pure.parts:
        raise UnsafeArtifactError(f"refused path {relative!r}: '..' is not allowed")
    roots = ALLOWED_ROOTS + tuple(r for r in extra_roots if r and "/" not in r and r not in {".", ".."}
                                   and r not in FORBIDDEN_ROOTS)
    if pure.parts[0] not in roots:
        raise UnsafeArtifactError(f"refused path {relative!r}: only {', '.join(roots)}/ may be written")
    if pure.name in FORBIDDEN_NAMES:
        raise UnsafeArtifactError(f"refused path {relative!r}: project configuration may not be written")
    if pure.suffix.lower() not in ALLOWED_SUFFIXES:
        raise UnsafeArtifactError(f"refused path {relative!r}: {pure.suffix or 'no suffix'} files are not allowed")
    if pure.parts[0] == "gx" and (pure.parts[:2] != ("gx", "expectations") or pure.suffix.lower() != ".json"):
        raise UnsafeArtifactError(f"refused path {relative!r}: only gx/expectations/*.json (GX suites) may be written")
    if pure.parts[0] in roots and pure.parts[0] not in {"gx", "suites", "ddl"} and \
            pure.suffix.lower() not in {".sql", ".yml", ".yaml", ".md"}:
        raise UnsafeArtifactError(f"refused path {relative!r}: models/ holds .sql and .yml files only")
    target = root / Path(*pure.parts)
    probe = root
    for part in pure.parts:  # no symlink anywhere on the way, existing or not
        probe = probe / part
        if probe.is_symlink():
            raise UnsafeArtifactError(f"refused path {relative!r}: {probe} is a symbolic link")
    resolved_root = root.resolve()
    if not str(target.resolve()).startswith(str(resolved_root) + os.sep):
        raise UnsafeArtifactError(f"refused path {relative!r}: it leaves the project")
    return target


def write_project_files(root: Path, files: dict[str, str], extra_roots: tuple[str, ...] = ()) -> list[Path]:
    """Write ``files`` under ``root`` after validating every path (all or nothing).

    Args:
        root: dbt project root (a sandbox copy, never the user's tree in place).
        files: ``{relative_path: content}``.

    Returns:
        The written paths.

    Raises:
        UnsafeArtifactError: When any path is refused; nothing is written then.
    """
    targets = [(validate_path(root, rel, extra_roots), content) for rel, content in files.items()]
    written = []
    for target, content in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    return written


READABLE_SUFFIXES = {".sql", ".yml", ".yaml", ".md", ".json"}


def read_project_file(root: Path, relative: str, max_chars: int = 20_000) -> str:
    """Read an existing project file for an agent: models, tests, suites, docs (never profiles or secrets).

    Raises:
        UnsafeArtifactError: For paths outside the project, links, ``profiles.yml`` or other suffixes.
        FileNotFoundError: When the file does not exist.
    """
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(p in {"..", "."} for p in pure.parts) or not pure.parts or "\\" in relative:
        raise UnsafeArtifactError(f"refused path {relative!r}: only paths inside the project may be read")
    if pure.name in {"profiles.yml", ".user.yml"} or pure.suffix.lower() not in READABLE_SUFFIXES:
        raise UnsafeArtifactError(f"refused path {relative!r}: not a project file an agent may read")
    target = root / Path(*pure.parts)
    if target.is_symlink() or not str(target.resolve()).startswith(str(root.resolve()) + os.sep):
        raise UnsafeArtifactError(f"refused path {relative!r}: it leaves the project")
    return target.read_text(errors="replace")[:max_chars]


def add_source_tables(text: str, source: str, tables: list[dict]) -> str:
    """Add ``tables`` to the entry of ``source`` in an existing sources yml, keeping its comments and order.

    A round-trip edit (ruamel.yaml): tables the entry already declares are left as they are.

    Raises:
        UnsafeArtifactError: When the file does not declare ``source``.
    """
    import io

    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    doc = rt.load(text)
    entry = next((s for s in (doc or {}).get("sources") or [] if isinstance(s, dict) and s.get("name") == source), None)
    if entry is None:
        raise UnsafeArtifactError(f"the sources yml does not declare source {source!r}")
    current = entry.setdefault("tables", [])
    names = {t.get("name") for t in current if isinstance(t, dict)}
    for table in tables:
        if table["name"] not in names:
            current.append(table)
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()
