"""Rendering: contracts → dbt project files (see :mod:`dataeng_crew.tools.dbt_files`) and the pull-request
description."""

from __future__ import annotations

from dataeng_crew.contracts import Proposal, SourceSpec, ModelSpec
from dataeng_crew.tools.dbt_files import (  # noqa: F401 - the rendering API
    CREW_MARKER,
    dump_yaml,
    edit_entries,
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
    out = []
    column_tests = sum(len(c.tests) for m in proposal.models for c in m.columns)
    model_tests = sum(len(m.tests) for m in proposal.models)
    source_tests = sum(len(t.tests) for s in proposal.sources for t in s.tables)
    fresh = sum(bool(t.freshness) for s in proposal.sources for t in s.tables)
    out.append(f"- dbt tests generated from the profiles: {column_tests} column tests, {model_tests} model tests "
               f"(grain, reconciliation of totals with staging), {source_tests} source tests; freshness checks on "
               f"{fresh} source table(s) (only where a load stamp shows a loader ran in the last day).")
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


def _grain(model: ModelSpec, proposal: Proposal) -> str:
    """One row per what, for the first screen's model table."""
    p = proposal.plan
    if model.layer == "staging":
        return "one row per " + model.description.removeprefix("One row per ").split(" from ")[0].split(",")[0] \
            if model.description.startswith("One row per ") else "as the source"
    if p is not None and p.mart_name == model.name:
        if p.kind == "entity":
            return f"one row per {p.subject.removesuffix('s')}"
        if p.grain is not None:
            dims = model.meta.get("dimension")
            return f"one row per {p.grain.value}" + (f" and {dims}" if dims else "")
        if model.meta.get("no_period"):
            return f"one row per {model.columns[0].name}"
    return "—"


def _summary(proposal: Proposal) -> list[str]:
    """The first screen: what was built, whether it passed, what changed, what to look at, how to review it."""
    out: list[str] = []
    rows = {d.model: d.head_rows for d in proposal.data_diffs}
    out += ["| model | layer | grain | rows |", "|---|---|---|---|"]
    models = sorted(proposal.models, key=lambda m: m.layer != "marts")  # what was asked for first
    out += [f"| `{m.name}` | {m.layer.removesuffix('s')} ({m.materialization}) | {_md(_grain(m, proposal))} | "
            f"{f'{rows[m.name]:,}' if m.name in rows else '—'} |" for m in models]
    if proposal.plan is not None and proposal.plan.measures:
        out += ["", "| column | what it is |", "|---|---|"]
        out += [f"| `{m.name}` | {_md(m.definition)} |" for m in proposal.plan.measures]
    checks = proposal.checks
    parts = []
    build = checks.build
    if build is not None:
        tests = sum(n.resource_type == "test" for n in build.nodes)
        built = sum(n.resource_type in {"model", "seed", "snapshot"} for n in build.nodes)
        parts.append(f"dbt build **{'passed' if build.success else 'FAILED'}** ({built} models, {tests} tests, "
                     f"{build.elapsed_seconds:.1f} s)")
    parts.append(f"sqlglot: {len(checks.sql_issues)} issue(s) in {checks.models_checked} models")
    if proposal.suite_results:
        passed = sum(r.passed for r in proposal.suite_results)
        parts.append(f"Great Expectations: {passed}/{sum(r.evaluated for r in proposal.suite_results)}")
    if proposal.oracle is not None:
        o = proposal.oracle
        parts.append("MetricFlow: " + (f"not run ({_md(o.skipped_reason)[:80]})" if o.skipped_reason else
                                       "**agrees**" if not o.differences else f"**DISAGREES** ({o.differences} rows)"))
    out += ["", "**Checks**: " + " · ".join(parts)]
    out += _warehouse_lines(proposal)
    if proposal.data_diffs:
        counts: dict[str, int] = {}
        for d in proposal.data_diffs:
            counts[d.status] = counts.get(d.status, 0) + 1
        changed = [d for d in proposal.data_diffs if d.status == "changed"]
        out.append("**Data diff** against the base branch: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                   + (" — " + "; ".join(f"`{d.model}`: {d.rows_changed or 0:,} rows changed" for d in changed)
                      if changed else "") + ".")
    flagged = sorted({f"`{p.model}.{p.column}` ({p.pii_kind})" for p in proposal.policies})
    if proposal.exposures:
        out.append("**Governance**: " + ", ".join(f"`{e.model}.{e.column}` {e.action}ed" for e in proposal.exposures)
                   + " (mart columns derived from personal data, by sqlglot column lineage).")
    elif flagged:
        out.append(f"**Governance**: {len(flagged)} personal-data column(s) staged ({', '.join(flagged[:4])}"
                   f"{', …' if len(flagged) > 4 else ''}); no mart column derives from them (sqlglot column lineage).")
    else:
        out.append("**Governance**: no personal data is read.")
    n_mod = len(proposal.modified)
    out.append(f"**Files**: {len(proposal.files) - n_mod} added, {n_mod} existing modified"
               + (" (their diffs are under Files below)" if n_mod else "") + ".")
    if proposal.review_commands:
        out += ["", "Review it on a fresh clone:", "", "```sh", *proposal.review_commands, "```"]
    out += ["", f"Roll back: `dataeng-crew rollback {proposal.proposal_id}`.", ""]
    return out


