"""Planner, metric path: request words → a :class:`MetricQuery` over the inferred semantic layer.

A request is read as *operator* words (rate, share, average, active, total …), a *subject* (a fact's rows, a
measure, an event stored as a value, a duration between two times, an entity counted distinctly), a time
grain, a breakdown (``by …``) and a filter (``for …``). The subject binds against every fact's semantic model
(``agents/semantic_layer.py``); the binding that uses every word wins, ties go to the larger fact and are named
in the plan. Validity rules, time roles, units and discounts are applied by stated rules and listed with the
reading they did not take. Nothing here names a table or column of a particular warehouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dataeng_crew.agents import planner as base
from dataeng_crew.agents.semantic_layer import (
    WAIT_WORDS,
    SemanticModel,
    clean_value,
    kept_statuses,
    infer_layer,
    quantity_of,
    name_tokens,
    prefix_of,
    same_word,
    time_role,
)
from dataeng_crew.agents.semantics import (entity_name, is_temporal, needs_normalising, plural, singular)
from dataeng_crew.contracts import (
    Choice,
    Grain,
    MeasureSpec,
    Metric,
    MetricQuery,
    Plan,
    RowFilter,
    TableProfile,
    WarehouseProfile,
)
from dataeng_crew.errors import RequestError
from dataeng_crew.tools.project_inventory import upstream_models
from dataeng_crew.tools.warehouse import primary_key

OPERATORS = {
    "rate": {"rate", "rates", "share", "ratio", "percentage", "percent", "proportion", "fraction", "pct"},
    "average": {"average", "avg", "mean", "typical"},
    "distinct": {"active", "unique", "distinct"},
    "total": {"total", "totals", "sum", "overall"},
    "count": {"number", "count", "counts", "num", "many", "how"},
    "min": {"min", "minimum", "lowest", "smallest", "shortest"},
    "max": {"max", "maximum", "highest", "largest", "longest", "peak"},
}
FIRST = "first"
DURATION_UNITS = {"hours": 3600, "hour": 3600, "hrs": 3600, "minutes": 60, "minute": 60, "mins": 60,
                  "days": 86400, "seconds": 1, "secs": 1, "weeks": 604800}
DURATION_WORDS = {"time", "duration", "length", "turnaround", "elapsed", "took", "taken", "span"}
REVENUE_WORDS = {"revenue", "sales", "income", "turnover", "gmv", "takings", "earnings", "value"}
REVENUE_COLUMNS = ("subtotal", "net", "revenue", "sales", "amount", "fare", "price", "billed", "premium", "charge",
                   "total")  # what a row sold, before taxes, tips, fees and shipping: most specific first


def _revenue_rank(column: str) -> int:
    tokens = column.lower().split("_")
    return next((i for i, w in enumerate(REVENUE_COLUMNS) if any(t.startswith(w) for t in tokens)),
                len(REVENUE_COLUMNS))
GROSS_WORDS = {"gross", "list", "undiscounted"}
CONNECTORS = {"of", "per", "in", "on", "and", "to", "from", "with"}
PEOPLE = re.compile(r"(customer|user|account|member|subscriber|client|rider|patient|student|player|driver|employee|"
                    r"visitor|guest|learner|athlete|patron|borrower|shopper|buyer|person|people|contact)s?")
SIGNUP_WORDS = {"signups", "signup", "registrations", "registration", "joins", "joiners", "sign", "ups",
                "enrolments", "enrollments", "onboardings"}


@dataclass
class Binding:
    """How one semantic model answers the subject words: which words bound to what."""

    model: SemanticModel
    used: set[str] = field(default_factory=set)
    fact_words: set[str] = field(default_factory=set)
    event: object | None = None
    measure: object | None = None
    duration: object | None = None
    entity: tuple[str, str | None] | None = None  # (column, referenced table or None for a plain column)
    base_event: object | None = None
    same_words: list = field(default_factory=list)  # other events the same words name (named back)
    referenced: int = 0  # foreign keys of other facts to this one: the business process's own grain first
    revenue: bool = False

    def score(self) -> tuple:
        """Every word used first, then a named fact (by its own noun before a word of a compound name: orders
        before order_items), then the larger fact."""
        noun = entity_name(self.model.name).split("_")[-1]
        named = any(same_word(w, noun) or same_word(w, entity_name(self.model.name)) for w in self.fact_words)
        return (len(self.used), len(self.fact_words), named, self.referenced, self.model.table.row_count)


def _entity_tokens(table: str) -> list[str]:
    name = entity_name(table)
    return [name, *name.split("_"), *re.findall(r"[^\W_]+", table.lower())]  # a name in any script (Заказы)


def _bind(model: SemanticModel, words: list[str], op: str | None, duration_unit: str | None,
          profile: WarehouseProfile) -> Binding:
    """Bind the subject words to one fact: its rows, then the richest of an event, measure, duration, entity."""
    b = Binding(model)
    b.fact_words = {w for w in words if any(same_word(w, t) for t in [*_entity_tokens(model.name), *model.row_nouns()])}
    if PEOPLE.fullmatch(entity_name(model.name).split("_")[-1]):  # signups are new rows of a table of people
        b.fact_words |= {w for w in words if w in SIGNUP_WORDS}
    rest = [w for w in words if w not in b.fact_words]
    best_event = _bind_event(b, words, rest)
    candidates = [(k, v) for k, v in (
        ("event", best_event), ("measure", _bind_measure(b, words, rest, op)),
        ("duration", _bind_duration(b, rest, op, duration_unit)),
        ("entity", _bind_entity(model, rest) if op == "distinct" else None)) if v]
    best_duration = next((v for k, v in candidates if k == "duration"), None)
    if duration_unit and best_duration:
        candidates = [("duration", best_duration)] + [c for c in candidates if c[0] == "event" and not (
            c[1][1] <= best_duration[1])]
    if candidates:
        # the richest reading: most words; a duration or entity beats an event of the same words
        kind, (thing, hit) = max(candidates, key=lambda kv: (len(kv[1][1]), kv[0] in {"duration", "entity"},
                                                             kv[0] == "measure"))
        setattr(b, kind, thing)
        b.used |= hit
        # a second, different event can qualify a measure/duration/entity ("average fare of completed rides")
        if kind != "event" and best_event and not best_event[1] <= hit and not best_event[1] & hit:
            b.event = best_event[0]
            b.used |= best_event[1]
    b.used |= b.fact_words
    if duration_unit:
        b.used.add(duration_unit)
    return b


def _tokens(model: SemanticModel, column: str) -> list[str]:
    return name_tokens(column, prefix_of(model.table))


def _bind_event(b: Binding, words: list[str], rest: list[str]) -> tuple | None:
    """An event stored as a value / a set time / a flag whose every word the request names; with a second event
    on other words, the first qualifies the second ("late returns": late, of returns → ``b.base_event``)."""
    best, hits = None, []
    for ev in b.model.events:
        syn = ev.op != "in"  # a stored value is matched by its own word (a stem, a plural), never a synonym
        hit = {w for w in rest if any(same_word(w, t, syn) for t in ev.words)}
        whole = all(any(same_word(w, t, syn) for w in rest) for t in ev.words if len(t) > 2 or len(ev.words) == 1)
        if hit and whole:
            hits.append((ev, hit))
            if best is None or len(hit) > len(best[1]):
                best = (ev, hit)
    if best is None:
        return None
    b.same_words = [e for e, h in hits if e is not best[0] and h == best[1]]
    others = [(e, h) for e, h in hits if e is not best[0] and not h & best[1]
              and not (e.column == best[0].column and e.op == best[0].op == "in")]
    if not others:
        return best
    pair = sorted([best, others[0]], key=lambda eh: max(words.index(w) for w in eh[1]))
    b.base_event = pair[1][0]
    return (pair[0][0], pair[0][1] | pair[1][1])


def _bind_measure(b: Binding, words: list[str], rest: list[str], op: str | None = None) -> tuple | None:
    """A measure whose column the words name (fares ~ fare_cents, kwh, billed amount); revenue words → the
    fact's own money amount (``b.revenue``); an average of the rows themselves ("average bill") → their own money
    amount too (the average of a row is the average of its value, never of a count)."""
    best = None
    for m in b.model.measures:
        toks = [t for t in _tokens(b.model, m.column) if t not in {"cents", "micros", "minor", "amount", "amt", "value"}]
        toks = toks or _tokens(b.model, m.column)
        hit = {w for w in words if any(same_word(w, t) for t in _tokens(b.model, m.column))}
        if hit - b.fact_words and any(same_word(w, t) for w in hit for t in toks) and (
                best is None or len(hit) > len(best[1])):
            best = (m, hit)
    revenue = {w for w in rest if w in REVENUE_WORDS or w in GROSS_WORDS}
    if best is None and op == "average" and not rest and b.fact_words:  # "average bill", "average order"
        money = [m for m in b.model.measures if m.meaning == "money" and m.additive and not re.search(
            r"discount|tax|refund|tip|fee|balance|cost|spend|shipping", m.column.lower())]
        if money:
            return min(money, key=lambda m: (_revenue_rank(m.column), m.column)), set()
    if best is None and revenue & REVENUE_WORDS:
        money = [m for m in b.model.measures if m.meaning == "money" and (m.additive or quantity_of(b.model))
                 and not re.search(r"discount|tax|refund|tip|fee|balance|cost|spend|shipping", m.column.lower())]
        if money:
            best = (min(money, key=lambda m: (_revenue_rank(m.column), m.column)), revenue)
            b.revenue = True
    return best


def _bind_duration(b: Binding, rest: list[str], op: str | None, unit: str | None) -> tuple | None:
    """A duration whose end (or start) verb the words name, or a duration word/unit with the fact's name."""
    if not (unit or set(rest) & (DURATION_WORDS | set(WAIT_WORDS)) or op == "average"):
        return None
    best = None
    for d in b.model.durations:
        hit = {w for w in rest if any(same_word(w, t) for t in d.words)} | {w for w in rest if w in DURATION_WORDS}
        if (hit or (b.fact_words and unit)) and (best is None or len(hit) > len(best[1])):
            best = (d, hit)
    return best


