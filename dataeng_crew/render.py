"""Rendering: contracts → dbt project files (see :mod:`dataeng_crew.tools.dbt_files`) and the pull-request
description."""

from __future__ import annotations

from dataeng_crew.contracts import Proposal, SourceSpec, ModelSpec
from dataeng_crew.tools.dbt_files import (  # noqa: F401 - the rendering API
    CREW_MARKER,
    dump_yaml,
    generic_test_files,
    model_yaml,
    model_yml_path,
    render_project_files,
    source_yaml,
    test_yaml,
)
from dataeng_crew.tools.sqlcheck import REF_RX, SOURCE_RX, dependencies  # noqa: F401


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
    if proposal.oracle is not None:
        o = proposal.oracle
        out += ["", "### An independent second computation: MetricFlow", ""]
        if o.skipped_reason:
            out.append(f"MetricFlow could not express or answer this query: {_md(o.skipped_reason)}")
        else:
            out.append(f"The mart {'agrees' if not o.differences else 'DISAGREES'} with MetricFlow run on the "
                       f"generated semantic layer (metrics {', '.join(f'`{m}`' for m in o.metrics)}"
                       + (f" by {', '.join(f'`{g}`' for g in o.group_by)}" if o.group_by else "")
                       + f"): {o.rows} rows, {o.differences} differences.")
            out += [f"- {_md(d)}" for d in o.detail[:5]]
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
                f"- Tables read: {', '.join(f'`{t}`' for t in p.source_tables)}", "",
                "Interpretations:", ""]
        out += [f"- {i}" for i in p.interpretations]
        if p.alternatives:
            out += ["", "Alternatives considered (ambiguity):", ""] + [f"- {_md(a)}" for a in p.alternatives]
        out += ["", "| measure | definition |", "|---|---|"]
        out += [f"| `{m.name}` | {_md(m.definition)} |" for m in p.measures]
        out.append("")
    out += _files_section(proposal)
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
    if proposal.data_diffs:
        from dataeng_crew.tools.data_diff import diff_markdown

        out += ["", diff_markdown(proposal.data_diffs, "base branch").rstrip("\n")]
    out += ["", "## How to review and roll back", "",
            f"- Check out `{proposal.branch or '(not published)'}` and run `dbt build` in the dbt project.",
            f"- Roll back: `dataeng-crew rollback {proposal.proposal_id}` (deletes the branch, or proposes a revert "
            "when it was merged); lineage events are in `.dataeng-crew/lineage.ndjson`, the audit trail in "
            "`.dataeng-crew/audit.jsonl`.", ""]
    return "\n".join(out)


def _files_section(proposal: Proposal) -> list[str]:
    """Files added and existing files modified (each with its diff): nothing changes that is not shown here."""
    if not proposal.files and not proposal.modified:
        return []
    changed = {m.path for m in proposal.modified}
    added = [f for f in proposal.files if f not in changed]
    out = ["## Files", ""]
    if added:
        out += [f"Added ({len(added)}):", ""] + [f"- `{f}`" for f in added] + [""]
    if proposal.modified:
        out += [f"Modified existing files ({len(proposal.modified)}):", ""]
        for m in proposal.modified:
            fence = "````" if "```" in m.diff else "```"
            out += [f"- `{m.path}`", "", f"{fence}diff", m.diff.rstrip("\n"), fence, ""]
    else:
        out += ["No existing file of the project is modified.", ""]
    return out


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
