"""Sandbox: a throw-away copy of the dbt project and a new, small DuckDB file that dbt may build into.

What is validated is what is committed: the sandbox holds the base commit's tree of the project (not the
working tree) when the project is in git, plus the installed packages (``packages-install-path``, which git
does not hold). The warehouse is never copied: the sandbox's DuckDB file (named as the warehouse, so the
database name sources pin is the same) holds one view per warehouse relation over the warehouse attached
read-only (small tables of the target schema, where hooks write, are copied); seeds and models are written into
the sandbox file, never into the user's files.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dataeng_crew.contracts import BuildResult
from dataeng_crew.errors import ConfigError, WarehouseError
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.warehouse import (ATTACH_SUFFIX, attachments, connect, explain_open_error, quote_ident,
                                         refuse_unopenable)

SANDBOX_IGNORE = shutil.ignore_patterns("target", "logs", "dbt_packages", ".dataeng-crew", "*.duckdb",
                                        "*.duckdb.wal", ".user.yml", "warehouse", ".git")


@dataclass(frozen=True)
class Sandbox:
    """Where a sandbox lives: the project copy, its profiles folder and the DuckDB file dbt builds into."""

    folder: Path
    project: Path
    profiles_dir: Path
    db_file: Path

    def dbt(self, args: list[str], write_json: bool = False, manifest: Any = None,
            keep: dict[str, Any] | None = None) -> BuildResult:
        """Run a dbt command in the sandbox (target and logs inside the sandbox folder); with ``manifest`` (parsed
        from the sandbox's files as they are) dbt does not parse again; a ``parse`` leaves its manifest in ``keep``."""
        return run_dbt(args, self.project, self.profiles_dir, target_path=self.folder / "target",
                       log_path=self.folder / "logs", write_json=write_json, manifest=manifest, keep=keep)


def write_sandbox_profile(sandbox: Path, profile_name: str, db_file: Path, threads: int = 4,
                          memory_limit: str = "1GB") -> Path:
    """A ``profiles.yml`` for the sandbox: DuckDB at ``db_file``, locked down.

    External access (file reads, ATTACH of other files, httpfs) and extension autoloading are off, so
    even SQL that slipped past sqlglot cannot read ``/etc/passwd`` or reach the network. A second target,
    ``seed``, keeps file reads on for ``dbt seed`` alone: it loads the project's committed CSV files and runs
    no SQL an agent wrote.
    """
    profiles_dir = sandbox / "profiles"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    options = {"autoload_known_extensions": False, "autoinstall_known_extensions": False, "memory_limit": memory_limit}
    base = {"type": "duckdb", "path": str(db_file), "threads": threads, "schema": "main", "config_options": options}
    attached = attachments(db_file)
    if attached:  # the warehouse the sandbox's views read, attached read-only on every connection
        base["attach"] = [{"path": a["path"], "alias": a["alias"], "read_only": True} for a in attached]
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump({
        profile_name: {"target": "sandbox", "outputs": {
            # defence in depth behind sqlglot: model SQL cannot read or write files, attach databases or load
            # extensions. Set on each cursor after the attach; DuckDB never lets SQL switch it on again.
            "sandbox": {**copy.deepcopy(base), "settings": {"enable_external_access": "false"}},
            "seed": copy.deepcopy(base),
        }}
    }))
    return profiles_dir


