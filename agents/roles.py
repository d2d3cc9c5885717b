"""Role registry: each role registers what it builds and, optionally, the step it plays in a proposal.

A role module calls :func:`register_role` at import. The flow runs every registered step in ``order``
and `dataeng-crew capabilities` lists every registered role, so adding a role is adding a module in
``agents/`` — neither the flow nor the CLI changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from dataeng_crew.contracts import (
    ColumnPolicy,
    ExpectationSuiteSpec,
    GovernancePolicy,
    ModelSpec,
    Plan,
    SourceSpec,
    WarehouseProfile,
)


@dataclass
class RoleContext:
    """What the role steps of one proposal read and write, in order."""

    request: str
    profile: WarehouseProfile
    brain: Any
    policy: GovernancePolicy
    plan: Plan | None = None
    sources: list[SourceSpec] = field(default_factory=list)
    staging: list[ModelSpec] = field(default_factory=list)
    marts: list[ModelSpec] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    suites: list[ExpectationSuiteSpec] = field(default_factory=list)
    policies: list[ColumnPolicy] = field(default_factory=list)


# a step runs the role's brain on the context and returns (thought, observation) for the run trace
Step = Callable[[RoleContext], tuple[str, str]]


@dataclass(frozen=True)
class RoleInfo:
    """A registered role."""

    name: str
    builds: str
    examples: tuple[str, ...] = ()
    order: int = 100
    stage: str = ""
    action: str = ""
    step: Step | None = None


_ROLES: dict[str, RoleInfo] = {}


def register_role(name: str, builds: str, examples: tuple[str, ...] = (), *, order: int = 100, stage: str = "",
                  action: str = "", step: Step | None = None) -> RoleInfo:
    """Register (or replace) a role; ``step`` makes it part of every proposal, run in ``order``."""
    _ROLES[name] = RoleInfo(name=name, builds=builds, examples=examples, order=order, stage=stage or name,
                            action=action or name, step=step)
    return _ROLES[name]


def registered_roles() -> list[RoleInfo]:
    """Every role registered by a module of the ``agents`` package, in step order."""
    import dataeng_crew.agents as agents

    for module in pkgutil.iter_modules(agents.__path__):
        importlib.import_module(f"{agents.__name__}.{module.name}")
    return sorted(_ROLES.values(), key=lambda r: (r.order, r.name))


def explain(brain: Any, key: str, result: Any) -> str:
    """The brain's reasoning for ``result`` (empty when the brain keeps none)."""
    reason = getattr(brain, "explain", None)
    return reason(key, result) if callable(reason) else ""
