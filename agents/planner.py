"""Planner role, deterministic brain: request text + warehouse profile → :class:`Plan`."""

from __future__ import annotations

import re

from dataeng_crew.agents.semantics import (
    SalesBinding,
    date_parts,
    sales_candidates,
    measure_meaning,
    base_type,
    bind_sales,
    entity_name,
    event_time,
    is_load_timestamp,
    is_minor_units,
    plural,
    singular,
    snake_case,
    is_money,
    is_temporal,
    referenced_table,
    staged_name,
)
from dataeng_crew.agents import project_plan
from dataeng_crew.agents.semantic_layer import same_word
from dataeng_crew.agents.roles import RoleContext, explain, register_role
from dataeng_crew.contracts import (
    ColumnProfile,
    ForeignKey,
    GovernancePolicy,
    Grain,
    MeasureSpec,
    Plan,
    TableProfile,
    WarehouseProfile,
)
from dataeng_crew.errors import AlreadyAnswered, RequestError
from dataeng_crew.tools.project_inventory import row_key, upstream_models
from dataeng_crew.tools.warehouse import bare_name, column_prefix, primary_key


GRAIN_WORDS = {
    "daily": Grain.day, "day": Grain.day, "weekly": Grain.week, "week": Grain.week,
    "monthly": Grain.month, "month": Grain.month, "quarterly": Grain.quarter, "quarter": Grain.quarter,
    "yearly": Grain.year, "year": Grain.year, "annual": Grain.year,
}
GRAIN_ADJECTIVE = {Grain.day: "daily", Grain.week: "weekly", Grain.month: "monthly",
                   Grain.quarter: "quarterly", Grain.year: "yearly"}
SALES_SUBJECTS = {"sales": "sales", "sale": "sales", "revenue": "revenue", "orders": "orders", "order": "orders"}
AOV_WORDS = {"average", "avg", "value", "aov"}  # "average order value": a measure of the sales mart
FILLER = {"mart", "marts", "model", "models", "table", "fct", "fact", "a", "an", "the", "build", "create",
          "make", "me", "please", "of", "for", "report", "dashboard", "new"}
MAX_REQUEST_CHARS = 500
PER_PERIOD = re.compile(r"\b(by|per|each|every|a)\s+(day|week|month|quarter|year)\b", re.IGNORECASE)
WORD = re.compile(r"[^\W_]+", re.UNICODE)  # Unicode words: "für österreich" stays two words


def request_words(text: str) -> list[str]:
    """The words of a request, lower-cased, in any script ("仅限中国", "für", "россии" are words)."""
    return [w for w in WORD.findall(text.lower()) if w]
# subject word -> (mart subject, regex on the entity a table holds, preferred event-time columns)
EVENT_SUBJECTS = {
    "signups": ("signups", r"customers?|users?|accounts?|members?|subscribers?",
                ("signed_up_at", "registered_at", "created_at", "joined_at")),
    "signup": ("signups", r"customers?|users?|accounts?|members?|subscribers?",
               ("signed_up_at", "registered_at", "created_at", "joined_at")),
    "registrations": ("signups", r"customers?|users?|accounts?|members?", ("registered_at", "created_at")),
    "refunds": ("refunds", r"refunds?|returns?", ("refunded_at", "processed_at", "created_at")),
    "payments": ("payments", r"payments?", ("paid_at", "processed_at", "created_at")),
}
STAGING_WORDS = {"staging", "stage", "sources", "source", "raw", "all", "tables", "layer", "everything"}


PATTERNS = (
    "<daily|weekly|monthly|quarterly|yearly> <sales|revenue|orders> [mart] — from the most sale-like fact (money "
    "from line items or its own amount)",
    "<grain> <signups|refunds|payments> — row counts and money per period of an event table",
    "<grain> <fact> — any table with an event time named by the request (flights, invoices, bookings…): row "
    "counts and sums by meaning (money, quantity, duration, distance) per period",
    "<grain> <subject> by <column> — breakdown by a column of the fact, a table it references, or its line "
    "items / payments (allocated by value share)",
    "<grain> <subject> for <column> <value> — filter on a column of the fact",
    "<entity> mart | dim <entity> [with lifetime value] — one row per entity with aggregates of its facts",
    "staging models | stage <table>",
)
REFUSED = (
    "breakdowns below the order for entity marts; breakdowns more than 3 foreign-key hops away",
    "several grains, several subjects or several breakdowns in one request",
    "filters with operators other than equality, date ranges, top-N, ratios and custom formulas",
    "marts over tables without a primary key or an event time",
)


def _words(col: ColumnProfile, table: TableProfile) -> str:
    """A column as an analyst would type it: without the table's prefix, words spaced."""
    return bare_name(col.name, column_prefix([c.name for c in table.columns])).replace("_", " ")


def capabilities(profile: WarehouseProfile, validate: bool = True) -> list[str]:
    """Requests this brain can build on ``profile``, as example request strings (each one plans when validated)."""
    from dataeng_crew.agents.catalog import build_catalog

    catalog = build_catalog(profile)
    binding = bind_sales(profile)
    marts = [f"{adj}_sales mart" for adj in GRAIN_ADJECTIVE.values()] if binding else []
    marts += [f"daily {word}" for word in ("signups", "refunds", "payments")
              if event_tables(EVENT_SUBJECTS[word], profile)]
    if binding is not None:
        dims = [d for d in dimension_candidates([binding.orders, *_parents(binding.orders, profile)])
                if _suggestable(*d)]
        if dims:
            marts.append(f"monthly sales by {_words(dims[0][1], dims[0][0])}")
        own = [(t, c) for t, c in dimension_candidates([binding.orders]) if len(c.top_values) > 1 and _suggestable(t, c)]
        if own:
            marts.append(f"weekly orders for {_words(own[0][1], own[0][0])} "
                         f"{sorted(own[0][1].top_values)[0].strip().lower()}")
    prefix = shared_table_prefix(profile)
    for fact in catalog.facts:
        table = profile.table(fact.table)
        if table is None or (binding is not None and fact.table == binding.orders.name):
            continue
        subject = plural(entity_name(table.name).removeprefix(prefix).split("_")[-1])
        marts.append(f"daily {subject}")
        own = [(t, c) for t, c in dimension_candidates([table]) if 1 < len(c.top_values) and _suggestable(t, c)]
        if own:
            t, c = own[0]
            marts.append(f"monthly {subject} by {_words(c, t)}")
            marts.append(f"weekly {subject} for {_words(c, t)} {sorted(c.top_values)[0].strip()}")
    marts += [f"{plural(entity_name(e.table).removeprefix(prefix))} mart" for e in catalog.entities]
    marts = list(dict.fromkeys(marts))
    if validate:
        marts = [m for m in marts if _plans(m, profile)]
    return marts + ["staging models"]


