"""Role registry: each role registers what it builds, so `capabilities` can explain the crew.

A role module calls :func:`register_role` at import; the CLI lists whatever is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RoleInfo:
    """What a role does, for `dataeng-crew capabilities`."""

    name: str
    builds: str
    examples: tuple[str, ...] = field(default=())


_ROLES: dict[str, RoleInfo] = {}


def register_role(name: str, builds: str, examples: tuple[str, ...] = ()) -> RoleInfo:
    """Register (or replace) a role; returns its info."""
    _ROLES[name] = RoleInfo(name=name, builds=builds, examples=examples)
    return _ROLES[name]


def registered_roles() -> list[RoleInfo]:
    """Every registered role, in registration order (importing the role modules first)."""
    from agents import governance, modeler, planner, quality, transformer  # noqa: F401 - they register

    order = ["planner", "modeler", "transformer", "quality", "governance"]
    return sorted(_ROLES.values(), key=lambda r: (order.index(r.name) if r.name in order else len(order), r.name))
