"""Revision role: reviewer feedback → change requests → the revised plan and models.

The deterministic brain honours a stated grammar of change requests (:data:`GRAMMAR`): rename a column, drop
or add (back) a measure, change the grain, add a filter or a breakdown, change the materialization, add or
remove a test, exclude rows by a condition it can bind to a staged column and value. Anything else is
answered with ``cannot do this offline: <why>``. Feedback is data: it is cleaned before use and only ever
matched against the grammar (the deterministic brain) or fenced as untrusted data (the crew's repair prompt).

:class:`RevisingBrain` wraps any :class:`~dataeng_crew.agents.brains.Brain`: it plans the original request with
the request-level edits (grain, breakdown, filter), then applies the model-level edits to what the inner brain
returned. Edits are cumulative across rounds and re-applied from scratch each time, so a revision is a pure
function of (request, edits) and a re-run with no new feedback produces the same files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataeng_crew.agents.modeler import staging_model_for
from dataeng_crew.agents.planner import GRAIN_ADJECTIVE, GRAIN_WORDS
from dataeng_crew.agents.semantics import needs_normalising, quote_if_needed, staged_name
from dataeng_crew.contracts import (
    BuildResult,
    ChangeRequest,
    ColumnPolicy,
    ExpectationSuiteSpec,
    Feedback,
    GovernancePolicy,
    ModelSpec,
    Plan,
    SourceSpec,
    SuiteResult,
    TestSpec,
    TriageDecision,
    WarehouseProfile,
)
from dataeng_crew.errors import DataengCrewError
from dataeng_crew.tools.prompt_safety import clean_text, quote_as_data

GRAMMAR = (
    "rename <column> to <name>",
    "drop|remove measure <column>",
    "add measure <column> (one the rules compute for this mart)",
    "make it daily|weekly|monthly|quarterly|yearly",
    "only <column> = <value> (a filter)",
    "break it down by <column>",
    "materialize it as a table|view",
    "add|remove a <not_null|unique> test on <column>",
    "exclude rows where <column> = <value>",
)
REQUEST_KINDS = ("grain", "breakdown", "filter")
TESTS = {"not_null": "not_null", "not null": "not_null", "unique": "unique"}
NAME = r"[a-z_][a-z0-9_]*"
VALUE = r"'?([\w .-]+?)'?"
POLITE = re.compile(r"^(?:(?:please|pls|could you|can you|would you|let's|lets|i'd like you to|maybe|also|and|then)"
                    r"[\s,:]+)+|[\s,!]*(?:please|thanks|thank you|thx)?[\s.!]*$")
CHATTER = re.compile(r"^(?:lgtm|looks good|looks great|thanks|thank you|nice|great|ok|okay|\+1|👍)(?:\s+(?:overall|"
                     r"to me|so far|a lot|work|job))*$")
LEAD_IN = re.compile(r"^(?:lgtm|looks good|looks great|nice|great|ok|okay|thanks)\b[^,;:]*[,;:]\s*(?:but\s+|however\s+)?"
                     r"(?:please\s+)?")
PATTERNS: list[tuple[str, re.Pattern]] = [
    ("exclude_rows", re.compile(rf"^(?:exclude|drop|remove|filter out|leave out|skip)\s+(?:the\s+|all\s+)?"
                                rf"(?:rows|orders|records|lines|events)?\s*(?:where|with|whose)\s+({NAME})\s*"
                                rf"(?:=|==|is|equals?)\s*{VALUE}$")),
    ("add_test", re.compile(rf"^add\s+(?:a\s+|an\s+)?(not_null|not null|unique)\s+test\s+(?:on|for|to)\s+"
                            rf"(?:column\s+|the\s+)?({NAME})(?:\s+column)?$")),
    ("remove_test", re.compile(rf"^(?:remove|drop|delete)\s+(?:the\s+)?(not_null|not null|unique)\s+test\s+"
                               rf"(?:on|for|from)\s+(?:column\s+|the\s+)?({NAME})(?:\s+column)?$")),
    ("rename_column", re.compile(rf"^rename\s+(?:the\s+)?(?:column\s+|measure\s+)?({NAME})\s+(?:column\s+)?"
                                 rf"(?:to|as|into)\s+({NAME})$")),
    ("materialization", re.compile(r"^(?:materiali[sz]e(?:d)?|make|build|turn)\s+(?:it|the mart|this)?\s*"
                                   r"(?:as|into)?\s*(?:a|an)?\s*(view|table|incremental|ephemeral)"
                                   r"(?:\s+model)?(?:\s+instead)?$")),
    ("grain", re.compile(r"^(?:make\s+(?:it|the mart|this)|change\s+(?:it|the grain)\s+to|switch\s+(?:it\s+)?to|"
                         r"use\s+(?:a\s+)?|(?:the\s+)?grain\s+(?:should\s+be|to)|aggregate\s+(?:it\s+)?)\s*"
                         r"(daily|weekly|monthly|quarterly|yearly|day|week|month|quarter|year)"
                         r"(?:\s+grain)?(?:\s+instead)?(?:\s+of\s+\w+)?$")),
    ("breakdown", re.compile(r"^(?:break\s+(?:it\s+|this\s+)?down|split\s+(?:it\s+)?|add\s+a\s+breakdown|"
                             r"group\s+(?:it\s+)?)\s*by\s+([a-z][a-z0-9_ ]*)$")),
    ("filter", re.compile(rf"^(?:only(?:\s+keep)?|keep\s+only|filter\s+(?:it\s+)?(?:to|on)|restrict\s+(?:it\s+)?to)\s+"
                          rf"(?:rows\s+|orders\s+|events\s+)?(?:where\s+|with\s+)?({NAME})\s*(?:=|==|is|equals?)\s*"
                          rf"{VALUE}$")),
    ("drop_measure", re.compile(rf"^(?:drop|remove|delete)\s+(?:the\s+)?(?:measure\s+|column\s+)?({NAME})"
                                rf"(?:\s+measure|\s+column)?$")),
    ("add_measure", re.compile(rf"^add\s+(?:back\s+)?(?:the\s+|a\s+)?(?:measure\s+|column\s+)?({NAME})"
                               rf"(?:\s+measure|\s+column)?(?:\s+back)?$")),
]


def sentences(text: str) -> list[str]:
    """The feedback split into candidate instructions (lines, ``;``, sentence ends), quoting dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(">")]  # quoted replies are not requests
    out = []
    for part in re.split(r"[;\n]|(?<=[a-z0-9_'\"])[.!?](?:\s+|$)", "\n".join(lines)):
        part = re.sub(r"[`*]", "", part).strip().rstrip(".!").strip()
        if part:
            out.append(part)
    return out


