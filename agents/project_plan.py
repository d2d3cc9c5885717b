"""Planning inside the user's dbt project: names that never replace the project's models, files where the project
keeps them, and measures that cannot silently be zero.

These rules read the catalog's project inventory (``WarehouseProfile.inventory``); with none (planning on the
warehouse alone) they change nothing.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from dataeng_crew.agents.semantics import deduplication_notes
from dataeng_crew.contracts import ModelSpec, Plan, ProjectInventory, WarehouseProfile
from dataeng_crew.errors import RequestError

MEASURE_ROLES = re.compile(r"customer|order_amount|line_price|line_quantity|refund_amount|measure_\d+|"
                           r"child_\d+_measure_\d+|child_\d+_quantity")


def project_mart_name(plan: Plan, profile: WarehouseProfile) -> Plan:
    """The mart named by the project's convention, never the name of a model the project owns.

    In a project whose marts have no prefix, ``fct_daily_sales`` becomes ``daily_sales``. A name the project
    already uses for a model dataeng-crew did not make is not taken: the proposal falls back to the style-guide
    name, then to ``<name>_v2``, ``_v3``… and says so in the plan (a model dataeng-crew made may be replaced: that
    is a re-run).
    """
    inventory = profile.inventory
    if inventory is None or not plan.mart_name:
        return plan
    planned = plan.mart_name
    wanted = planned if inventory.conventions.mart_prefixes else re.sub(r"^(fct|dim)_", "", planned)
    candidates = list(dict.fromkeys([wanted, planned, *(f"{wanted}_v{i}" for i in range(2, 10))]))
    notes = []
    if wanted != planned:
        notes.append(f"Named {wanted}: the project's marts carry no fct_/dim_ prefix.")
    name = wanted
    for name in candidates:
        owned = inventory.model(name)
        if owned is None or owned.made_by_crew:
            break
        notes.append(f"{name} is already a model of the project ({owned.path}), not made by dataeng-crew: it is "
                     "left as it is and the new mart gets another name.")
    else:
        raise RequestError(f"cannot name the mart for {plan.request!r}: {', '.join(candidates)} are all models of the "
                           "project; rename one or ask for a different mart")
    same_entity = [m.name for m in inventory.models if m.layer == "marts" and m.name != name
                   and re.sub(r"^(fct|dim)_", "", m.name) in {re.sub(r"^(fct|dim)_", "", name), plan.subject}]
    alternatives = [f"The project already has the mart(s) {', '.join(same_entity)} on the same subject; this "
                    "proposal adds a new model beside them and changes none."] if same_entity else []
    return plan.model_copy(update={"mart_name": name, "interpretations": plan.interpretations + notes,
                                   "alternatives": plan.alternatives + alternatives})


def describe_origins(plan: Plan, profile: WarehouseProfile) -> Plan:
    """The plan with one interpretation saying what it builds on: the project's models, seeds, sources, raw data."""
    if profile.inventory is None or profile.inventory.is_empty:
        return plan
    groups: dict[str, list[str]] = {}
    for name in plan.source_tables:
        table = profile.table(name)
        if table is not None:
            groups.setdefault(table.origin, []).append(table.ref_name or table.name)
    words = {"model": "the project's own models {} (read with ref(), not staged again)",
             "seed": "the seeds {} (new staging reads them with ref())",
             "source": "tables of the project's declared sources {} (new staging over them)",
             "raw": "raw tables no model covers yet {} (new source entries and staging)"}
    parts = [words[k].format(", ".join(v)) for k, v in groups.items() if v]
    notes = deduplication_notes([t for n in plan.source_tables if (t := profile.table(n)) is not None])
    if not parts and not notes:
        return plan
    built_on = ["Builds on " + "; ".join(parts) + "."] if parts else []
    return plan.model_copy(update={"interpretations": plan.interpretations + built_on + notes})


def degenerate_measures(plan: Plan, profile: WarehouseProfile) -> list[str]:
    """Measures bound to a column that is null in every profiled row or holds a single value.

    Such a measure would be a silent zero (or constant) in every period; the caller refuses or flags it.
    """
    found = []
    for role, binding in sorted(plan.roles.items()):
        if "." not in binding or not MEASURE_ROLES.fullmatch(role):
            continue
        table_name, _, column = binding.partition(".")
        table = profile.table(table_name)
        col = table.column(column) if table is not None else None
        if col is None or table is None or table.profiled_rows == 0:
            continue
        if col.null_fraction >= 1.0:
            found.append(f"{role} is bound to {binding}, which is null in all {table.profiled_rows:,} profiled rows")
        elif col.distinct_count <= 1 and table.profiled_rows > 1 and role != "customer":
            found.append(f"{role} is bound to {binding}, which holds one value ({col.min_value}) in every row")
    if plan.kind == "time_grain" and "orders" in plan.roles and "customer" not in plan.roles and any(
            m.name == "customer_count" for m in plan.measures):
        found.append(f"no customer column was found on {plan.roles['orders']}: customer_count cannot be computed "
                     "and is null, not 0")
    return found


def flag_degenerate_measures(plan: Plan, profile: WarehouseProfile) -> Plan:
    """The plan with every degenerate measure flagged (⚠) in its interpretations and alternatives.

    Raises:
        RequestError: When every money measure of the plan is degenerate (the mart would say nothing).
    """
    found = degenerate_measures(plan, profile)
    if not found:
        return plan
    money = [r for r in plan.roles if MEASURE_ROLES.fullmatch(r) and r != "customer"]
    dead = {f.split(" ", 1)[0] for f in found}
    if money and set(money) <= dead:
        raise RequestError(f"cannot plan {plan.request!r}: " + "; ".join(found))
    flags = [f"⚠ {f}." for f in found]
    return plan.model_copy(update={"interpretations": plan.interpretations + flags,
                                   "alternatives": plan.alternatives + flags})


def _common_folder(paths: list[str], root: str) -> str | None:
    folders = {str(PurePosixPath(p).parent.relative_to(root)) if p.startswith(root + "/") else None for p in paths}
    if len(folders) != 1 or None in folders:
        return None
    folder = folders.pop()
    return "" if folder == "." else folder


def place_models(models: list[ModelSpec], inventory: ProjectInventory | None) -> list[ModelSpec]:
    """Put new models where the project keeps models of their layer (its model path and folders).

    Raises:
        RequestError: When a new model would replace a model of the project that dataeng-crew did not make.
    """
    if inventory is None:
        return models
    root = inventory.model_paths[0] if inventory.model_paths else "models"
    out = []
    for model in models:
        owned = inventory.model(model.name)
        if owned is not None and not owned.made_by_crew:
            raise RequestError(f"{model.name} is already a model of the project ({owned.path}), not made by "
                               "dataeng-crew: a proposal never replaces it. Rename it or ask for something else.")
        if owned is not None:  # a re-run replaces the model where it is
            folder = str(PurePosixPath(owned.path).parent.relative_to(root)) if owned.path.startswith(root + "/") \
                else model.folder
            out.append(model.model_copy(update={"root": root, "folder": "" if folder == "." else folder}))
            continue
        same_layer = [m.path for m in inventory.models if m.layer == model.layer]
        folder = model.folder
        common = _common_folder(same_layer, root) if same_layer else None
        if common is not None and (model.layer != "staging" or not inventory.conventions.staging_with_source):
            folder = common
        out.append(model.model_copy(update={"root": root, "folder": folder}))
    return out
