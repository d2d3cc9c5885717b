"""What a proposal leaves for people and tools: lineage datasets, the ``--json`` summary, before/after copies,
diffs of changed files and short accounts of builds and the MetricFlow check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from dataeng_crew.contracts import BuildResult, ModelSpec, ModifiedFile, Proposal
from dataeng_crew.recorder import Recorder
from dataeng_crew.tools import git_local
from dataeng_crew.tools.lineage import DatasetRef, column_lineage
from dataeng_crew.tools.sqlcheck import CheckOutcome


def modified_files(files: dict[str, str], read_existing: Callable[[str], str | None], prefix: str = "") -> list[ModifiedFile]:
    """Every existing project file the proposal changes, with a unified diff (for the PR)."""
    import difflib

    out = []
    for rel, after in sorted(files.items()):
        before = read_existing(rel)
        if before is None or before == after:
            continue
        diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                            f"a/{prefix}{rel}", f"b/{prefix}{rel}"))
        out.append(ModifiedFile(path=prefix + rel, diff=diff))
    return out


def raw_dataset(warehouse: Path, table) -> DatasetRef:  # noqa: ANN001 - TableProfile
    """An OpenLineage dataset for a raw table: namespace is the DuckDB file, with its schema."""
    return DatasetRef(namespace=f"duckdb://{warehouse.resolve()}", name=table.fqn,
                      columns=tuple((c.name, c.data_type, "") for c in table.columns))


def model_dataset(db_file: Path, model: ModelSpec, lineage_pairs: dict | None = None,
                  namespaces: dict[str, str] | None = None) -> DatasetRef:
    """An OpenLineage dataset for a built model (sandbox DuckDB), with schema and column lineage."""
    ns = f"duckdb://{db_file.resolve()}"
    column_lineage = tuple(
        (col, tuple(((namespaces or {}).get(table, ns), table, field) for table, field in pairs))
        for col, pairs in (lineage_pairs or {}).items() if pairs)
    return DatasetRef(namespace=ns, name=f"{db_file.stem}.main.{model.name}",
                      columns=tuple((c.name, c.data_type or "", c.description) for c in model.columns),
                      column_lineage=column_lineage)


def build_summary(build: BuildResult) -> str:
    counts: dict[str, int] = {}
    for n in build.nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    return ("passed" if build.success else "FAILED") + ": " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def emit_model_lineage(rec: Recorder, models: list[ModelSpec], outcome: CheckOutcome, wh: Path, db_file: Path,
                       sources) -> None:  # noqa: ANN001
    """One OpenLineage run per generated model: inputs, output schema and sqlglot column lineage."""
    raw_ns = f"duckdb://{wh.resolve()}"
    raw_tables = {f"{s.database}.{s.schema_name}.{t.relation_name}" for s in sources for t in s.tables}
    for model in models:
        sql = outcome.compiled.get(model.name)
        if not sql:
            continue
        pairs = column_lineage(sql, outcome.schema, [c.name for c in model.columns])
        upstream = sorted({table for col in pairs.values() for table, _ in col})
        namespaces = {t: raw_ns for t in upstream if t in raw_tables}
        ref = rec.lineage.start(f"dataeng_crew.model.{model.name}", rec.parent)
        inputs = [DatasetRef(namespace=namespaces.get(t, f"duckdb://{db_file.resolve()}"), name=t) for t in upstream]
        rec.lineage.complete(ref, rec.parent, inputs, [model_dataset(db_file, model, pairs, namespaces)])


def save_changes(folder: Path, repo: Path, base: str, files: dict[str, str]) -> None:
    """Before/after copies of every file the proposal changes, and a manifest with their hashes."""
    import hashlib

    changes = folder / "changes"
    manifest = []
    for path, content in sorted(files.items()):
        before = git_local.read_at(repo, base, path)
        if before is not None:
            (changes / "before" / path).parent.mkdir(parents=True, exist_ok=True)
            (changes / "before" / path).write_text(before)
        (changes / "after" / path).parent.mkdir(parents=True, exist_ok=True)
        (changes / "after" / path).write_text(content)
        manifest.append({"path": path, "existed_before": before is not None,
                         "before_sha256": hashlib.sha256(before.encode()).hexdigest() if before is not None else None,
                         "after_sha256": hashlib.sha256(content.encode()).hexdigest()})
    (changes / "manifest.json").write_text(json.dumps({"base": base, "files": manifest}, indent=2))


def describe_oracle(result) -> str:  # noqa: ANN001 - OracleResult
    """The oracle's verdict in a few words (PR body, trace, eval)."""
    if result.skipped_reason:
        return f"MetricFlow could not check it: {result.skipped_reason}"
    verdict = "agrees with" if not result.differences else "DISAGREES with"
    return f"{verdict} MetricFlow: {result.rows} rows, {result.differences} differences"


def describe_build_failure(build: BuildResult) -> str:
    """A short, readable account of why a dbt build failed."""
    lines = ["dbt build failed on the sandbox copy; nothing was published."]
    if build.error:
        lines.append(f"  dbt: {build.error[:800]}")
    for node in build.failed_nodes:
        lines.append(f"  {node.unique_id}: {node.status}" + (f" — {node.message[:400]}" if node.message else ""))
    return "\n".join(lines)


def summary(proposal: Proposal) -> dict:
    """The ``--json`` object printed by ``propose``."""
    db = Path(proposal.warehouse).stem if proposal.warehouse else None
    return {
        "oracle": proposal.oracle.model_dump() if proposal.oracle is not None else None,
        "proposal_id": proposal.proposal_id,
        "status": proposal.status,
        "request": proposal.request,
        "brain": proposal.brain,
        "branch": proposal.branch,
        "commit": proposal.commit,
        "models": [{"name": m.name, "path": m.path, "layer": m.layer,
                    "relation": f"{db}.main.{m.name}" if db else None} for m in proposal.models],
        "build": None if proposal.checks.build is None else {
            "success": proposal.checks.build.success,
            "nodes": [{"unique_id": n.unique_id, "status": n.status, "failures": n.failures}
                      for n in proposal.checks.build.nodes],
        },
        "sql_issues": [i.model_dump() for i in proposal.checks.sql_issues],
        "needs_approval": [a.model_dump() for a in proposal.approvals],
        "pii_exposures": [e.model_dump() for e in proposal.exposures],
        "pr": proposal.pr,
        "pull_request": proposal.pull_request.model_dump() if proposal.pull_request else None,
        "warehouse": proposal.warehouse,
        "report": str(Path(proposal.proposal_dir) / "report.json") if proposal.proposal_dir else None,
        "error": proposal.error,
        "timings": {t.stage: t.seconds for t in proposal.timings},
        "target_dialect": proposal.target_dialect,
        "dialect_warnings": proposal.dialect_warnings,
        "llm_usage": [u.model_dump() for u in proposal.llm_usage],
        "repairs": [r.model_dump(exclude={"sql_before", "sql_after"}) for r in proposal.repairs],
        "extract": proposal.extract.model_dump() if proposal.extract else None,
        "target_validation": proposal.target_validation.model_dump(by_alias=True) if proposal.target_validation
        else None,
        "roles_to_create": proposal.roles_to_create,
    }


def dumps(data: dict) -> str:
    """JSON for the terminal."""
    return json.dumps(data, indent=2, default=str)