def _suggestable(table: TableProfile, col: ColumnProfile) -> bool:
    """A breakdown worth suggesting: a category with repeating values, never an identifier (``order_id``,
    ``customer_key``, a unique code), which would give one row per key."""
    from dataeng_crew.tools.warehouse import _key_like_name

    prefix = column_prefix([c.name for c in table.columns])
    rows = max(table.profiled_rows, 1)
    return (col.name not in table.candidate_keys and not _key_like_name(col.name, prefix)
            and not re.search(r"(^|_)(id|key|uuid|guid|hash|code)$", snake_case(col.name))
            and col.distinct_count <= max(2, rows // 2))


def _plans(request: str, profile: WarehouseProfile) -> bool:
    try:
        plan(request, profile)
    except RequestError:
        return False
    return True


def _refuse(request: str, profile: WarehouseProfile, why: str) -> RequestError:
    from dataeng_crew.agents.catalog import build_catalog, describe

    tables = ", ".join(sorted(t.name for t in profile.tables)) or "none"
    options = capabilities(profile, validate=False)
    can = "It can build: " + "; ".join(f'"{o}"' for o in options)
    if bind_sales(profile) is None:
        can += (". No sale-like fact (a table with a key, an event time and a money amount or line items) was "
                "found, so no sales mart can be built from this warehouse")
    patterns = "Request patterns: " + "; ".join(p.split(" — ")[0] for p in PATTERNS)
    return RequestError(f"cannot plan {request!r}: {why}\nTables found: {tables}\n{describe(build_catalog(profile))}\n"
                        f"{can}\n{patterns}")


def _table_words(profile: WarehouseProfile) -> set[str]:
    return {t.name.lower() for t in profile.tables} | {entity_name(t.name) for t in profile.tables}


def staging_plan(text: str, words: list[str], profile: WarehouseProfile) -> Plan:
    """A staging-only plan: sources + one staging model per table (the named tables, or all of them)."""
    if not set(words) & STAGING_WORDS:
        raise _refuse(text, profile, "name what to build: e.g. 'staging models' or 'stage orders'")
    named = [t.name for t in profile.tables if {t.name.lower(), entity_name(t.name)} & set(words)]
    tables = named or [t.name for t in profile.tables]
    for fk in profile.foreign_keys:  # parents too, so relationships can be tested
        if fk.table in tables and fk.ref_table not in tables:
            tables.append(fk.ref_table)
    return Plan(request=text, kind="staging", subject="staging", measures=[], source_tables=tables,
                interpretations=[f"Stage {'the named tables' if named else 'every table'} of the warehouse "
                                 f"({len(tables)}), with parents of their foreign keys; no mart."])


def event_tables(event: tuple, profile: WarehouseProfile) -> list[tuple]:
    """``(table, event-time column)`` of every table that records ``event``."""
    _subject, table_rx, preferred = event
    candidates = [t for t in profile.tables if re.fullmatch(table_rx, entity_name(t.name))
                  or re.fullmatch(table_rx, entity_name(t.name).split("_")[-1])]  # app_users, chinook_invoice
    timed = [(t, next((t.column(p) for p in preferred if t.column(p) is not None), None) or event_time(t))
             for t in candidates]
    timed = [(t, parts[0]) if (parts := date_parts(t)) and (c is None or c.name not in preferred) else (t, c)
             for t, c in timed]
    return [(t, c) for t, c in timed if c is not None and (is_temporal(c) or date_parts(t))]


FACT_SYNONYMS = {"rides": ("trips",), "trips": ("rides", "journeys"), "purchases": ("orders", "transactions"),
                 "tickets": ("issues", "cases"), "visits": ("sessions",), "sessions": ("visits",),
                 "bookings": ("reservations",), "reservations": ("bookings",), "invoices": ("bills",),
                 "bills": ("invoices",), "departures": ("flights",), "shipments": ("deliveries",)}


def fact_subject(words: list[str], profile: WarehouseProfile) -> tuple | None:
    """An event tuple for the fact a request's subject words name (any table with an event time), or None.

    The subject binds to a table by its entity name (prefixes and plurals aside: ``invoices`` →
    ``chinook_invoice``) or a general synonym; every word must be part of the subject.
    """
    if not words:
        return None
    phrase = "_".join(words)
    for word in (phrase, *FACT_SYNONYMS.get(phrase, ())):
        def same(name: str) -> bool:
            return plural(singular(word)) == plural(singular(name))

        timed = [t for t in sorted(profile.tables, key=lambda t: -t.row_count)
                 if event_tables((word, re.escape(entity_name(t.name)), ()), profile)]
        full = [t for t in timed if same(entity_name(t.name))]
        matches = full or [t for t in timed if same(entity_name(t.name).split("_")[-1])]
        if len(matches) > 1:  # two facts answer to the same word: ask which
            raise _refuse(" ".join(words), profile, f"'{' '.join(words)}' is ambiguous: several facts have an event "
                          f"time and that name ({', '.join(t.name for t in matches)}); name the table")
        if matches:
            return (plural(phrase), re.escape(entity_name(matches[0].name)), ())
    return None


def event_plan(text: str, grain: Grain | None, event: tuple, profile: WarehouseProfile) -> Plan:
    """A time-grain mart counting the rows of one event table (signups, refunds, payments) per period.

    Raises:
        RequestError: When no table holds that event with an event time.
    """
    subject = event[0]
    timed = event_tables(event, profile)
    if not timed:
        raise _refuse(text, profile, f"no table records {subject} with an event time")
    table, when = max(timed, key=lambda tc: tc[0].row_count)
    interpretations = [] if grain else ["No time grain given: one row per day."]
    grain = grain or Grain.day
    # calendar parts (year/month/day) state the event's own date; a preferred named time (signed_up_at) wins
    parts = date_parts(table) if not is_temporal(when) or when.name not in event[2] else None
    if parts:
        when = parts[0]
    money = [c for c in table.columns if measure_meaning(c) and c.name not in {p.name for p in parts or ()}
             and not re.search(r"(^|_)(year|month|day|hour|minute|lat|lon|latitude|longitude|alt)$", snake_case(c.name))]
    flags = [c for c in table.columns if re.fullmatch(r"(is_)?test(_\w+)?|(is_)?deleted|deleted_at|_?fivetran_deleted",
                                                       entity_name(c.name))]
    dated = (f"the calendar date its parts {', '.join(f'{table.name}.{c.name}' for c in parts)} state"
             if parts else f"{table.name}.{when.name}")
    interpretations += [
        f"'{subject}' are the rows of {table.name}, counted on the {grain.value} of {dated}.",
        f"Every {grain.value} from the first to the last event is present, with zeros when nothing happened.",
    ]
    if money:
        interpretations.append("Summed per period, by meaning: " + ", ".join(
            f"{table.name}.{c.name} ({measure_meaning(c)})" for c in money) + ".")
    for f in flags:
        interpretations.append(f"Rows flagged by {table.name}.{f.name} (test or soft-deleted) are excluded.")
    alternatives = []
    if len(timed) > 1:
        others = ", ".join(t.name for t, _ in timed if t is not table)
        interpretations.append(f"Chose {table.name} (most rows) over {others}.")
        alternatives.append(f"Other tables also record {subject}: {others}; chose {table.name}, the one with most rows.")
    other_times = [c.name for c in table.columns if is_temporal(c) and c is not when and not is_load_timestamp(c)]
    if parts and other_times:
        alternatives.append(f"{table.name} also has timestamps ({', '.join(other_times)}); counted on the date its "
                            "year/month/day columns state, because a derived timestamp may be in another time zone "
                            "(UTC) and move late events to the next day.")
        other_times = []
    if other_times:
        alternatives.append(f"{table.name} has other timestamps ({', '.join(other_times)}); counted on {when.name}, "
                            f"the preferred event time for {subject}.")
    roles = {"fact": table.name, "event_time": f"{table.name}.{when.name}"}
    if parts:
        roles.update({"event_month": f"{table.name}.{parts[1].name}", "event_day": f"{table.name}.{parts[2].name}"})
    roles.update({f"measure_{i}": f"{table.name}.{c.name}" for i, c in enumerate(money)})
    roles.update({f"exclude_{i}": f"{table.name}.{c.name}" for i, c in enumerate(flags)})
    tables = [table.name]
    measures_ = [MeasureSpec(name=f"{subject}_count", definition=f"Number of {subject} ({table.name} rows) in the period.")]
    measures_ += [MeasureSpec(name=staged_name(c, table), definition=f"Sum of {table.name}.{c.name} in the period "
                              f"({measure_meaning(c)})"
                              + (", in major units (converted from cents)." if is_minor_units(c) else "."))
                  for c in money]
    return Plan(request=text, kind="event", mart_name=f"fct_{GRAIN_ADJECTIVE[grain]}_{subject}", grain=grain,
                subject=subject, measures=measures_, source_tables=list(dict.fromkeys(tables)), roles=roles,
                interpretations=interpretations, alternatives=alternatives)


ENTITY_WORDS = {"dim", "dimension", "entity", "with", "and", "their", "lifetime", "value", "ltv", "clv", "aggregates",
                "stats", "metrics", "per", "one", "row", "each", "first", "most", "recent", "last", "latest",
                "earliest", "number", "count", "total", "date", "dates", "time", "count", "spend", "spent"}
SALES_WORDS = {"order", "orders", "purchase", "purchases", "sale", "sales", "revenue", "spend"}
EXCLUDE_FLAG = r"(is_)?test(_\w+)?|(is_)?deleted|deleted_at|_?fivetran_deleted|cancell?ed_at|is_cancell?ed"


def shared_table_prefix(profile: WarehouseProfile) -> str:
    """A prefix every table name shares (a framework's app label: ``chinook_``), or ``""``."""
    names = [entity_name(t.name) for t in profile.tables]
    first = names[0].split("_")[0] + "_" if names and "_" in names[0] else ""
    return first if len(names) >= 3 and first and all(n.startswith(first) and n != first for n in names) else ""


def entity_words(table: str) -> set[str]:
    """Names a request may use for a table's entity: its name, and its last word (``chinook_customer`` → customer)."""
    name = entity_name(table)
    return {name, name.split("_")[-1], bare_name(table, column_prefix([table]))}


def _same_entity(word: str, table: str) -> bool:
    return any(plural(singular(word)) == plural(singular(n)) for n in entity_words(table))


def entity_table(words: list[str], profile: WarehouseProfile) -> tuple[TableProfile, list[str]] | None:
    """``(table, words left over)`` when the request names an entity table with a primary key."""
    for size in (3, 2, 1):  # "order lines" before "lines"
        for i in range(len(words) - size + 1):
            phrase = "_".join(words[i:i + size])
            for t in profile.tables:
                if _same_entity(phrase, t.name) and primary_key(t):
                    return t, words[:i] + words[i + size:]
    return None


def exclusion_flags(table: TableProfile) -> list[ColumnProfile]:
    """Columns of ``table`` marking test, cancelled or soft-deleted rows."""
    return [c for c in table.columns if re.fullmatch(EXCLUDE_FLAG, entity_name(c.name))]


PRICE = r"(unit_)?price|unit_amount"


def entity_measure(col: ColumnProfile, child: TableProfile, qty: ColumnProfile | None) -> tuple[str, str]:
    """Name and source of the sum of one money column of a child fact (price × quantity when both exist)."""
    child_entity = singular(entity_name(child.name))
    name = staged_name(col, child)
    if qty is not None and re.fullmatch(PRICE, snake_case(col.name)):
        return f"total_{child_entity}_value", f"{child.name}.{qty.name} × {child.name}.{col.name}"
    name = name.removeprefix("total_")
    return f"total_{child_entity}_{name}", f"{child.name}.{col.name}"


LIFETIME = re.compile(r"(^|_)(lifetime|ltv|clv)(_|$)")


def _refuse_if_answered(text: str, table: TableProfile, rest: list[str], profile: WarehouseProfile) -> None:
    """Refuse an entity mart the project already has: ``table`` is one of its marts, one row per entity, and it
    holds what the request adds (a lifetime value) or the request adds nothing.

    Raises:
        AlreadyAnswered: Naming the project's model and the column that answers.
    """
    inv = profile.inventory
    key = row_key(table) or primary_key(table)
    if inv is None or key is None:
        return

    def per_entity(t: TableProfile) -> bool:  # one row per the same entity: its key, or a unique reference to it
        return row_key(t) == key or any(fk.table == t.name and fk.ref_table == table.name
                                        and fk.column in t.candidate_keys for fk in profile.foreign_keys)

    marts = [t for t in [table, *(t for t in profile.tables if t is not table)] if t.origin == "model"
             and t.ref_name and per_entity(t) and (m := inv.model(t.ref_name)) is not None and m.layer == "marts"]
    wants_ltv = bool({"lifetime", "ltv", "clv"} & set(rest))
    for mart in marts:
        ltv = next((c.name for c in mart.columns if LIFETIME.search(snake_case(c.name))), None)
        if wants_ltv and ltv is None or not wants_ltv and mart is not table:
            continue
        model = inv.model(mart.ref_name)  # type: ignore[arg-type]
        entity = re.sub(r"^(dim|fct)_", "", entity_name(table.name))
        has = f" with {ltv}" if wants_ltv else ""
        raise AlreadyAnswered(
            f"the project's mart {model.name} ({model.path}) already answers {text!r}: one row per "  # type: ignore[union-attr]
            f"{singular(entity)} keyed on {key}{has}. Nothing was written. Ask for what it lacks "
            f"(a period, a breakdown, another measure), e.g. 'monthly {plural(entity)}'.")


def entity_plan(text: str, table: TableProfile, rest: list[str], profile: WarehouseProfile) -> Plan:
    """One row per entity: its staged attributes plus aggregates of every fact that references it.

    Raises:
        RequestError: When the request has words this pattern does not understand.
    """
    children_words = {w for fk in profile.foreign_keys if fk.ref_table == table.name
                      for n in entity_words(fk.table) for w in (n, plural(n), singular(n))}
    binding = bind_sales(profile)
    if binding is not None and any(fk.ref_table == table.name and fk.table == binding.orders.name
                                   for fk in profile.foreign_keys):
        children_words |= SALES_WORDS
    unknown = [w for w in rest if w not in ENTITY_WORDS and w not in children_words]
    if unknown:
        raise _refuse(text, profile, f"words not understood for an entity mart: {', '.join(unknown)}")
    _refuse_if_answered(text, table, rest, profile)
    ent = entity_name(table.name)
    name = plural(ent)
    mart = f"dim_{plural(entity_name(table.name).removeprefix(shared_table_prefix(profile)))}"
    key = table.column(primary_key(table))
    roles = {"entity": table.name, "entity_key": f"{table.name}.{key.name}"}
    interpretations = [
        f"'{text}' is an entity mart: one row per {singular(name)} of {table.name}, keyed on {key.name}; "
        f"named {mart} (dbt style: dim_<entities> for an entity mart).",
        f"Attributes are the staged columns of {table.name} (load metadata left out); PII among them is masked "
        "in the mart by the governance policy.",
    ]
    measures_: list[MeasureSpec] = []
    alternatives: list[str] = []
    tables = [table.name]
    if {"date", "dates"} & set(rest):
        roles["entity_dates"] = "true"
        interpretations.append("First and most recent events are given as dates, as the request asks.")
    children = _one_reference_per_fact(
        [fk for fk in profile.foreign_keys if fk.ref_table == table.name and fk.table != table.name
         and not _one_to_one(fk, profile)], profile, alternatives)
    for i, fk in enumerate(children):
        child = profile.table(fk.table)
        if child is None:
            continue
        child_entity = singular(entity_name(child.name))
        roles[f"child_{i}"] = child.name
        roles[f"child_{i}_key"] = f"{child.name}.{fk.column}"
        tables.append(child.name)
        when = event_time(child)
        if when is not None:
            roles[f"child_{i}_time"] = f"{child.name}.{when.name}"
        for j, flag in enumerate(exclusion_flags(child)):
            roles[f"child_{i}_exclude_{j}"] = f"{child.name}.{flag.name}"
            interpretations.append(f"{child.name} rows flagged by {flag.name} (test, cancelled or deleted) are not counted.")
        from dataeng_crew.agents.semantic_layer import invalid_values

        for j, col in enumerate(c for c in child.columns if invalid_values(c)):  # as the metric marts count them
            roles[f"child_{i}_invalid_{j}"] = f"{child.name}.{col.name}"
            interpretations.append(f"{child.name} rows whose {col.name} is {', '.join(invalid_values(col))} are not "
                                   "counted (they are not completed business events).")
        count = f"{child_entity}_count" if child_entity != singular(ent) else f"child_{child_entity}_count"
        measures_.append(MeasureSpec(name=count, definition=f"Number of {child.name} rows of the {singular(ent)} "
                                     f"(via {child.name}.{fk.column}); 0 when none."))
        if when is not None:
            suffix = "date" if staged_name(when, child).endswith("_date") else "at"
            for word, fn in (("first", "earliest"), ("most_recent", "latest")):
                measures_.append(MeasureSpec(name=f"{word}_{child_entity}_{suffix}", definition=(
                    f"The {fn} {child.name}.{when.name} of the {singular(ent)}; null when none.")))
        sales_bound = binding is not None and binding.orders.name == child.name
        if sales_bound:
            assert binding is not None
            roles[f"child_{i}_sales"] = "true"
            roles.update(binding.roles())
            tables += [t.name for t in (binding.lines, binding.refunds) if t is not None]
            src = ("line items (quantity × unit price)" if binding.line_quantity else
                   f"line items ({binding.lines.name}.{binding.line_price.name}"  # type: ignore[union-attr]
                   + (f" × (1 − {binding.line_rate.name}))" if binding.line_rate else ")") if binding.line_amount else
                   f"{binding.lines.name} per {child_entity}" if binding.lines else
                   f"{child.name}.{binding.order_amount.name}")  # type: ignore[union-attr]
            measures_.append(MeasureSpec(name="lifetime_value", definition=(
                f"Sum over the {singular(ent)}'s valid {child.name} of gross value ({src}) minus discounts minus "
                "refunds, in major units; 0 when none.")))
            interpretations.append(f"Lifetime value is net sales: the per-{child_entity} value used by the sales marts "
                                   f"({src}), less discounts and refunds, summed over the {singular(ent)}'s valid {child.name}.")
            if refunded := _status_refunds(binding):
                interpretations.append(refunded)
            if binding.lines is not None and binding.order_amount is None and not binding.line_quantity \
                    and not binding.line_amount:
                alternatives.append(f"Lifetime value sums {binding.lines.name} per {child_entity} because {child.name} "
                                    "has no amount column.")
            elif binding.lines is not None and binding.line_quantity and binding.order_amount is not None:
                alternatives.append(f"Lifetime value could use {child.name}.{binding.order_amount.name}; chose the line "
                                    f"items in {binding.lines.name} (quantity × price), the source the sales marts use.")
        else:
            money = [c for c in child.columns if is_money(c)]
            qty = next((c for c in child.columns if re.fullmatch(r"quantity|qty|units?", snake_case(c.name))), None)
            for j, col in enumerate(money):
                roles[f"child_{i}_measure_{j}"] = f"{child.name}.{col.name}"
            if qty is not None:
                roles[f"child_{i}_quantity"] = f"{child.name}.{qty.name}"
            if binding is not None and binding.orders.name != table.name and any(
                    f.table == child.name and f.ref_table == binding.orders.name for f in profile.foreign_keys):
                roles[f"child_{i}_via_orders"] = binding.orders.name
                roles.update({k: v for k, v in binding.roles().items() if k in {"orders", "test_flag", "cancelled"}})
                tables.append(binding.orders.name)
                interpretations.append(f"{child.name} rows of test or cancelled {binding.orders.name} are not counted.")
            for col in money:
                n, what = entity_measure(col, child, qty)
                measures_.append(MeasureSpec(name=n, definition=(
                    f"Sum of {what} over the {singular(ent)}'s {child.name} rows, in major units; 0 when none.")))
            if qty is not None:
                measures_.append(MeasureSpec(name=f"total_{child_entity}_{staged_name(qty, child)}", definition=(
                    f"Sum of {child.name}.{qty.name} over the {singular(ent)}'s rows; 0 when none.")))
        interpretations.append(f"Aggregates of {child.name} (joined on {child.name}.{fk.column}) are computed in "
                               f"int_{plural(entity_name(child.name))}_aggregated_to_{name}.")
    if not children:
        interpretations.append(f"No table references {table.name}: the mart holds its attributes only.")
    if "lifetime" in rest or "ltv" in rest or "clv" in rest:
        if not any(m.name == "lifetime_value" for m in measures_):
            raise _refuse(text, profile, f"no order fact with an amount references {table.name}, so no lifetime "
                          "value can be computed")
        interpretations.append("'lifetime value' is the lifetime_value column.")
    return Plan(request=text, kind="entity", mart_name=mart, subject=name, measures=measures_,
                source_tables=list(dict.fromkeys(tables)), roles=roles, interpretations=interpretations,
                alternatives=list(dict.fromkeys(alternatives)))


BREAKDOWN = re.compile(r"\bby\s+(?P<dim>.+?)(?=\s+(?:for|where|with|only)\b|$)")
FILTER = re.compile(r"\b(?:for|where|with|only)\s+(?P<filter>.+?)(?=\s+by\b|$)")


PERSONAL = r"(^|_)(name|email|e_mail|phone|address\d*|street|zip|postcode|birth\w*|ssn|iban)($|_)"


def split_breakdown(text: str) -> tuple[str, str | None, str | None]:
    """``(rest, dimension phrase, filter phrase)`` of a request like "daily revenue by method for status paid"."""
    lowered = text.lower()
    dim = BREAKDOWN.search(lowered)
    flt = FILTER.search(lowered)
    rest = lowered
    for m in (dim, flt):
        if m:
            rest = rest.replace(m.group(0), " ")
    return rest, dim.group("dim").strip() if dim else None, flt.group("filter").strip() if flt else None


SYNONYMS = {"category": {"type", "kind", "class", "group", "category"}, "type": {"kind", "category", "type"},
            "method": {"gateway", "method", "type"}, "country": {"country", "nation"}, "channel": {"source", "channel"},
            "market": {"market", "mkt"}, "number": {"number", "num", "no"}, "quantity": {"quantity", "qty"}}


def _phrase_key(phrase: str) -> str:
    return "_".join(request_words(phrase))


MAX_BREAKDOWN_VALUES = 1000


def dimension_candidates(tables: list[TableProfile], named: bool = False) -> list[tuple[TableProfile, ColumnProfile]]:
    """Columns a mart can be broken down by: low-cardinality text (statuses, types, methods, countries); with
    ``named`` (a breakdown the request names), any repeating text column too ("by home team": 30 teams)."""
    def repeating(t: TableProfile, c: ColumnProfile) -> bool:  # an entity's name repeats across its facts' rows
        if not named or c.distinct_count < 2:
            return False
        if re.search(r"(^|_)(name|title|label)$", snake_case(c.name)) and t.row_count > 1:  # names one row each,
            return c.distinct_count == t.profiled_rows <= MAX_BREAKDOWN_VALUES  # or namesakes would be summed
        return c.distinct_count <= min(MAX_BREAKDOWN_VALUES, t.profiled_rows // 2)

    return [(t, c) for t in tables for c in t.columns
            if base_type(c.data_type) in {"VARCHAR", "BOOLEAN"} and (c.top_values or repeating(t, c))
            and not is_temporal(c) and not _personal(c, t) and not re.fullmatch(EXCLUDE_FLAG, snake_case(c.name))]


CONTACT = r"(^|_)(email|e_mail|phone|address\d*|street|zip|postcode|birth\w*|ssn|iban|first_?name|last_?name)($|_)"


def _personal(col: ColumnProfile, table: TableProfile) -> bool:
    """Personal data: contact columns always; a plain ``name`` only in a table of people (it has contact columns)."""
    name = snake_case(col.name)
    if not re.search(PERSONAL, name):
        return False
    if re.search(CONTACT, name):
        return True
    return any(re.search(CONTACT, snake_case(c.name)) for c in table.columns)


def _candidates_text(cands: list[tuple[TableProfile, ColumnProfile]]) -> str:
    return ", ".join(f"{t.name}.{c.name}" for t, c in cands) or "none"


def resolve_column(phrase: str, tables: list[TableProfile], text: str, profile: WarehouseProfile,
                   what: str) -> tuple[tuple[TableProfile, ColumnProfile], list[str]]:
    """The breakdown column a phrase names, and the other columns it could also have meant.

    Raises:
        RequestError: When no column matches; the message lists the candidate columns.
    """
    key = _phrase_key(phrase)
    cands = dimension_candidates(tables, named=what == "breakdown")

    def bare(t: TableProfile, c: ColumnProfile) -> str:
        return bare_name(c.name, column_prefix([x.name for x in t.columns]))

    exact = [(t, c) for t, c in cands if key in {snake_case(c.name), staged_name(c, t), bare(t, c)}
             or key.replace("_", "") == bare(t, c).replace("_", "")]

    def hit(w: str, have: set[str]) -> bool:  # a word, a synonym, or a part of a compound name (segment in mktsegment)
        forms = {w, singular(w)} | SYNONYMS.get(w, set())
        return bool(forms & have) or any(len(f) >= 4 and f in h or len(f) >= 3 and h.startswith(f)
                                         for f in forms for h in have) or any(same_word(w, h) for h in have)

    def own_words(t: TableProfile, c: ColumnProfile) -> set[str]:
        return set(bare(t, c).split("_")) | set(snake_case(c.name).split("_"))

    def words_match(t: TableProfile, c: ColumnProfile) -> bool:  # every word of the phrase, or a synonym of it
        have = own_words(t, c) | {singular(w) for w in entity_words(t.name)}
        return all(hit(w, have) for w in key.split("_"))

    if len({t.name for t, _ in exact}) > 1:  # the same column name on several tables equally near: ask
        from dataeng_crew.agents.catalog import reachable as hops

        distance = {t.name: d for t, d in hops(tables[0], profile)} | {tables[0].name: 0}
        nearest = min(distance.get(t.name, 1) for t, _ in exact)
        tied = [(t, c) for t, c in exact if distance.get(t.name, 1) == nearest]
        if len({t.name for t, _ in tied}) > 1:
            options = "; ".join(f"'{_phrase_key(singular(entity_name(t.name).split('_')[-1]))} {phrase}' "
                                f"({t.name}.{c.name})" for t, c in tied)
            raise _refuse(text, profile, f"{what} {phrase!r} is ambiguous: it names columns of several tables "
                          f"equally near the fact. Say which: {options}")
        exact = tied + [tc for tc in exact if tc not in tied]
    def names_the_column(t: TableProfile, c: ColumnProfile) -> bool:  # a word names it, not only its table
        return any(hit(w, own_words(t, c)) for w in key.split("_"))

    # a phrase that names a table (not a column of it) means that table's name/title column, never another one
    # ("by driver" is never drivers.vehicle_type)
    def names_the_table(t: TableProfile) -> bool:  # "per meter": the meter itself, not its meter_type
        return {singular(w) for w in key.split("_")} == {singular(w) for w in entity_words(t.name)}

    def title(t: TableProfile, c: ColumnProfile) -> bool:
        return bool(re.search(r"(^|_)(name|title|label)$", bare(t, c)))

    loose = [(t, c) for t, c in cands if (t, c) not in exact and words_match(t, c)
             and (title(t, c) or names_the_column(t, c) and not names_the_table(t))]
    loose.sort(key=lambda tc: not re.search(r"(^|_)(name|title|label|description)$", bare(*tc)))
    found = exact + loose
    if not found and what == "breakdown":
        keyed = _entity_key_breakdown(key, tables, profile)
        if keyed is not None:
            return keyed
    if not found:
        elsewhere = [f"{t.name}.{c.name}" for t, c in dimension_candidates(profile.tables)
                     if t not in tables and any(w in snake_case(c.name).split("_") + [entity_name(t.name)]
                                                for w in key.split("_"))]
        hint = (f" Columns of other tables match ({', '.join(elsewhere)}), but this mart can only be broken down "
                f"by columns of {tables[0].name}, of a table it references, or (sales marts) of its line items or "
                "payments and their parents.") if elsewhere else ""
        raise _refuse(text, profile, f"no {what} column matches {phrase!r}. Candidate columns: "
                      f"{_candidates_text(cands)}.{hint}")
    return found[0], [f"{what} {phrase!r} could also mean {t.name}.{c.name}" for t, c in found[1:]]


def keyed_breakdown(table: TableProfile, col: ColumnProfile, profile: WarehouseProfile) -> str | None:
    """The entity a breakdown column is the key of ("by driver" → ``rides.driver_id`` → drivers), or None for a
    category (a status, a country, a carrier code): a category is shown in every period, an entity only in the
    periods it has activity in."""
    entity = referenced_table(profile, table.name, col.name)
    return entity if entity and (table, col) not in dimension_candidates([table], named=True) else None


def _entity_key_breakdown(key: str, tables: list[TableProfile], profile: WarehouseProfile
                          ) -> tuple[tuple[TableProfile, ColumnProfile], list[str]] | None:
    """"By driver" where drivers have no name a breakdown can use (personal, or not unique per row): the key that
    refers to a driver, on the nearest table the mart reads that holds it (``rides.driver_id``), as the plan states."""
    entity = next((t for t in tables[1:] if key in {entity_name(t.name), singular(entity_name(t.name))}
                   or all(w in {singular(x) for x in entity_words(t.name)} for w in key.split("_"))), None)
    if entity is None:
        return None
    for holder in tables:
        fk = next((f for f in profile.foreign_keys if f.table == holder.name and f.ref_table == entity.name), None)
        col = holder.column(fk.column) if fk is not None else None
        if col is not None:
            why = (f"breakdown {key.replace('_', ' ')!r} is {holder.name}.{col.name}, the {entity.name} key: "
                   f"{entity.name} has no name column unique per row that is not personal data")
            return (holder, col), [why]
    return None


def resolve_filter(phrase: str, tables: list[TableProfile], text: str, profile: WarehouseProfile
                   ) -> tuple[TableProfile, ColumnProfile, str, list[str]]:
    """``(table, column, value, alternatives)`` for a filter phrase like "status completed" or "status = paid".

    Raises:
        RequestError: When no column/value pair matches; the message lists candidates and their values.
    """
    tokens = [w for w in re.split(r"\s*(?:=|==|\bis\b|\s)\s*", phrase.strip()) if w]
    cands = dimension_candidates(tables)
    for k in range(len(tokens) - 1, 0, -1):
        col_phrase, value = " ".join(tokens[:k]), " ".join(tokens[k:]).strip("'\"")
        try:
            (table, col), alternatives = resolve_column(col_phrase, tables, text, profile, "filter")
        except RequestError:
            continue
        match = next((v for v in col.top_values if v.strip().lower() == value.lower()), None)
        if match is None:
            raise _refuse(text, profile, f"{table.name}.{col.name} has no value {value!r}; its values: "
                          + ", ".join(sorted(col.top_values)[:20]))
        return table, col, match, alternatives
    values = "; ".join(f"{t.name}.{c.name} ({', '.join(sorted(c.top_values)[:8])})" for t, c in cands)
    raise _refuse(text, profile, f"the filter {phrase!r} names no column and value; write '<column> <value>'. "
                  f"Candidate columns: {values or 'none'}")


def apply_breakdown(p: Plan, dim: str | None, flt: str | None, fact: TableProfile, parents: list[TableProfile],
                    text: str, profile: WarehouseProfile) -> Plan:
    """Add a breakdown dimension (part of the grain) and/or a filter (a where clause) to a time-grain plan."""
    roles, interpretations, alternatives = dict(p.roles), list(p.interpretations), list(p.alternatives)
    filters: dict[str, str] = {}
    name = p.mart_name or ""
    if flt:
        table, col, value, alts = resolve_filter(flt, [fact], text, profile)
        roles["filter_0"] = f"{table.name}.{col.name}"
        filters["filter_0"] = value
        interpretations.append(f"Filter {flt!r}: only {table.name} rows where {col.name} = '{value}' "
                               "(compared after staging's cleaning).")
        alternatives += alts
        name = name.replace("fct_", "fct_", 1).replace(f"_{p.subject}", f"_{_phrase_key(value)}_{p.subject}", 1)
    if dim:
        lines = profile.table(p.roles.get("lines", "")) if p.kind == "time_grain" else None
        try:
            (table, col), alts = resolve_column(dim, [fact, *parents], text, profile, "breakdown")
            below = False
        except RequestError:
            if lines is None:
                raise
            below_tables = [lines] + [t for t in _parents(lines, profile) if t.name != fact.name]
            try:
                (table, col), alts = resolve_column(dim, below_tables, text, profile, "breakdown")
            except RequestError:  # refuse with every candidate of both levels
                resolve_column(dim, [fact, *parents, *below_tables], text, profile, "breakdown")
                raise
            below = True
        roles["dimension"] = f"{table.name}.{col.name}"
        entity = keyed_breakdown(table, col, profile)  # by an entity's key: activity only, no grid
        interpretations.append(
            f"Breakdown {dim!r}: one row per {'period and ' if p.grain else ''}{table.name}.{col.name}"
            + ("" if table is fact or below else f" (joined from {fact.name} to its parent {table.name})")
            + (f"; a {singular(entity_name(entity))} appears only in the periods with activity" if p.grain and entity
               else "; every value seen appears in every period, with zeros." if p.grain else "."))
        if below:
            roles["dimension_level"] = "line"
            interpretations.append(
                f"{table.name}.{col.name} is below the order (per row of {lines.name}): each order's value is split "
                f"by it; order_count counts an order once per value it has {lines.name} rows in (so the values can "
                f"add up to more than all orders), orders without {lines.name} rows are left out, and the order's "
                "discounts and refunds are allocated in proportion to each value's share of the order's gross, "
                "rounded to the cent.")
        alternatives += alts
        title = table is not fact and re.search(r"(^|_)(name|title|label)$", snake_case(col.name))
        by = singular(entity_name(table.name)) if title else singular(entity_name(entity)) if entity else None
        name += f"_by_{by or staged_name(col, table)}"  # by_product, by_customer
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    return p.model_copy(update={"roles": roles, "filters": filters, "mart_name": name,
                                "interpretations": interpretations, "alternatives": alternatives})


def reachable(table: TableProfile, profile: WarehouseProfile) -> list[tuple[TableProfile, int]]:
    """Tables up to 3 foreign-key hops from ``table``, nearest first (the catalog's dimensions)."""
    from dataeng_crew.agents.catalog import reachable as catalog_reachable

    return catalog_reachable(table, profile)


def _parents(table: TableProfile, profile: WarehouseProfile) -> list[TableProfile]:
    return [t for fk in profile.foreign_keys if fk.table == table.name and (t := profile.table(fk.ref_table))]


def _flag_word(flag: ColumnProfile) -> str:
    """What an exclusion flag marks: ``cancelled`` or ``deleted``."""
    return "cancelled" if "cancel" in flag.name.lower() else "deleted"


def _status_refunds(binding: SalesBinding, period: str | None = None) -> str | None:
    """The plan's statement on refunds read from the orders' status (no refund table), or None."""
    col = binding.refunded_status
    if binding.refunds is not None or col is None:
        return None
    from dataeng_crew.agents.semantic_layer import refunded_values

    o = binding.orders.name
    return (f"No refund table: an order whose {o}.{col.name} is {', '.join(refunded_values(col))} was refunded in "
            "full. Its value counts in gross sales and again in refunds"
            + (f", in the {period} of the order (the warehouse records no refund date)" if period else "")
            + ", so net value leaves it out; ask to exclude such orders by name to drop them from gross sales and "
            "order counts too.")


def _refunds_definition(binding: SalesBinding, unit: str) -> str:
    if binding.refunds and binding.refund_time:
        return (f"Money refunded {unit}, counted on the day of the refund ({binding.refunds.name}."
                f"{binding.refund_time.name}), for orders that count in order_count.")
    if binding.refunded_status is not None:
        return (f"Value of the orders refunded in full {unit} (their {binding.orders.name}."
                f"{binding.refunded_status.name} says so), in the period of the order.")
    return f"Money refunded {unit}; the warehouse records none, so 0."


def measures(binding: SalesBinding) -> list[MeasureSpec]:
    """The measures a sales mart computes, with definitions that name their sources."""
    unit = f"in {binding.currency} (major units)" if binding.currency else "in the shop currency (major units)"
    excluded = ["test orders"] if binding.test_flag else []
    if binding.cancelled:
        excluded.append(f"{_flag_word(binding.cancelled)} orders")
    valid = "Orders" + (f" excluding {' and '.join(excluded)}" if excluded else "")
    if binding.lines and binding.line_quantity:
        gross_src = f"sum of quantity × unit price over {binding.lines.name}"
    elif binding.lines and binding.line_amount:
        gross_src = f"sum of {binding.lines.name}.{binding.line_price.name}" + (  # type: ignore[union-attr]
            f" × (1 − {binding.line_rate.name})" if binding.line_rate else "")
    elif binding.lines:
        gross_src = f"sum of {binding.lines.name}.{binding.line_price.name} per order"  # type: ignore[union-attr]
    else:
        gross_src = f"sum of {binding.orders.name}.{binding.order_amount.name}"  # type: ignore[union-attr]
    out = [
        MeasureSpec(name="order_count", definition=f"Number of orders placed in the period. {valid}."),
        MeasureSpec(name="customer_count", definition="Distinct customers who placed an order in the period "
                    "(guest orders without a customer are not counted)."),
        MeasureSpec(name="gross_sales", definition=f"Value of goods ordered before discounts, {unit}: {gross_src}."),
        MeasureSpec(name="discounts", definition=(
            f"Order-level discounts {unit}" + (f" from {binding.orders.name}.{binding.discount.name}." if binding.discount
                                               else "; the warehouse records none, so 0."))),
        MeasureSpec(name="refunds", definition=_refunds_definition(binding, unit)),
        MeasureSpec(name="net_sales", definition=f"gross_sales - discounts - refunds, {unit}."),
        MeasureSpec(name="average_order_value", definition=(
            f"(gross_sales - discounts) / order_count, {unit}; null when there are no orders.")),
    ]
    return out


def plan(request: str, profile: WarehouseProfile) -> Plan:
    """Map a request onto the warehouse (see :func:`_plan_request`); the plan keeps the request as written."""
    out = _plan_request(request, profile)
    return out if out.request == (request or "").strip() else out.model_copy(update={"request": request.strip()})


PER_ENTITY = re.compile(r"\s+(?:per|for each|for every|each)\s+(?=[a-z])", re.IGNORECASE)
ENTITY_TOTAL_WORDS = {"revenue", "sales", "spend", "spending", "value", "orders", "order", "count", "number",
                      "total", "purchases"}


def _per_entity_plan(text: str, words: list[str], profile: WarehouseProfile, shown: str) -> Plan | None:
    """"revenue by customer", "orders per customer" over all time: one row per customer with its orders and their
    value, i.e. the entity mart (its lifetime value when money is asked); None when the request is not that."""
    if set(words) & set(GRAIN_WORDS):
        return None
    rest, dim, flt = split_breakdown(text)
    subject = [w for w in request_words(rest) if w not in FILLER]
    named = entity_table([w for w in request_words(dim) if w not in FILLER], profile) if dim else None
    if flt or not subject or named is None or named[1]:
        return None
    binding = bind_sales(profile)
    facts = {t.name for t in profile.tables if event_time(t) is not None} | (  # every fact, with the sales lines
        {binding.orders.name} | ({binding.lines.name} if binding.lines is not None else set()) if binding else set())
    phrase = "_".join(w for w in request_words(dim or "") if w not in FILLER)
    for entity in [named[0], *(t for t in profile.tables if t is not named[0] and _same_entity(phrase, t.name)
                               and primary_key(t))]:  # the table of that entity the facts reference
        refs = [fk.table for fk in profile.foreign_keys if fk.table in facts and fk.ref_table == entity.name]
        fact_words = {w for r in refs for n in entity_words(r) for w in (n, plural(n), singular(n))}
        if refs and set(subject) <= ENTITY_TOTAL_WORDS | fact_words | {"of"}:
            named = (entity, [])
            break
    else:
        return None
    money = bool(set(subject) & {"revenue", "sales", "spend", "spending", "value"})
    ltv = money and binding is not None and binding.orders.name in refs  # a customer's orders: its lifetime value
    via = binding.orders.name if ltv else refs[0]  # type: ignore[union-attr]
    p = entity_plan(text, named[0], ["lifetime", "value"] if ltv else [], profile)
    return p.model_copy(update={"interpretations": [
        f"'{shown}' over all time is one row per {singular(entity_name(named[0].name))} with its {via} rows"
        + (" and their value" if money else "") + ": an entity mart."] + p.interpretations})


def _plan_request(request: str, profile: WarehouseProfile) -> Plan:
    """Map a request onto the warehouse.

    Args:
        request: Free text such as ``"daily_sales mart"``.
        profile: Profile of the warehouse.

    Returns:
        The plan: mart name, grain, measures, raw tables to stage and every interpretation made.

    Raises:
        RequestError: When the request is empty, too long, or asks for something the warehouse
            cannot answer; the message lists what can be built.
    """
    text = (request or "").strip()
    if not text:
        raise _refuse(request, profile, "the request is empty")
    if len(text) > MAX_REQUEST_CHARS:
        raise _refuse(text[:60] + "…", profile, f"the request is longer than {MAX_REQUEST_CHARS} characters")
    per = PER_PERIOD.search(text)  # "revenue per week by method" reads "weekly revenue by method"
    if per:
        text = GRAIN_ADJECTIVE[GRAIN_WORDS[per.group(2).lower()]] + " " + " ".join(PER_PERIOD.sub(" ", text).split())
    text = PER_ENTITY.sub(" by ", text)  # "orders per customer" reads "orders by customer"
    words = [w for w in request_words(text) if w not in FILLER]
    if words and set(words) <= STAGING_WORDS | _table_words(profile) and set(words) & STAGING_WORDS:
        return staging_plan(text, words, profile)
    per_entity = _per_entity_plan(text, words, profile, request.strip())
    if per_entity is not None:
        return per_entity
    entity = entity_table(words, profile) if not {w for w in words if w in GRAIN_WORDS} else None
    if entity is not None:
        try:
            return entity_plan(text, entity[0], entity[1], profile)
        except AlreadyAnswered:
            raise
        except RequestError as entity_error:  # "average fare by zone", "open tickets by team": a metric query
            from dataeng_crew.agents.metric_planner import plan_metric

            rest, dim, flt = split_breakdown(text)
            try:
                return plan_metric(text, [w for w in request_words(rest) if w not in FILLER], None, dim, flt,
                                   profile)
            except RequestError as metric_error:  # the entity reading did not know its words: the metric's reason
                raise (metric_error if dim and not flt and "words not understood" in str(entity_error)
                       else entity_error) from None
    keyless = [t.name for t in profile.tables if not primary_key(t) and any(_same_entity(w, t.name) for w in words)]
    if keyless and not set(words) & (set(GRAIN_WORDS) | STAGING_WORDS) and not split_breakdown(text)[1]:
        raise _refuse(text, profile, f"{', '.join(keyless)} has no primary key (no unique, non-null id-like column), "
                      "so no one-row-per-entity mart can be built from it")
    if words and set(words) <= STAGING_WORDS | _table_words(profile):
        return staging_plan(text, words, profile)
    rest, dim, flt = split_breakdown(text) if set(words) & set(GRAIN_WORDS) or re.search(r"\bby\b", text.lower()) \
        else (text, None, None)
    if dim or flt:
        words = [w for w in request_words(rest) if w not in FILLER]
    grains = [GRAIN_WORDS[w] for w in words if w in GRAIN_WORDS]
    if len(set(grains)) > 1:
        raise _refuse(text, profile, "more than one time grain requested; ask for one mart at a time")
    subject_words = [w for w in words if w not in GRAIN_WORDS]
    if profile.tables and all(t.row_count == 0 for t in profile.tables):
        raise _refuse(text, profile, "every table in the warehouse is empty: there is nothing to count or sum yet")
    aov = set(subject_words) & set(SALES_SUBJECTS) and set(subject_words) <= set(SALES_SUBJECTS) | AOV_WORDS
    if aov and not set(subject_words) <= set(SALES_SUBJECTS):  # "average order value": the sales mart's measure
        words = [w for w in words if w not in AOV_WORDS and w not in SALES_SUBJECTS] + ["sales"]
        subject_words = [w for w in words if w not in GRAIN_WORDS]
    if not (subject_words and set(subject_words) <= set(SALES_SUBJECTS) and bind_sales(profile) is not None):
        from dataeng_crew.agents.metric_planner import plan_metric

        if not set(subject_words) & set(SALES_SUBJECTS):
            return plan_metric(text, subject_words, grains[0] if grains else None, dim, flt, profile)
        try:
            return plan_metric(text, subject_words, grains[0] if grains else None, dim, flt, profile)
        except RequestError as exc:  # "sales"/"orders" words the sales fact may still answer
            metric_error = exc
    else:
        metric_error = None
    try:
        return _legacy_plan(text, words, grains, dim, flt, profile)
    except RequestError:
        if metric_error is not None:
            raise metric_error from None
        if dim is None:
            raise
        from dataeng_crew.agents.metric_planner import plan_metric

        try:  # "revenue by payment method": the payments answer where the orders cannot be broken down
            return plan_metric(text, subject_words, grains[0] if grains else None, dim, flt, profile)
        except RequestError:
            pass
        raise


def _legacy_plan(text: str, words: list[str], grains: list[Grain], dim: str | None, flt: str | None,
                 profile: WarehouseProfile) -> Plan:
    """The sales path (and the event path the metric planner could not answer); ``plan`` refused several grains."""
    events = [EVENT_SUBJECTS[w] for w in words if w in EVENT_SUBJECTS]
    if events and not [w for w in words if w not in GRAIN_WORDS and w not in EVENT_SUBJECTS]:
        return _with_breakdown(event_plan(text, grains[0] if grains else None, events[0], profile), dim, flt,
                               text, profile)
    subjects = [SALES_SUBJECTS[w] for w in words if w in SALES_SUBJECTS]
    if not subjects or bind_sales(profile) is None:
        fact = fact_subject([w for w in words if w not in GRAIN_WORDS], profile)
        if fact is not None:
            return _with_breakdown(event_plan(text, grains[0] if grains else None, fact, profile), dim, flt,
                                   text, profile)
    unknown = [w for w in words if w not in GRAIN_WORDS and w not in SALES_SUBJECTS]
    if not subjects:
        what = " ".join(unknown) or text
        raise _refuse(text, profile, f"no table in the warehouse answers {what!r}")
    if unknown:
        raise _refuse(text, profile, f"words not understood: {', '.join(unknown)}")
    binding = bind_sales(profile)
    if binding is None:
        raise _refuse(text, profile, "the warehouse has no order fact to compute sales from")
    interpretations: list[str] = []
    if not grains:
        grains = [Grain.day]
        interpretations.append("No time grain given: one row per day.")
    grain, subject = grains[0], subjects[0]
    mart = f"fct_{GRAIN_ADJECTIVE[grain]}_{subject}"

    tables = [binding.orders.name] + [t.name for t in (binding.lines, binding.refunds) if t is not None]
    o = binding.orders.name
    interpretations += [
        f"'{subject}' is answered by {o}, the most sale-like fact (a key, an event time and a money value"
        + (" from line items" if binding.lines is not None else "") + ").",
        f"Each order belongs to the {grain.value} of {o}.{binding.order_time.name}.",
        f"Every {grain.value} from the first to the last order or refund is present, with zeros when nothing happened.",
    ]
    if binding.test_flag:
        interpretations.append(f"Test orders ({o}.{binding.test_flag.name} = true) are excluded.")
    if binding.cancelled:
        interpretations.append(f"{_flag_word(binding.cancelled).capitalize()} orders ({o}.{binding.cancelled.name} "
                               "set) are excluded.")
    from dataeng_crew.agents.semantic_layer import kept_statuses, validity_rules

    status_rules = [v for v in validity_rules(binding.orders) if v.op == "not_in"]
    for v in status_rules:
        interpretations.append(f"Orders: {v.rule}; not chosen: {v.alternative}.")
    interpretations += [f"Orders: {kept}." for kept in kept_statuses(binding.orders)]
    if binding.discount_percent is not None:
        interpretations.append(f"Discounts are {o}.{binding.discount_percent.name} (a percentage of "
                               f"{o}.{binding.order_amount.name}), rounded to the cent; net sales are after them.")  # type: ignore[union-attr]
    if binding.lines and binding.line_quantity:
        interpretations.append(f"Gross sales come from line items in {binding.lines.name} (quantity × unit price).")
    elif binding.lines and binding.line_amount:
        rate = f" × (1 − {binding.lines.name}.{binding.line_rate.name})" if binding.line_rate else ""
        interpretations.append(f"Gross sales come from line items in {binding.lines.name}: the extended line amount "
                               f"{binding.lines.name}.{binding.line_price.name}{rate}" +  # type: ignore[union-attr]
                               (", i.e. after the line's discount rate (discounts below are order-level only)."
                                if rate else "."))
    elif binding.lines:
        interpretations.append(f"No line items or order amount: gross sales are the payments in {binding.lines.name} "
                               f"({binding.line_price.name}) summed per order.")  # type: ignore[union-attr]
    if not binding.refunds:
        interpretations.append(_status_refunds(binding, grain.value) or "No refund table was found: refunds are 0.")
    if binding.refunds:
        interpretations.append(f"Refunds come from {binding.refunds.name} and count on the refund day, "
                               "as in Shopify's sales reports.")
    if binding.currency:
        interpretations.append(f"All money is in {binding.currency}: {o} holds a single currency.")
    minor = [f"{t.name}.{c.name}" for t in profile.tables if t.name in tables for c in t.columns
             if is_minor_units(c)]
    if minor:
        interpretations.append("Integer money columns are minor units (cents) and are divided by 100: "
                               + ", ".join(minor) + ".")
    alternatives = sales_alternatives(binding, profile)
    roles = binding.roles() | {f"invalid_status_{i}": v.column for i, v in enumerate(status_rules)}
    return _with_breakdown(Plan(
        request=text, mart_name=mart, grain=grain, subject=subject, measures=measures(binding),
        source_tables=tables, roles=roles, interpretations=interpretations, alternatives=alternatives,
    ), dim, flt, text, profile)


def _with_breakdown(p: Plan, dim: str | None, flt: str | None, text: str, profile: WarehouseProfile) -> Plan:
    """The plan with the request's breakdown and filter applied (unchanged when it has none)."""
    if not dim and not flt:
        return p
    fact = profile.table(p.roles.get("orders") or p.roles["fact"])
    assert fact is not None
    parents = [t for t, _ in reachable(fact, profile)]
    out = apply_breakdown(p, dim, flt, fact, parents, text, profile)
    tables = list(out.source_tables)
    dim_table = out.roles.get("dimension", "").partition(".")[0]
    target = profile.table(dim_table) if dim_table else None
    if target is not None and target is not fact and out.roles.get("dimension_level") != "line":
        from dataeng_crew.agents.catalog import fk_path

        path = fk_path(fact, target, profile)
        for fk in path:  # every table on the way is staged and joined
            if fk.ref_table not in tables:
                tables.append(fk.ref_table)
        if len(path) > 1:
            out = out.model_copy(update={"interpretations": out.interpretations + [
                "Joined over " + " → ".join(f"{fk.table}.{fk.column}" for fk in path) + f" → {target.name}."]})
    if dim_table and dim_table not in tables:
        tables.append(dim_table)
    return out.model_copy(update={"source_tables": tables})


def _one_to_one(fk: ForeignKey, profile: WarehouseProfile) -> bool:
    """A reference unique in its table (``dim_customers.customer_id`` → ``stg_customers``): the same entity again,
    not a fact of it; counting its rows per entity would count the entity."""
    child = profile.table(fk.table)
    return child is not None and child.row_count > 1 and fk.column in child.candidate_keys


def _one_reference_per_fact(fks: list[ForeignKey], profile: WarehouseProfile, alternatives: list[str]
                            ) -> list[ForeignKey]:
    """The facts an entity mart aggregates, each once: a fact referencing the entity twice (home and visiting
    team) is aggregated over its first reference, and a project model built from another referencing fact (an
    enriched copy of the same orders) is left out, or its rows would be counted twice; the plan names both."""
    fks = sorted(fks, key=lambda f: (f.table, f.column))
    tables = {f.table: profile.table(f.table) for f in fks}
    kept: list[ForeignKey] = []
    for fk in fks:
        same = next((k for k in kept if k.table == fk.table), None)
        if same is not None:
            alternatives.append(f"{fk.table} references {fk.ref_table} twice; aggregated over {same.column}, "
                                f"not {fk.column} (ask for the other by name).")
            continue
        child = tables[fk.table]
        built_from = (upstream_models(child.ref_name, profile.inventory) if child is not None and child.ref_name
                      and profile.inventory is not None else set())
        base = next((k for k in fks if k.table != fk.table and tables[k.table] is not None
                     and (tables[k.table].ref_name or k.table) in built_from), None)  # type: ignore[union-attr]
        if base is not None:
            alternatives.append(f"{fk.table} is built from {base.table} (the same rows): aggregated once, from "
                                f"{base.table}, so nothing is counted twice.")
            continue
        kept.append(fk)
    return kept


def sales_alternatives(binding: SalesBinding, profile: WarehouseProfile) -> list[str]:
    """Other facts or columns that could also have answered a sales request, and why they were not used."""
    out = []
    o = binding.orders
    others = [b.orders.name for b in sales_candidates(profile) if b.orders is not o]
    if others:
        out.append(f"Other facts with a money value: {', '.join(others)}; chose {o.name}, the most sale-like "
                   "(line items, then a sales word in its name, then most rows).")
    if binding.lines is not None and binding.line_quantity is not None and binding.order_amount is not None:
        out.append(f"Gross sales could come from {o.name}.{binding.order_amount.name}; chose the line items in "
                   f"{binding.lines.name} (quantity × price), which the order amount should equal.")
    if binding.lines is not None and binding.line_amount and binding.order_amount is not None:
        out.append(f"Gross sales could come from {o.name}.{binding.order_amount.name} (which may include taxes or "
                   f"charges); chose the line items in {binding.lines.name}, the value of what was sold.")
    elif binding.lines is not None and binding.line_quantity is None:
        out.append(f"Gross sales sum the rows of {binding.lines.name} per order because {o.name} has no amount "
                   "column and no line items with a quantity were found.")
    payments = [t.name for t in profile.tables if t is not binding.lines and re.search(
        r"payments?|transactions?|charges?", snake_case(t.name)) and any(
        fk.table == t.name and fk.ref_table == o.name for fk in profile.foreign_keys)]
    if payments and binding.lines is not None and binding.line_quantity is not None:
        out.append(f"Sales could also be read from payments ({', '.join(payments)}); chose what was ordered "
                   "(line items), not what was paid, so unpaid and partially paid orders count in full.")
    times = [c.name for c in o.columns if is_temporal(c) and c is not binding.order_time and not
             c.name.lower().startswith(("updated", "_", "loaded")) and c is not binding.cancelled]
    if times:
        out.append(f"{o.name} has other timestamps ({', '.join(times)}); chose {binding.order_time.name}, the "
                   "event time by name preference (ordered/created before processed/updated).")
    return out


def mark_incremental(p: Plan, profile: WarehouseProfile, policy: GovernancePolicy) -> Plan:
    """Make an event mart over a fact larger than ``policy.incremental_above_rows`` incremental, with a lookback."""
    fact = profile.table(p.roles.get("fact") or p.roles.get("orders") or "")
    if fact is None or p.mart_name is None or fact.row_count <= policy.incremental_above_rows:
        return p
    if p.kind not in ("event", "metric") or "dimension" in p.roles or not policy.incremental_lookback_periods:
        why = ("a breakdown's value list can grow with new rows" if "dimension" in p.roles
               else "its refunds and spine span several facts")
        return p.model_copy(update={"interpretations": p.interpretations + [
            f"{fact.name} has {fact.row_count:,} rows (> {policy.incremental_above_rows:,}), but this mart stays a "
            f"full table: incremental builds are supported for single-fact event marts without a breakdown ({why})."]})
    n = policy.incremental_lookback_periods
    return p.model_copy(update={"incremental_lookback": n, "interpretations": p.interpretations + [
        f"{fact.name} has {fact.row_count:,} rows (> {policy.incremental_above_rows:,}, the governance policy's "
        f"incremental_above_rows): the mart is incremental (unique key: the period); each run recomputes the last "
        f"{n} {p.grain.value if p.grain else 'period'}s already built, so late-arriving rows in them are counted. "
        f"Rows arriving later than that need a --full-refresh."]})


def _plan_step(ctx: RoleContext) -> tuple[str, str]:
    """This role's step in a proposal: run the brain, return (thought, observation)."""
    ctx.plan = mark_incremental(ctx.brain.plan(ctx.request, ctx.profile), ctx.profile, ctx.policy)
    ctx.plan = project_plan.describe_origins(project_plan.project_mart_name(ctx.plan, ctx.profile), ctx.profile)
    ctx.plan = project_plan.flag_degenerate_measures(ctx.plan, ctx.profile)
    return explain(ctx.brain, "plan", ctx.plan), (f"mart {ctx.plan.mart_name or '(none)'}; "
                                                  f"stage {', '.join(ctx.plan.source_tables)}")


register_role("planner", "a Plan from a request: mart, grain, measures with definitions, raw tables, every "
              "interpretation",
              ("daily_sales mart", "monthly revenue", "staging models"), order=10, stage="plan", action="planner.plan(request, profile)",
              step=_plan_step)
