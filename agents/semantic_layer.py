"""The semantic layer inferred from the data: what each fact's columns *mean*, in MetricFlow's vocabulary.

For every fact (a table with an event time) this module names, from profiles only (names, types, values —
never a specific warehouse's table names):

- **time dimensions with roles**: creation (registered, created, signed up, opened, requested), start, end
  (resolved, returned, closed), change (updated, cancelled), planned (due, scheduled) and never-an-event
  (birth dates, expiry dates), so signups are counted by registration, never by a birth date;
- **measures with units**: money (major units, cents, micros, text), percentages and rates (never summed),
  quantities, energy, weights, distances, durations, and plain numbers that only average (ratings, ages);
- **value events**: the values of a low-cardinality column as countable events (``kind = 'login'`` →
  logins), the time columns that mark an event (``returned_at`` → returns) and boolean flags (``is_late``);
- **durations**: two times of one row (opened → resolved, loaned → returned, pickup → dropoff);
- **validity rules**: status values and flags a careful analyst excludes from business counts and money
  (cancelled, void, failed, test, deleted, spam, no-show …), and discounts to apply to revenue.

The metric planner binds request words to these; the plan states every rule it applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dataeng_crew.agents.semantics import (
    NUMERIC_TYPES,
    base_type,
    date_parts,
    entity_name,
    is_load_timestamp,
    is_money,
    is_rate,
    is_temporal,
    minor_unit_scale,
    normalised_values,
    plural,
    singular,
)
from dataeng_crew.contracts import ColumnProfile, ForeignKey, TableProfile, WarehouseProfile
from dataeng_crew.tools.warehouse import bare_name, column_prefix, primary_key, snake_case


# ---------------------------------------------------------------------------------------------- words

ABBREVIATIONS = {"dep": "departure", "arr": "arrival", "qty": "quantity", "amt": "amount", "cust": "customer", "cnt": "count", "num": "number",
                 "nbr": "number", "no": "number", "desc": "description", "pct": "percent", "prio": "priority",
                 "dur": "duration", "dist": "distance", "addr": "address", "cat": "category", "dept": "department",
                 "mgr": "manager", "emp": "employee", "acct": "account", "txn": "transaction", "trx": "transaction",
                 "prod": "product", "loc": "location", "org": "organisation", "reg": "region", "svc": "service",
                 "sub": "subscription", "usr": "user", "kwh": "kwh", "temp": "temperature", "avg": "average"}
SYNONYMS = (  # words that name the same thing in requests and column/table names
    {"spend", "spent", "cost", "costs", "expense", "expenses", "outlay"},
    {"charge", "charges", "fee", "fees"},
    {"billed", "bill", "bills", "billing", "invoiced"},
    {"revenue", "sales", "income", "turnover", "gmv"},
    {"tip", "tips", "gratuity", "gratuities"},
    {"store", "stores", "location", "locations", "shop", "shops", "branch", "branches", "outlet", "outlets", "site"},
    {"customer", "customers", "client", "clients", "buyer", "buyers"},
    {"user", "users", "member", "members", "account", "accounts"},
    {"signup", "signups", "registration", "registrations", "joined", "join", "joins"},
    {"ride", "rides", "trip", "trips", "journey", "journeys"},
    {"ticket", "tickets", "case", "cases", "issue", "issues", "request", "requests"},
    {"category", "type", "kind", "class", "group", "genre"},
    {"country", "nation"},
    {"channel", "source", "medium"},
    {"method", "gateway"},
    {"return", "returns", "returned"},
    {"cancellation", "cancellations", "cancelled", "canceled", "cancel"},
    {"resolution", "resolved", "resolve"},
    {"completion", "completed", "complete"},
    {"energy", "kwh", "consumption", "usage"},
    {"weight", "kg", "kilograms", "mass"},
    {"distance", "km", "kilometers", "kilometres", "miles", "mileage"},
    {"priority", "prio", "severity"},
    {"team", "teams", "group", "squad"},
    {"employee", "staff", "agent", "worker"},
    {"visit", "visits", "session", "sessions"},
    {"booking", "bookings", "reservation", "reservations"},
    {"loan", "loans", "borrowing", "borrowings", "checkout", "checkouts"},
    {"late", "overdue"},
    {"pay", "paid", "payment", "payments", "settled"},
)
DERIVATIONAL = {"", "ure", "ion", "ation", "ment", "al", "ing", "ed", "e", "es", "ance", "ence", "ity", "ness"}


def stem(word: str) -> str:
    """A crude stem: the singular without common verb/noun endings (``cancellations`` → ``cancel``)."""
    w = singular(word.lower())
    for suffix in ("ations", "ation", "tions", "tion", "ings", "ing", "ed", "es", "er", "ly"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            return w[: -len(suffix)]
    return w


def word_forms(word: str) -> set[str]:
    """A request word, its singular/plural, its expansion if it is an abbreviation, and its synonyms."""
    w = word.lower()
    forms = {w, singular(w), plural(w)}
    if w in ABBREVIATIONS:
        forms.add(ABBREVIATIONS[w])
    for group in SYNONYMS:
        if forms & group:
            forms |= group
    return forms | {singular(f) for f in forms}


def same_word(word: str, token: str, synonyms: bool = True) -> bool:
    """True when a request word names a name token: same word, plural, synonym, abbreviation or stem."""
    token = token.lower()
    if not token:
        return False
    forms = word_forms(word) if synonyms else {word.lower(), singular(word.lower()), plural(word.lower())}
    tforms = {token, singular(token), ABBREVIATIONS.get(token, token)}
    if forms & tforms:
        return True
    if len(token) >= 3 and any(f.startswith(token) and len(f) > len(token) and token not in {"no", "num"}
                               for f in forms if len(token) >= 4 or token in ABBREVIATIONS):
        return True  # an abbreviation: prio ~ priority
    s = {stem(f) for f in forms}
    ts = stem(token)
    for a in s:  # fail ~ failure, pay ~ payment — a derivational suffix, not another word (ride ≠ rider)
        short, long_ = sorted((a, ts), key=len)
        if len(short) >= 4 and long_.startswith(short) and long_[len(short):] in DERIVATIONAL:
            return True
    return False


def name_tokens(name: str, prefix: str = "") -> list[str]:
    """The words of a column or table name (snake_case, table prefix dropped)."""
    bare = bare_name(name, prefix) if prefix else snake_case(name)
    return [t for t in re.split(r"_+", bare) if t]


# ---------------------------------------------------------------------------------------------- time roles

TIME_ROLES = (  # (role, words) — first match wins
    ("never", ("birth", "dob", "born", "birthday", "expiry", "expires", "expiration", "valid", "anniversary")),
    ("load", ("loaded", "synced", "ingested", "extracted", "etl")),
    ("change", ("updated", "modified", "changed", "cancelled", "canceled", "deleted", "archived", "last")),
    ("planned", ("due", "scheduled", "planned", "expected", "estimated", "deadline", "target")),
    ("creation", ("created", "registered", "registration", "signup", "signed", "joined", "enrolled", "opened",
                  "requested", "placed", "ordered", "order", "submitted", "booked", "issued", "reported", "raised",
                  "subscribed", "onboarded", "activated", "create", "creation", "registered_on", "join")),
    ("start", ("started", "start", "began", "begin", "pickup", "picked", "departed", "departure", "checkin",
               "loaned", "borrowed", "checked", "login", "logged", "arrived")),
    ("end", ("ended", "end", "closed", "resolved", "completed", "finished", "returned", "dropoff", "dropped",
             "delivered", "shipped", "fulfilled", "paid", "settled", "refunded", "terminated", "churned",
             "stopped", "answered", "hung", "checkout")),
)
def time_role(col: ColumnProfile) -> str:
    """What a time column of a row records: creation, start, end, change, planned, never (birth), load, event."""
    if is_load_timestamp(col):
        return "load"
    tokens = set(snake_case(col.name).split("_"))
    for role, words in TIME_ROLES:
        if tokens & set(words):
            return role
    return "event"


def time_verb(col: ColumnProfile) -> str:
    """The event a time column marks, as a word: ``returned_at`` → ``returned``; ``date`` → ``""``."""
    tokens = [t for t in snake_case(col.name).split("_") if t not in {"at", "date", "time", "ts", "timestamp", "on",
                                                                       "dt", "datetime", "epoch", "utc", "local"}]
    return "_".join(tokens)


def fact_time(table: TableProfile) -> tuple[ColumnProfile | None, str]:
    """The time a fact's rows are counted by, and the rule that chose it.

    Creation time first (a row is an event when it is created), then a start, a plain event time, an end.
    Birth/expiry dates, load stamps, updates and planned times never date an event.
    """
    times = [c for c in table.columns if is_temporal(c) and c.null_fraction < 1]  # a time that is always NULL dates nothing
    by_role: dict[str, list[ColumnProfile]] = {}
    for c in times:
        by_role.setdefault(time_role(c), []).append(c)
    for role in ("creation", "start", "event", "end"):
        if by_role.get(role):
            cols = sorted(by_role[role], key=lambda c: (c.null_fraction > 0.5, c.null_fraction))
            others = [c.name for c in times if c is not cols[0] and time_role(c) not in {"load"}]
            rule = (f"the {role} time of each row (a row is counted when it is created, else when it starts, "
                    "else by its own event time, else when it ends; birth/expiry dates, updates and planned "
                    "times never date an event)")
            return cols[0], rule + (f"; other times: {', '.join(others)}" if others else "")
    return None, "no time column dates an event"


# ---------------------------------------------------------------------------------------------- measures

PERCENT_WORDS = {"pct", "percent", "percentage", "perc"}
RATE_WORDS = {"rate", "ratio", "share", "fraction", "proportion"}
BPS_WORDS = {"bps", "basis"}
UNIT_MEANINGS = (  # (meaning, unit, words) for additive physical quantities
    ("energy", "kWh", ("kwh", "kilowatt", "energy", "consumption", "usage")),
    ("energy", "Wh", ("wh",)),
    ("weight", "kg", ("kg", "kilograms", "weight", "mass")),
    ("volume", "litres", ("liters", "litres", "volume", "gallons", "l")),
    ("distance", "km", ("km", "kilometers", "kilometres")),
    ("distance", "miles", ("miles", "mileage", "distance", "mi")),
    ("duration", "minutes", ("minutes", "mins", "min")),
    ("duration", "seconds", ("seconds", "secs", "sec", "ms", "milliseconds", "duration", "runtime", "length")),
    ("duration", "hours", ("hours", "hrs", "hr")),
    ("quantity", "units", ("quantity", "qty", "units", "seats", "passengers", "items", "count", "pieces", "bytes",
                           "guests", "nights", "pages", "steps", "calories", "views", "clicks", "impressions")),
)


@dataclass(frozen=True)
class Measure:
    """A numeric column with its meaning and unit, and whether summing it means anything."""

    table: str
    column: str
    meaning: str  # money, percent, rate, energy, weight, distance, duration, quantity, number
    unit: str
    additive: bool
    to_fraction: float = 1.0  # percent: 0.01, basis points: 0.0001 (the staged value × this is a fraction)


def measure_of(col: ColumnProfile, table: TableProfile) -> Measure | None:
    """The measure a numeric column is, by meaning and unit (None for keys, times, flags and text)."""
    name = snake_case(col.name)
    tokens = set(name.split("_"))
    fk_like = name.endswith(("_id", "_key", "_code", "_no", "_nr")) or name in {"id", "key"}
    if fk_like or col.name == primary_key(table) or is_temporal(col) or base_type(col.data_type) == "BOOLEAN":
        return None
    if tokens & BPS_WORDS:
        return Measure(table.name, col.name, "rate", "basis points", False, 0.0001)
    if tokens & PERCENT_WORDS:
        return Measure(table.name, col.name, "percent", "percent", False, 0.01)
    if is_money(col):
        scale = minor_unit_scale(col)
        unit = {100: "converted from cents", 1_000_000: "converted from micros (1e-6)"}.get(scale, "")
        per_unit = bool(tokens & {"price", "unitprice", "rate"}) and not tokens & {  # a unit price: money per unit,
            "total", "extended", "gross", "net", "subtotal", "line", "amount", "paid", "charged"}  # never summed
        return Measure(table.name, col.name, "money", ("major currency units " + (f"({unit})" if unit else "")).strip()
                       + (" per unit" if per_unit else ""), not per_unit)
    if base_type(col.data_type) not in NUMERIC_TYPES:
        return None
    if tokens & RATE_WORDS or is_rate(col) and tokens & {"discount", "tax", "conversion", "churn", "interest"}:
        return Measure(table.name, col.name, "rate", "fraction", False)
    for meaning, unit, words in UNIT_MEANINGS:
        if tokens & set(words):
            return Measure(table.name, col.name, meaning, unit, True)
    return Measure(table.name, col.name, "number", "", False)  # ratings, ages, codes …: averaged, never summed


# ---------------------------------------------------------------------------------------------- validity

INVALID_VALUES = {  # status values a careful analyst excludes from revenue and from counts of business events
    "cancelled", "canceled", "cancel", "void", "voided", "failed", "failure", "error", "errored", "declined",
    "rejected", "test", "testing", "deleted", "removed", "spam", "fraud", "fraudulent", "duplicate", "dup",
    "no_show", "noshow", "no show", "abandoned", "invalid", "bounced", "expired", "reversed", "chargeback",
}
DISPUTED_VALUES = {"refunded", "returned", "pending", "draft", "unpaid", "open", "estimated", "disputed", "lost"}
STATUS_WORDS = {"status", "state", "stage", "outcome", "result", "disposition"}
INVALID_FLAGS = re.compile(r"(is_|was_|has_been_)?(test|deleted|cancell?ed|void(ed)?|fraud(ulent)?|spam|duplicate)"
                           r"(_\w+)?|deleted_at|cancell?ed_at|voided_at|_?fivetran_deleted")


def clean_value(value: str) -> str:
    """A value as staging cleans categories: trimmed, lower-cased."""
    return value.strip().lower()


def is_status(col: ColumnProfile) -> bool:
    """Low-cardinality text whose name says it is a status/state/outcome."""
    return (base_type(col.data_type) == "VARCHAR" and bool(col.top_values)
            and bool(set(snake_case(col.name).split("_")) & STATUS_WORDS))


def invalid_values(col: ColumnProfile) -> list[str]:
    """The raw values of a status column a careful analyst excludes (cleaned form; empty when none)."""
    if not is_status(col):
        return []
    return [v for v in normalised_values(col) if v in INVALID_VALUES or v.replace(" ", "_") in INVALID_VALUES]


REFUNDED_WORDS = {"refunded", "reimbursed"}  # the money went back; "returned" says the goods did, not the money
NOT_IN_FULL = {"pending", "partial", "partially", "requested", "request", "part"}  # no amount says how much


def refunded_values(col: ColumnProfile) -> list[str]:
    """The cleaned values of a status column saying the row's money was refunded in full (``refunded``; never
    ``partially_refunded`` or ``refund_requested``, whose amounts the row does not hold, nor ``returned``, which
    says where the goods went, not the money)."""
    if not is_status(col):
        return []
    words = {v: set(re.split(r"[\s_\-]+", v)) for v in normalised_values(col)}
    return [v for v, ws in words.items() if ws & REFUNDED_WORDS and not ws & NOT_IN_FULL]


def refunded_status(table: TableProfile) -> ColumnProfile | None:
    """The status column of an order fact that marks orders refunded in full, if it has one."""
    return next((c for c in table.columns if refunded_values(c)), None)


def kept_statuses(table: TableProfile) -> list[str]:
    """Statements for status columns whose values are all kept although some are disputed (returned, pending):
    the choice is made either way, so the plan says it (``orders.status: returned, return_pending are kept``)."""
    out = []
    for col in table.columns:
        disputed = [v for v in normalised_values(col) if v in DISPUTED_VALUES or v.replace(" ", "_") in DISPUTED_VALUES
                    or any(w in DISPUTED_VALUES for w in v.replace("-", "_").split("_"))] if is_status(col) else []
        if disputed and not invalid_values(col):
            out.append(f"rows whose {table.name}.{col.name} is {', '.join(disputed)} are kept: no value of it marks "
                       "a row that did not happen (returns and refunds are their own metric); ask to exclude them "
                       "by name")
    return out


@dataclass(frozen=True)
class Validity:
    """One stated exclusion rule: rows of ``column`` matching ``op``/``values`` do not count."""

    column: str  # raw table.column
    op: str  # not_in | is_null | is_not_true
    values: tuple[str, ...]
    rule: str
    alternative: str


def validity_rules(table: TableProfile) -> list[Validity]:
    """Every exclusion rule a fact's columns imply (status values, test/deleted/cancelled flags)."""
    out = []
    statuses = [c.name for c in table.columns if invalid_values(c)]
    for col in table.columns:
        bad = invalid_values(col)
        if bad:
            kept = [v for v in normalised_values(col) if v not in bad]
            disputed = [v for v in kept if v in DISPUTED_VALUES]
            others = [n for n in statuses if n != col.name]
            out.append(Validity(
                f"{table.name}.{col.name}", "not_in", tuple(bad),
                f"rows whose {col.name} is {', '.join(bad)} are excluded (they are not completed business events)",
                f"counting every row, {', '.join(bad)} included" + (
                    f"; rows that are {', '.join(disputed)} are kept (they happened; refunds/returns are "
                    "their own metric)" + (f" unless the rule on {', '.join(others)} excludes them" if others else "")
                    if disputed else "")))
            continue
        name = snake_case(col.name)
        if re.fullmatch(INVALID_FLAGS, name) or re.fullmatch(INVALID_FLAGS, entity_name(col.name)):
            if base_type(col.data_type) == "BOOLEAN":
                out.append(Validity(f"{table.name}.{col.name}", "is_not_true", (),
                                    f"rows flagged {col.name} are excluded", "counting flagged rows too"))
            elif is_temporal(col):
                out.append(Validity(f"{table.name}.{col.name}", "is_null", (),
                                    f"rows with {col.name} set are excluded", "counting those rows too"))
    return out


