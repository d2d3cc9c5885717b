"""Project inventory: what the user's dbt project already holds, read with ``dbt parse`` (offline).

``dbt parse`` needs no warehouse connection: it reads the project (and its installed packages) and writes
``manifest.json``, which is turned into a :class:`ProjectInventory`: sources with their yml files, seeds,
models (path, layer, materialization, documented columns, parents), the generic tests that assert keys,
references and value sets, the project's paths, required dbt version and naming/layout conventions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dataeng_crew.contracts import (
    InventoryColumn,
    InventoryModel,
    InventorySeed,
    InventorySource,
    InventorySourceTable,
    InventoryTest,
    ProjectConventions,
    ForeignKey,
    ProjectInventory,
    RelationClass,
    TableProfile,
    WarehouseProfile,
)
from dataeng_crew.errors import ConfigError
from dataeng_crew.settings import PII_KEY_ENV
from dataeng_crew.tools.dbt_runner import dbt_environment, run_dbt

ENV_VAR_RX = re.compile(rb"env_var\s*\(\s*['\"]([^'\"]+)['\"]")
CACHE_KEEP = 8  # inventories, and profiles, kept per cache folder (eval cases share one)
CREW_MARKER = "dataeng_crew"  # key in a model's config.meta marking a model dataeng-crew wrote
TEST_KEY_RX = re.compile(r"^\s*(data_tests|tests)\s*:", re.M)
ARGUMENTS_RX = re.compile(r"^\s*arguments\s*:", re.M)


def _as_list(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def has_seeds(project: Path) -> bool:
    """Whether any of the project's seed folders holds a CSV file (``dbt seed`` has something to load)."""
    return any(project.joinpath(p).is_dir() and any(project.joinpath(p).rglob("*.csv"))
               for p in project_paths(project)["seed_paths"])


def project_paths(project: Path) -> dict[str, Any]:
    """Paths and the required dbt version from ``dbt_project.yml`` (dbt's defaults where unset)."""
    config = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    return {
        "name": str(config.get("name") or project.name),
        "dbt_version_required": _as_list(config.get("require-dbt-version"), []),
        "model_paths": _as_list(config.get("model-paths") or config.get("source-paths"), ["models"]),
        "seed_paths": _as_list(config.get("seed-paths") or config.get("data-paths"), ["seeds"]),
        "test_paths": _as_list(config.get("test-paths"), ["tests"]),
        "macro_paths": _as_list(config.get("macro-paths"), ["macros"]),
        "packages_install_path": str(config.get("packages-install-path") or "dbt_packages"),
    }


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _min_required(required: list[str]) -> tuple[int, ...] | None:
    """The lowest dbt version the project's ``require-dbt-version`` admits (None when unconstrained)."""
    lows = [_version_tuple(r) for r in required if re.match(r"\s*(>=|>|==|~=|=)?\s*\d", r) and not r.strip().startswith("<")]
    return min(lows) if lows else None


def _layer(fqn: list[str], name: str, path: str) -> str:
    parts = [p.lower() for p in [*fqn[1:-1], *PurePosixPath(path).parts[:-1]]]
    if name.startswith(("stg_", "base_")) or "staging" in parts or "base" in parts:
        return "staging"
    if name.startswith("int_") or "intermediate" in parts:
        return "intermediate"
    if name.startswith(("fct_", "dim_", "mart_", "rpt_")) or {"marts", "mart", "reports", "reporting"} & set(parts):
        return "marts"
    return ""  # no folder or prefix says: decided from the lineage (see _layer_by_lineage)


def _layer_by_lineage(models: list[InventoryModel], undecided: set[str]) -> list[InventoryModel]:
    """Layers of models neither folder nor prefix classifies (a flat ``models/``), from what they are: a model no
    other model reads is a mart (an end result); one that reads only sources and seeds is staging; the rest are
    intermediate building blocks."""
    read = {d.split(":", 1)[1] for m in models for d in m.depends_on if d.startswith("model:")}
    out = []
    for m in models:
        if m.name in undecided:
            layer = "marts" if m.name not in read else \
                "staging" if all(not d.startswith("model:") for d in m.depends_on) else "intermediate"
            m = m.model_copy(update={"layer": layer})
        out.append(m)
    return out


def _node_ref(node: dict[str, Any]) -> str:
    kind = node["resource_type"]
    if kind == "source":
        return f"source:{node['source_name']}.{node['name']}"
    return f"{kind}:{node['name']}"