def parse_feedback(feedback: Feedback) -> tuple[list[ChangeRequest], list[str]]:
    """Read the change requests in one piece of feedback.

    Args:
        feedback: A comment, review or local text (already cleaned).

    Returns:
        ``(change requests, refusals)``: each sentence is either a change request or a refusal
        ``cannot do this offline: <why>`` (greetings and approvals are skipped).
    """
    changes: list[ChangeRequest] = []
    refusals: list[str] = []
    if feedback.kind == "check":
        return [ChangeRequest(kind="repair", feedback_id=feedback.id, text=clean_text(feedback.body, 600),
                              model=feedback.node)], []
    for raw in sentences(feedback.body):
        sentence = POLITE.sub("", LEAD_IN.sub("", raw.lower().strip())).strip()
        if not sentence:
            continue
        change = match_sentence(sentence, feedback.id, raw)
        if change is None and CHATTER.match(sentence):
            continue  # approval and thanks, not a request
        if change is None:
            refusals.append(f"cannot do this offline: “{clean_text(raw, 120)}” is not a change request the "
                            "deterministic brain understands (it understands: " + "; ".join(GRAMMAR) + ")")
        else:
            changes.append(change)
    return changes, refusals


def match_sentence(sentence: str, feedback_id: str, raw: str) -> ChangeRequest | None:
    """The change request a (lower-cased, polite words removed) sentence states, or None."""
    for kind, pattern in PATTERNS:
        m = pattern.match(sentence)
        if not m:
            continue
        text = clean_text(raw, 200)
        if kind == "exclude_rows" or kind == "filter":
            return ChangeRequest(kind=kind, feedback_id=feedback_id, text=text, column=m[1], value=m[2].strip())
        if kind in ("add_test", "remove_test"):
            return ChangeRequest(kind=kind, feedback_id=feedback_id, text=text, value=TESTS[m[1]], column=m[2])
        if kind == "rename_column":
            return ChangeRequest(kind=kind, feedback_id=feedback_id, text=text, column=m[1], value=m[2])
        if kind == "grain":
            return ChangeRequest(kind=kind, feedback_id=feedback_id, text=text,
                                 value=GRAIN_ADJECTIVE[GRAIN_WORDS[m[1]]])
        if kind == "breakdown":
            return ChangeRequest(kind=kind, feedback_id=feedback_id, text=text, column=m[1].strip())
        return ChangeRequest(kind=kind, feedback_id=feedback_id, text=text,
                             **({"value": m[1]} if kind == "materialization" else {"column": m[1]}))
    return None


