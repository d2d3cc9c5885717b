"""What the crew can do: registered roles, example requests and, given a warehouse, concrete suggestions."""

from __future__ import annotations

from typing import Any

from dataeng_crew.agents.planner import GRAIN_ADJECTIVE, _plans
from dataeng_crew.agents.roles import registered_roles
from dataeng_crew.agents.semantics import bind_sales
from dataeng_crew.contracts import WarehouseProfile


def suggestions(profile: WarehouseProfile) -> list[dict[str, str]]:
    """Requests that would work on ``profile``, each with what it would be built from."""
    out = []
    binding = bind_sales(profile)
    if binding is not None:
        o = binding.orders.name
        if binding.lines is not None and binding.line_quantity is not None:
            gross = f"{binding.lines.name}.{binding.line_quantity.name} × {binding.line_price.name}"  # type: ignore[union-attr]
        elif binding.lines is not None and binding.line_amount:
            gross = f"{binding.lines.name}.{binding.line_price.name}" + (  # type: ignore[union-attr]
                f" × (1 − {binding.line_rate.name})" if binding.line_rate else "")
        elif binding.lines is not None:
            gross = f"{binding.lines.name}.{binding.line_price.name} per order"  # type: ignore[union-attr]
        else:
            gross = f"{o}.{binding.order_amount.name}"  # type: ignore[union-attr]
        refunds = f"; refunds from {binding.refunds.name}.{binding.refund_amount.name}" if binding.refunds else ""  # type: ignore[union-attr]
        for adjective in GRAIN_ADJECTIVE.values():
            if _plans(f"{adjective}_sales mart", profile):  # only what propose plans is suggested
                out.append({"request": f"{adjective}_sales mart",
                            "from": f"{o}.{binding.order_time.name}; gross sales from {gross}{refunds}"})
    from dataeng_crew.agents.planner import capabilities as buildable  # breakdowns, filters, entity marts

    listed = {o["request"] for o in out}
    for request in buildable(profile):
        if request not in listed and request != "staging models" and not request.startswith("daily_"):
            out.append({"request": request, "from": _source_of(request, profile)})
    out.append({"request": "staging models",
                "from": f"{len(profile.tables)} tables: " + ", ".join(t.name for t in profile.tables[:12])})
    return out


def _source_of(request: str, profile: WarehouseProfile) -> str:
    """What the planner would build ``request`` from: its first interpretation."""
    from dataeng_crew.agents.planner import plan
    from dataeng_crew.errors import RequestError

    try:
        p = plan(request, profile)
    except RequestError as exc:  # pragma: no cover - capabilities only lists what plans
        return str(exc).splitlines()[0]
    return f"{p.mart_name}: {p.interpretations[0] if p.interpretations else ''}"


def capabilities(profile: WarehouseProfile | None = None) -> dict[str, Any]:
    """Roles, what each builds, example requests, and suggestions for ``profile`` when given."""
    from dataeng_crew.agents.planner import PATTERNS, REFUSED

    data: dict[str, Any] = {"roles": [{"name": r.name, "builds": r.builds, "examples": list(r.examples)}
                                      for r in registered_roles()],
                            "patterns": list(PATTERNS), "refused": list(REFUSED)}
    if profile is not None:
        data["warehouse"] = profile.path
        data["suggestions"] = suggestions(profile)
    return data