def _bind_entity(model: SemanticModel, rest: list[str]) -> tuple | None:
    """What "active/unique X" counts distinctly: a foreign key to X's table, else a plain column named X."""
    best = None
    for fk_col, ref in model.entities.items():
        hit = {w for w in rest if any(same_word(w, t) for t in _entity_tokens(ref))}
        if hit and (best is None or len(hit) > len(best[1])):
            best = ((fk_col, ref), hit)
    if best is not None:
        return best
    measured = {m.column for m in model.measures}
    for col in model.table.columns:  # a plain column counted distinctly ("unique requesters" by email)
        if col.name in model.entities or col.name in measured or col.name == primary_key(model.table) or is_temporal(col):
            continue
        hit = {w for w in rest if any(same_word(w, t) for t in _tokens(model, col.name))}
        if hit:
            return ((col.name, None), hit)
    return None


def _literal_values(col_profile, values: list[str], normalised: bool) -> list[str]:
    """The literals a filter compares with: cleaned values when staging cleans the column, else raw ones."""
    if normalised:
        return values
    return sorted({v for v in col_profile.top_values if clean_value(v) in values}) or values


def mart_name(text: str, filter_value: str | None = None) -> str:
    """``fct_`` + the request's words, filler dropped; a filter's value before the subject, the breakdown last.

    "monthly return rate by store" → ``fct_monthly_return_rate_by_store``; "weekly flights for origin JFK" →
    ``fct_weekly_jfk_flights``.
    """
    rest, dim, flt = base.split_breakdown(text)
    words = [w for w in base.request_words(rest) if w not in base.FILLER]
    if flt and filter_value:
        at = next((i + 1 for i, w in enumerate(words) if w in base.GRAIN_WORDS), 0)
        words[at:at] = base.request_words(filter_value)
    if dim:
        words += ["by", *base.request_words(dim)]
    name = re.sub(r"[^a-z0-9_]+", "_", transliterate("_".join(words).lower())).strip("_")
    return f"fct_{name or 'metric'}"[:63].rstrip("_")


CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t",
                     "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "i", "yi", "ye", "g"]))


def fact_noun(table: str) -> str:
    """The plural noun for a fact's rows: ``raw_rides`` → rides, ``chinook_invoice`` → invoices, ``Заказы`` → zakazy."""
    word = re.sub(r"[^a-z0-9_]+", "_", transliterate(entity_name(table) if entity_name(table) != "col_" +
                                                     table else table).lower()).strip("_")
    if word.startswith("col_") or not word:  # a name in another script: its own word, transliterated
        return (re.sub(r"[^a-z0-9_]+", "_", transliterate(table.lower())).strip("_") or "rows").split("_")[-1]
    return plural(singular(word.split("_")[-1]))


def transliterate(text: str) -> str:
    """Latin letters for a model name: accents dropped (für → fur), Cyrillic transliterated (заказы → zakazy)."""
    import unicodedata

    text = "".join(CYRILLIC.get(ch, ch) for ch in text)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _refuse(text: str, profile: WarehouseProfile, why: str) -> RequestError:
    return base._refuse(text, profile, why)


def plan_metric(text: str, words: list[str], grain: Grain | None, dim: str | None, flt: str | None,
                profile: WarehouseProfile) -> Plan:
    """Compile the request's words into a metric query and the plan that states it.

    Args:
        text: The request as written.
        words: Its words without filler, grain, breakdown and filter words.
        grain: The time grain asked for (None: totals per breakdown value, or daily without one).
        dim: The breakdown phrase (``by …``), if any.
        flt: The filter phrase (``for …``), if any.
        profile: The warehouse profile.

    Returns:
        A ``kind="metric"`` plan carrying the :class:`MetricQuery`.

    Raises:
        RequestError: When no fact answers every word, or when two readings tie and no rule decides.
    """
    op = next((o for o, ws in OPERATORS.items() if set(words) & ws), None)
    op_words = {w for w in words if any(w in ws for ws in OPERATORS.values())}
    unit = next((w for w in words if w in DURATION_UNITS), None)
    first = op is None and unit is None and FIRST in words  # "first orders": each customer's first order
    subject = [w for w in words if w not in op_words and w not in CONNECTORS and w != unit and not (first and w == FIRST)]
    if first:
        return first_of(_plan_metric(text, words, subject, op, op_words, unit, grain, dim, flt, profile), profile)
    return _plan_metric(text, words, subject, op, op_words, unit, grain, dim, flt, profile)


def _plan_metric(text: str, words: list[str], subject: list[str], op: str | None, op_words: set[str],
                 unit: str | None, grain: Grain | None, dim: str | None, flt: str | None,
                 profile: WarehouseProfile) -> Plan:
    """:func:`plan_metric` once the operator, unit and subject words are known."""
    if not subject:
        raise _refuse(text, profile, "name what to measure (a fact, a measure or an event), e.g. 'weekly logins'")
    layer = infer_layer(profile)
    if grain is None and dim:  # totals per breakdown value: a table without a time answers too, when nothing else does
        try:
            return _plan_on(layer, text, words, subject, op, op_words, unit, grain, dim, flt, profile)
        except RequestError as timed_error:
            timeless = infer_layer(profile, timeless=True)
            if len(timeless) == len(layer):
                raise timed_error from None
            try:
                return _plan_on(timeless, text, words, subject, op, op_words, unit, grain, dim, flt, profile)
            except RequestError as timeless_error:
                raise (timed_error if layer else timeless_error) from None
    return _plan_on(layer, text, words, subject, op, op_words, unit, grain, dim, flt, profile)


def _plan_on(layer: list[SemanticModel], text: str, words: list[str], subject: list[str], op: str | None,
             op_words: set[str], unit: str | None, grain: Grain | None, dim: str | None, flt: str | None,
             profile: WarehouseProfile) -> Plan:
    """The metric query over ``layer``'s best binding (see :func:`plan_metric`)."""
    if not layer:
        empty = [t.name for t in profile.tables if t.row_count == 0]
        why = ("every table is empty" if empty and len(empty) == len(profile.tables)
               else "no table has an event time (a timestamp, a date, an epoch time or year/month/day columns)")
        raise _refuse(text, profile, why)
    bindings = [_bind(m, subject, op, unit, profile) for m in layer]
    for b in bindings:
        b.referenced = sum(1 for fk in profile.foreign_keys if fk.ref_table == b.model.name and fk.table != fk.ref_table)
    complete = [b for b in bindings if set(subject) <= b.used and (b.event or b.measure or b.duration or b.entity
                                                                    or b.fact_words)]
    if not complete:
        partial = max(bindings, key=lambda b: b.score())
        missing = [w for w in subject if w not in partial.used]
        raise _refuse(text, profile, f"no fact answers {' '.join(missing)!r} (words bind to no table, measure, "
                      f"value, time or entity); closest: {partial.model.name}")
    if op == "rate" and any(b.event for b in complete):  # a rate divides rows with an event by rows of the fact
        complete = [b for b in complete if b.event]
    if dim and len(complete) > 1:  # "revenue by payment method": the fact whose rows carry the breakdown
        carrying = [b for b in complete if _breaks_down(b.model.table, dim, text, profile)]
        complete = carrying or complete
    if op == "distinct" and any(b.entity for b in complete):  # activity: a transaction (a fact with a measure)
        complete = sorted((b for b in complete if b.entity), reverse=True, key=lambda b: (  # before a plain log
            len(b.used), any(m.additive for m in b.model.measures), b.model.table.row_count))
    else:
        complete.sort(key=lambda b: b.score(), reverse=True)
    best = complete[0]
    tied = [b for b in complete[1:] if b.score()[:3] == best.score()[:3]
            and not _same_rows(b.model.table, best.model.table, profile)]
    # the rule stated with the choice decides a tie of the words: the fact others reference most (the process's own
    # grain: a refund of a payment is its order's), then the larger one; only a tie on both too is refused
    if tied and best.fact_words == set() and any(b.score()[3:] == best.score()[3:] for b in tied):
        raise _refuse(text, profile, f"{' '.join(subject)!r} is answered equally by {best.model.name} and "
                      f"{', '.join(b.model.name for b in tied)}; name the table")
    if unit and best.duration is None:
        raise _refuse(text, profile, f"{unit!r} asks for a duration, but {best.model.name} has no pair of start and "
                      "end times for it")
    if op == "distinct" and best.entity is None:
        raise _refuse(text, profile, f"'{' '.join(op_words)}' counts distinct entities, but no foreign key of "
                      f"{best.model.name} references a table named {' '.join(subject)!r}")
    return _compile(text, subject, best, op, op_words, unit, grain, dim, flt, profile, tied, layer)


