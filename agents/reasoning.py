"""The deterministic brain's reasoning, written down: the 'thought' of each step of the run trace.

The LLM crew records its own ReAct thoughts; the rules say why they chose what they chose.
"""

from __future__ import annotations

from typing import Any

from dataeng_crew.contracts import ColumnPolicy, ModelSpec, Plan


def explain(stage: str, result: Any) -> str:
    """Why the deterministic brain produced ``result`` at ``stage``."""
    if stage == "plan" and isinstance(result, Plan):
        if result.kind == "staging":
            return "Request names no mart: " + " ".join(result.interpretations)
        return (f"Grain '{result.grain.value if result.grain else '-'}' and subject '{result.subject}' come from the "
                f"request words. " + " ".join(result.interpretations[:3]))
    if stage == "model" and isinstance(result, tuple):
        sources, models = result
        keys = [f"{m.name}.{m.columns[0].name}" for m in models if m.columns]
        dedupe = [m.name for m in models if "deduplicated as" in m.sql]
        return (f"One staging view per raw table ({len(models)}). Keys from profiling: {', '.join(keys)}. "
                f"Re-synced rows deduplicated on the load stamp in: {', '.join(dedupe) or 'none'}. "
                f"Sources declared: {', '.join(s.name for s in sources)}.")
    if stage == "transform" and isinstance(result, list):
        if not result:
            return "Staging-only plan: no mart to write."
        mart: ModelSpec = result[0]
        return (f"{mart.name}: one row per period from a date spine (empty periods kept); measures "
                f"{', '.join(c.name for c in mart.columns[1:])} with definitions in their descriptions; contract "
                "enforced so the physical schema is reviewed.")
    if stage == "test" and isinstance(result, tuple):
        sources, models, suites = result
        n = sum(len(c.tests) for m in models for c in m.columns) + sum(len(m.tests) for m in models)
        return (f"{n} dbt tests inferred from the profiles (keys, foreign keys by inclusion, categories, ranges, "
                f"row counts, reconciliation) and {len(suites)} GX suites; every one is proven by the build.")
    if stage == "govern" and isinstance(result, tuple):
        _models, policies = result
        kinds = sorted({p.pii_kind or p.classification for p in policies if isinstance(p, ColumnPolicy)})
        return (f"{len(policies)} column(s) classified from names and value patterns ({', '.join(kinds) or 'none'}); "
                "restricted columns tagged; marts are checked by column lineage next.")
    return ""
