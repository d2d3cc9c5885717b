"""The LLM brain: a CrewAI crew of five roles (planner, modeler, transformer, quality, governance).

Agents come from ``prompts/agents.yaml``, tasks from ``prompts/tasks.yaml``, long guidance from
``prompts/dbt_style.md`` and ``prompts/governance_policy.md``. Each task has ``output_pydantic=`` the
role's contract and a guardrail that parses ``output.raw`` (fenced, truncated or over-keyed JSON is sent
back with a precise error). The deterministic brain's draft is every task's starting point, and the
fallback when the provider is down (``on_error="fallback"``). The crew is a :class:`agents.brains.Brain`:
the flow, rendering, checks and publishing do not know which brain ran.

crewai is imported inside the methods (``agents`` modules are imported by the role registry, and
``dataeng-crew --help`` must stay fast).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew.agents.llm import ProviderError, offline_environment, redact, temp_storage
from dataeng_crew.contracts import (
    BuildResult,
    ColumnPolicy,
    Contract,
    ExpectationSuiteSpec,
    GovernancePolicy,
    ModelSpec,
    Plan,
    RoleUsage,
    SourceSpec,
    SuiteResult,
    TriageDecision,
    WarehouseProfile,
)
from dataeng_crew.errors import DataengCrewError
from dataeng_crew.tools.project_inventory import inventory_summary
from dataeng_crew.tools.prompt_safety import clean_text, quote_as_data

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
C = TypeVar("C", bound=BaseModel)


class ModelingOutput(Contract):
    """What the schema/modeling role answers: sources and staging models."""

    sources: list[SourceSpec]
    models: list[ModelSpec]


class TransformOutput(Contract):
    """What the transformation role answers: intermediate and mart models."""

    models: list[ModelSpec]


class QualityOutput(Contract):
    """What the quality role answers: sources and models with tests, one GX suite per model."""

    sources: list[SourceSpec]
    models: list[ModelSpec]
    suites: list[ExpectationSuiteSpec]


class GovernanceOutput(Contract):
    """What the governance role answers: tagged models and column policies."""

    models: list[ModelSpec]
    policies: list[ColumnPolicy]


# --------------------------------------------------------------------------- parsing and guardrails

FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


def extract_json(raw: str) -> str:
    """The JSON object in an answer: inside a ```json fence, after ``Final Answer:``, or the outermost braces."""
    text = raw.strip()
    fenced = FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    elif "Final Answer:" in text:
        text = text.split("Final Answer:", 1)[1].strip()
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object found in the answer; answer with one JSON object only")
    end = text.rfind("}")
    return text[start:end + 1] if end > start else text[start:]


def parse_contract(raw: str, model_cls: type[C]) -> C:
    """Parse an answer into ``model_cls``.

    Raises:
        ValueError: With a message precise enough to send back to the agent (position of a JSON error,
            every validation error with its location, unknown keys named).
    """
    text = extract_json(raw)
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the JSON is invalid or truncated ({exc.msg} at character {exc.pos} of {len(text)}); "
                         "answer again with the complete JSON object") from None
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:12]:
            loc = ".".join(str(p) for p in err["loc"])
            kind = "unknown key (not in the contract)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {kind}")
        raise ValueError(f"the JSON does not match {model_cls.__name__}: " + "; ".join(problems)) from None


def make_guardrail(model_cls: type[C], check: Callable[[C], list[str]] | None = None
                   ) -> Callable[[Any], tuple[bool, Any]]:
    """A CrewAI task guardrail: parse ``output.raw`` (``output.pydantic`` is None on the first attempt).

    On success it returns the cleaned JSON text, so CrewAI's conversion to ``output_pydantic`` is a plain
    parse (no extra LLM call). On failure the error goes back to the agent, which tries again.
    """
    def guardrail(output: Any) -> tuple[bool, Any]:
        try:
            obj = parse_contract(str(output.raw), model_cls)
        except ValueError as exc:
            return False, str(exc)
        problems = check(obj) if check else []
        if problems:
            return False, "; ".join(problems)
        return True, obj.model_dump_json()
    guardrail.__annotations__["return"] = tuple[bool, Any]  # CrewAI inspects it; a string annotation fails
    return guardrail


_CONVERTER: list[type] = []


def local_converter() -> type:
    """CrewAI ``converter_cls`` that converts answers to ``output_pydantic`` locally, never with the LLM.

    CrewAI 1.15 converts a retried answer BEFORE it runs the guardrail again: its default converter asks
    the LLM to restructure non-JSON text (an extra, unaccounted call) and a ValidationError there aborts
    the task instead of going back to the agent. The guardrail (strict contract on ``output.raw``) is the
    judge; this converter only parses, and reports failure as a ConverterError (the task keeps the raw text).
    """
    if _CONVERTER:
        return _CONVERTER[0]
    from crewai.utilities.converter import Converter, ConverterError

    class LocalConverter(Converter):
        def to_pydantic(self, current_attempt: int = 1) -> Any:  # noqa: ARG002 - CrewAI's signature
            try:
                return parse_contract(str(self.text), self.model)
            except ValueError as exc:
                return ConverterError(str(exc))

        def to_json(self, current_attempt: int = 1) -> Any:  # noqa: ARG002
            result = self.to_pydantic()
            return result if not isinstance(result, BaseModel) else result.model_dump_json()

    _CONVERTER.append(LocalConverter)
    return LocalConverter


def _layers(allowed: set[str]) -> Callable[[Any], list[str]]:
    def check(out: Any) -> list[str]:
        bad = [f"{m.name} has layer {m.layer!r}; this task writes {'/'.join(sorted(allowed))} models only"
               for m in out.models if m.layer not in allowed]
        names = [m.name for m in out.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        return bad + ([f"duplicate model names: {', '.join(dupes)}"] if dupes else []) + (
            ["no models"] if not out.models else [])
    return check


def keep_sql(inputs: list[ModelSpec], outputs: list[ModelSpec]) -> list[ModelSpec]:
    """Roles that do not write SQL (quality, governance) may not change it: SQL, layer, folder and the model's
    description stay the author's; a model the answer dropped stays as it was; models the answer invented are ignored."""
    answered = {m.name: m for m in outputs}
    kept = []
    for model in inputs:
        out = answered.get(model.name)
        kept.append(model if out is None else out.model_copy(update={
            "sql": model.sql, "layer": model.layer, "folder": model.folder, "materialization": model.materialization,
            "description": model.description}))
    return kept


def schema_summary(profile: WarehouseProfile) -> str:
    """The schema for prompts, cleaned and fenced as untrusted data: tables, rows, keys, columns and types, and
    the semantic catalog (facts, measures, dimensions, entities) the deterministic planner binds to."""
    tables = {clean_text(t.fqn, 200): {"rows": t.row_count, "keys": [clean_text(k) for k in t.candidate_keys],
                                       "columns": {clean_text(c.name): c.data_type for c in t.columns[:120]},
                                       # what the table is in the user's dbt project, and how to read it
                                       "origin": t.origin, "read_with": _read_with(t),
                                       "declared_keys": [clean_text(k) for k in t.declared_keys]}
              for t in profile.tables}
    fks = [clean_text(f"{fk.table}.{fk.column} -> {fk.ref_table}.{fk.ref_column}", 200) for fk in profile.foreign_keys]
    from dataeng_crew.agents.semantic_layer import layer_context

    data: dict = {"tables": tables, "foreign_keys": fks, "semantic_catalog": catalog_context(profile),
                  "semantic_layer": layer_context(profile)}
    if profile.inventory is not None:  # the project the proposal builds on: models, columns, conventions
        data["dbt_project"] = clean_text(inventory_summary(profile.inventory), 12_000)
    return quote_as_data("warehouse schema", data)


def _read_with(table) -> str:  # noqa: ANN001 - TableProfile
    if table.origin in ("model", "seed") and table.ref_name:
        return f"ref('{table.ref_name}')"
    if table.origin == "source" and table.ref_name and "." in table.ref_name:
        src, name = table.ref_name.split(".", 1)
        return f"source('{src}', '{name}')"
    return "a new source + staging model"


def catalog_context(profile: WarehouseProfile) -> dict:
    """The semantic catalog the deterministic planner binds to (facts, measures, dimensions, entities), cleaned."""
    from dataeng_crew.agents.catalog import build_catalog

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {clean_text(str(k), 200): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return clean_text(value, 200) if isinstance(value, str) else value

    data = build_catalog(profile).model_dump(exclude={"foreign_keys"})
    return clean(data)  # type: ignore[return-value]


def load_prompts() -> tuple[dict, dict, str, str]:
    """(agents, tasks, dbt style guide, governance policy) from ``prompts/``."""
    agents = yaml.safe_load((PROMPTS / "agents.yaml").read_text())
    tasks = yaml.safe_load((PROMPTS / "tasks.yaml").read_text())
    return agents, tasks, (PROMPTS / "dbt_style.md").read_text(), (PROMPTS / "governance_policy.md").read_text()


# --------------------------------------------------------------------------- the brain


class CrewBrain:
    """The CrewAI crew behind the :class:`agents.brains.Brain` interface.

    Args:
        llm: A ``crewai.BaseLLM`` (see :func:`agents.llm.make_llm`; tests pass a scripted one).
        on_error: ``fallback``: a role whose provider fails is played by the deterministic brain (and the
            report says so); ``fail``: the proposal stops with a :class:`ProviderError`.
        project: The dbt project, for the read-project-files tool.
        label: ``provider/model`` for reports.
        storage_dir: CrewAI's storage (default: a temp dir).
        guardrail_retries: Attempts the agent gets after an invalid answer.
    """

    def __init__(self, llm: Any, on_error: str = "fallback", project: Path | None = None, label: str = "",
                 storage_dir: Path | None = None, guardrail_retries: int = 2) -> None:
        self.llm = llm
        self.on_error = on_error
        self.project = project
        self.label = label or getattr(llm, "label", "") or getattr(llm, "model", "llm")
        self.name = f"crew ({self.label})"
        self.storage_dir = storage_dir or Path(temp_storage())
        self.guardrail_retries = guardrail_retries
        offline_environment(self.storage_dir)
        self.fallback = DeterministicBrain()
        self.agents_cfg, self.tasks_cfg, self.dbt_style, self.governance_policy = load_prompts()
        self.usage: dict[str, RoleUsage] = {}
        self.notes: dict[str, str] = {}
        self.provider_down: str | None = None
        self._profile: WarehouseProfile | None = None
        self._request = ""

    # ---- accounting

    def usage_report(self) -> list[RoleUsage]:
        """LLM calls, tokens, retries, wall time and fallbacks per role, in the order roles ran."""
        return list(self.usage.values())

    def explain(self, stage: str, result: object) -> str:
        """The run-trace thought for a role: who answered, and the rules' reasoning for the draft."""
        role = {"plan": "planner", "model": "modeler", "transform": "transformer", "test": "quality",
                "govern": "governance"}.get(stage, stage)
        note = self.notes.get(role, "")
        return (note + " " + self.fallback.explain(stage, result)).strip()

    # ---- the machinery

    def _agent(self, role: str) -> Any:
        from crewai import Agent

        cfg = self.agents_cfg[role]
        return Agent(role=cfg["role"], goal=cfg["goal"], backstory=cfg["backstory"], llm=self.llm,
                     tools=self._tools(role), allow_delegation=False, verbose=False, max_iter=6,
                     max_retry_limit=0, respect_context_window=True)

    def _tools(self, role: str) -> list[Any]:
        from dataeng_crew.tools.crewai_tools import tools_for

        return tools_for(role, self._profile, self.project)

    def _kickoff(self, role: str, task_key: str, output_cls: type[C], inputs: dict[str, Any],
                 check: Callable[[C], list[str]] | None = None) -> C:
        from crewai import Crew, Process, Task

        offline_environment(self.storage_dir)
        before, tempfile.tempdir = tempfile.tempdir, str(self.storage_dir)  # CrewAI's lock files: in its storage
        try:  # (removed at exit), not `crewai:*.lock` left in the system temp dir
            cfg = self.tasks_cfg[task_key]
            agent = self._agent(role)
            task = Task(description=cfg["description"], expected_output=cfg["expected_output"], agent=agent,
                        output_pydantic=output_cls, converter_cls=local_converter(),
                        guardrail=make_guardrail(output_cls, check), guardrail_max_retries=self.guardrail_retries)
            crew = Crew(agents=[agent], tasks=[task], process=Process.sequential, verbose=False, memory=False,
                        tracing=False)
            result = crew.kickoff(inputs={"request": self._request, **inputs})
        finally:
            tempfile.tempdir = before
        return parse_contract(str(result.raw), output_cls)  # the guardrail's cleaned JSON, strict contract

    def _role(self, role: str, task_key: str, output_cls: type[C], inputs: dict[str, Any],
              draft: Callable[[], C], check: Callable[[C], list[str]] | None = None) -> C:
        """Run one role's task on the crew with the deterministic draft as context; fall back on failure."""
        usage = self.usage.setdefault(role, RoleUsage(role=role, llm=self.label))
        try:
            baseline: C | None = draft()
            draft_error: DataengCrewError | None = None
        except DataengCrewError as exc:  # no rule covers it: the LLM starts from the profile alone
            baseline, draft_error = None, exc
        if self.provider_down:
            return self._fall_back(role, usage, f"provider down earlier in this run ({self.provider_down})",
                                   baseline, draft_error)
        inputs = {**inputs, "draft": baseline.model_dump_json() if baseline is not None else
                  "(none: no rule covers this request)", "dbt_style": self.dbt_style,
                  "governance_policy": self.governance_policy}
        meter = getattr(self.llm, "meter", None)
        before = meter.snapshot() if meter else (0, 0, 0, 0)
        started = time.perf_counter()
        try:
            out = self._kickoff(role, task_key, output_cls, inputs, check)
            self.notes[role] = f"{self.label} answered, starting from the deterministic draft."
            return out
        except ProviderError as exc:
            self.provider_down = str(exc)
            return self._fall_back(role, usage, redact(str(exc), 300), baseline, draft_error, exc)
        except DataengCrewError:
            raise
        except Exception as exc:  # noqa: BLE001 - CrewAI raises plain Exception when guardrails are exhausted
            provider = _provider_error_in(exc)
            if provider is not None:
                self.provider_down = str(provider)
                return self._fall_back(role, usage, redact(str(provider), 300), baseline, draft_error, provider)
            return self._fall_back(role, usage, f"no valid answer: {redact(str(exc), 300)}", baseline, draft_error,
                                   ProviderError(f"{self.label} gave no valid {output_cls.__name__}: "
                                                 f"{redact(str(exc), 300)}"))
        finally:
            self._account(usage, before, started)

    def _account(self, usage: RoleUsage, before: tuple[int, int, int, int], started: float) -> None:
        """Add the LLM's calls, tokens and retries since ``before`` and the wall time since ``started``."""
        meter = getattr(self.llm, "meter", None)
        after = meter.snapshot() if meter else (0, 0, 0, 0)
        usage.calls += after[0] - before[0]
        usage.tokens_in += after[1] - before[1]
        usage.tokens_out += after[2] - before[2]
        usage.retries += after[3] - before[3]
        usage.seconds = round(usage.seconds + time.perf_counter() - started, 3)

    def _fall_back(self, role: str, usage: RoleUsage, reason: str, baseline: C | None,
                   draft_error: DataengCrewError | None, exc: Exception | None = None) -> C:
        usage.fallback = reason
        self.notes[role] = f"Deterministic brain played this role: {reason}."
        if self.on_error == "fail":
            raise exc if isinstance(exc, ProviderError) else ProviderError(f"{role}: {reason}")
        if baseline is None:
            raise draft_error or ProviderError(f"{role}: {reason}")
        return baseline

    # ---- the Brain interface

    def plan(self, request: str, profile: WarehouseProfile) -> Plan:
        """Planner: request → Plan (the request is kept verbatim, tables must exist)."""
        self._profile, self._request = profile, request

        def check(plan: Plan) -> list[str]:
            from dataeng_crew.agents.metric_planner import query_problems

            problems = [f"source table {t!r} is not in the warehouse" for t in plan.source_tables if not profile.table(t)]
            if plan.kind == "metric":
                problems += (["a metric plan needs its metric query ('query')"] if plan.query is None
                             else query_problems(plan.query, profile))
            return problems

        plan = self._role("planner", "plan", Plan, {"schema": schema_summary(profile)},
                          lambda: self.fallback.plan(request, profile), check)
        return plan.model_copy(update={"request": request})

    def model(self, plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
        """Schema/modeling: sources and staging models."""
        def draft() -> ModelingOutput:
            sources, models = self.fallback.model(plan, profile)
            return ModelingOutput(sources=sources, models=models)

        out = self._role("modeler", "model", ModelingOutput,
                         {"plan": plan.model_dump_json(), "schema": schema_summary(profile)}, draft,
                         _layers({"staging"}))
        return out.sources, out.models

    def transform(self, plan: Plan, profile: WarehouseProfile, staging: list[ModelSpec]) -> list[ModelSpec]:
        """Transformation: intermediate and mart models."""
        if plan.kind == "staging" or not plan.mart_name or plan.kind == "metric":
            return self.fallback.transform(plan, profile, staging)  # a metric query has one renderer
        staged = "\n".join(f"- {m.name}: " + ", ".join(f"{c.name} {c.data_type or ''}".strip() for c in m.columns)
                           for m in staging)
        out = self._role("transformer", "transform", TransformOutput, {"plan": plan.model_dump_json(),
                         "staging": staged}, lambda: TransformOutput(models=self.fallback.transform(plan, profile, staging)),
                         _layers({"intermediate", "marts"}))
        return out.models

    def test(self, plan: Plan, sources: list[SourceSpec], models: list[ModelSpec], profile: WarehouseProfile
             ) -> tuple[list[SourceSpec], list[ModelSpec], list[ExpectationSuiteSpec]]:
        """Quality: tests and suites (the models' SQL stays the author's)."""
        def draft() -> QualityOutput:
            s, m, suites = self.fallback.test(plan, sources, models, profile)
            return QualityOutput(sources=s, models=m, suites=suites)

        out = self._role("quality", "test", QualityOutput, {"schema": schema_summary(profile)}, draft)
        kept = keep_sql(models, out.models)
        names = {m.name for m in kept}
        return out.sources or sources, kept, [s for s in out.suites if s.model in names]

    def govern(self, models: list[ModelSpec], profile: WarehouseProfile,
               policy: GovernancePolicy) -> tuple[list[ModelSpec], list[ColumnPolicy]]:
        """Governance: column policies and tags (the models' SQL stays the author's)."""
        def draft() -> GovernanceOutput:
            m, policies = self.fallback.govern(models, profile, policy)
            return GovernanceOutput(models=m, policies=policies)

        out = self._role("governance", "govern", GovernanceOutput, {"policy": policy.model_dump_json()}, draft)
        return keep_sql(models, out.models), out.policies

    def repair(self, model: ModelSpec, error: str, models: list[ModelSpec]) -> ModelSpec | None:
        """The author role rewrites a refused model; None when it cannot (provider down, no valid answer)."""
        role = "modeler" if model.layer == "staging" else "transformer"
        if self.provider_down:
            return None
        siblings = "\n".join(f"- {m.name}: " + ", ".join(c.name for c in m.columns) for m in models if m.name != model.name)
        stage = "dbt build" if error.startswith("dbt build") else "sqlglot"

        def check(fixed: ModelSpec) -> list[str]:
            return [] if fixed.name == model.name else [f"keep the model name {model.name!r}"]

        usage = self.usage.setdefault(role, RoleUsage(role=role, llm=self.label))
        meter = getattr(self.llm, "meter", None)
        before = meter.snapshot() if meter else (0, 0, 0, 0)
        started = time.perf_counter()
        try:
            fixed = self._kickoff(role, "repair", ModelSpec, {
                "stage": stage, "error": error, "model": model.model_dump_json(), "siblings": siblings,
                "schema": schema_summary(self._profile) if self._profile else "", "dbt_style": self.dbt_style}, check)
        except Exception as exc:  # noqa: BLE001 - a repair that fails leaves the model refused
            provider = exc if isinstance(exc, ProviderError) else _provider_error_in(exc)
            if provider is not None:
                self.provider_down = str(provider)
            return None
        finally:
            self._account(usage, before, started)
        return _keep_annotations(model, fixed)

    def triage(self, build: BuildResult, models: list[ModelSpec], sources: list[SourceSpec], db_file: Path
               ) -> tuple[list[ModelSpec], list[SourceSpec], list[TriageDecision]]:
        """Failing data tests: the deterministic triage (it reads the failing rows)."""
        return self.fallback.triage(build, models, sources, db_file)

    def triage_suites(self, results: list[SuiteResult], suites: list[ExpectationSuiteSpec], db_file: Path
                      ) -> tuple[list[ExpectationSuiteSpec], list[TriageDecision]]:
        """Failing expectations: the deterministic triage."""
        return self.fallback.triage_suites(results, suites, db_file)


def _keep_annotations(current: ModelSpec, fixed: ModelSpec) -> ModelSpec:
    """A repaired model keeps the tests, tags, meta and grants quality and governance gave the original."""
    old = {c.name: c for c in current.columns}
    columns = [c.model_copy(update={"tests": old[c.name].tests, "meta": old[c.name].meta, "tags": old[c.name].tags})
               if c.name in old else c for c in fixed.columns]
    return fixed.model_copy(update={"columns": columns, "tests": current.tests, "tags": current.tags,
                                    "meta": current.meta, "grants": current.grants,
                                    "contract_enforced": current.contract_enforced})


def _provider_error_in(exc: BaseException) -> ProviderError | None:
    """A ProviderError anywhere in the exception's chain (CrewAI may wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ProviderError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
