"""The roles' interface and the deterministic brain that implements it offline.

Both brains (this one and the CrewAI crew) return the same contract objects; the flow only
talks to :class:`Brain`.
"""

from __future__ import annotations

from typing import Protocol

from agents import governance, modeler, planner, quality, transformer
from dataeng_crew.contracts import ColumnPolicy, GovernancePolicy, ModelSpec, Plan, SourceSpec, WarehouseProfile


class Brain(Protocol):
    """What each role must answer. Every method returns contracts."""

    name: str

    def plan(self, request: str, profile: WarehouseProfile) -> Plan:
        """Planner: request → Plan."""

    def model(self, plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
        """Schema/modeling: sources and staging models."""

    def transform(self, plan: Plan, profile: WarehouseProfile, staging: list[ModelSpec]) -> list[ModelSpec]:
        """Transformation: intermediate and mart models."""

    def test(self, models: list[ModelSpec], profile: WarehouseProfile) -> list[ModelSpec]:
        """Quality: models with data tests."""

    def govern(self, models: list[ModelSpec], profile: WarehouseProfile,
               policy: GovernancePolicy) -> tuple[list[ModelSpec], list[ColumnPolicy]]:
        """Governance: column policies, and models tagged accordingly."""


class DeterministicBrain:
    """Profiling + rules: the embedded default when no LLM is configured."""

    name = "deterministic"

    def plan(self, request: str, profile: WarehouseProfile) -> Plan:
        """See :func:`agents.planner.plan`."""
        return planner.plan(request, profile)

    def model(self, plan: Plan, profile: WarehouseProfile) -> tuple[list[SourceSpec], list[ModelSpec]]:
        """See :func:`agents.modeler.model_sources`."""
        return modeler.model_sources(plan, profile)

    def transform(self, plan: Plan, profile: WarehouseProfile, staging: list[ModelSpec]) -> list[ModelSpec]:
        """See :func:`agents.transformer.transform`."""
        return transformer.transform(plan, profile)

    def test(self, models: list[ModelSpec], profile: WarehouseProfile) -> list[ModelSpec]:
        """See :func:`agents.quality.add_tests`."""
        return quality.add_tests(models, profile)

    def govern(self, models: list[ModelSpec], profile: WarehouseProfile,
               policy: GovernancePolicy) -> tuple[list[ModelSpec], list[ColumnPolicy]]:
        """See :mod:`agents.governance`."""
        policies = governance.classify(models, profile)
        return governance.apply_policies(models, policies, policy), policies