def conventions(project: Path, model_paths: list[str], models: list[InventoryModel],
                required: list[str]) -> ProjectConventions:
    """The project's naming and yml conventions (dbt's style guide where it shows none)."""
    staging = [m.name for m in models if m.layer == "staging"]
    marts = [m.name for m in models if m.layer == "marts"]
    keys: set[str] = set()
    uses_arguments = False
    for root in model_paths:
        for yml in sorted((project / root).rglob("*.y*ml")) if (project / root).is_dir() else []:
            text = yml.read_text(errors="replace")
            keys |= set(TEST_KEY_RX.findall(text))
            uses_arguments |= bool(ARGUMENTS_RX.search(text))
    low = _min_required(required)
    if keys:
        tests_key = "data_tests" if "data_tests" in keys else "tests"
    else:
        tests_key = "tests" if low is not None and low < (1, 8) else "data_tests"
    arguments = tests_key == "data_tests" and (uses_arguments or low is None or low >= (1, 10, 5))
    per_model = sum(1 for m in models if m.yml_file and PurePosixPath(m.yml_file).stem.lstrip("_") == m.name)
    per_folder = sum(1 for m in models if m.yml_file) - per_model
    return ProjectConventions(
        staging_prefix="stg_",
        staging_with_source=not staging or any("__" in s for s in staging),
        mart_prefixes=["fct_", "dim_"] if not marts or any(m.startswith(("fct_", "dim_")) for m in marts) else [],
        # new models get a yml of their own unless the project clearly keeps one per folder
        yml_layout="per_folder" if per_folder > per_model else "per_model",
        tests_key=tests_key, test_arguments_key=arguments)


def inventory_from_manifest(project: Path, manifest: dict[str, Any]) -> ProjectInventory:
    """Turn dbt's ``manifest.json`` into the inventory (nodes of the root project only)."""
    paths = project_paths(project)
    root = manifest.get("metadata", {}).get("project_name") or paths["name"]
    nodes = manifest.get("nodes", {})
    own = {uid: n for uid, n in nodes.items() if n.get("package_name") == root}
    install = project / paths["packages_install_path"]
    packages = sorted(p.name for p in install.iterdir() if (p / "dbt_project.yml").is_file()) if install.is_dir() else []
    names = {uid: _node_ref(n) for uid, n in {**nodes, **manifest.get("sources", {})}.items()}
    sources: dict[str, InventorySource] = {}
    for src in manifest.get("sources", {}).values():
        if src.get("package_name") != root:
            continue
        entry = sources.setdefault(src["source_name"], InventorySource(
            name=src["source_name"], database=src.get("database"), schema_name=src.get("schema") or "main",
            file=src.get("original_file_path", "")))
        entry.tables.append(InventorySourceTable(
            name=src["name"], identifier=src.get("identifier") or src["name"],
            columns=[InventoryColumn(name=c["name"], description=c.get("description") or "",
                                     data_type=c.get("data_type")) for c in (src.get("columns") or {}).values()]))
    seeds, models, tests = [], [], []
    undecided: set[str] = set()
    for uid, n in sorted(own.items()):
        kind = n["resource_type"]
        if kind == "seed":
            seeds.append(InventorySeed(name=n["name"], path=n.get("original_file_path", ""),
                                       schema_name=n.get("schema") or "main", alias=n.get("alias") or n["name"]))
        elif kind == "model":
            if not _layer(n.get("fqn") or [], n["name"], n.get("original_file_path", "")):
                undecided.add(n["name"])
            patch = n.get("patch_path") or None
            config = n.get("config") or {}
            models.append(InventoryModel(
                name=n["name"], path=n.get("original_file_path", ""),
                layer=_layer(n.get("fqn") or [], n["name"], n.get("original_file_path", "")) or "marts",
                materialization=str(config.get("materialized") or "view"), schema_name=n.get("schema") or "main",
                alias=n.get("alias") or n["name"], description=n.get("description") or "",
                columns=[InventoryColumn(name=c["name"], description=c.get("description") or "",
                                         data_type=c.get("data_type")) for c in (n.get("columns") or {}).values()],
                yml_file=patch.split("://", 1)[-1] if patch else None,
                depends_on=[names[d] for d in (n.get("depends_on") or {}).get("nodes", []) if d in names],
                made_by_crew=CREW_MARKER in (config.get("meta") or {}) or CREW_MARKER in (n.get("meta") or {})))
        elif kind == "test" and n.get("test_metadata"):
            meta = n["test_metadata"]
            kwargs = {k: v for k, v in (meta.get("kwargs") or {}).items() if k not in {"model", "column_name"}}
            attached = n.get("attached_node") or next(iter((n.get("depends_on") or {}).get("nodes", [])), None)
            if attached is None and n.get("sources"):
                attached = "source"
            node = names.get(attached or "", "")
            if not node and n.get("sources"):
                s, t = n["sources"][0]
                node = f"source:{s}.{t}"
            tests.append(InventoryTest(kind=meta.get("name", ""), node=node, column=n.get("column_name"),
                                       arguments=kwargs))
    models = _layer_by_lineage(models, undecided)
    inv = ProjectInventory(name=root, **{k: v for k, v in paths.items() if k != "name"}, packages=packages,
                           sources=list(sources.values()), seeds=seeds, models=models, tests=tests)
    inv.conventions = conventions(project, inv.model_paths, models, inv.dbt_version_required)
    return inv


