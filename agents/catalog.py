"""The semantic catalog: what a warehouse *means*, inferred from its profiles (never from table names).

Keys and foreign keys come from profiling (``tools/warehouse.py``: uniqueness, inclusion, name affinity
across naming schemes; declared ones win). On top of them this module names:

- **facts**: every table with an event time (a timestamp/date, a text timestamp, or year/month/day parts),
  with its row count and the measures its columns support by meaning (money, quantity, duration,
  distance), the filters its flags imply and the dimensions reachable over foreign keys (up to 3 hops);
- **entities**: tables with a key that facts reference;
- the **sales fact**: the most sale-like fact, which "sales"/"revenue" bind to.

Both brains read it: the deterministic planner (capabilities, refusals) and the LLM crew (its context).
"""

from __future__ import annotations

from dataeng_crew.agents.semantics import (
    bind_sales,
    date_parts,
    entity_name,
    event_time,
    is_minor_units,
    measure_meaning,
    plural,
    sale_likeness,
    singular,
)
from dataeng_crew.contracts import ForeignKey, CatalogEntity, CatalogFact, CatalogMeasure, SemanticCatalog, TableProfile, WarehouseProfile
from dataeng_crew.tools.warehouse import primary_key

MAX_HOPS = 3


def reachable(table: TableProfile, profile: WarehouseProfile, hops: int = MAX_HOPS) -> list[tuple[TableProfile, int]]:
    """Tables reachable from ``table`` over foreign keys (child → parent), with their distance, nearest first."""
    seen = {table.name: 0}
    frontier = [table]
    for depth in range(1, hops + 1):
        nxt = []
        for t in frontier:
            for fk in profile.foreign_keys:
                parent = profile.table(fk.ref_table) if fk.table == t.name else None
                if parent is not None and parent.name not in seen:
                    seen[parent.name] = depth
                    nxt.append(parent)
        frontier = nxt
    return [(profile.table(n), d) for n, d in seen.items() if d > 0]  # type: ignore[misc]


def fk_path(fact: TableProfile, table: TableProfile, profile: WarehouseProfile, max_hops: int = 3) -> list[ForeignKey]:
    """The shortest chain of foreign keys from ``fact`` to ``table`` (child → parent), or ``[]``."""
    frontier: list[tuple[str, list]] = [(fact.name, [])]
    seen = {fact.name}
    for _ in range(max_hops):
        nxt = []
        for name, path in frontier:
            for fk in profile.foreign_keys:
                if fk.table == name and fk.ref_table not in seen:
                    if fk.ref_table == table.name:
                        return path + [fk]
                    seen.add(fk.ref_table)
                    nxt.append((fk.ref_table, path + [fk]))
        frontier = nxt
    return []


def _measures(table: TableProfile) -> list[CatalogMeasure]:
    out = [CatalogMeasure(name=f"{plural(singular(entity_name(table.name)))}_count", meaning="count",
                          expression="count(*)", source=table.name)]
    for col in table.columns:
        meaning = measure_meaning(col)
        if meaning is None:
            continue
        note = "integer minor units (cents): divided by 100" if is_minor_units(col) else ""
        out.append(CatalogMeasure(name=col.name, meaning=meaning, expression=f"sum({col.name})",  # type: ignore[arg-type]
                                  source=f"{table.name}.{col.name}", note=note))
    return out


def build_catalog(profile: WarehouseProfile) -> SemanticCatalog:
    """Infer the semantic catalog of a profiled warehouse.

    Args:
        profile: The warehouse profile (tables, candidate keys, foreign keys).

    Returns:
        Keys, foreign keys, facts with measures and dimensions, entities and the sales fact.
    """
    from dataeng_crew.agents.planner import FACT_SYNONYMS, dimension_candidates, exclusion_flags, entity_words

    keys = {t.name: k for t in profile.tables if (k := primary_key(t))}
    binding = bind_sales(profile)
    facts = []
    for t in profile.tables:
        parts = date_parts(t)
        when = event_time(t)
        if when is None and parts is None:
            continue
        measures = _measures(t)
        if binding is not None and binding.orders.name == t.name:
            if binding.lines is not None:
                value = (f"sum({binding.line_quantity.name} × {binding.line_price.name})" if binding.line_quantity
                         else f"sum({binding.line_price.name}"  # type: ignore[union-attr]
                         + (f" × (1 − {binding.line_rate.name}))" if binding.line_rate else ")"))
                measures.append(CatalogMeasure(name="gross_sales", meaning="money", expression=value,
                                               source=binding.lines.name, note="line items per order"))
            elif binding.order_amount is not None:
                measures.append(CatalogMeasure(name="gross_sales", meaning="money",
                                               expression=f"sum({binding.order_amount.name})",
                                               source=f"{t.name}.{binding.order_amount.name}"))
        dims = [(d, c) for d, c in dimension_candidates([t, *[p for p, _ in reachable(t, profile)]])]
        words = sorted({w for n in entity_words(t.name) for w in (n, plural(n))}
                       | {s for n in entity_words(t.name) for s in FACT_SYNONYMS.get(plural(n), ())})
        facts.append(CatalogFact(
            table=t.name, key=keys.get(t.name), synonyms=words, sale_like=float(sale_likeness(t)),
            event_time="/".join(c.name for c in parts) if parts else when.name,  # type: ignore[union-attr]
            measures=measures, dimensions=[f"{d.name}.{c.name}" for d, c in dims][:40],
            filters=[f"{t.name}.{c.name} (test, cancelled or deleted rows)" for c in exclusion_flags(t)]))
    entities = []
    for t in profile.tables:
        refs = [f"{fk.table}.{fk.column}" for fk in profile.foreign_keys if fk.ref_table == t.name]
        if refs and t.name in keys:
            entities.append(CatalogEntity(table=t.name, key=keys[t.name], referenced_by=refs))
    return SemanticCatalog(keys=keys, foreign_keys=list(profile.foreign_keys), facts=facts, entities=entities,
                           sales_fact=binding.orders.name if binding else None)


def describe(catalog: SemanticCatalog, limit: int = 8) -> str:
    """A few lines naming candidate facts, measures, dimensions and entities (for refusals)."""
    facts = "; ".join(
        f"{f.table} (dated by {f.event_time}; measures: {', '.join(m.name for m in f.measures[:6])})"
        for f in catalog.facts[:limit]) or "none (no table has an event time)"
    dims = sorted({d for f in catalog.facts for d in f.dimensions})[: 3 * limit]
    entities = ", ".join(e.table for e in catalog.entities[:limit]) or "none"
    return (f"Facts: {facts}.\nSales fact: {catalog.sales_fact or 'none (no fact with a money value)'}.\n"
            f"Dimensions: {', '.join(dims) or 'none'}.\nEntities: {entities}.")