def _same_rows(a: TableProfile, b: TableProfile, profile: WarehouseProfile) -> bool:
    """Two project models holding the same rows, one built from the other (``int_order_status_categorized`` from
    ``stg_orders``): one reading, not two."""
    inv = profile.inventory
    if inv is None or a.row_count != b.row_count or not a.ref_name or not b.ref_name:
        return False
    return a.ref_name in upstream_models(b.ref_name, inv) or b.ref_name in upstream_models(a.ref_name, inv)


def _breaks_down(table: TableProfile, dim: str, text: str, profile: WarehouseProfile) -> bool:
    """Whether ``table`` (or a table it references) has the column the breakdown phrase names."""
    try:
        base.resolve_column(dim, [table, *(t for t, _ in base.reachable(table, profile))], text, profile, "breakdown")
    except RequestError:
        return False
    return True


def _event_filter(ev, table) -> RowFilter:
    col = table.column(ev.column)
    if ev.op == "in":
        values = _literal_values(col, [ev.value], _normalised(col, table))
        return RowFilter(column=f"{table.name}.{ev.column}", op="in", values=values,
                         reason=f"rows whose {ev.column} is '{ev.value}'")
    if ev.op == "is_true":
        return RowFilter(column=f"{table.name}.{ev.column}", op="is_true", reason=f"rows flagged {ev.column}")
    if ev.op == "later_than":
        return RowFilter(column=f"{table.name}.{ev.column}", op="later_than", values=[f"{table.name}.{ev.value}"],
                         reason=f"rows whose {ev.column} is after {ev.value} (late)")
    if ev.op == "has_child":
        child = ev.value.partition(".")[0]
        return RowFilter(column=f"{table.name}.{ev.column}", op="has_child", values=[ev.value],
                         reason=f"rows with at least one {child} row (by {ev.value})")
    return RowFilter(column=f"{table.name}.{ev.column}", op="is_not_null", reason=f"rows with {ev.column} set")


def _normalised(col, table) -> bool:
    return table.origin != "model" and needs_normalising(col)


def _count_name(words: list[str], fact_word: str) -> str:
    """A count's column name from the request's words: "missed calls" → missed_calls, "logins" → logins."""
    words = [w for w in words if w not in CONNECTORS] or [fact_word]
    last = words[-1]
    if last.endswith("ed") or last in ADJECTIVES:  # a state of the row: name the rows ("lost" → lost_loans)
        return "_".join(words + [fact_word])
    return "_".join(words[:-1] + [plural(singular(last))])


ADJECTIVES = {"spam", "paid", "lost", "open", "late", "won", "sent", "done", "active", "new", "free", "missed", "early",
              "overdue", "unpaid", "pending", "failed", "void", "valid", "invalid", "online", "offline"}


