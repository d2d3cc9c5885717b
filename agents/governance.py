"""Governance role, deterministic brain: find PII, tag it, keep it out of marts, ask for approval.

- Every generated column is classified from its name and the sampled values of the raw column it
  comes from (``tools/pii.py``); evidence never quotes values.
- PII columns are tagged in yml ``meta`` and their models carry the ``pii`` tag and ``grants`` for
  the policy's unmasked readers.
- Mart columns whose sqlglot lineage reaches a restricted column are hashed or dropped (policy
  ``mart_pii_action``), or the proposal is refused.
- A proposal touching restricted data is marked "needs governance approval".
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from sqlglot import exp

from dataeng_crew.agents.modeler import raw_table_of, source_name, staged_columns
from dataeng_crew.agents.semantics import quote_if_needed
from dataeng_crew.agents.roles import RoleContext, explain, register_role
from dataeng_crew.contracts import (
    ApprovalRequest,
    ColumnPolicy,
    ColumnSpec,
    GovernancePolicy,
    ModelSpec,
    PiiExposure,
    WarehouseProfile,
)
from dataeng_crew.errors import ConfigError, UnsafeArtifactError
from dataeng_crew.settings import PII_KEY_ENV
from dataeng_crew.tools.lineage import lineage_roots
from dataeng_crew.tools.pii import classify_column

POLICY_FILE = "governance.yml"


def load_policy(project: Path) -> GovernancePolicy:
    """The project's ``governance.yml``, or the default policy when the project has none.

    Raises:
        ConfigError: When the file exists but is not a valid policy.
    """
    path = project / POLICY_FILE
    if not path.is_file():
        return GovernancePolicy()
    try:
        return GovernancePolicy.model_validate(yaml.safe_load(path.read_text()) or {})
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid governance policy: {exc}") from exc


def classify(models: list[ModelSpec], profile: WarehouseProfile) -> list[ColumnPolicy]:
    """Policies for every PII column of the generated models.

    Staging columns are matched to the raw column they come from, so value patterns count too.
    """
    samples: dict[tuple[str, str], list[str]] = {}
    for model in models:  # only the tables this proposal stages
        table = raw_table_of(model.name, profile)
        if table is None:
            continue
        for col in staged_columns(table, profile, source_name(table.schema_name, profile.database)):
            text = col.raw.data_type.upper().startswith("VARCHAR")  # value patterns only make sense on text
            samples[(model.name, col.name)] = col.raw.sample_values if text else []
    return [p for model in models for col in model.columns
            if (p := _policy(model.name, col.name, samples.get((model.name, col.name), []))) is not None]


def _policy(model: str, column: str, samples: list[str]) -> ColumnPolicy | None:
    """The PII policy of one column from its name and sample values, or None."""
    found = classify_column(column, samples)
    if not found:
        return None
    kind, confidence, evidence = found
    return ColumnPolicy(model=model, column=column, classification="pii", pii_kind=kind, confidence=confidence,
                        evidence=evidence)


def classify_read_relations(models: list[ModelSpec], profile: WarehouseProfile) -> list[ColumnPolicy]:
    """Policies for the columns of the project's own relations (models, seeds) the generated models read.

    Governance follows lineage, not folders: a mart built on the project's ``stg_customers`` reads its names and
    e-mails as surely as one built on new staging does. ``model`` is the relation's name as compiled SQL shows it.
    """
    from dataeng_crew.tools.sqlcheck import REF_RX

    reads = {m.group(1) for model in models for m in REF_RX.finditer(model.sql)}
    generated = {m.name for m in models}
    read = [t for t in profile.tables
            if t.origin in ("model", "seed") and (t.ref_name or t.name) in reads - generated]
    return [p for table in read for col in table.columns if (p := _policy(
        table.name, col.name, col.sample_values if col.data_type.upper().startswith("VARCHAR") else [])) is not None]


def apply_policies(models: list[ModelSpec], policies: list[ColumnPolicy],
                   policy: GovernancePolicy | None = None) -> list[ModelSpec]:
    """Tag restricted columns in ``meta``; tag their models ``pii`` and grant the unmasked readers."""
    policy = policy or GovernancePolicy()
    by_col = {(p.model, p.column): p for p in policies if p.confidence >= policy.min_confidence}
    out = []
    for model in models:
        columns = []
        for col in model.columns:
            p = by_col.get((model.name, col.name))
            if p:
                col = col.model_copy(update={"meta": {**col.meta, "pii": True, "classification": p.classification,
                                                      "pii_kind": p.pii_kind}})
            columns.append(col)
        restricted = any(m == model.name for m, _ in by_col)
        update: dict = {"columns": columns}
        if restricted:
            update["tags"] = model.tags + ([] if "pii" in model.tags else ["pii"])
            update["meta"] = {**model.meta, "contains_pii": True}
            if policy.unmasked_readers:
                update["grants"] = {"select": list(policy.unmasked_readers)}
        out.append(model.model_copy(update=update))
    return out


def _is_aggregate_count(node_expr: exp.Expression) -> bool:
    return any(isinstance(f, (exp.Count, exp.ApproxDistinct)) for f in node_expr.find_all(exp.AggFunc))


def find_exposures(
    marts: list[ModelSpec],
    compiled: dict[str, str],
    schema: dict,
    restricted: set[tuple[str, str]],
    action: str,
) -> list[PiiExposure]:
    """Mart columns whose column lineage reaches a restricted ``(model, column)``.

    Counting restricted values (``count(distinct email)``) is not an exposure; passing them
    through or transforming them (``upper(email)``) is.

    Args:
        marts: Mart models to inspect.
        compiled: ``model name → compiled SQL``.
        schema: sqlglot schema of every relation the marts read.
        restricted: Restricted ``(model, column)`` pairs.
        action: The policy's mart action, recorded on each exposure.

    Returns:
        One exposure per mart column that leaks restricted data.
    """
    exposures = []
    for mart in marts:
        sql = compiled.get(mart.name)
        if not sql:
            continue
        roots = lineage_roots(sql, schema, [c.name for c in mart.columns])
        for col in mart.columns:
            if col.name not in roots:
                continue
            nodes = list(roots[col.name].walk())
            if any(_is_aggregate_count(n.expression) for n in nodes):
                continue
            hits = []
            for leaf in (n for n in nodes if not n.downstream):
                table, _, column = leaf.name.rpartition(".")
                table = table.split(".")[-1].strip('"')
                if (table, column.strip('"')) in restricted:
                    hits.append(f"{table}.{column.strip(chr(34))}")
            if hits:
                exposures.append(PiiExposure(model=mart.name, column=col.name, sources=sorted(set(hits)),
                                             action=action))  # type: ignore[arg-type]
    return exposures


def mask_marts(marts: list[ModelSpec], exposures: list[PiiExposure]) -> list[ModelSpec]:
    """Rewrite each exposed mart: hash (``sha256``) or drop the leaking columns in the final select.

    The mart's own SQL is kept as a CTE and the final select lists every column explicitly.

    Raises:
        UnsafeArtifactError: When the policy says ``refuse``.
    """
    by_model: dict[str, dict[str, PiiExposure]] = {}
    for e in exposures:
        if e.action == "refuse":
            raise UnsafeArtifactError(f"{e.model}.{e.column} exposes restricted data from {', '.join(e.sources)}; "
                                      "the governance policy refuses PII in marts")
        by_model.setdefault(e.model, {})[e.column] = e
    out = []
    for mart in marts:
        leaks = by_model.get(mart.name)
        if not leaks:
            out.append(mart)
            continue
        select, columns = [], []
        for col in mart.columns:
            e = leaks.get(col.name)
            if e is None:
                select.append(quote_if_needed(col.name))  # reserved words ("group") stay valid
                columns.append(col)
            elif e.action == "hash":
                key = "'{{ env_var(\"" + PII_KEY_ENV + "\") }}'"  # keyed: a dictionary of names cannot reverse it
                select.append(f"sha256({key} || cast({quote_if_needed(col.name)} as varchar)) as "
                              f"{quote_if_needed(col.name + '_hash')}")
                columns.append(ColumnSpec(
                    name=f"{col.name}_hash", data_type="VARCHAR" if col.data_type else None,
                    description=f"SHA-256 of {col.name} keyed with ${PII_KEY_ENV} (restricted: "
                                f"{', '.join(e.sources)}); masked by the governance policy.",
                    tests=[t.model_copy(update={"column": f"{col.name}_hash"}) for t in col.tests],
                    meta={"masked": True, "masked_from": e.sources}))
        body = re.sub(r"\n*select \* from final\s*$", "", mart.sql.rstrip())
        body = body.rstrip() + (",\n\nmasked as (\n\n    select\n        " + ",\n        ".join(select)
                                + "\n\n    from final\n\n)\n\nselect * from masked\n")
        out.append(mart.model_copy(update={"sql": body, "columns": columns}))
    return out


def approvals(models: list[ModelSpec], policies: list[ColumnPolicy], exposures: list[PiiExposure],
              policy: GovernancePolicy) -> list[ApprovalRequest]:
    """A governance approval request when the proposal touches restricted data."""
    reasons = []
    restricted = [p for p in policies if p.classification in policy.restricted_classifications
                  and p.confidence >= policy.min_confidence]
    touched = sorted({p.model for p in restricted})
    if touched:
        reasons.append(f"stages restricted columns ({len(restricted)}) in {', '.join(touched)}")
    for e in exposures:
        reasons.append(f"{e.model}.{e.column} derives from {', '.join(e.sources)}: {e.action}ed")
    return [ApprovalRequest(kind="governance", reasons=reasons, approvers=policy.approvers)] if reasons else []


def _govern_step(ctx: RoleContext) -> tuple[str, str]:
    """This role's step in a proposal: run the brain, return (thought, observation)."""
    ctx.models, ctx.policies = ctx.brain.govern(ctx.models, ctx.profile, ctx.policy)
    return (explain(ctx.brain, "govern", (ctx.models, ctx.policies)),
            ", ".join(f"{p.model}.{p.column}: {p.pii_kind}" for p in ctx.policies) or "no PII")


register_role("governance", "PII classification and tags, grants, lineage-checked masking of marts, approval requests",
              order=50, stage="governance", action="governance.govern(models, profile, policy)",
              step=_govern_step)
