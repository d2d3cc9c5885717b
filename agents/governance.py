"""Governance role, deterministic brain: find PII by column names and values and tag it.

Scope today: classification + ``meta`` tags and model tags; evidence never includes raw values.
Masking, grants and approvals build on these policies.
"""

from __future__ import annotations

import re

from dataeng_crew.contracts import ColumnPolicy, ModelSpec, WarehouseProfile
from tools.warehouse import snake_case

NAME_RULES: list[tuple[str, str, float]] = [
    (r"(^|_)e_?mail(_address)?$", "email", 0.9),
    (r"(^|_)(phone|mobile|tel|telephone)(_number)?$", "phone", 0.9),
    (r"^(first|last|middle|full|given|family|sur)_?name$", "person_name", 0.85),
    (r"^(customer|user|contact)_name$", "person_name", 0.8),
    (r"(^|_)(street|address(_line)?(_\d)?|addr)$", "street_address", 0.85),
    (r"(^|_)(birth_?date|date_of_birth|dob|birthday)$", "birth_date", 0.9),
    (r"(^|_)ip(_address)?$", "ip_address", 0.8),
    (r"(^|_)(ssn|national_id|tax_id|passport(_number)?)$", "national_id", 0.95),
    (r"(^|_)(card_number|cc_number|pan)$", "card_number", 0.95),
]
VALUE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"), "email"),
    (re.compile(r"^\+?[\d\-\s().]{7,20}$"), "phone"),
    (re.compile(r"^\d{1,3}(\.\d{1,3}){3}$"), "ip_address"),
]


def classify_column(name: str, samples: list[str]) -> tuple[str, float, str] | None:
    """Classify a column as PII from its name and sample values.

    Args:
        name: Column name.
        samples: A few sample values (used for pattern matching only, never reported).

    Returns:
        ``(pii_kind, confidence, evidence)`` or None when nothing points at PII.
    """
    clean = snake_case(name)
    for pattern, kind, confidence in NAME_RULES:
        if re.search(pattern, clean):
            evidence = f"column name matches {kind} pattern"
            matching = [s for s in samples if any(rx.match(s) and k == kind for rx, k in VALUE_RULES)]
            if samples and matching:
                confidence = min(1.0, confidence + 0.1)
                evidence += f"; {len(matching)}/{len(samples)} sampled values look like {kind}"
            return kind, round(confidence, 2), evidence
    for rx, kind in VALUE_RULES:
        if samples and kind != "phone" and all(rx.match(s) for s in samples):
            return kind, 0.7, f"{len(samples)}/{len(samples)} sampled values look like {kind}"
    return None


def classify(models: list[ModelSpec], profile: WarehouseProfile) -> list[ColumnPolicy]:
    """Policies for every PII column of the generated models.

    Staging columns are matched to the raw column they come from so value patterns can be used.
    """
    from agents.modeler import source_name, staged_columns, staging_model_name

    samples: dict[tuple[str, str], list[str]] = {}
    for table in profile.tables:
        src = source_name(table.schema_name, profile.database)
        model = staging_model_name(src, table.name)
        for col in staged_columns(table, profile, src):
            samples[(model, col.name)] = col.raw.sample_values
    policies = []
    for model in models:
        for col in model.columns:
            found = classify_column(col.name, samples.get((model.name, col.name), []))
            if found:
                kind, confidence, evidence = found
                policies.append(ColumnPolicy(model=model.name, column=col.name, classification="pii",
                                             pii_kind=kind, confidence=confidence, evidence=evidence))
    return policies


def apply_policies(models: list[ModelSpec], policies: list[ColumnPolicy]) -> list[ModelSpec]:
    """Tag PII columns in ``meta`` and models holding PII with the ``pii`` tag."""
    by_col = {(p.model, p.column): p for p in policies}
    out = []
    for model in models:
        columns = []
        for col in model.columns:
            p = by_col.get((model.name, col.name))
            if p:
                col = col.model_copy(update={"meta": {**col.meta, "pii": True, "classification": p.classification,
                                                      "pii_kind": p.pii_kind}})
            columns.append(col)
        tags = model.tags + (["pii"] if any(m == model.name for m, _ in by_col) and "pii" not in model.tags else [])
        out.append(model.model_copy(update={"columns": columns, "tags": tags}))
    return out