@dataclass
class _Compiler:
    """One binding compiled into a metric query: each kind of metric is a small step over shared state."""

    text: str
    subject: list[str]
    b: Binding
    op: str | None
    op_words: set[str]
    unit: str | None
    profile: WarehouseProfile
    layer: list[SemanticModel]
    choices: list[Choice] = field(default_factory=list)

    @property
    def table(self):  # noqa: ANN201 - TableProfile
        return self.b.model.table

    @property
    def fact_word(self) -> str:
        """What one row is called: the request's noun when it named the rows by their key ("games" of a table
        keyed by game_id), else the table's noun."""
        nouns = self.b.model.row_nouns()
        named = sorted(w for w in self.b.fact_words if any(same_word(w, t) for t in nouns))
        return singular(named[0]) if named else fact_noun(self.table.name)

    def refuse(self, why: str) -> RequestError:
        return _refuse(self.text, self.profile, why)

    def validity(self) -> list[RowFilter]:
        """The fact's validity rules as row filters; a value the metric counts is never excluded ("cancellations")."""
        table, ev = self.table, self.b.event
        out = []
        for v in self.b.model.validity:
            col = table.column(v.column.split(".", 1)[1])
            values = list(v.values)
            reason = v.rule
            if ev is not None and ev.op == "in" and v.column == f"{table.name}.{ev.column}" and ev.value in values:
                values = [x for x in values if x != ev.value]
                reason = f"rows whose {ev.column} is {', '.join(values)} are excluded (they are not completed business events)"
                self.choices.append(Choice(topic="validity", chosen=f"'{ev.value}' rows are the metric's subject, so "
                                           "the rule excluding them does not apply here",
                                           rule="a metric that counts a value never excludes it", alternatives=[]))
                if not values:
                    continue
            out.append(RowFilter(column=v.column, op=v.op, reason=reason, values=_literal_values(
                col, values, _normalised(col, table)) if values else []))
        return out

    def time(self) -> tuple:
        """(time column, rule): an event's own time, a duration's start, else the fact's time by its role."""
        model, table = self.b.model, self.table
        time_col, rule = model.time, model.time_rule
        timed = next((e for e in self.events() if e.op in {"is_not_null", "later_than"}), None)
        if timed is not None:
            time_col, rule = table.column(timed.column), (f"the time the event happens ({timed.column}): a "
                                                          f"{timed.column} event is counted when it happens")
        d = self.b.duration
        if d is not None and (model.time is None or model.time.name != d.start):
            time_col, rule = table.column(d.start), f"the start of each duration ({d.start})"
        if model.parts is not None and (time_col is None or time_role(time_col) != "creation"):
            rule = model.time_rule
        return time_col, rule

    def events(self) -> list:
        return [e for e in (self.b.event, self.b.base_event) if e is not None]

    def event_where(self) -> list[RowFilter]:
        return [_event_filter(self.b.event, self.table)] if self.b.event is not None else []

    def near_values(self) -> None:
        """Other values that share a word with the request's, and other events the same words name, are named back."""
        if self.b.event is not None and self.b.same_words:
            self.choices.append(Choice(
                topic="event", chosen=_event_filter(self.b.event, self.table).reason,
                rule="a value or time of the fact's own rows before rows of a child table",
                alternatives=[_event_filter(e, self.table).reason for e in self.b.same_words]))
        for e in (x for x in self.events() if x.op == "in"):
            near = [v.value for v in self.b.model.events if v.op == "in" and v.column == e.column and v.value != e.value
                    and any(same_word(w, t, False) for w in self.subject for t in v.words)]
            if near:
                self.choices.append(Choice(topic="value", chosen=f"{e.column} = '{e.value}'", rule="the value whose "
                                           "every word the request names",
                                           alternatives=[f"{e.column} = '{v}'" for v in near]))

    def counts(self) -> tuple[Metric | None, Metric]:
        """(the event's count or None, the rows it is a share of: all rows, or the base event's rows)."""
        table, fact_word = self.table, self.fact_word
        event_metric = None
        if self.b.event is not None:
            where = [_event_filter(e, table) for e in self.events()]
            event_metric = Metric(name=_count_name(self.subject, fact_word), kind="count", where=where,
                                  unit=fact_word, description=f"Number of {table.name} rows "
                                  + " and ".join(f.reason.removeprefix("rows ") for f in where) + " in the period.")
        all_rows = Metric(name=f"{fact_word}_count", kind="count", unit=fact_word,
                          description=f"Number of {table.name} rows in the period.")
        base_event = self.b.base_event
        if base_event is not None:  # the base a qualifier is a share of ("late returns" of returns)
            base_filter = _event_filter(base_event, table)
            base_words = [w for w in self.subject if any(same_word(w, t) for t in base_event.words)] or list(
                base_event.words)
            all_rows = Metric(name=_count_name(base_words, fact_word), kind="count", unit=fact_word,
                              where=[base_filter], description=f"Number of {table.name} rows "
                              f"{base_filter.reason.removeprefix('rows ')} in the period.")
        return event_metric, all_rows

    def rate(self, event_metric: Metric | None, all_rows: Metric) -> list[Metric]:
        table = self.table
        if event_metric is None:
            raise self.refuse(f"'{' '.join(self.op_words)}' needs an event to divide (a value such as 'missed', a time "
                              "such as 'returned_at', or a flag); none of the words names one")
        op_word = next((w for w in self.text.lower().split() if w in OPERATORS["rate"]), "rate")
        name = "_".join(singular(w) for w in self.subject) + f"_{op_word}"
        based = self.b.base_event is not None
        self.choices.append(Choice(
            topic="ratio", chosen=f"{event_metric.name} ÷ all counted {table.name} rows",
            rule="a rate divides the rows with the event by every counted row of the same fact in the same period"
                 + (f" that is {all_rows.name.replace('_', ' ')}" if based else ""),
            alternatives=[f"÷ all counted {table.name} rows" if based else
                          f"÷ rows of another fact (e.g. per {self.fact_word} of a parent table)"]))
        return [event_metric, all_rows, Metric(
            name=name, kind="ratio", numerator=event_metric.name, denominator=all_rows.name, unit="fraction",
            description=f"{event_metric.name} ÷ {all_rows.name}: the share of {table.name} rows that are "
                        f"{event_metric.name.replace('_', ' ')} (0–1); null when there are none.")]

    def duration(self) -> list[Metric]:
        d, table, unit = self.b.duration, self.table, self.unit
        seconds = DURATION_UNITS.get(unit or "", 3600)
        unit_name = unit if unit in DURATION_UNITS else "hours"
        agg = {"total": "sum", "min": "min", "max": "max"}.get(self.op or "", "average")
        others = [f"{x.start} → {x.end}" for x in self.b.model.durations if x is not d]
        self.choices.append(Choice(topic="duration", chosen=f"{d.start} → {d.end}", rule="the end time the request "
                                   "names (by its verb), from the row's creation/start time; rows without an end are "
                                   "left out", alternatives=others + ["counting open rows up to now"]))
        if unit is None:
            self.choices.append(Choice(topic="unit", chosen="hours", rule="no unit named: durations in hours",
                                       alternatives=["minutes", "days"]))
        return [Metric(name="_".join([agg, *(w for w in self.subject if w not in DURATION_WORDS), unit_name]),
                       kind="duration", column=f"{table.name}.{d.end}", start_column=f"{table.name}.{d.start}",
                       scale=1 / seconds, unit=unit_name, where=self.event_where(),
                       description=f"{agg.capitalize()} of {d.end} − {d.start} in {unit_name}, over rows where both "
                                   "are set."),
                Metric(name=f"{self.fact_word}_count", kind="count", unit=self.fact_word,
                       where=[RowFilter(column=f"{table.name}.{d.end}", op="is_not_null", reason=f"rows with {d.end} set")],
                       description=f"Number of {table.name} rows with both times set in the period.")]

    def entity(self) -> list[Metric]:
        fk, ref = self.b.entity
        table = self.table
        op_word = next((w for w in self.text.lower().split() if w in OPERATORS["distinct"]), "distinct")
        others = [f"{m.name} ({c})" for m in self.layer if m is not self.b.model
                  for c, r in m.entities.items() if r == ref]
        self.choices.append(Choice(topic="activity", chosen=f"active = at least one counted row of {table.name}",
                                   rule="activity is a row of the largest fact with a measure (a transaction) that "
                                        "references the entity, before a plain log of events",
                                   alternatives=[f"activity in {o}" for o in others]))
        return [Metric(name="_".join([op_word, *self.subject[:-1], plural(self.subject[-1])]), kind="count_distinct",
                       column=f"{table.name}.{fk}", unit=plural(entity_name(ref or fk)), where=self.event_where(),
                       description=f"Distinct {ref or fk} with at least one counted {table.name} row in the period "
                                   f"(by {fk}).")]

    def measure(self, all_rows: Metric, counted_event: bool) -> list[Metric]:
        m, model, table, b = self.b.measure, self.b.model, self.table, self.b
        per_unit = m.meaning == "money" and not m.additive and quantity_of(model) is not None
        agg = {"average": "average", "min": "min", "max": "max", "total": "sum"}.get(
            self.op or "", "sum" if m.additive or per_unit and b.revenue else "average")
        if not m.additive and agg == "sum" and not per_unit:
            raise self.refuse(f"{m.column} is a {m.meaning} and cannot be summed; ask for its average")
        quantity = quantity_of(model) if per_unit and agg == "sum" else None
        if quantity is not None:
            self.choices.append(Choice(topic="measure", chosen=f"{m.column} × {quantity.column} (the line's value)",
                                       rule="a unit price is money per unit: it is summed only times the quantity",
                                       alternatives=[f"the sum of {m.column} alone"]))
        label = "_".join(t for t in name_tokens(m.column, prefix_of(table)) if t not in {"cents", "micros", "minor"})
        name = ("revenue" if b.revenue else label) if agg == "sum" else f"{agg}_{label}"
        discount, kind_ = (None, None)
        if b.revenue and not set(self.text.lower().split()) & GROSS_WORDS:
            discount, kind_ = _discount(model, m)
        elif m.meaning == "money" and _discount(model, m)[0]:
            self.choices.append(Choice(topic="discount", chosen=f"{m.column} as stored (the column the request names)",
                                       rule="discounts are applied to revenue, not to a column named by the request",
                                       alternatives=[f"{m.column} less {_discount(model, m)[0].split('.')[1]} "  # type: ignore[union-attr]
                                                     "(ask for revenue)"]))
        if self.op is None and not m.additive:
            self.choices.append(Choice(topic="aggregation", chosen=f"average of {m.column}",
                                       rule=f"a {m.meaning} is never summed", alternatives=["min", "max"]))
        others = [x.column for x in model.measures if x is not m and x.meaning == m.meaning]
        if others:
            self.choices.append(Choice(topic="measure", chosen=m.column, rule=(
                "revenue is the row's own amount, before taxes, tips, fees and shipping" if b.revenue
                else "the column the request's words name"), alternatives=others))
        if discount:
            self.choices.append(Choice(topic="discount", chosen=f"{m.column} less {discount.split('.')[1]}",
                                       rule="revenue is net of the row's discount", alternatives=[f"gross {m.column}"]))
        out = [Metric(name=name, kind=agg, column=f"{table.name}.{m.column}",  # type: ignore[arg-type]
                      unit=(m.unit or m.meaning).removesuffix(" per unit") if quantity else m.unit or m.meaning,
                      quantity=f"{table.name}.{quantity.column}" if quantity else None,
                      discount=discount, discount_kind=kind_, where=self.event_where(),
                      description=f"{agg.capitalize()} of {table.name}.{m.column}"
                      + (f" × {quantity.column}" if quantity else "") + f" ({m.meaning}"
                      + (f", {m.unit}" if m.unit else "") + ")"
                      + (f", less its discount {discount.split('.')[1]}" if discount else "") + ".")]
        return out + ([] if counted_event else [all_rows])

    def rows(self, all_rows: Metric) -> list[Metric]:
        """The fact's rows: a count, plus sums of its additive measures."""
        table = self.table
        return [all_rows] + [Metric(name=base.staged_name(table.column(m.column), table), kind="sum",
                                    column=f"{table.name}.{m.column}", unit=m.unit or m.meaning,
                                    description=f"Sum of {table.name}.{m.column} ({m.meaning}"
                                    + (f", {m.unit}" if m.unit else "") + ") in the period.")
                             for m in self.b.model.measures if m.additive]

    def metrics(self) -> list[Metric]:
        event_metric, all_rows = self.counts()
        if self.op == "rate":
            return self.rate(event_metric, all_rows)
        if self.b.duration is not None:
            return self.duration()
        if self.b.entity is not None:
            return self.entity()
        if self.b.measure is not None:
            return self.measure(all_rows, event_metric is not None)
        return [event_metric] if event_metric is not None else self.rows(all_rows)

    def query(self, grain: Grain | None, tied: list[Binding]) -> MetricQuery:
        model, table = self.b.model, self.table
        validity = self.validity()
        time_col, time_rule = self.time()
        self.near_values()
        metrics = self.metrics()
        if time_col is None and model.parts is None and (grain is not None or model.time is not None
                                                          or model.null_times):
            raise self.refuse(f"{', '.join(f'{table.name}.{c}' for c in model.null_times)} is NULL in every row, so "
                              "no period can be counted" if model.null_times else f"{table.name} has no time to count by")
        if table.row_count == 0:
            raise self.refuse(f"{table.name} is empty: a mart over it would have no rows")
        time_table = model.time_via.ref_table if model.time_via is not None and time_col is model.time else table.name
        if time_col is None and model.parts is None:  # totals per breakdown value over a table without a time
            self.choices.insert(0, Choice(topic="time", chosen="none: one row per breakdown value, over every row",
                                          rule=model.time_rule, alternatives=[]))
            self._state(validity, tied)
            return MetricQuery(fact=table.name, grain=None, metrics=_dedupe(metrics), validity=validity,
                               choices=self.choices)
        self.choices.insert(0, Choice(topic="time", chosen=(
            f"{time_table}.{time_col.name}" if time_col is not None and (model.parts is None or time_col is not model.time)
            else "/".join(c.name for c in model.parts or ())), rule=time_rule, alternatives=[
                c.name for c in table.columns if c is not time_col and time_role(c) not in {"load"} and
                is_temporal(c)]))
        use_parts = model.parts is not None and (time_col is model.time or time_col is None)
        self._state(validity, tied)
        return MetricQuery(fact=table.name, time_column=None if use_parts else f"{time_table}.{time_col.name}",
                           time_parts=[f"{table.name}.{c.name}" for c in model.parts] if use_parts else [],
                           grain=grain, metrics=_dedupe(metrics), validity=validity, choices=self.choices)

    def _state(self, validity: list, tied: list[Binding]) -> None:
        """State the choices on validity and on the fact."""
        model, table = self.b.model, self.table
        alternative = {v.column: v.alternative for v in model.validity}
        for f in validity:  # what the SQL excludes, as adjusted above (never the rule before adjustment)
            self.choices.append(Choice(topic="validity", chosen=f.reason, rule="a careful analyst excludes rows that "
                                       "are not completed business events",
                                       alternatives=[alternative.get(f.column, "counting them")]))
        self.choices += [Choice(topic="validity", chosen=kept, rule="only values that mark rows that did not happen "
                                "(cancelled, void, test …) are excluded", alternatives=[])
                         for kept in kept_statuses(table)]
        if tied:
            self.choices.append(Choice(topic="fact", chosen=table.name, rule="the fact named by the request, else the "
                                       "one other facts reference most (the business process's own grain), else the "
                                       "one with most rows", alternatives=[t.model.name for t in tied]))


