"""The data diff of a change against the base branch's build: build the base's versions of the changed models in
their own sandbox, then diff each changed model (:mod:`tools.data_diff`). Used by ``revise`` (PR body) and
``validate --state ... --diff-base DIR`` (the CI job summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from dataeng_crew.contracts import GovernancePolicy, ModelDiff, ModelSpec
from dataeng_crew.tools.data_diff import diff_model, removed_model
from dataeng_crew.tools.project_inventory import has_seeds
from dataeng_crew.tools.sandbox import build_existing, prepare_sandbox


def build_base(base_project: Path, warehouse: Path, models: list[str], folder: Path,
               progress: Callable[[str], None] = lambda _m: None) -> Path | None:
    """Build ``models`` (and their parents) of the base project in a sandbox of its own; its DuckDB file, or None
    when there is nothing to build or the base does not build."""
    if not models:
        return None
    progress("data diff: build the base branch's models")
    box = prepare_sandbox(base_project, warehouse, folder / "sandbox")
    if not all(r.success for r in build_existing(box, has_seeds(box.project), models)):
        progress("data diff: the base build failed; the changed models are compared as new")
        return None
    return box.db_file


def manifest_models(manifest: dict) -> dict[str, dict]:
    """``model name → {path, key, masked}`` from a dbt manifest (key: a unique test or a unique combination)."""
    out: dict[str, dict] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "model":
            masked = [c for c, col in (node.get("columns") or {}).items()
                      if ((col.get("meta") or {}).get("classification") in ("pii",))
                      or ((col.get("config") or {}).get("meta") or {}).get("classification") in ("pii",)]
            out[node["name"]] = {"path": node.get("original_file_path", ""), "key": [], "masked": masked,
                                 "unique_id": node["unique_id"]}
    by_id = {m["unique_id"]: m for m in out.values()}
    for node in manifest.get("nodes", {}).values():
        meta = node.get("test_metadata") or {}
        target = by_id.get(node.get("attached_node") or "")
        if node.get("resource_type") != "test" or target is None or target["key"]:
            continue
        if meta.get("name") == "unique" and node.get("column_name"):
            target["key"] = [node["column_name"]]
        elif meta.get("name") in ("crew_unique_combination", "unique_combination_of_columns"):
            cols = (meta.get("kwargs") or {}).get("columns") or (meta.get("kwargs") or {}).get("combination_of_columns")
            if isinstance(cols, list):
                target["key"] = list(cols)
    return out


def validation_diffs(head_project: Path, head_manifest: Path, head_db: Path, base_project: Path, warehouse: Path,
                     folder: Path, progress: Callable[[str], None] = lambda _m: None) -> list[ModelDiff]:
    """For `validate --diff-base`: every model whose SQL differs from the base project's, diffed against the base."""
    models = manifest_models(json.loads(head_manifest.read_text()))
    changed = []
    for name, info in sorted(models.items()):
        head_sql = head_project / info["path"]
        base_sql = base_project / info["path"]
        if head_sql.is_file() and (not base_sql.is_file() or base_sql.read_text() != head_sql.read_text()):
            changed.append((name, base_sql.is_file()))
    base_db = build_base(base_project, warehouse, [n for n, exists in changed if exists], folder / "base", progress)
    return [diff_model(base_db if exists else None, head_db, name, models[name]["key"], set(models[name]["masked"]))
            for name, exists in changed]


def model_key(model: ModelSpec) -> list[str]:
    """The columns a model's rows are identified by: a tested unique combination, else a unique column."""
    for test in model.tests:
        if test.name in ("crew_unique_combination", "unique_combination_of_columns"):
            cols = test.arguments.get("columns") or test.arguments.get("combination_of_columns")
            if cols:
                return list(cols)
    return next(([c.name] for c in model.columns if any(t.name == "unique" for t in c.tests)), [])


def proposal_diffs(models: list[ModelSpec], files: dict[str, str], head_db: Path,
                   read_base: Callable[[str], dict[str, bytes]], prefix: str, warehouse: Path,
                   policy: GovernancePolicy, folder: Path, progress: Callable[[str], None] = lambda _m: None,
                   removed: list[str] | None = None) -> tuple[list[ModelDiff], Path | None]:
    """Diff every model a proposal adds or changes (and removes) against the base branch's build.

    Args:
        models: The proposal's models (built in ``head_db``).
        files: The proposal's files, project-relative.
        head_db: The proposal's sandbox DuckDB.
        read_base: ``prefix → {repo path: content}`` of the base branch's files under ``prefix``.
        prefix: The dbt project's folder in the repository (``""`` or ``"dbt_project/"``).
        warehouse: The raw warehouse (copied into the base sandbox).
        policy: Governance policy: restricted columns are masked in examples.
        folder: Where the base sandbox goes.
        progress: Called with each stage.
        removed: Repo paths of model SQL files the change deletes.

    Returns:
        The diffs, and the base build's DuckDB file (None when nothing needed building).
    """
    base_files = read_base(prefix + "models/")
    changed = [m for m in models if base_files.get(prefix + m.path, b"").decode() != files.get(m.path)]
    existing = [m for m in changed if (prefix + m.path) in base_files]
    dropped = [Path(p).stem for p in removed or [] if p in base_files]
    base_db = None
    if existing or dropped:
        export = folder / "base" / "project"
        for path, content in read_base(prefix).items():
            target = export / path[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        base_db = build_base(export, warehouse, [m.name for m in existing] + dropped, folder / "base", progress)
    restricted = set(policy.restricted_classifications)
    diffs = []
    for model in changed:
        masked = {c.name for c in model.columns if c.meta.get("classification") in restricted or restricted & set(c.tags)}
        diffs.append(diff_model(base_db if model in existing else None, head_db, model.name, model_key(model), masked))
    diffs += [removed_model(base_db, name) for name in dropped if base_db is not None]
    return diffs, base_db