# ---------------------------------------------------------------------------------------------- events, durations


@dataclass(frozen=True)
class ValueEvent:
    """A countable event stored as a value (``kind = 'login'``), a time set (``returned_at``) or a flag."""

    table: str
    column: str
    op: str  # in | is_not_null | is_true
    value: str | None
    words: tuple[str, ...]


def value_events(table: TableProfile, profile: WarehouseProfile | None = None) -> list[ValueEvent]:
    """Every event a fact's values, event times and flags can count — and, last, its rows that have a row in a
    child table (an order with a return: ``returns.order_id`` references it)."""
    out = []
    key = primary_key(table)
    for col in table.columns:
        if col.name == key:
            continue
        kind = base_type(col.data_type)
        if kind == "VARCHAR" and col.top_values and len(normalised_values(col)) <= 30:
            for v in normalised_values(col):
                if v:
                    out.append(ValueEvent(table.name, col.name, "in", v, tuple(re.split(r"[\s_\-/]+", v))))
        elif kind == "BOOLEAN":
            words = tuple(t for t in snake_case(col.name).split("_") if t not in {"is", "has", "was", "flag"})
            out.append(ValueEvent(table.name, col.name, "is_true", None, words))
        elif is_temporal(col) and time_role(col) in {"end", "change", "start"} and col.null_fraction > 0:
            verb = time_verb(col)
            if verb:
                out.append(ValueEvent(table.name, col.name, "is_not_null", None, tuple(verb.split("_"))))
    times = [c for c in table.columns if is_temporal(c)]
    for end in (c for c in times if time_role(c) == "end"):  # late: the end after the planned time (due)
        for planned in (c for c in times if time_role(c) == "planned"):
            out.append(ValueEvent(table.name, end.name, "later_than", planned.name, ("late",)))
    for fk in (profile.foreign_keys if profile is not None and key else []):
        if fk.ref_table == table.name and fk.ref_column == key and fk.table != table.name:
            noun = entity_name(fk.table).split("_")[-1]
            out.append(ValueEvent(table.name, key, "has_child", f"{fk.table}.{fk.column}", (noun,)))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class Duration:
    """The time between two times of one row (opened → resolved)."""

    table: str
    start: str
    end: str
    words: tuple[str, ...]


