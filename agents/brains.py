"""The roles' interface and the deterministic brain that implements it offline.

Both brains (this one and the CrewAI crew) return the same contract objects; the flow only
talks to :class:`Brain`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from dataeng_crew.agents import governance, modeler, planner, quality, reasoning, transformer, triage
from dataeng_crew.contracts import (
    BuildResult,
    ColumnPolicy,
    ExpectationSuiteSpec,
    GovernancePolicy,
    ModelSpec,
    Plan,
    SourceSpec,
    SuiteResult,
    TriageDecision,
    WarehouseProfile,
)


class Brain(Protocol):
    """What each role must answer. Every method returns contracts."""

    name: str

    def plan(self, request: str, profile: WarehouseProfile) -> Plan:
        """Planner: request → Plan."""

    def model(self, plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
        """Schema/modeling: sources and staging models."""

    def transform(self, plan: Plan, profile: WarehouseProfile, staging: list[ModelSpec]) -> list[ModelSpec]:
        """Transformation: intermediate and mart models."""

    def test(self, plan: Plan, sources: list[SourceSpec], models: list[ModelSpec], profile: WarehouseProfile
             ) -> tuple[list[SourceSpec], list[ModelSpec], list[ExpectationSuiteSpec]]:
        """Quality: sources and models with data tests, and one GX suite per model."""

    def govern(self, models: list[ModelSpec], profile: WarehouseProfile,
               policy: GovernancePolicy) -> tuple[list[ModelSpec], list[ColumnPolicy]]:
        """Governance: column policies, and models tagged accordingly."""

    def triage(self, build: BuildResult, models: list[ModelSpec], sources: list[SourceSpec], db_file: Path
               ) -> tuple[list[ModelSpec], list[SourceSpec], list[TriageDecision]]:
        """Quality: decide about generated tests that failed on the real data."""

    def triage_suites(self, results: list[SuiteResult], suites: list[ExpectationSuiteSpec], db_file: Path
                      ) -> tuple[list[ExpectationSuiteSpec], list[TriageDecision]]:
        """Quality: decide about expectations that failed on the built tables."""

    def repair(self, model: ModelSpec, error: str, models: list[ModelSpec]) -> ModelSpec | None:
        """The role that wrote ``model`` fixes it after sqlglot or dbt refused it; None = cannot repair."""


class DeterministicBrain:
    """Profiling + rules: the embedded default when no LLM is configured."""

    name = "deterministic"

    def explain(self, stage: str, result: object) -> str:
        """The rules' reasoning for the run trace; see :mod:`agents.reasoning`."""
        return reasoning.explain(stage, result)

    def plan(self, request: str, profile: WarehouseProfile) -> Plan:
        """See :func:`agents.planner.plan`."""
        return planner.plan(request, profile)

    def model(self, plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
        """See :func:`agents.modeler.model_sources`."""
        return modeler.model_sources(plan, profile)

    def transform(self, plan: Plan, profile: WarehouseProfile, staging: list[ModelSpec]) -> list[ModelSpec]:
        """See :func:`agents.transformer.transform`."""
        return transformer.transform(plan, profile)

    def test(self, plan: Plan, sources: list[SourceSpec], models: list[ModelSpec], profile: WarehouseProfile
             ) -> tuple[list[SourceSpec], list[ModelSpec], list[ExpectationSuiteSpec]]:
        """See :mod:`agents.quality`."""
        models = quality.add_tests(models, profile, plan)
        return quality.source_tests(sources, profile), models, quality.expectation_suites(models, profile, plan)

    def govern(self, models: list[ModelSpec], profile: WarehouseProfile,
               policy: GovernancePolicy) -> tuple[list[ModelSpec], list[ColumnPolicy]]:
        """See :mod:`agents.governance`."""
        policies = governance.classify(models, profile)
        return governance.apply_policies(models, policies, policy), policies

    def triage(self, build: BuildResult, models: list[ModelSpec], sources: list[SourceSpec], db_file: Path
               ) -> tuple[list[ModelSpec], list[SourceSpec], list[TriageDecision]]:
        """See :func:`agents.triage.triage`."""
        return triage.triage(build, models, sources, db_file)

    def triage_suites(self, results: list[SuiteResult], suites: list[ExpectationSuiteSpec], db_file: Path
                      ) -> tuple[list[ExpectationSuiteSpec], list[TriageDecision]]:
        """See :func:`agents.triage.triage_suites`."""
        return triage.triage_suites(results, suites, db_file)

    def repair(self, model: ModelSpec, error: str, models: list[ModelSpec]) -> ModelSpec | None:
        """Rules do not rewrite refused SQL: None (the proposal fails as before)."""
        return None