def _folded(title: str, lines: list[str]) -> list[str]:
    """``lines`` inside a ``<details>`` block titled ``title`` (nothing when empty)."""
    body = list(lines)
    while body and not body[-1].strip():
        body.pop()
    return ["<details><summary>" + title + "</summary>", "", *body, "", "</details>", ""] if body else []


def _plan_section(proposal: Proposal) -> list[str]:
    p = proposal.plan
    if p is None:
        return []
    out = [f"- Tables read: {', '.join(f'`{t}`' for t in p.source_tables)}", ""]
    out += [f"- {i}" for i in p.interpretations]
    if p.alternatives:
        out += ["", "Alternatives considered (ambiguity):", ""] + [f"- {_md(a)}" for a in p.alternatives]
    return out


def _models_section(proposal: Proposal) -> list[str]:
    out = ["```mermaid", mermaid_lineage(proposal.sources, proposal.models), "```", ""]
    for model in proposal.models:
        out += [f"**`{model.name}`** ({model.layer}, {model.materialization}) — `{model.path}` — {model.description}",
                "", "| column | type | description | tests |", "|---|---|---|---|"]
        for c in model.columns:
            tests = ", ".join(t.name for t in c.tests) or "—"
            pii = " 🔒 PII" if c.meta.get("pii") else ""
            out.append(f"| `{c.name}` | {c.data_type or ''} | {_md(c.description)}{pii} | {tests} |")
        out.append("")
    return out


def _governance_section(proposal: Proposal) -> list[str]:
    if not proposal.policies:
        return []
    out = ["| model | column | kind | confidence | evidence |", "|---|---|---|---|---|"]
    out += [f"| `{p.model}` | `{p.column}` | {p.pii_kind} | {p.confidence:.2f} | {_md(p.evidence)} |"
            for p in proposal.policies]
    if proposal.exposures:
        out += ["", "Mart columns derived from restricted columns (column lineage by sqlglot):", ""]
        out += [f"- `{e.model}.{e.column}` ← {', '.join(f'`{x}`' for x in e.sources)}: **{e.action}ed**"
                for e in proposal.exposures]
    else:
        out += ["", "No mart column derives from these columns (checked with sqlglot column lineage)."]
    return out


def _validation_section(proposal: Proposal) -> list[str]:
    out: list[str] = []
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
        out.append(f"- `dbt {' '.join(build.command[:1])}` in a sandbox ({build.elapsed_seconds:.1f} s): "
                   f"{'passed' if build.success else 'FAILED'} — {summary}.")
        out += ["", "| node | status | failures |", "|---|---|---|"]
        out += [f"| `{n.unique_id}` | {n.status} | {n.failures if n.failures is not None else ''} |" for n in build.nodes]
    for c in proposal.costs:
        out.append(f"- Cost of `{c.model}`: ~{c.rows_scanned:,} rows scanned (EXPLAIN), threshold {c.threshold:,}"
                   f"{' ⚠ over' if c.over_threshold else ''}; {c.materialization_advice}.")
    return out


def _trace_section(proposal: Proposal) -> list[str]:
    out = []
    for i, step in enumerate(proposal.trace, 1):
        out.append(f"{i}. **{step.role}** — action `{step.action}`")
        if step.thought:
            out.append(f"   - thought: {_md(step.thought)}")
        out.append(f"   - observation: {_md(step.observation)}")
    return out