def durations(table: TableProfile) -> list[Duration]:
    """Pairs (start, end) of time columns of one row: creation/start before end (or a planned time)."""
    times = [c for c in table.columns if is_temporal(c)]
    rank = {"start": 0, "creation": 1, "event": 2}  # the activity itself before the wait for it
    starts = sorted((c for c in times if time_role(c) in rank), key=lambda c: rank[time_role(c)])
    ends = [c for c in times if time_role(c) in {"end"}]
    out = []
    for s in starts:
        for e in ends:
            if s is not e:
                out.append(Duration(table.name, s.name, e.name, tuple(time_verb(e).split("_")) + tuple(
                    time_verb(s).split("_"))))
    created = [c for c in times if time_role(c) == "creation"]
    for c in created:  # the wait before the activity starts: requested → pickup, opened → first response
        for s in (x for x in times if time_role(x) == "start"):
            out.append(Duration(table.name, c.name, s.name, WAIT_WORDS + tuple(time_verb(s).split("_"))))
    return out


WAIT_WORDS = ("wait", "waiting", "queue", "response", "lead", "pickup", "pick")


# ---------------------------------------------------------------------------------------------- the layer


@dataclass
class SemanticModel:
    """One fact of the layer: its time, measures, events, durations, validity rules and entities."""

    table: TableProfile
    time: ColumnProfile | None
    time_rule: str
    parts: tuple[ColumnProfile, ColumnProfile, ColumnProfile] | None
    measures: list[Measure] = field(default_factory=list)
    events: list[ValueEvent] = field(default_factory=list)
    durations: list[Duration] = field(default_factory=list)
    validity: list[Validity] = field(default_factory=list)
    entities: dict[str, str] = field(default_factory=dict)  # fk column -> referenced table
    null_times: list[str] = field(default_factory=list)  # time columns NULL in every row
    time_via: ForeignKey | None = None  # the time is the parent's, over this foreign key

    @property
    def name(self) -> str:
        """The table the semantic model is over."""
        return self.table.name

    def words(self) -> set[str]:
        """Words a request may use for this fact's rows."""
        name = entity_name(self.table.name)
        return {name, name.split("_")[-1], *name.split("_"), *re.findall(r"[^\W_]+", self.table.name.lower()),
                *self.row_nouns()}

    def row_nouns(self) -> list[str]:
        """What one row is, by the key when the table's name does not say it: a table keyed by ``game_id`` holds
        games, one keyed by ``team`` holds teams (``schedules``, ``ratings`` in a flat project)."""
        key = primary_key(self.table)
        stem = re.sub(r"(^|_)(id|key|code|number|no)$", "", snake_case(key)) if key else ""
        if not stem or stem.endswith("_") or singular(stem) == singular(entity_name(self.table.name)):
            return []
        last = stem.split("_")[-1]
        return list(dict.fromkeys([stem, plural(stem), last, plural(last)]))