def _compile(text: str, subject: list[str], b: Binding, op: str | None, op_words: set[str], unit: str | None,
             grain: Grain | None, dim: str | None, flt: str | None, profile: WarehouseProfile,
             tied: list[Binding], layer: list[SemanticModel]) -> Plan:
    query = _Compiler(text, subject, b, op, op_words, unit, profile, layer).query(grain, tied)
    return _plan(text, query, b.model, grain, dim, flt, profile)


def _discount(model: SemanticModel, m) -> tuple[str | None, str | None]:
    """A discount on the same row as a money measure: a percent, a rate (0–1) or an amount."""
    for x in model.measures:
        if x is m or "discount" not in x.column.lower():
            continue
        if x.meaning == "percent":
            return f"{model.name}.{x.column}", "percent"
        if x.meaning == "rate":
            return f"{model.name}.{x.column}", "rate"
        if x.meaning == "money":
            return f"{model.name}.{x.column}", "amount"
    return None, None


def _dedupe(metrics: list[Metric]) -> list[Metric]:
    seen: dict[str, Metric] = {}
    for m in metrics:
        seen.setdefault(m.name, m)
    return list(seen.values())


def _plan(text: str, query: MetricQuery, model: SemanticModel, grain: Grain | None, dim: str | None,
          flt: str | None, profile: WarehouseProfile) -> Plan:
    table = model.table
    interpretations = []
    if grain is None and not dim:
        query = query.model_copy(update={"grain": Grain.day})
        interpretations.append("No time grain given: one row per day.")
    elif grain is None:
        interpretations.append(f"No time grain given: one row per {dim} value over all time.")
        query = query.model_copy(update={"metrics": [m.model_copy(update={"description": m.description.replace(
            " in the period", " over all time")}) for m in query.metrics]})
    tables = query_tables(query, profile)
    roles = {"fact": table.name}
    if query.time_column:
        roles["event_time"] = query.time_column
    if query.time_parts:
        roles.update(dict(zip(("event_time", "event_month", "event_day"), query.time_parts)))
    columns = [c for m in query.metrics for c in (m.column, m.start_column, m.discount, m.quantity) if c]
    roles.update({f"measure_{i}": c for i, c in enumerate(dict.fromkeys(columns))})
    roles.update({f"exclude_{i}": v.column for i, v in enumerate(query.validity)})
    p = Plan(request=text, kind="metric", mart_name=mart_name(text), grain=query.grain,
             subject=fact_noun(table.name),
             measures=[MeasureSpec(name=m.name, definition=m.description) for m in query.metrics if not m.hidden],
             source_tables=list(dict.fromkeys(tables)), roles=roles, interpretations=interpretations, query=query)
    if dim or flt:
        name = p.mart_name
        p = base._with_breakdown(p, dim, flt, text, profile)
        group_by = [p.roles["dimension"]] if "dimension" in p.roles else []
        filters = []
        for role, value in p.filters.items():
            filters.append(RowFilter(column=p.roles[role], op="in", values=[value], reason=f"the request: {flt}"))
        name = mart_name(text, next(iter(p.filters.values()), None))
        p = p.model_copy(update={"mart_name": name, "query": query.model_copy(update={
            "group_by": group_by, "filters": filters, "grain": p.grain})})
        p = p.model_copy(update={"source_tables": list(dict.fromkeys(
            p.source_tables + query_tables(p.query, profile)))})  # type: ignore[arg-type]
    keyed = "dimension" in p.roles and _keyed(p.roles["dimension"], profile)
    return p.model_copy(update={"interpretations": p.interpretations + describe_query(p.query, keyed),  # type: ignore[arg-type]
                                "alternatives": p.alternatives + [
                                    f"{c.topic}: chose {c.chosen}; not: {'; '.join(c.alternatives)}"
                                    for c in p.query.choices if c.alternatives]})  # type: ignore[union-attr]