def extract_commit_tree(repo: Path, commit: str, subdir: str, dest: Path) -> None:
    """Write the files of ``subdir`` (``''``: the repository root) at ``commit`` into ``dest``.

    Raises:
        ConfigError: When git cannot read the commit.
    """
    spec = f"{commit}:{subdir}" if subdir else commit
    proc = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", spec], capture_output=True)
    if proc.returncode != 0:
        raise ConfigError(f"cannot read {spec} from git: {proc.stderr.decode(errors='replace').strip()[:300]}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:  # a committed link leaving the project (→ /proc/self/environ …)
            from dataeng_crew.errors import UnsafeArtifactError

            member = getattr(exc, "tarinfo", None)
            name = member.name if member is not None else "a file"
            target = f" to {member.linkname}" if member is not None and member.linkname else ""
            raise UnsafeArtifactError(f"refused: {name} (committed at {commit[:10]}) is a link{target}, outside the "
                                      "project; dbt would read it (nothing ran). Replace the link with the file "
                                      "it should hold.") from None


def project_seeds(project: Path) -> set[str]:
    """Names of the project's seeds (its CSV files): ``dbt seed`` loads them in the sandbox, and refuses to load
    over a view. (Models may replace a view of the same name: dbt drops a relation of another type.)"""
    data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    names: set[str] = set()
    for folder in data.get("seed-paths") or ["seeds"]:
        if (project / str(folder)).is_dir():
            names |= {f.stem.lower() for f in (project / str(folder)).rglob("*.csv")}
    return names


COPY_BELOW_ROWS = 100_000  # a table of the target schema this small is copied (hooks may write into it)


def warehouse_alias(warehouse: Path) -> str:
    """The name a sandbox attaches ``warehouse`` under: one per file, so a sandbox built on another sandbox's file
    (slim CI deferring to a base build) attaches both without one's views reading themselves."""
    return "dataeng_crew_wh_" + hashlib.sha256(str(warehouse.resolve()).encode()).hexdigest()[:10]


def mirror_warehouse(warehouse: Path, folder: Path, built: set[str] = frozenset()) -> Path:  # type: ignore[assignment]
    """A new DuckDB file in ``folder``, named as ``warehouse``, with one view per relation of the warehouse
    over it attached read-only: the sandbox reads the data where it is and never copies it.

    Relations of the sandbox's target schema (``main``, ``main_<custom>``) named as a seed in ``built`` are left
    out: the sandbox loads them itself (an earlier ``dbt seed`` into the user's warehouse left them there). The
    project's models built in the warehouse stay readable: a slim build deferring to them reads them there. The
    target schema is also where a project's hooks write (an audit table): its tables of at most
    ``COPY_BELOW_ROWS`` rows are copied, so they stay writable; larger ones are views like the rest.

    Returns:
        The sandbox's DuckDB file (its attachments recorded beside it, see :func:`warehouse.attachments`).

    Raises:
        WarehouseError: When the warehouse cannot be opened (missing, empty, locked by a writer, not DuckDB).
    """
    import duckdb

    refuse_unopenable(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / warehouse.name  # same stem = same DuckDB database name as the sources pin
    for stale in (db_file, Path(f"{db_file}.wal"), Path(f"{db_file}{ATTACH_SUFFIX}")):
        stale.unlink(missing_ok=True)
    alias = warehouse_alias(warehouse)
    attached = [*attachments(warehouse), {"path": str(warehouse.resolve()), "alias": alias}]  # its own views' too
    Path(f"{db_file}{ATTACH_SUFFIX}").write_text(json.dumps(attached))
    try:
        con = connect(db_file, read_only=False)
    except duckdb.Error as exc:
        raise WarehouseError(explain_open_error(warehouse, exc)) from None
    try:
        relations = con.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() where database_name = $db union all "
            "select schema_name, view_name, null from duckdb_views() where database_name = $db and not internal",
            {"db": alias}).fetchall()
        target = [(s, n, rows) for s, n, rows in relations if s == "main" or s.startswith("main_")]
        relations = [r for r in relations if r not in target or r[1].lower() not in built]
        for schema in sorted({s for s, _, _ in relations} - {"main"}):
            con.execute(f"create schema if not exists {quote_ident(schema)}")
        for schema, name, rows in relations:
            relation = f"{quote_ident(schema)}.{quote_ident(name)}"
            # the target schema is where the project writes (hooks' audit tables …): a small table there is a
            # writable copy; everything else is read where it is
            kind = "table" if (schema, name, rows) in target and rows is not None and rows <= COPY_BELOW_ROWS \
                else "view"
            con.execute(f"create {kind} {relation} as select * from {quote_ident(alias)}.{relation}")
    finally:
        con.close()
    return db_file


def _profile_name(project: Path) -> str:
    data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    if not isinstance(data, dict) or not data.get("profile"):
        raise ConfigError(f"{project / 'dbt_project.yml'} has no 'profile:' entry")
    return str(data["profile"])


def require_dbt_version(project: Path) -> None:
    """Honour the project's ``require-dbt-version`` (the tool runs dbt with ``--no-version-check`` so that an
    installed package's own range does not stop it; the project's rule is checked here).

    Raises:
        ConfigError: When the installed dbt does not satisfy it (exit 2), naming both.
    """
    data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    rule = data.get("require-dbt-version") if isinstance(data, dict) else None
    if not rule:
        return
    from importlib.metadata import version

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    rules = [str(r) for r in (rule if isinstance(rule, list) else [rule])]
    installed = version("dbt-core")  # not dbt's own module: importing dbt here costs ~0.7 s
    try:  # dbt's grammar (``>=1.0.0``, ``=1.2.3``, ``1.2.3``, ``<2.0.0``) as PEP 440 specifiers
        spec = SpecifierSet(",".join(re.sub(r"^(=?)(?=\d)", "==", part.strip())
                                     for r in rules for part in r.split(",") if part.strip()))
    except InvalidSpecifier as exc:
        raise ConfigError(f"dbt_project.yml: require-dbt-version {rules} cannot be read: {exc}") from None
    if not spec.contains(installed, prereleases=True):
        raise ConfigError(f"dbt_project.yml requires dbt {', '.join(rules)}; the installed dbt-core is "
                          f"{installed}: install a dbt-core that matches, or change the rule (nothing ran)")


def _packages_path(project: Path) -> str:
    data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    return str(data.get("packages-install-path") or "dbt_packages")


def refuse_outside_links(root: Path, allowed: tuple[Path, ...]) -> None:
    """Refuse a project whose files reach outside it before dbt reads anything.

    A committed symbolic link (``models/x.sql → /proc/self/environ``) or a special file (fifo, device) would make
    dbt read — and print into compiled SQL, logs and ``--json`` — what lies outside the project: the process
    environment with its tokens, ``/etc/passwd``. Links that stay inside ``allowed`` (the sandbox, the user's
    project, its repository: a local package installed as a link) are kept.

    Raises:
        UnsafeArtifactError: Naming the first offending file, relative to the project.
    """
    from dataeng_crew.errors import UnsafeArtifactError

    bases = [a.resolve() for a in allowed]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            target = path.resolve()
            if not any(target == b or b in target.parents for b in bases):
                raise UnsafeArtifactError(f"refused: {rel} is a link to {target}, outside the project; dbt would "
                                          "read it (nothing ran). Replace the link with the file it should hold.")
        elif not path.is_dir() and not path.is_file():
            raise UnsafeArtifactError(f"refused: {rel} is not a regular file (a fifo or device); nothing ran")


def prepare_sandbox(project: Path, warehouse: Path, folder: Path, repo: Path | None = None,
                    base: str | None = None, project_in_repo: str = "", parse_cache: Path | None = None) -> Sandbox:
    """Copy the project (the base commit's tree when given) into ``folder`` beside a sandbox DuckDB file that reads
    the warehouse (see :func:`mirror_warehouse`).

    Args:
        project: The user's dbt project folder (read, never written).
        warehouse: The DuckDB file (attached read-only, never copied; the sandbox file keeps its name, so its
            database name is the same).
        folder: Where the sandbox goes (replaced when it exists).
        repo: The git repository holding the project; with ``base``, the project is read from that commit.
        base: The commit whose tree the sandbox holds (None: the working tree, minus build output).
        project_in_repo: The project folder inside ``repo`` (posix, '' at the root).
        parse_cache: A folder kept between proposals of one repository: dbt's saved parse of the last sandbox
            is seeded into this one, so dbt parses only the files that differ (see :func:`remember_parse`).

    Returns:
        The sandbox. Installed packages are copied from the working tree; when the project declares
        packages that are not installed, ``dbt deps`` installs them (local packages work offline).
    """
    project_copy = folder / "project"
    if project_copy.exists():
        shutil.rmtree(project_copy)
    if repo is not None and base is not None:
        extract_commit_tree(repo, base, project_in_repo, project_copy)
    else:
        try:
            shutil.copytree(project, project_copy, ignore=SANDBOX_IGNORE, symlinks=True)
        except shutil.Error as exc:  # a fifo or device in the project: refused, as a link leaving it is
            from dataeng_crew.errors import UnsafeArtifactError

            bad = ", ".join(Path(str(e[0])).relative_to(project).as_posix() for e in exc.args[0][:3])
            raise UnsafeArtifactError(f"refused: {bad} is not a regular file (a fifo or device); nothing ran") \
                from None
    packages = _packages_path(project_copy)
    installed = project / packages
    if installed.is_dir() and not (project_copy / packages).exists():
        shutil.copytree(installed, project_copy / packages, symlinks=True)
    refuse_outside_links(project_copy, (project_copy, project, *([repo] if repo is not None else [])))
    require_dbt_version(project_copy)
    db_file = mirror_warehouse(warehouse, folder / "warehouse", project_seeds(project_copy))
    profiles_dir = write_sandbox_profile(folder, _profile_name(project_copy),
                                         _stable_path(parse_cache, db_file) if parse_cache else db_file)
    box = Sandbox(folder=folder, project=project_copy, profiles_dir=profiles_dir, db_file=db_file)
    saved = parse_cache / PARTIAL_PARSE if parse_cache else None
    if saved is not None and saved.is_file():
        (folder / "target").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, folder / "target" / PARTIAL_PARSE)
    declared = any((project_copy / f).is_file() for f in ("packages.yml", "dependencies.yml"))
    if declared and not (project_copy / packages).is_dir():
        downloads = folder / "tmp"  # dbt deps downloads into a temp folder it leaves behind when it fails
        downloads.mkdir(parents=True, exist_ok=True)
        before, tempfile.tempdir = tempfile.tempdir, str(downloads)
        try:
            deps = run_dbt(["deps"], box.project, box.profiles_dir, log_path=folder / "logs")  # no target options
        finally:
            tempfile.tempdir = before
            shutil.rmtree(downloads, ignore_errors=True)
        if not deps.success:
            raise ConfigError(f"dbt deps failed in the sandbox (install the project's packages first): "
                              f"{(deps.error or '')[:400]}")
    return box