def semantic_model(table: TableProfile, profile: WarehouseProfile, timeless: bool = False) -> SemanticModel | None:
    """The semantic model of one table, or None when it has no event time (not a fact); with ``timeless``, a
    table without any time is a model too (for totals per breakdown value: "average rating by conference")."""
    parts = date_parts(table)
    time, rule = fact_time(table)
    null_times = [c.name for c in table.columns if is_temporal(c) and c.null_fraction >= 1 and table.row_count]
    time_via = None
    if time is None and parts is None and not null_times:  # dated by its parent: a payment by its order's date
        for fk in profile.foreign_keys:
            parent = profile.table(fk.ref_table) if fk.table == table.name else None
            parent_time = fact_time(parent)[0] if parent is not None and not date_parts(parent) else None
            if parent_time is not None and fk.inclusion >= 0.99 and time_role(parent_time) in {"creation", "event"}:
                time, time_via = parent_time, fk
                rule = (f"{table.name} has no time of its own: each row is dated by its {fk.ref_table} "
                        f"({fk.ref_table}.{parent_time.name}, joined over {table.name}.{fk.column})")
                break
        if time is None and (not timeless or not table.row_count):
            return None
        if time is None:
            rule = f"{table.name} has no time: totals over every row"
    if parts is not None and (time is None or time_role(time) not in {"creation"}):
        rule = ("the calendar date its year/month/day columns state (a derived timestamp may be in another time "
                "zone)")
    part_names = {c.name for c in parts or ()} | {fk.column for fk in profile.foreign_keys if fk.table == table.name}
    measures = [m for c in table.columns if c.name not in part_names and (m := measure_of(c, table))]  # never a key
    entities = {fk.column: fk.ref_table for fk in profile.foreign_keys if fk.table == table.name}
    return SemanticModel(table=table, time=time, time_rule=rule, parts=parts, measures=measures,
                         events=value_events(table, profile), durations=durations(table),
                         validity=validity_rules(table),
                         entities=entities, null_times=null_times, time_via=time_via)