def revised_request(request: str, edits: list[ChangeRequest]) -> str:
    """The original request with the request-level edits (grain, breakdown, filter) applied, in order."""
    text = request
    for edit in edits:
        if edit.kind == "grain":
            words = "|".join(GRAIN_ADJECTIVE.values())
            new, count = re.subn(rf"\b({words})", edit.value or "", text, flags=re.IGNORECASE)
            text = new if count else f"{edit.value} {text}"
        elif edit.kind == "breakdown":
            text = re.sub(r"\s+by\s+[a-z0-9_ ]+?(?=\s+for\s+|$)", "", text) + f" by {edit.column}"
        elif edit.kind == "filter":
            text = f"{text} for {edit.column} {edit.value}"
    return text


@dataclass
class EditResult:
    """Per change request: None when applied, else why not (``cannot do this offline: ...``)."""

    refused: dict[int, str] = field(default_factory=dict)

    def refuse(self, index: int, why: str) -> None:
        """Record a refusal (the first reason wins)."""
        self.refused.setdefault(index, why if why.startswith("cannot do this") else f"cannot do this offline: {why}")


def _final_select(sql: str) -> re.Match | None:
    return re.search(r"\n\s*select\s+\*\s+from\s+([a-z_][a-z0-9_]*)\s*$", sql, flags=re.IGNORECASE)