PARTIAL_PARSE = "partial_parse.msgpack"


def _stable_path(cache: Path, db_file: Path) -> Path:
    """The sandbox's DuckDB file through a link that keeps its path between proposals.

    dbt's saved parse is valid only for the same connection settings, the DuckDB path among them; every proposal
    has its own sandbox folder, so the profile names ``<cache>/sandbox/<file>`` and the link points at this one.
    """
    cache.mkdir(parents=True, exist_ok=True)
    link, tmp = cache / "sandbox", cache / f"sandbox.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(db_file.parent.resolve(), target_is_directory=True)
    os.replace(tmp, link)  # atomic: a reader sees the old sandbox or the new one
    return link / db_file.name


def remember_parse(box: Sandbox, cache: Path) -> None:
    """Keep the sandbox's saved parse (of the project as the base commit holds it) for the next proposal."""
    parsed = box.folder / "target" / PARTIAL_PARSE
    if parsed.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parsed, cache / f"{PARTIAL_PARSE}.tmp")
        os.replace(cache / f"{PARTIAL_PARSE}.tmp", cache / PARTIAL_PARSE)


def pin_profile(box: Sandbox) -> None:
    """Point the sandbox's profile at its own DuckDB file (not the shared link): ``dbt build`` with it later
    builds this proposal's sandbox, whatever ran since."""
    write_sandbox_profile(box.folder, _profile_name(box.project), box.db_file)


SKIP_SEEDS = ["--exclude", "resource_type:seed"]  # builds after build_existing: the seeds are loaded already


def build_existing(box: Sandbox, seeds: bool, models: list[str], manifest: Any = None) -> list[BuildResult]:
    """Load the seeds (``dbt seed``) and run ``models`` with their parents in the sandbox, from raw data.

    Args:
        box: The sandbox.
        seeds: Whether the project has seeds.
        models: The models to run (with their parents).
        manifest: The manifest parsed from the sandbox's files, when there is one: no command parses again.

    Returns:
        The dbt results (seed, run); a failure is returned, not raised: the caller decides.
    """
    results = []
    if manifest is None and (seeds or models):  # parsed once here (the inventory was read back), not per command
        keep: dict[str, Any] = {}
        parsed = box.dbt(["parse"], keep=keep)
        if not parsed.success:
            return [parsed]
        manifest = keep.get("manifest")
    if seeds:  # the only step with file reads on: dbt loads the committed CSVs
        results.append(box.dbt(["seed", "--target", "seed"], manifest=manifest))
    if models:
        results.append(box.dbt(["run", "--select", *[f"+{m}" for m in models]], manifest=manifest))
    return results