def quantity_of(model: SemanticModel) -> Measure | None:
    """The row's quantity (units, items, qty), which its unit price is multiplied by."""
    return next((m for m in model.measures if m.meaning == "quantity"
                 and set(snake_case(m.column).split("_")) & {"quantity", "qty", "units", "items"}), None)


def infer_layer(profile: WarehouseProfile, timeless: bool = False) -> list[SemanticModel]:
    """Every fact's semantic model, largest first (with ``timeless``, tables without a time too)."""
    models = [m for t in profile.tables if (m := semantic_model(t, profile, timeless))]
    return sorted(models, key=lambda m: -m.table.row_count)


def prefix_of(table: TableProfile) -> str:
    """The prefix every column of a table shares (``o_`` in TPC-H), for bare column names."""
    return column_prefix([c.name for c in table.columns])


def layer_context(profile: WarehouseProfile) -> list[dict]:
    """The inferred layer for prompts: per fact its time (and rule), measures with units, countable events,
    durations, validity rules and entities — what a metric query may name."""
    out = []
    for m in infer_layer(profile):
        out.append({
            "fact": m.name, "rows": m.table.row_count,
            "time": (f"{m.time_via.ref_table}." if m.time_via else f"{m.name}.") + m.time.name if m.time else None,
            "time_rule": m.time_rule,
            "measures": [{"column": x.column, "meaning": x.meaning, "unit": x.unit, "additive": x.additive}
                         for x in m.measures],
            "events": [{"column": e.column, "op": e.op, "value": e.value} for e in m.events][:40],
            "durations": [f"{d.start} -> {d.end}" for d in m.durations],
            "validity": [v.rule for v in m.validity],
            "entities": m.entities,
        })
    return out