def project_inventory(project: Path, profiles_dir: Path, workdir: Path, keep: dict[str, Any] | None = None,
                      cache: Path | None = None, key: str | None = None) -> ProjectInventory:
    """Parse ``project`` with ``dbt parse`` (no warehouse connection) into its inventory.

    Args:
        project: The dbt project (a sandbox copy: dbt writes nothing into it, target and logs go to ``workdir``).
        profiles_dir: Folder with the profile to parse with (the sandbox's).
        workdir: Scratch folder for dbt's target (``workdir/target``: where later dbt commands of the sandbox
            find the saved parse and only parse files that changed) and logs.
        keep: When given, receives the parsed manifest (``keep["manifest"]``) for later dbt commands.
        cache: A folder kept between proposals: when everything a parse reads is as an earlier proposal found it
            (:func:`parse_inputs_key`), that proposal's inventory is read from here and dbt does not run.
        key: :func:`parse_inputs_key` of the project, when the caller has it.

    Returns:
        The project inventory.

    Raises:
        ConfigError: When dbt cannot parse the project (the message says why).
    """
    key = key or (parse_inputs_key(project, profiles_dir) if cache is not None else "")
    cached = cache / f"inventory-{key[:24]}.json" if cache is not None else None
    found = _read_cached(cached, ProjectInventory) if cached is not None else None
    if found is not None:
        return found
    target = workdir / "target"
    result = run_dbt(["parse"], project, profiles_dir, target_path=target, log_path=workdir / "logs", keep=keep)
    manifest_file = target / "manifest.json"
    if not result.success or not manifest_file.is_file():
        raise ConfigError(f"dbt could not parse the project {project.name}: {(result.error or 'see dbt logs')[:600]}")
    inventory = inventory_from_manifest(project, json.loads(manifest_file.read_text()))
    if cached is not None:
        _remember(cached, inventory)
    return inventory