def _replace_word(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return re.sub(rf"\b{re.escape(old)}\b", new, value)
    if isinstance(value, list):
        return [_replace_word(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _replace_word(v, old, new) for k, v in value.items()}
    return value


def apply_model_edits(models: list[ModelSpec], suites: list[ExpectationSuiteSpec], original: list[ModelSpec],
                      edits: list[tuple[int, ChangeRequest]], result: EditResult
                      ) -> tuple[list[ModelSpec], list[ExpectationSuiteSpec]]:
    """Apply rename/drop/add-measure, materialization and test edits to the mart(s).

    The mart's final ``select * from <cte>`` becomes an explicit column list (``net_sales as net_revenue``),
    so renames and drops change the relation without touching the logic the rules wrote; column tests follow
    their column, model-test arguments and GX suites are rewritten with the new names.

    Args:
        models: Models with tests (the quality role's output).
        suites: Their GX suites.
        original: The marts as the inner brain wrote them (to add a dropped measure back).
        edits: ``(index, change request)`` pairs, in order.
        result: Collects refusals by index.

    Returns:
        ``(models, suites)`` with the edits applied.
    """
    marts = [m for m in models if m.layer == "marts"]
    by_name = {m.name: m for m in models}
    projection: dict[str, list[tuple[str, str]]] = {m.name: [(c.name, c.name) for c in m.columns] for m in marts}
    touched: set[str] = set()
    renames: dict[str, list[tuple[str, str]]] = {}
    for index, edit in edits:
        target = by_name.get(edit.model) if edit.model else (marts[0] if len(marts) == 1 else None)
        if target is None:
            result.refuse(index, f"which model? the proposal has {len(marts)} marts" if not edit.model
                          else f"the proposal has no model {edit.model!r}")
            continue
        cols = projection.get(target.name)
        names = [out for _, out in cols] if cols else [c.name for c in target.columns]
        if edit.kind in ("rename_column", "drop_measure", "add_measure") and cols is None:
            result.refuse(index, f"{target.name} is not a mart; only a mart's columns are renamed or dropped")
            continue
        if edit.kind == "rename_column":
            if edit.column not in names:
                result.refuse(index, f"{target.name} has no column {edit.column!r} (columns: {', '.join(names)})")
            elif edit.value in names:
                result.refuse(index, f"{target.name} already has a column {edit.value!r}")
            elif quote_if_needed(str(edit.value)) != edit.value:  # `select`, `order`: every query would quote it
                result.refuse(index, f"cannot rename {edit.column} to {edit.value!r}: it is a SQL keyword or not a "
                                     f"plain lower-case name; pick another (e.g. {edit.value}_value)")
            else:
                cols[:] = [(src, edit.value if out == edit.column else out) for src, out in cols]  # type: ignore[index]
                renames.setdefault(target.name, []).append((edit.column, edit.value))  # type: ignore[arg-type]
                touched.add(target.name)
        elif edit.kind == "drop_measure":
            keyish = target.columns[0].name if target.columns else ""
            dims = {target.meta.get("dimension")}
            if edit.column not in names:
                result.refuse(index, f"{target.name} has no column {edit.column!r} (columns: {', '.join(names)})")
            elif next(src for src, out in cols if out == edit.column) in {keyish, *dims}:  # type: ignore[union-attr]
                result.refuse(index, f"{edit.column} is part of the grain of {target.name}, not a measure; "
                                     "change the grain or the breakdown instead")
            elif all(src in {keyish, *dims} for src, out in cols if out != edit.column):  # type: ignore[union-attr]
                result.refuse(index, f"cannot drop {edit.column}: it is the last measure of {target.name}, which "
                                     "would be left with its grain only (propose refuses a mart without measures)")
            else:
                cols[:] = [(s, o) for s, o in cols if o != edit.column]  # type: ignore[index]
                touched.add(target.name)
        elif edit.kind == "add_measure":
            first = next((m for m in original if m.name == target.name), None)
            computable = [c.name for c in first.columns] if first else []
            if edit.column in names:
                result.refuse(index, f"{target.name} already has {edit.column!r}")
            elif edit.column not in computable:
                result.refuse(index, f"{edit.column!r} is not a measure the rules compute for {target.name} "
                                     f"(they compute: {', '.join(computable)}); a custom formula needs the LLM crew")
            else:
                order = {c: i for i, c in enumerate(computable)}
                cols.append((edit.column, edit.column))  # type: ignore[union-attr]
                cols.sort(key=lambda pair: order.get(pair[0], len(order)))  # type: ignore[union-attr]
                touched.add(target.name)
        elif edit.kind == "materialization":
            if edit.value in ("incremental", "ephemeral"):
                result.refuse(index, f"{edit.value} needs a unique key and late-data policy (incremental) or is "
                                     "not queryable (ephemeral); the rules choose incremental by table size — "
                                     "set incremental_above_rows in governance.yml")
            else:
                by_name[target.name] = by_name[target.name].model_copy(update={"materialization": edit.value})
        elif edit.kind in ("add_test", "remove_test"):
            model = by_name[target.name]
            source = next((src for src, out in (projection.get(target.name) or []) if out == edit.column), edit.column)
            column = model.column(source or "")
            if column is None:
                result.refuse(index, f"{target.name} has no column {edit.column!r}")
                continue
            has = any(t.name == edit.value for t in column.tests)
            if edit.kind == "add_test" and has:
                result.refuse(index, f"{target.name}.{edit.column} already has a {edit.value} test")
                continue
            if edit.kind == "remove_test" and not has:
                result.refuse(index, f"{target.name}.{edit.column} has no {edit.value} test")
                continue
            tests = ([*column.tests, TestSpec(name=edit.value, column=source, reason=f"asked in review: {edit.text}")]
                     if edit.kind == "add_test" else [t for t in column.tests if t.name != edit.value])
            by_name[target.name] = model.model_copy(update={"columns": [
                c.model_copy(update={"tests": tests}) if c.name == source else c for c in model.columns]})
    out_models, out_suites = [], list(suites)
    for model in (by_name[m.name] for m in models):
        if model.name in touched:
            model = _project(model, projection[model.name], renames.get(model.name, []), index_of=edits, result=result)
            out_suites = [_rename_suite(s, model, renames.get(model.name, [])) if s.model == model.name else s
                          for s in out_suites]
        out_models.append(model)
    return out_models, out_suites


def _project(model: ModelSpec, cols: list[tuple[str, str]], renames: list[tuple[str, str]],
             index_of: list[tuple[int, ChangeRequest]], result: EditResult) -> ModelSpec:
    m = _final_select(model.sql)
    if m is None:
        for index, edit in index_of:
            if edit.kind in ("rename_column", "drop_measure", "add_measure"):
                result.refuse(index, f"{model.name} does not end in `select * from <cte>`; the rules only rename "
                                     "or drop columns of such a final select")
        return model
    select = "\n\nselect\n" + ",\n".join(f"    {src}" if src == out else f"    {src} as {out}" for src, out in cols)
    sql = model.sql[:m.start()] + select + f"\n\nfrom {m[1]}\n"
    source_cols = {c.name: c for c in model.columns}
    columns = []
    for src, out in cols:
        col = source_cols[src]
        tests = [t.model_copy(update={"column": out}) for t in col.tests]
        columns.append(col.model_copy(update={"name": out, "tests": tests}))
    dropped = {src for src in source_cols} - {src for src, _ in cols}
    tests = []
    for test in model.tests:
        args = test.arguments
        if any(re.search(rf"\b{re.escape(d)}\b", str(args)) for d in dropped):
            continue  # a model test over a dropped measure goes with it
        for old, new in renames:
            args = _replace_word(args, old, new)
        tests.append(test.model_copy(update={"arguments": args}))
    meta = dict(model.meta)
    for old, new in renames:
        meta = _replace_word(meta, old, new)
    return model.model_copy(update={"sql": sql, "columns": columns, "tests": tests, "meta": meta})


def _rename_suite(suite: ExpectationSuiteSpec, model: ModelSpec, renames: list[tuple[str, str]]) -> ExpectationSuiteSpec:
    names = {c.name for c in model.columns}
    exps = []
    for exp in suite.expectations:
        kwargs = dict(exp.kwargs)
        for old, new in renames:
            kwargs = _replace_word(kwargs, old, new)
        if "column_list" in kwargs:
            kwargs["column_list"] = [c.name for c in model.columns]
        if kwargs.get("column") and kwargs["column"] not in names:
            continue  # the column was dropped
        exps.append(exp.model_copy(update={"kwargs": kwargs}))
    return suite.model_copy(update={"expectations": exps})


def bind_exclusion(model: ModelSpec, edit: ChangeRequest, profile: WarehouseProfile) -> tuple[str, str] | str:
    """``(staging model, predicate)`` for "exclude rows where col = value" on a mart, or why it cannot bind.

    The column must be a staged column of a staging model the mart imports with ``select * from ref(...)``, and the
    value must be one of the column's profiled values (compared after staging's cleaning).
    """
    imports = re.findall(r"select \* from \{\{ ref\('([a-z0-9_]+)'\) \}\}", model.sql)
    seen = []
    for table in profile.tables:
        stg = staging_model_for(table, profile)
        if stg not in imports:
            continue
        for col in table.columns:
            name = staged_name(col, table)
            seen.append(f"{stg}.{name}")
            if name != edit.column:
                continue
            value = (edit.value or "").strip()
            literal = value.lower() if needs_normalising(col) else value
            known = list(dict.fromkeys(v.strip().lower() if needs_normalising(col) else v for v in col.top_values))
            if not known:
                return f"{table.name}.{col.name} has too many distinct values to check {value!r} against"
            if literal not in known:
                return f"{value!r} is not a value of {stg}.{name} (values: {', '.join(known[:12])})"
            return stg, f"{name} is distinct from '{literal.replace(chr(39), chr(39) * 2)}'"
    return (f"no column {edit.column!r} in the staging models {model.name} reads"
            + (f" (columns: {', '.join(seen[:20])})" if seen else ""))


def apply_exclusions(models: list[ModelSpec], edits: list[tuple[int, ChangeRequest]], profile: WarehouseProfile,
                     result: EditResult) -> tuple[list[ModelSpec], dict[str, list[str]]]:
    """Add each exclusion as a ``where`` on the mart's import CTE of the staging model holding the column.

    Returns:
        The models, and ``staging model → predicates`` (the reconciliation tests must use them too).
    """
    marts = [m for m in models if m.layer == "marts"]
    applied: dict[str, list[str]] = {}
    out = {m.name: m for m in models}
    for index, edit in edits:
        target = out.get(edit.model) if edit.model else (out[marts[0].name] if len(marts) == 1 else None)
        if target is None:
            result.refuse(index, "no single mart to exclude rows from")
            continue
        bound = bind_exclusion(target, edit, profile)
        if isinstance(bound, str):
            result.refuse(index, bound)
            continue
        stg, predicate = bound
        pattern = f"select * from {{{{ ref('{stg}') }}}}"
        sql = target.sql.replace(pattern, f"{pattern}\n    where {predicate}", 1)
        out[target.name] = target.model_copy(update={"sql": sql})
        applied.setdefault(stg, []).append(predicate)
    return [out[m.name] for m in models], applied


def _reconcile_with_exclusions(models: list[ModelSpec], applied: dict[str, list[str]]) -> list[ModelSpec]:
    out = []
    for model in models:
        tests = []
        for t in model.tests:
            stg = re.match(r"ref\('([a-z0-9_]+)'\)", str(t.arguments.get("to", "")))
            if t.name == "crew_reconciles_with" and stg and stg[1] in applied:
                where = " and ".join(filter(None, [t.arguments.get("compare_where"), *applied[stg[1]]]))
                t = t.model_copy(update={"arguments": {**t.arguments, "compare_where": where}})
            tests.append(t)
        out.append(model.model_copy(update={"tests": tests}))
    return out


class RevisingBrain:
    """A brain that answers the same roles as ``inner``, with the review's change requests applied.

    Args:
        inner: The brain that wrote the proposal (deterministic or crew).
        request: The proposal's original request.
        edits: Every change request to apply (earlier rounds first).
        ci_errors: ``model → failing check text`` from red CI runs (fed to ``inner.repair``).
    """

    def __init__(self, inner: Any, request: str, edits: list[ChangeRequest]) -> None:
        self.inner, self.request, self.edits = inner, request, list(edits)
        self.name = inner.name
        self.result = EditResult()
        self.original_marts: list[ModelSpec] = []
        self.effective: str | None = None
        self._exclusions: dict[str, list[str]] = {}

    def __getattr__(self, item: str) -> Any:  # usage_report, explain, provider_down, ... of the inner brain
        return getattr(self.inner, item)

    def _of(self, *kinds: str) -> list[tuple[int, ChangeRequest]]:
        return [(i, e) for i, e in enumerate(self.edits) if e.kind in kinds and i not in self.result.refused]

    def effective_request(self, profile: WarehouseProfile) -> str:
        """The request with every request-level edit that the planner accepts; refuses the others."""
        from dataeng_crew.agents import planner

        kept: list[ChangeRequest] = []
        for index, edit in self._of(*REQUEST_KINDS):
            try:
                planner.plan(revised_request(self.request, [*kept, edit]), profile)
            except DataengCrewError as exc:
                self.result.refuse(index, str(exc).splitlines()[0][:400])
                continue
            kept.append(edit)
        return revised_request(self.request, kept)

    def plan(self, request: str, profile: WarehouseProfile) -> Plan:
        """The inner planner on the revised request; the plan names each applied change."""
        self.effective = self.effective_request(profile)
        plan = self.inner.plan(self.effective, profile)
        plan.interpretations += [f"Revised after review: {e.text}" for i, e in enumerate(self.edits)
                                 if i not in self.result.refused]
        return plan

    def model(self, plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
        """The inner modeler."""
        return self.inner.model(plan, profile)

    def transform(self, plan: Plan, profile: WarehouseProfile, staging: list[ModelSpec]) -> list[ModelSpec]:
        """The inner transformer, then row exclusions and CI repairs on its marts."""
        marts = self.inner.transform(plan, profile, staging)
        self.original_marts = list(marts)
        marts, self._exclusions = apply_exclusions(marts, self._of("exclude_rows"), profile, self.result)
        for index, edit in self._of("repair"):
            target = next((m for m in marts if m.name == edit.model), None)
            if target is None:
                self.result.refuse(index, f"the failing node {edit.model!r} is not a model of this proposal; "
                                          "fix it by hand")
                continue
            error = "dbt build failed in CI on this model:\n" + quote_as_data("CI check output", edit.text)
            fixed = self.inner.repair(target, error, staging + marts)
            if fixed is None:
                self.result.refuse(index, f"the {self.name} brain does not rewrite SQL a check refused "
                                          f"({edit.model}); the LLM crew can, or fix it by hand")
                continue
            marts = [fixed if m.name == target.name else m for m in marts]
        return marts

    def test(self, plan: Plan, sources: list[SourceSpec], models: list[ModelSpec], profile: WarehouseProfile
             ) -> tuple[list[SourceSpec], list[ModelSpec], list[ExpectationSuiteSpec]]:
        """The inner quality role, then the column, measure, materialization and test edits."""
        sources, models, suites = self.inner.test(plan, sources, models, profile)
        models = _reconcile_with_exclusions(models, self._exclusions)
        models, suites = apply_model_edits(models, suites, self.original_marts, self._of(
            "rename_column", "drop_measure", "add_measure", "materialization", "add_test", "remove_test"), self.result)
        measures = list(plan.measures)
        for _, edit in self._of("rename_column", "drop_measure"):
            if edit.kind == "rename_column":
                measures = [m.model_copy(update={"name": edit.value}) if m.name == edit.column else m for m in measures]
            else:
                measures = [m for m in measures if m.name != edit.column]
        plan.measures = measures
        return sources, models, suites

    def govern(self, models: list[ModelSpec], profile: WarehouseProfile,
               policy: GovernancePolicy) -> tuple[list[ModelSpec], list[ColumnPolicy]]:
        """The inner governance role."""
        return self.inner.govern(models, profile, policy)

    def triage(self, build: BuildResult, models: list[ModelSpec], sources: list[SourceSpec], db_file: Path
               ) -> tuple[list[ModelSpec], list[SourceSpec], list[TriageDecision]]:
        """The inner triage."""
        return self.inner.triage(build, models, sources, db_file)

    def triage_suites(self, results: list[SuiteResult], suites: list[ExpectationSuiteSpec], db_file: Path
                      ) -> tuple[list[ExpectationSuiteSpec], list[TriageDecision]]:
        """The inner suite triage."""
        return self.inner.triage_suites(results, suites, db_file)

    def repair(self, model: ModelSpec, error: str, models: list[ModelSpec]) -> ModelSpec | None:
        """The inner repair."""
        return self.inner.repair(model, error, models)


def describe(edit: ChangeRequest) -> str:
    """What an applied change request did, in a reply."""
    return {
        "rename_column": f"renamed `{edit.column}` to `{edit.value}`",
        "drop_measure": f"dropped the measure `{edit.column}`",
        "add_measure": f"added the measure `{edit.column}`",
        "grain": f"changed the grain to {edit.value}",
        "filter": f"kept only rows with `{edit.column}` = '{edit.value}'",
        "breakdown": f"broke the mart down by {edit.column}",
        "materialization": f"materialized the mart as a {edit.value}",
        "add_test": f"added a `{edit.value}` test on `{edit.column}`",
        "remove_test": f"removed the `{edit.value}` test on `{edit.column}`",
        "exclude_rows": f"excluded rows where `{edit.column}` = '{edit.value}'",
        "repair": f"rewrote `{edit.model}` after the failing check",
    }[edit.kind]
