"""Quality role, triage: a generated test that fails on the real data is never silently dropped.

For each failing test the role decides, and says why, with failing-row examples:
- the **data is wrong** (duplicate keys, orphans, totals that do not reconcile): keep the test at
  severity ``warn`` so the build passes and the reviewer sees the problem;
- the **inference was wrong** (a sample missed a category value, a null or a negative): loosen the
  test to what the data shows, or drop a not_null that only the sample supported.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dataeng_crew.contracts import (
    BuildResult,
    ExpectationSuiteSpec,
    ModelSpec,
    NodeResult,
    SourceSpec,
    SuiteResult,
    TestSpec,
    TriageDecision,
)
from dataeng_crew.tools.expectations import expectation_class
from dataeng_crew.tools.prompt_safety import clean_text
from dataeng_crew.tools.warehouse import open_readonly, quote_ident

DATA_WRONG = {"unique", "relationships", "crew_unique_combination", "crew_reconciles_with", "crew_expression_is_true",
              "crew_row_count_between"}
EXAMPLES = 5


def failing_rows(db_file: Path, compiled_sql: str | None, limit: int = EXAMPLES) -> list[dict[str, str]]:
    """Up to ``limit`` rows the failing test returns, values cleaned and capped."""
    if not compiled_sql:
        return []
    try:
        with open_readonly(db_file) as con:
            cur = con.execute(f"select * from ({compiled_sql}) as failing limit {int(limit)}")
            names = [d[0] for d in cur.description]
            return [{clean_text(n, 40): clean_text(v) for n, v in zip(names, row)} for row in cur.fetchall()]
    except (duckdb.Error, Exception):  # noqa: BLE001 - examples are best effort; the verdict stands without them
        return []


def _observed(db_file: Path, model: str, column: str, sql: str) -> list:
    """First column of every row of ``sql`` (or the single row's values) over a built model, read-only."""
    with open_readonly(db_file) as con:
        rows = con.execute(sql.format(rel=f"main.{quote_ident(model)}", col=quote_ident(column))).fetchall()
    return list(rows[0]) if len(rows) == 1 and len(rows[0]) > 1 else [r[0] for r in rows]


def _find(node: NodeResult, models: list[ModelSpec], sources: list[SourceSpec]) -> tuple[str, TestSpec] | None:
    for m in models:
        if m.name != node.attached_to:
            continue
        for c in m.columns:
            for t in c.tests:
                if c.name == node.column and t.name == node.test_name:
                    return m.name, t
        for t in m.tests:
            if t.name == node.test_name and t.column in {None, node.column}:
                return m.name, t
    for s in sources:
        for table in s.tables:
            if table.name == node.attached_to:
                for t in table.tests:
                    if t.name == node.test_name:
                        return f"source {s.name}.{table.name}", t
    return None


def _replace(models: list[ModelSpec], sources: list[SourceSpec], old: TestSpec, new: TestSpec | None):
    def swap(tests: list[TestSpec]) -> list[TestSpec]:
        return [new if t is old else t for t in tests if not (t is old and new is None)]

    models = [m.model_copy(update={"tests": swap(m.tests),
                                   "columns": [c.model_copy(update={"tests": swap(c.tests)}) for c in m.columns]})
              for m in models]
    sources = [s.model_copy(update={"tables": [t.model_copy(update={"tests": swap(t.tests)}) for t in s.tables]})
               for s in sources]
    return models, sources


def triage(build: BuildResult, models: list[ModelSpec], sources: list[SourceSpec], db_file: Path
           ) -> tuple[list[ModelSpec], list[SourceSpec], list[TriageDecision]]:
    """Decide about every generated test that failed; return the adjusted specs and the decisions.

    Tests the proposal did not generate, and tests that errored (broken SQL rather than failing
    rows), are left alone: the build stays failed for those.
    """
    decisions: list[TriageDecision] = []
    for node in build.nodes:
        if node.resource_type != "test" or node.status != "fail":
            continue
        found = _find(node, models, sources)
        if found is None:
            continue
        where, spec = found
        rows = failing_rows(db_file, node.compiled_code)
        key_column = spec.name == "not_null" and any(
            t.name == "unique" and t.column == spec.column
            for m in models if m.name == node.attached_to for c in m.columns for t in c.tests)
        label = f"{spec.name}" + (f" on {spec.column}" if spec.column else "")
        if spec.name in DATA_WRONG or key_column:
            new = spec.model_copy(update={"severity": "warn"})
            decision = TriageDecision(
                test=label, model=where, column=spec.column, verdict="data_wrong", action="kept_as_warning",
                explanation=f"{node.failures or len(rows)} failing row(s): the data breaks a rule the model relies on "
                            f"({spec.reason or spec.name}). Kept as a warning for the reviewer; fix the data upstream.",
                failing_rows=rows)
        elif spec.name == "accepted_values" and spec.column:
            seen = _observed(db_file, node.attached_to or "", spec.column,
                             "select distinct {col}::varchar from {rel} where {col} is not null order by 1")
            extra = sorted(set(seen) - set(spec.arguments.get("values", [])))
            new = spec.model_copy(update={"arguments": {**spec.arguments,
                                                        "values": sorted(set(spec.arguments["values"]) | set(seen))}})
            decision = TriageDecision(
                test=label, model=where, column=spec.column, verdict="inference_wrong", action="loosened",
                explanation="the profile's sample missed values that the full table has: "
                            + ", ".join(clean_text(v, 30) for v in extra[:10]) + "; added them.",
                failing_rows=rows)
        elif spec.name == "crew_values_at_least" and spec.column:
            lowest = _observed(db_file, node.attached_to or "", spec.column, "select min({col}) from {rel}")[0]
            new = spec.model_copy(update={"arguments": {**spec.arguments, "min_value": float(lowest)}})
            decision = TriageDecision(
                test=label, model=where, column=spec.column, verdict="inference_wrong", action="loosened",
                explanation=f"values below {spec.arguments.get('min_value')} exist (lowest {clean_text(lowest)}); "
                            "the bound now follows the data.", failing_rows=rows)
        else:  # not_null on a non-key column that only the sample supported
            new = None
            decision = TriageDecision(
                test=label, model=where, column=spec.column, verdict="inference_wrong", action="dropped",
                explanation=f"the profiled rows had no nulls but the table has {node.failures}; the column is "
                            "optional in this data, so the test was removed.", failing_rows=rows)
        models, sources = _replace(models, sources, spec, new)
        decisions.append(decision)
    return models, sources, decisions


GX_LOOSEN = {"expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
             "expect_column_values_to_not_be_null"}


def triage_suites(results: list[SuiteResult], suites: list[ExpectationSuiteSpec], db_file: Path
                  ) -> tuple[list[ExpectationSuiteSpec], list[TriageDecision]]:
    """Decide about failed expectations, as :func:`triage` does for dbt tests.

    Ranges, sets and not-null expectations come from a (possibly sampled) profile: when the full
    built table disagrees, the inference was wrong and they follow the data. Uniqueness, row counts
    and column lists state what the model promises: a failure means the data is wrong, and the
    expectation stays (reported, with the observed value).
    """
    decisions: list[TriageDecision] = []
    by_model = {s.model: s for s in suites}
    for result in results:
        suite = by_model.get(result.model)
        if suite is None:
            continue
        expectations = list(suite.expectations)
        for outcome in (o for o in result.outcomes if not o.success):
            index = next((i for i, e in enumerate(expectations) if e.type == expectation_class(outcome.type)
                          and e.kwargs.get("column") == outcome.column), None)
            if index is None:
                continue
            spec = expectations[index]
            label = outcome.type + (f" on {outcome.column}" if outcome.column else "")
            if outcome.type not in GX_LOOSEN or not outcome.column:
                decisions.append(TriageDecision(
                    test=label, model=result.model, column=outcome.column, verdict="data_wrong",
                    action="kept_as_warning", explanation=f"observed {outcome.observed}: the built table breaks "
                    "what the model promises; kept in the suite and reported."))
                continue
            if outcome.type == "expect_column_values_to_be_between":
                lo, hi = _observed(db_file, result.model, outcome.column, "select min({col}), max({col}) from {rel}")
                new = spec.model_copy(update={"kwargs": {**spec.kwargs, "min_value": float(lo), "max_value": float(hi)}})
                why = f"the profile saw a narrower range than the full table ({clean_text(lo)} to {clean_text(hi)})"
            elif outcome.type == "expect_column_values_to_be_in_set":
                seen = _observed(db_file, result.model, outcome.column,
                                 "select distinct {col}::varchar from {rel} where {col} is not null")
                new = spec.model_copy(update={"kwargs": {**spec.kwargs,
                                                         "value_set": sorted(set(spec.kwargs["value_set"]) | set(seen))}})
                why = "the full table has values the profile did not see; added them"
            else:
                new = None
                why = "the full table has nulls the profile did not see; the column is optional"
            decisions.append(TriageDecision(test=label, model=result.model, column=outcome.column,
                                            verdict="inference_wrong", action="loosened" if new else "dropped",
                                            explanation=why + "."))
            if new is None:
                expectations.pop(index)
            else:
                expectations[index] = new
        by_model[result.model] = suite.model_copy(update={"expectations": expectations})
    return [by_model[s.model] for s in suites], decisions