def _first_entity(table: TableProfile, profile: WarehouseProfile) -> tuple[str, str, list[str]]:
    """The foreign key whose entity a row is "first" for and that entity's table: a parent holding people's data
    (a customer, a rider, a member) before other parents, the one with most rows first; and the other keys, for
    the plan."""
    parents = []
    for fk in profile.foreign_keys:
        parent = profile.table(fk.ref_table)
        if fk.table == table.name and fk.ref_table != table.name and parent is not None:
            personal = any(base._personal(c, parent) for c in parent.columns)
            parents.append((not personal, -parent.row_count, f"{table.name}.{fk.column}", parent.name))
    if not parents:
        raise RequestError(f"'first' counts each entity's first row, but {table.name} references no entity")
    parents.sort()
    return parents[0][2], parents[0][3], [p[2] for p in parents[1:]]


def first_of(p: Plan, profile: WarehouseProfile) -> Plan:
    """The plan counting only each entity's first row ("monthly first orders": each customer's first valid order,
    in the month it was placed); the plan states whose first, and the other readings."""
    q = p.query
    if q is None or q.time_column is None or q.group_by:
        raise _refuse(p.request, profile, "'first' needs a fact with a time and no breakdown (each entity's first "
                      "row, counted in its period)")
    table = profile.table(q.fact)
    fk, parent, others = _first_entity(table, profile)  # type: ignore[arg-type]
    entity = singular(entity_name(parent))
    noun = q.metrics[0].unit if q.metrics and q.metrics[0].unit else fact_noun(q.fact)
    metrics = [m.model_copy(update={
        "name": f"first_{plural(noun)}" if m.kind == "count" and not m.where else m.name,
        "description": m.description.replace(f"Number of {q.fact} rows", f"Number of {q.fact} rows that are their "
                                             f"{entity}'s first")}) for m in q.metrics]
    choice = Choice(topic="first", chosen=f"each {entity}'s first {singular(noun)} ({fk}), by {q.time_column}, among the "
                    "rows the validity rules keep", rule="'first' is the first row of the entity the rows belong "
                    "to: a person (a customer, a rider, a member) before other parents",
                    alternatives=[f"the first per {o}" for o in others])
    query = q.model_copy(update={"first_per": fk, "metrics": metrics, "choices": [*q.choices, choice]})
    measures = [MeasureSpec(name=m.name, definition=m.description) for m in metrics if not m.hidden]
    interpretations = [i for i in p.interpretations if not i.startswith(("Metric query over", "Rule ("))]
    return p.model_copy(update={
        "query": query, "measures": measures,
        "interpretations": interpretations + describe_query(query), "alternatives": p.alternatives + [
            f"first: chose {choice.chosen}; not: {'; '.join(choice.alternatives)}"] if others else p.alternatives})