def parse_inputs_key(project: Path, profiles_dir: Path) -> str:
    """A digest of what ``dbt parse`` of ``project`` reads: every file of the project (installed packages
    included), the profile, the values of the environment variables those files read (as dbt sees them), the dbt
    versions, and the code that turns a manifest into an inventory."""
    digest = hashlib.sha256()
    names: set[bytes] = set()
    files = sorted(p for p in project.rglob("*") if p.is_file() and not p.is_symlink())
    for path in [*files, profiles_dir / "profiles.yml"]:
        data = path.read_bytes() if path.is_file() else b""
        names.update(ENV_VAR_RX.findall(data))
        digest.update(str(path.relative_to(project) if path.is_relative_to(project) else "profiles.yml").encode()
                      + b"\0" + hashlib.sha256(data).digest())
    env = dbt_environment()
    for name in sorted(n.decode(errors="replace") for n in names if n.decode(errors="replace") != PII_KEY_ENV):
        digest.update(f"env {name}={env.get(name)!r}\0".encode())
    for dist in ("dbt-core", "dbt-duckdb", "dataeng-crew"):
        try:
            digest.update(f"{dist} {metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            pass
    _code_digest(digest, __file__, inspect.getfile(ProjectInventory))  # a changed reader or contract: re-parse
    return digest.hexdigest()


def _code_digest(digest: Any, *modules: str) -> None:
    """Add the source of ``modules`` to ``digest``: a cached result made by other code is not read back."""
    for module in modules:
        digest.update(hashlib.sha256(Path(module).read_bytes()).digest())


def _remember(path: Path, contract: ProjectInventory | WarehouseProfile) -> None:
    """Write ``path`` atomically; keep the newest few files of its kind (``inventory-*``, ``profile-*``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(contract.model_dump_json())
    os.replace(tmp, path)

    def age(p: Path) -> float:
        try:
            return -p.stat().st_mtime
        except OSError:  # pruned by another process meanwhile
            return 0.0
    kind = path.name.split("-", 1)[0]
    for old in sorted(path.parent.glob(f"{kind}-*.json"), key=age)[CACHE_KEEP:]:
        old.unlink(missing_ok=True)


def _read_cached(path: Path, contract: type[ProjectInventory] | type[WarehouseProfile]) -> Any:
    """The contract in ``path``; None when it is missing, unreadable (removed) or pruned meanwhile."""
    try:
        return contract.model_validate_json(path.read_text())
    except ValueError:
        path.unlink(missing_ok=True)
    except OSError:
        pass
    return None


def cached_project_profile(db_file: Path, inventory: ProjectInventory, cache: Path, parse_key: str,
                           unbuilt: frozenset[str] = frozenset()) -> WarehouseProfile:
    """:func:`project_profile`, read back when nothing it reads changed since an earlier proposal: the project
    (``parse_key``, :func:`parse_inputs_key`), the warehouse files the sandbox attaches (path, size and modification
    time of each and of its write-ahead log) and the profiling code. A sandbox file that is itself the warehouse
    (a PostgreSQL or Spark extract, new each time) is profiled every time."""
    from dataeng_crew.tools.warehouse import attachments

    sources = [Path(a["path"]) for a in attachments(db_file)]
    if not sources or not parse_key:
        return project_profile(db_file, inventory, unbuilt=unbuilt)
    digest = hashlib.sha256(f"{parse_key}\0{sorted(unbuilt)}\0".encode())
    for source in sources:
        for f in (source, Path(f"{source}.wal")):
            stat = f.stat() if f.exists() else None
            digest.update(f"{f}:{stat.st_size}:{stat.st_mtime_ns}\0".encode() if stat else f"{f}:-\0".encode())
    _code_digest(digest, __file__, inspect.getfile(attachments), inspect.getfile(WarehouseProfile))
    path = cache / f"profile-{digest.hexdigest()[:24]}.json"
    cached = _read_cached(path, WarehouseProfile)
    if cached is not None:
        return cached.model_copy(update={"path": str(Path(db_file).resolve()), "inventory": inventory})
    profile = project_profile(db_file, inventory, unbuilt=unbuilt)
    _remember(path, profile)
    return profile


def classify_relations(relations: list[tuple[str, str]], inventory: ProjectInventory) -> list[RelationClass]:
    """Classify warehouse relations ``(schema, name)`` against the project.

    A relation is the output of a project model (matched by alias; never profiled as raw data), a seed, a
    declared source table (by schema and identifier), or an undeclared raw table. ``covered_by`` names the
    project models that read it.
    """
    readers: dict[str, list[str]] = {}
    for m in inventory.models:
        for parent in m.depends_on:
            readers.setdefault(parent, []).append(m.name)
    models = {m.alias.lower(): m for m in inventory.models}
    seeds = {s.alias.lower(): s for s in inventory.seeds}
    source_tables = {(s.schema_name.lower(), t.identifier.lower()): (s, t) for s in inventory.sources for t in s.tables}
    out = []
    for schema, name in relations:
        key = (schema.lower(), name.lower())
        if key in source_tables:
            s, t = source_tables[key]
            node = f"source:{s.name}.{t.name}"
            out.append(RelationClass(schema_name=schema, name=name, origin="source", node=node,
                                     covered_by=sorted(readers.get(node, []))))
        elif name.lower() in seeds:
            node = f"seed:{seeds[name.lower()].name}"
            out.append(RelationClass(schema_name=schema, name=name, origin="seed", node=node,
                                     covered_by=sorted(readers.get(node, []))))
        elif name.lower() in models:
            node = f"model:{models[name.lower()].name}"
            out.append(RelationClass(schema_name=schema, name=name, origin="model", node=node,
                                     covered_by=sorted(readers.get(node, []))))
        else:
            out.append(RelationClass(schema_name=schema, name=name, origin="raw"))
    return out


def inventory_summary(inventory: ProjectInventory, limit: int = 60) -> str:
    """A compact text view of the inventory for prompts: models with columns, sources, seeds, conventions."""
    lines = [f"dbt project {inventory.name}; model paths {inventory.model_paths}; test key "
             f"'{inventory.conventions.tests_key}'; staging naming "
             + ("stg_<source>__<entity>" if inventory.conventions.staging_with_source else "stg_<entity>")
             + "; mart prefixes " + (", ".join(inventory.conventions.mart_prefixes) or "none")]
    for m in inventory.models[:limit]:
        cols = ", ".join(c.name for c in m.columns[:30])
        lines.append(f"- model {m.name} ({m.layer}, {m.materialization}, {m.path}): {m.description[:120]} "
                     f"columns: {cols or '?'}; reads {', '.join(m.depends_on) or 'nothing'}")
    for s in inventory.sources:
        lines.append(f"- source {s.name} (schema {s.schema_name}, {s.file}): "
                     + ", ".join(t.name for t in s.tables))
    for s in inventory.seeds:
        lines.append(f"- seed {s.name} (read with ref('{s.name}'))")
    keys = [f"{t.node}.{t.column}" for t in inventory.tests if t.kind == "unique"]
    if keys:
        lines.append("- tested keys: " + ", ".join(keys[:limit]))
    return "\n".join(lines)


def _model_foreign_keys(con: Any, tables: list[TableProfile], inventory: ProjectInventory) -> list[ForeignKey]:
    """References to the project's models: its relationships tests (declared), and columns of any profiled table
    named like a model's key whose values all exist there (measured by inclusion)."""
    from dataeng_crew.tools.warehouse import primary_key, quote_ident

    models = {t.ref_name: t for t in tables if t.origin == "model" and t.ref_name}
    found: dict[tuple[str, str], ForeignKey] = {}
    for test in inventory.tests:
        if test.kind != "relationships" or not test.column or not test.node.startswith("model:"):
            continue
        child = models.get(test.node.split(":", 1)[1])
        target = re.search(r"""ref\(\s*['"]([^'"]+)['"]""", str(test.arguments.get("to", "")))
        parent = models.get(target.group(1)) if target else None
        if child is not None and parent is not None and child is not parent:
            found[(child.name, test.column)] = ForeignKey(
                table=child.name, column=test.column, ref_table=parent.name,
                ref_column=str(test.arguments.get("field") or primary_key(parent) or test.column),
                inclusion=1.0, declared=True)
    keys = {primary_key(t): t for t in models.values() if primary_key(t)}
    for child in tables:  # a raw table referencing a project model by its key's name counts too
        for col in child.columns:
            parent = keys.get(col.name)
            if parent is None or parent is child or (child.name, col.name) in found:
                continue
            c_rel = f"{quote_ident(child.schema_name)}.{quote_ident(child.name)}"
            p_rel = f"{quote_ident(parent.schema_name)}.{quote_ident(parent.name)}"
            q = quote_ident(col.name)
            total, included = con.execute(
                f"with c as (select distinct {q} as v from {c_rel} where {q} is not null), "
                f"p as (select distinct {q} as v from {p_rel}) "
                "select count(*), count(p.v) from c left join p on c.v = p.v").fetchone()
            if total and included / total >= 0.99:
                found[(child.name, col.name)] = ForeignKey(table=child.name, column=col.name, ref_table=parent.name,
                                                           ref_column=col.name, inclusion=round(included / total, 4))
    return list(found.values())


def row_key(table: TableProfile) -> str | None:
    """The key of a relation whose rows are entities or business events (an id-like column unique in the data,
    not a time): ``orders.order_id`` has one; an aggregate (one row per day or per region) has none, and neither
    has a model whose declared key repeats (a join that fans out: its sums would count rows twice)."""
    from dataeng_crew.tools.warehouse import _is_id_like, _key_like_name, column_prefix, primary_key

    prefix = column_prefix([c.name for c in table.columns])
    for key in dict.fromkeys([primary_key(table), *table.declared_keys, *table.candidate_keys]):
        col = table.column(key) if key in table.candidate_keys else None  # unique in the data, not only declared
        if col is None or col.data_type.upper().startswith(("DATE", "TIMESTAMP", "TIME")):
            continue
        if _is_id_like(col.name, table.name, prefix) or _key_like_name(col.name, prefix):
            return col.name
    return None


def upstream_models(model: str, inventory: ProjectInventory) -> set[str]:
    """Every project model ``model`` is built from (transitively), by name."""
    seen: set[str] = set()
    todo = [model]
    while todo:
        m = inventory.model(todo.pop())
        for dep in (m.depends_on if m is not None else []):
            name = dep.split(":", 1)[1]
            if dep.startswith("model:") and name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def covering_model(table: TableProfile, tables: list[TableProfile], inventory: ProjectInventory
                   ) -> TableProfile | None:
    """A project model downstream of ``table`` that holds every row and column of it under the same key (the
    project's ``orders`` mart over ``stg_orders``): the model a proposal builds on instead of ``table``."""
    key = row_key(table)
    if table.origin != "model" or not table.ref_name or key is None:
        return None
    names = {c.name.lower() for c in table.columns}
    for other in tables:
        if (other is table or other.origin != "model" or not other.ref_name or row_key(other) != key
                or other.row_count != table.row_count
                or table.ref_name not in upstream_models(other.ref_name, inventory)):
            continue
        if names <= {c.name.lower() for c in other.columns}:
            return other
    return None


def _without_covered(tables: list[TableProfile], inventory: ProjectInventory) -> list[TableProfile]:
    """``tables`` without the models another project model covers (row for row, column for column); the most
    downstream such model is what planning sees."""
    return [t for t in tables if covering_model(t, tables, inventory) is None]


def project_profile(db_file: Path, inventory: ProjectInventory, sample_rows: int | None = None,
                    unbuilt: frozenset[str] = frozenset()) -> WarehouseProfile:
    """Profile what a proposal may build on: every model of the project (built in the sandbox), and the seeds,
    source tables and raw tables no project model reads yet.

    A mart is a building block when its rows are entities or events (an id-like key: the project's ``orders``,
    ``customers``); aggregate marts (one row per day, per region) are left out, and so are the marts and
    intermediate models dataeng-crew made (its staging models are building blocks). A model another model
    covers row for row and column for column (``stg_orders`` under the ``orders`` mart) is left out: the proposal
    reads the project's most complete model. Relations a project model already reads are left out too (the model
    is what a proposal reads).

    Args:
        db_file: The sandbox's DuckDB file, with seeds loaded and the project's models built.
        inventory: The project inventory.
        sample_rows: Rows profiled per table (the profiler's default when None).
        unbuilt: Marts that did not build in the sandbox (left out).

    Returns:
        The catalog: table profiles with ``origin``, ``ref_name`` and ``declared_keys``, foreign keys, and
        the inventory.

    Raises:
        WarehouseError: When nothing is left to plan on.
    """
    from dataeng_crew.errors import WarehouseError
    from dataeng_crew.tools.warehouse import (
        DEFAULT_SAMPLE_ROWS,
        find_foreign_keys,
        list_tables,
        open_readonly,
        profile_table,
    )

    rows = sample_rows or DEFAULT_SAMPLE_ROWS
    with open_readonly(db_file) as con:
        relations = list_tables(con)
        database = con.execute("select current_database()").fetchone()[0]
        classes = classify_relations([(s, t) for _d, s, t in relations], inventory)
        tables: list[TableProfile] = []
        for (d, s, t), cls in zip(relations, classes):
            node_name = (cls.node or "").split(":", 1)[-1]
            if cls.origin == "model":
                model = inventory.model(node_name)
                if model is None or model.layer != "staging" and model.made_by_crew or (
                        model.layer == "marts" and node_name in unbuilt):
                    continue  # a generated mart, or the intermediate aggregate inside one, is never a building block
            elif cls.covered_by:
                continue
            prof = profile_table(con, d, s, t, rows)
            ref = node_name if cls.origin in ("model", "seed", "source") else None
            declared = inventory.declared_keys(cls.node) if cls.node else []
            prof = prof.model_copy(update={"origin": cls.origin, "ref_name": ref,
                                           "declared_keys": [k for k in declared if prof.column(k)]})
            if cls.origin == "model" and model.layer == "marts" and row_key(prof) is None:
                continue  # an aggregate (one row per day, per region …): its rows are not business events
            tables.append(prof)
        tables = _without_covered(tables, inventory)
        if not tables:
            raise WarehouseError(f"{db_file.name}: every relation is already modelled by the project's marts")
        # references between every relation planning sees: a project model's column into a raw table no model
        # covers yet (stg orders → raw customers) is found as raw → raw is; the project's own declarations win
        declared_fks = _model_foreign_keys(con, tables, inventory)
        taken = {(f.table, f.column) for f in declared_fks}
        fks = [f for f in find_foreign_keys(con, tables) if (f.table, f.column) not in taken] + declared_fks
    return WarehouseProfile(path=str(Path(db_file).resolve()), database=database, tables=tables,
                            foreign_keys=fks, inventory=inventory)