def render_pr_body(proposal: Proposal) -> str:
    """The pull-request description: a first screen (what was built, checks, data diff, governance, how to review
    it on a fresh clone), then every detail folded."""
    out: list[str] = [f"# dataeng-crew: {proposal.request}", ""]
    for approval in proposal.approvals:
        out += [f"> [!IMPORTANT]\n> **Needs {approval.kind} approval** from {', '.join(approval.approvers) or 'an owner'}:"]
        out += [f"> - {_md(r)}" for r in approval.reasons]
        out.append("")
    out += _summary(proposal)
    n_interp = len(proposal.plan.interpretations) if proposal.plan else 0
    out += _folded(f"Plan: how the request was read ({n_interp} statements)", _plan_section(proposal))
    out += _folded("Files", _files_section(proposal))
    out += _folded("Models, columns and lineage", _models_section(proposal))
    out += _folded("Governance: personal data", _governance_section(proposal))
    out += _folded("Data quality: tests, Great Expectations, MetricFlow", _quality_section(proposal))
    if proposal.data_diffs:
        from dataeng_crew.tools.data_diff import diff_markdown

        out += _folded("Data diff", diff_markdown(proposal.data_diffs, "base branch").splitlines())
    if proposal.extract is not None:
        out += _folded("Warehouse extract: what the checks ran on", _extract_section(proposal))
    out += _folded("Validation: sqlglot, dbt nodes, cost", _validation_section(proposal))
    out += _folded("LLM usage and repairs", _llm_section(proposal))
    out += _folded("Run trace (thought → action → observation)", _trace_section(proposal))
    out += [f"Proposal `{proposal.proposal_id}` · brain: {proposal.brain} · status: **{proposal.status}** · lineage "
            "events in `.dataeng-crew/lineage.ndjson`, audit trail in `.dataeng-crew/audit.jsonl`.", ""]
    return "\n".join(out)


def _files_section(proposal: Proposal) -> list[str]:
    """Files added and existing files modified (each with its diff): nothing changes that is not shown here."""
    if not proposal.files and not proposal.modified:
        return []
    changed = {m.path for m in proposal.modified}
    added = [f for f in proposal.files if f not in changed]
    out = []
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


def _warehouse_lines(proposal: Proposal) -> list[str]:
    """First-screen lines about the user's own warehouse: the extract, the target build, roles to create."""
    out: list[str] = []
    ex = proposal.extract
    if ex is not None:
        sampled = [r for r in ex.relations if r.sampled]
        where = f"Spark (catalog `{ex.database}`)" if ex.engine == "spark" else f"PostgreSQL database `{ex.database}`"
        out.append(f"**Warehouse**: {where} ({_md(ex.target)}), read into a DuckDB extract "
                   f"of {sum(r.rows for r in ex.relations):,} rows in {len(ex.relations)} relations ("
                   + (f"{len(sampled)} sampled to {ex.max_rows:,} rows" + (f" within the last {ex.window_days} days"
                                                                             if ex.window_days else "")
                      + ", plus the parent rows that close their foreign keys" if sampled else "every table whole")
                   + "). **Numbers in this description are from the extract.**")
    tv = proposal.target_validation
    if tv is not None:
        marts = ", ".join(f"`{m}` {n:,} rows (DuckDB {tv.extract_rows.get(m, 0):,}, {tv.rows_differing.get(m, 0):,} "
                          "rows in one build only)" for m, n in tv.mart_rows.items())
        if ex is not None and any(r.sampled for r in ex.relations) and any(tv.rows_differing.values()):
            marts += " — expected: the DuckDB build read a sample, the target the whole warehouse"
        out.append(f"**On the target** (scratch schema `{tv.schema_}`, dropped: {'yes' if tv.dropped else 'NO'}): "
                   f"{'passed' if tv.success else 'FAILED'} — {tv.tests_passed} tests passed, {tv.tests_failed} failed"
                   + (f"; {marts}" if marts else "") + (f"; {_md(tv.error)}" if tv.error else "") + ".")
    roles = ", ".join(f"`{r}`" for r in proposal.roles_to_create)
    if proposal.roles_to_create and proposal.target_dialect == "spark":
        out.append(f"**Grants left out**: Spark has no roles the tool can check, so the grants to {roles} were left "
                   "out (a grant to a principal the catalog lacks would fail the build). Add them with your catalog's "
                   "access control once the principals exist.")
    elif proposal.roles_to_create:
        out.append(f"**Grants left out**: the target has no role {roles}"
                   " (or it could not be checked). Create it (`create role ... nologin`), then add the grants.")
    return out


def _extract_section(proposal: Proposal) -> list[str]:
    ex = proposal.extract
    assert ex is not None
    out = [f"Sample size per relation: {ex.max_rows:,} rows; time window: "
           f"{f'{ex.window_days} days before the newest sampled time' if ex.window_days else 'none (whole tables)'}; "
           f"extracted in {ex.seconds:.1f} s.", "", "| relation | rows in extract | rows in warehouse | sampled | "
           "time column | from | to | parent rows added |", "|---|---|---|---|---|---|---|---|"]
    out += [f"| `{r.relation}` | {r.rows:,} | {'> ' + format(ex.max_rows, ',') if r.source_rows == ex.max_rows + 1 else format(r.source_rows, ',')} "
            f"| {'yes' if r.sampled else 'no'} | {r.time_column or ''} | {r.window_start or ''} | {r.window_end or ''} "
            f"| {r.parents_added:,} |" for r in ex.relations]
    if ex.foreign_keys:
        out += ["", "Foreign keys closed (every child row's parent is in the extract):", ""]
        out += [f"- `{fk}`" for fk in ex.foreign_keys]
    return out