def _keyed(column: str, profile: WarehouseProfile) -> bool:
    """Whether a raw 'table.column' breakdown is an entity's key (activity only, no grid)."""
    table = profile.table(column.partition(".")[0])
    col = table.column(column.partition(".")[2]) if table is not None else None
    return col is not None and base.keyed_breakdown(table, col, profile) is not None


def _refs(query: MetricQuery) -> list[str]:
    """Every raw 'table.column' a metric query reads."""
    refs = [query.time_column, *query.time_parts, *query.group_by, query.first_per]
    refs += [c for m in query.metrics for c in (m.column, m.start_column, m.discount, m.quantity) if c]
    refs += [f.column for f in (*query.validity, *query.filters, *(w for m in query.metrics for w in m.where))]
    refs += [v for m in query.metrics for f in m.where if f.op == "has_child" for v in f.values]
    return [r for r in refs if r]


def query_tables(query: MetricQuery, profile: WarehouseProfile) -> list[str]:
    """The raw tables a metric query reads — the fact, every table it names and the tables joined on the way —
    and nothing else: a parent the SQL never reads is not staged (a lean proposal)."""
    from dataeng_crew.agents.catalog import fk_path

    fact = profile.table(query.fact)
    tables = [query.fact]
    for ref in _refs(query):
        name = ref.partition(".")[0]
        target = profile.table(name)
        if fact is not None and target is not None and target is not fact:
            tables += [fk.ref_table for fk in fk_path(fact, target, profile)]
        tables.append(name)
    return list(dict.fromkeys(tables))


def describe_query(q: MetricQuery, keyed: bool = False) -> list[str]:
    """The plan's words for a metric query, generated from it (so the plan says what the SQL computes)."""
    out = [f"Metric query over {q.fact}: " + ", ".join(m.name for m in q.metrics if not m.hidden)
           + (f" per {q.grain.value}" if q.grain else "")
           + (f" by {', '.join(q.group_by)}" if q.group_by else "") + "."]
    for m in q.metrics:
        if m.hidden:
            continue
        out.append(f"{m.name}: {m.description}" + (f" Unit: {m.unit}." if m.unit else ""))
    for c in q.choices:
        out.append(f"Rule ({c.topic}): {c.chosen} — {c.rule}.")
    if q.grain and keyed:
        out.append(f"A {q.grain.value} appears with each {', '.join(q.group_by)} that has counted rows in it.")
    elif q.grain:
        out.append(f"Every {q.grain.value} from the first to the last counted row is present, with zeros "
                   "(counts and sums) or nulls (averages, rates) when nothing happened.")
    return out


def query_problems(query: MetricQuery, profile: WarehouseProfile) -> list[str]:
    """What is wrong with a metric query another brain wrote: unknown tables/columns, ratios of unknown metrics."""
    problems = []
    for ref in _refs(query):
        table_name, _, column = ref.partition(".")
        table = profile.table(table_name)
        if table is None or table.column(column) is None:
            problems.append(f"metric query names {ref!r}, which is not a column of the warehouse")
    names = {m.name for m in query.metrics}
    for m in query.metrics:
        if m.kind == "ratio" and not ({m.numerator, m.denominator} <= names):
            problems.append(f"ratio {m.name} divides metrics the query does not define")
        if m.kind not in {"count", "ratio"} and not m.column:
            problems.append(f"metric {m.name} ({m.kind}) names no column")
    return problems
