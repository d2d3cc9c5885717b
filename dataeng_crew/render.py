"""Rendering: contracts → dbt project files and the pull-request description.

Rendering never knows which brain produced the contracts. YAML files that already exist in the
project are merged (our models/sources replace entries of the same name, others are kept).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

from dataeng_crew.contracts import ModelSpec, Proposal, SourceSpec
from dataeng_crew.tools.ddl import ddl_files, primary_key
from dataeng_crew.tools.dialect import contract_type

REF_RX = re.compile(r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")
SOURCE_RX = re.compile(r"""\{\{\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")


class _Dumper(yaml.SafeDumper):
    """Indent sequences under their key, as dbt projects are usually written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:  # noqa: ARG002
        return super().increase_indent(flow, False)


def dump_yaml(data: Any) -> str:
    """YAML in dbt's usual layout: block style, keys in insertion order, indented lists."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


def model_yaml(model: ModelSpec, dialect: str = "duckdb") -> dict[str, Any]:
    """The ``models:`` entry of one model (config, contract with types in ``dialect``, columns, data tests)."""
    config: dict[str, Any] = {"materialized": model.materialization}
    if model.contract_enforced:
        config["contract"] = {"enforced": True}
    if model.materialization == "incremental" and model.contract_enforced:
        config["on_schema_change"] = "fail"  # dbt requires it for contracted incremental models
    if model.tags:
        config["tags"] = list(model.tags)
    if model.meta:
        config["meta"] = dict(model.meta)
    if model.grants:
        config["grants"] = {k: list(v) for k, v in model.grants.items()}
    entry: dict[str, Any] = {"name": model.name, "description": model.description, "config": config}
    contract_key = primary_key(model) if model.contract_enforced else None
    if model.tests:
        entry["data_tests"] = [t.to_yaml() for t in model.tests]
    columns = []
    for col in model.columns:
        c: dict[str, Any] = {"name": col.name, "description": col.description}
        if col.data_type and model.contract_enforced:
            c["data_type"] = contract_type(col.data_type, dialect)
            constraints = [{"type": "not_null"}] if any(t.name == "not_null" for t in col.tests) else []
            if col.name == contract_key:
                constraints.append({"type": "primary_key"})
            if constraints:
                c["constraints"] = constraints
        if col.meta:
            c["config"] = {"meta": dict(col.meta)}
        if col.tags:
            c.setdefault("config", {})["tags"] = list(col.tags)
        if col.tests:
            c["data_tests"] = [t.to_yaml() for t in col.tests]
        columns.append(c)
    entry["columns"] = columns
    return entry


def source_yaml(source: SourceSpec) -> dict[str, Any]:
    """The ``sources:`` entry of one source (database pinned for slim CI)."""
    tables = []
    for t in source.tables:
        entry: dict[str, Any] = {"name": t.name, "description": t.description}
        if t.identifier:  # dbt wraps a quoted identifier in double quotes without escaping: escape it here
            entry["identifier"] = t.identifier.replace('"', '""')
            entry["quoting"] = {"identifier": True}
        if t.loaded_at_field:
            entry["loaded_at_field"] = t.loaded_at_field
        if t.freshness:
            entry["freshness"] = t.freshness
        if t.tests:
            entry["data_tests"] = [x.to_yaml() for x in t.tests]
        if t.columns:
            entry["columns"] = [{"name": c.name, "description": c.description} for c in t.columns]
        tables.append(entry)
    return {"name": source.name, "description": source.description, "database": source.database,
            "schema": source.schema_name, "tables": tables}


def _merge(existing: str | None, key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge ``entries`` into an existing yml document under ``key``, replacing same-named ones."""
    doc: dict[str, Any] = {"version": 2}
    if existing:
        loaded = yaml.safe_load(existing) or {}
        if isinstance(loaded, dict):
            doc = loaded
            doc.setdefault("version", 2)
    current = [e for e in doc.get(key) or [] if isinstance(e, dict)]
    names = {e["name"] for e in entries}
    doc[key] = [e for e in current if e.get("name") not in names] + entries
    return doc


GENERIC_TESTS_DIR = Path(__file__).parent / "dbt_assets" / "generic"


def generic_test_files() -> dict[str, str]:
    """dataeng-crew's own generic tests (no hub packages), as ``tests/generic/<file>`` entries."""
    return {f"tests/generic/{p.name}": p.read_text() for p in sorted(GENERIC_TESTS_DIR.glob("test_crew_*.sql"))}


def render_project_files(
    sources: list[SourceSpec],
    models: list[ModelSpec],
    read_existing: Callable[[str], str | None] = lambda _path: None,
    dialect: str = "duckdb",
) -> dict[str, str]:
    """All files of a proposal, keyed by path relative to the dbt project root.

    Args:
        sources: Sources to declare.
        models: Models to write.
        read_existing: Returns the current content of a project file (or None), for yml merging.
        dialect: Warehouse dialect of the contract types in the yml (the model SQL is the caller's).

    Returns:
        ``{relative_path: content}``.
    """
    files: dict[str, str] = dict(generic_test_files())
    for source in sources:
        path = f"models/{source.folder}/_{source.name}__sources.yml"
        files[path] = dump_yaml(_merge(read_existing(path), "sources", [source_yaml(source)]))
    by_folder: dict[str, list[ModelSpec]] = {}
    for model in models:
        files[model.path] = model.sql if model.sql.endswith("\n") else model.sql + "\n"
        by_folder.setdefault(model.folder, []).append(model)
    files.update(ddl_files(models))  # the physical contract, per warehouse dialect
    for folder, folder_models in by_folder.items():
        path = f"models/{folder}/_{folder.rsplit('/', 1)[-1]}__models.yml"
        files[path] = dump_yaml(_merge(read_existing(path), "models", [model_yaml(m, dialect) for m in folder_models]))
    return files


def dependencies(model: ModelSpec) -> tuple[list[str], list[tuple[str, str]]]:
    """Models (``ref``) and sources (``source``) a model's SQL reads."""
    return REF_RX.findall(model.sql), SOURCE_RX.findall(model.sql)


def mermaid_lineage(sources: list[SourceSpec], models: list[ModelSpec]) -> str:
    """A Mermaid flowchart: raw tables → staging → marts."""
    lines = ["flowchart LR"]
    for model in models:
        refs, srcs = dependencies(model)
        for src, table in srcs:
            lines.append(f"    {src}.{table}[({src}.{table})] --> {model.name}")
        for ref in refs:
            lines.append(f"    {ref} --> {model.name}")
    for model in models:
        if model.layer == "marts":
            lines.append(f"    style {model.name} fill:#d4f7d4,stroke:#2a7a2a")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Escape table separators in Markdown table cells."""
    return text.replace("|", "\\|").replace("\n", " ")


def _quality_section(proposal: Proposal) -> list[str]:
    """Tests generated, triage decisions with failing rows, and Great Expectations results."""
    out = ["## Data quality", ""]
    column_tests = sum(len(c.tests) for m in proposal.models for c in m.columns)
    model_tests = sum(len(m.tests) for m in proposal.models)
    source_tests = sum(len(t.tests) for s in proposal.sources for t in s.tables)
    out.append(f"- dbt tests generated from the profiles: {column_tests} column tests, {model_tests} model tests "
               f"(row counts, balances, reconciliation), {source_tests} source tests; freshness on sources with a "
               "load timestamp.")
    if proposal.triage:
        out += ["", "### Triage of tests that failed on the real data", ""]
        for d in proposal.triage:
            verdict = "the data is wrong" if d.verdict == "data_wrong" else "the inference was wrong"
            out.append(f"- `{d.test}` on `{d.model}`: **{verdict}** → {d.action.replace('_', ' ')}. {_md(d.explanation)}")
            if d.failing_rows:
                cols = list(d.failing_rows[0])
                out += ["", "  | " + " | ".join(cols) + " |", "  |" + "---|" * len(cols)]
                out += ["  | " + " | ".join(_md(r.get(c, "")) for c in cols) + " |" for r in d.failing_rows]
                out.append("")
    if proposal.suite_results:
        evaluated = sum(r.evaluated for r in proposal.suite_results)
        passed = sum(r.passed for r in proposal.suite_results)
        out += ["", f"### Great Expectations: {passed}/{evaluated} expectations passed", "",
                "| suite | rows validated | evaluated | passed | failed |", "|---|---|---|---|---|"]
        out += [f"| `{r.suite}` | {r.rows_validated:,}{' (sample)' if r.sampled else ''} | {r.evaluated} | {r.passed} "
                f"| {r.failed} |" for r in proposal.suite_results]
        failures = [(r.suite, o) for r in proposal.suite_results for o in r.outcomes if not o.success]
        out += [f"- ✗ `{suite}` {o.type} {o.column or ''}: observed {_md(o.observed or '')}" for suite, o in failures]
    out.append("")
    return out


def render_pr_body(proposal: Proposal) -> str:
    """The pull-request description: request, plan, models, tests and their results, lineage."""
    out: list[str] = [f"# dataeng-crew: {proposal.request}", ""]
    out += [f"Proposal `{proposal.proposal_id}` · brain: {proposal.brain} · status: **{proposal.status}**", ""]
    for approval in proposal.approvals:
        out += [f"> [!IMPORTANT]\n> **Needs {approval.kind} approval** from {', '.join(approval.approvers) or 'an owner'}:"]
        out += [f"> - {_md(r)}" for r in approval.reasons]
        out.append("")
    if proposal.plan:
        p = proposal.plan
        target = f"`{p.mart_name}` (one row per {p.grain.value})" if p.mart_name and p.grain else "none (staging only)"
        if p.mart_name and p.kind == "entity":
            target = f"`{p.mart_name}` (one row per {p.subject.removesuffix('s')})"
        out += ["## Plan", "", f"- Mart: {target}",
                f"- Raw tables staged: {', '.join(f'`{t}`' for t in p.source_tables)}", "",
                "Interpretations:", ""]
        out += [f"- {i}" for i in p.interpretations]
        if p.alternatives:
            out += ["", "Alternatives considered (ambiguity):", ""] + [f"- {_md(a)}" for a in p.alternatives]
        out += ["", "| measure | definition |", "|---|---|"]
        out += [f"| `{m.name}` | {_md(m.definition)} |" for m in p.measures]
        out.append("")
    out += ["## Lineage", "", "```mermaid", mermaid_lineage(proposal.sources, proposal.models), "```", ""]
    out += ["## Models", ""]
    for model in proposal.models:
        out += [f"### `{model.name}` ({model.layer}, {model.materialization})", "",
                f"`{model.path}` — {model.description}", "",
                "| column | type | description | tests |", "|---|---|---|---|"]
        for c in model.columns:
            tests = ", ".join(t.name for t in c.tests) or "—"
            pii = " 🔒 PII" if c.meta.get("pii") else ""
            out.append(f"| `{c.name}` | {c.data_type or ''} | {_md(c.description)}{pii} | {tests} |")
        out.append("")
    if proposal.policies:
        out += ["## Governance", "", "| model | column | kind | confidence | evidence |", "|---|---|---|---|---|"]
        out += [f"| `{p.model}` | `{p.column}` | {p.pii_kind} | {p.confidence:.2f} | {_md(p.evidence)} |"
                for p in proposal.policies]
        if proposal.exposures:
            out += ["", "Mart columns derived from restricted columns (column lineage by sqlglot):", ""]
            out += [f"- `{e.model}.{e.column}` ← {', '.join(f'`{x}`' for x in e.sources)}: **{e.action}ed**"
                    for e in proposal.exposures]
            out.append("")
        else:
            out += ["", "No mart column derives from these columns (checked with sqlglot column lineage).", ""]
    if proposal.costs:
        out += ["## Cost", "", "| mart | rows scanned (EXPLAIN) | rows produced | threshold | advice |", "|---|---|---|---|---|"]
        out += [f"| `{c.model}` | ~{c.rows_scanned:,} | ~{c.rows_produced or 0:,} | {c.threshold:,}"
                f"{' ⚠ over' if c.over_threshold else ''} | {c.materialization_advice} |" for c in proposal.costs]
        out.append("")
    out += _quality_section(proposal)
    out += _llm_section(proposal)
    out += ["## Validation", ""]
    checks = proposal.checks
    out.append(f"- sqlglot: {checks.models_checked} compiled models parsed, checked against the allow-list and "
               f"qualified against the warehouse schema: {len(checks.sql_issues)} issue(s).")
    for issue in checks.sql_issues:
        out.append(f"  - `{issue.model}` {issue.kind}: {_md(issue.message)}")
    if proposal.target_dialect != "duckdb":
        out.append(f"- Model SQL committed for **{proposal.target_dialect}**: transpiled with sqlglot from the DuckDB SQL "
                   f"built above and parsed back in {proposal.target_dialect}; "
                   f"{len(proposal.dialect_warnings)} construct(s) without a faithful translation.")
        out += [f"  - ⚠ {_md(w)}" for w in proposal.dialect_warnings]
    build = checks.build
    if build:
        by_status: dict[str, int] = {}
        for n in build.nodes:
            by_status[n.status] = by_status.get(n.status, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(by_status.items()))
        out.append(f"- `dbt {' '.join(build.command[:1])}` on a sandbox copy of the warehouse "
                   f"({build.elapsed_seconds:.1f} s): {'passed' if build.success else 'FAILED'} — {summary}.")
        out += ["", "<details><summary>Node results</summary>", "", "| node | status | failures |", "|---|---|---|"]
        out += [f"| `{n.unique_id}` | {n.status} | {n.failures if n.failures is not None else ''} |" for n in build.nodes]
        out += ["", "</details>"]
    if proposal.trace:
        out += ["", "<details><summary>Run trace (thought → action → observation)</summary>", ""]
        for i, step in enumerate(proposal.trace, 1):
            out.append(f"{i}. **{step.role}** — action `{step.action}`")
            if step.thought:
                out.append(f"   - thought: {_md(step.thought)}")
            out.append(f"   - observation: {_md(step.observation)}")
        out += ["", "</details>"]
    out += ["", "## How to review and roll back", "",
            f"- Check out `{proposal.branch or '(not published)'}` and run `dbt build` in the dbt project.",
            f"- Roll back: `dataeng-crew rollback {proposal.proposal_id}` (deletes the branch, or proposes a revert "
            "when it was merged); lineage events are in `.dataeng-crew/lineage.ndjson`, the audit trail in "
            "`.dataeng-crew/audit.jsonl`.", ""]
    return "\n".join(out)


def _llm_section(proposal: Proposal) -> list[str]:
    """LLM accounting per role and the repair rounds (empty for the deterministic brain)."""
    out: list[str] = []
    if proposal.llm_usage:
        out += ["## LLM usage", "", "| role | llm | calls | tokens in | tokens out | retries | seconds | note |",
                "|---|---|---|---|---|---|---|---|"]
        out += [f"| {u.role} | {u.llm} | {u.calls} | {u.tokens_in:,} | {u.tokens_out:,} | {u.retries} | {u.seconds:.1f} | "
                f"{_md('deterministic fallback: ' + u.fallback) if u.fallback else ''} |" for u in proposal.llm_usage]
        out.append("")
    if proposal.repairs:
        out += ["## Repairs", "", "| round | model | role | stage | error | outcome |", "|---|---|---|---|---|---|"]
        out += [f"| {r.round} | `{r.model}` | {r.role} | {r.stage} | {_md(r.error[:200])} | {r.outcome} |"
                for r in proposal.repairs]
        out.append("")
    return out
