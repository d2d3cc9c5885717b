"""Semantic inference shared by the deterministic brains: what a raw column *means*.

Everything here reads profiles (names, types, values), never table names of the sample, so the
same rules apply to any warehouse. Each rule is a small table so it is easy to extend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dataeng_crew.contracts import ColumnProfile, TableProfile, WarehouseProfile
from dataeng_crew.tools.warehouse import bare_name, column_prefix, primary_key, snake_case

LOAD_TIMESTAMP_NAMES = ("_loaded_at", "loaded_at", "_synced_at", "_fivetran_synced", "_airbyte_emitted_at",
                        "_etl_loaded_at", "_sdc_extracted_at", "_ingested_at")
MONEY_WORDS = ("price", "amount", "total", "subtotal", "discount", "tax", "shipping", "revenue", "cost",
               "fee", "refund", "paid", "balance", "value", "spend", "spent", "fare", "premium", "premiums", "charge",
               "charges", "tip", "tips", "salary", "wage", "wages", "payout", "income", "sales", "budget", "billed",
               "gmv", "earnings", "commission", "deposit", "rent", "tuition", "donation", "fine", "fines", "penalty",
               "usd", "eur", "gbp", "dollars", "euros")
NOT_MONEY_WORDS = ("pct", "percent", "percentage", "perc", "ratio", "bps", "basis", "share", "count", "number",
                   "qty", "quantity", "units", "rate_pct")
COUNT_NOUNS = {"win", "wins", "losses", "goals", "points", "games", "matches", "visits", "sessions", "clicks",
               "views", "pageviews", "guests", "nights", "seats", "passengers", "steps", "calories", "downloads",
               "installs", "signups", "followers", "likes", "shares", "comments", "runs", "hits", "assists",
               "rebounds", "votes", "attempts", "calls", "messages", "tickets", "trips", "rides", "loans"}
CATEGORY_WORDS = ("status", "type", "kind", "state", "category", "method", "gateway", "currency",
                  "channel", "tier", "source", "segment")
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "INT", "INT4", "INT8", "LONG"}
NUMERIC_TYPES = INTEGER_TYPES | {"DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC"}
TEMPORAL_TYPES = ("TIMESTAMP", "DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMP_S",
                  "TIMESTAMP_MS", "TIMESTAMP_NS")
EVENT_TIME_PREFERENCE = ("ordered_at", "order_date", "placed_at", "created_at", "processed_at",
                         "order_at", "date", "created")
SAFE_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
RESERVED = {"select", "from", "where", "group", "order", "by", "limit", "table", "user", "date", "time",
            "timestamp", "default", "end", "case", "when", "then", "else", "and", "or", "not", "null",
            "as", "on", "join", "union", "all", "any", "desc", "asc", "column", "check", "primary",
            "key", "references", "to", "in", "is", "like", "having", "offset", "with", "window"}


def quote_if_needed(name: str) -> str:
    """Return ``name`` as a DuckDB identifier, quoted only when it must be."""
    if SAFE_IDENT.match(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def entity_name(table: str) -> str:
    """The entity a table holds: snake_case without a ``raw_``, staging or intermediate prefix (``raw_orders``,
    ``stg_orders``, ``stg_shop__orders``, ``int_orders`` → ``orders``)."""
    stripped = re.sub(r"^(raw_|stg_(\w+?__)?|int_)", "", table.strip(), flags=re.I)  # before snake_case folds "__"
    return snake_case(stripped) or snake_case(table)


def singular(name: str) -> str:
    """A naive English singular: ``orders`` → ``order``, ``categories`` → ``category``."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "ches", "shes", "xes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def plural(name: str) -> str:
    """A naive English plural: ``order`` → ``orders``."""
    if name.endswith("s"):
        return name
    if name.endswith("y") and not name.endswith(("ay", "ey", "oy", "uy")):
        return name[:-1] + "ies"
    return name + "s"


def base_type(data_type: str) -> str:
    """Upper-case type without parameters: ``DECIMAL(18,2)`` → ``DECIMAL``."""
    return data_type.upper().split("(")[0].strip()


def is_temporal(col: ColumnProfile) -> bool:
    """True for timestamp/date columns, text columns that hold timestamps and integer epoch times."""
    return base_type(col.data_type) in TEMPORAL_TYPES or bool(col.timestamp_formats) or epoch_scale(col) is not None


def is_text_timestamp(col: ColumnProfile) -> bool:
    """True for text columns whose values all parse with known timestamp formats."""
    return base_type(col.data_type) == "VARCHAR" and bool(col.timestamp_formats) and col.unparsed_timestamps == 0


def is_load_timestamp(col: ColumnProfile) -> bool:
    """True for the column a loader stamps each synced row with."""
    return col.name.lower() in LOAD_TIMESTAMP_NAMES


TEXT_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def is_text_number(col: ColumnProfile) -> bool:
    """Text whose every seen value is a plain decimal number (``"1.98"``): staging can cast it."""
    values = [v for v in (col.min_value, col.max_value, *col.sample_values, *col.top_values) if v is not None]
    return base_type(col.data_type) == "VARCHAR" and bool(values) and all(TEXT_NUMBER.match(v.strip()) for v in values)


def is_money(col: ColumnProfile) -> bool:
    """Numeric column — or text holding plain decimal numbers (money stored as text) — whose name says money.

    Percentages, ratios and basis points are never money (``discount_percent`` is a rate), nor is a fraction
    named ``…rate`` whose values lie in 0..1, nor an integer epoch time.
    """
    name = snake_case(col.name)
    tokens = name.split("_")
    numeric = base_type(col.data_type) in NUMERIC_TYPES
    text = is_text_number(col) and not name.endswith(("_cents", "_minor", "_micros"))  # text cents: not guessed
    if set(tokens) & set(NOT_MONEY_WORDS) or ("rate" in tokens and is_rate(col)) or epoch_scale(col) is not None:
        return False
    if set(tokens) & COUNT_NOUNS and set(tokens) & set(MONEY_WORDS) <= {"total", "value"}:
        return False  # a total of wins, goals or visits is a count, not money
    return (numeric or text) and any(word in tokens or name.endswith(word) for word in MONEY_WORDS) \
        and not name.endswith("_id")


MICROS_SUFFIXES = ("_micros", "_micro", "_e6", "_micro_usd", "_micros_usd")
MINOR_SUFFIXES = ("_cents", "_minor", "_pence", "_cent")


def minor_unit_scale(col: ColumnProfile) -> int:
    """How many stored units make one major currency unit: 1_000_000 (micros), 100 (cents), or 1."""
    name = snake_case(col.name)
    if not is_money(col):
        return 1
    if name.endswith(MICROS_SUFFIXES) or "micros" in name.split("_"):
        return 1_000_000
    if name.endswith(MINOR_SUFFIXES) or base_type(col.data_type) in INTEGER_TYPES:
        return 100
    return 1


def is_minor_units(col: ColumnProfile) -> bool:
    """Money stored as integer minor units (cents, micros): integer type or a ``_cents``/``_micros`` suffix."""
    return minor_unit_scale(col) > 1


EPOCH_SECONDS = (946_684_800, 4_102_444_800)  # 2000-01-01 … 2100-01-01


def epoch_scale(col: ColumnProfile) -> int | None:
    """Integer epoch times: 1 (seconds) or 1000 (milliseconds) when the name says time and values fit, else None."""
    if base_type(col.data_type) not in INTEGER_TYPES | {"DOUBLE", "DECIMAL"}:
        return None
    tokens = set(snake_case(col.name).split("_"))
    if not tokens & {"at", "time", "ts", "timestamp", "epoch", "unix", "datetime"}:
        return None
    try:
        low, high = float(col.min_value or "nan"), float(col.max_value or "nan")
    except ValueError:
        return None
    for scale in (1, 1000):
        if EPOCH_SECONDS[0] * scale <= low and high <= EPOCH_SECONDS[1] * scale:
            return scale
    return None


def is_category(col: ColumnProfile) -> bool:
    """Low-cardinality text whose name says it is a status/type/category."""
    name = snake_case(col.name)
    return (
        base_type(col.data_type) == "VARCHAR"
        and bool(col.top_values)
        and any(word in name.split("_") for word in CATEGORY_WORDS)
    )


def needs_normalising(col: ColumnProfile) -> bool:
    """Text categories with values that differ only by case or surrounding blanks (``PAID`` / ``paid ``)."""
    if base_type(col.data_type) != "VARCHAR" or not col.top_values:
        return False
    return len(normalised_values(col)) < len(col.top_values)


def normalised_values(col: ColumnProfile) -> list[str]:
    """Distinct values after ``lower(trim(...))``, sorted."""
    return sorted({v.strip().lower() for v in col.top_values})


def staged_name(col: ColumnProfile, table: TableProfile) -> str:
    """The staging column name: snake_case, ``id`` → ``<entity>_id``, booleans ``is_``, no ``_cents``.

    A column of one of the project's own models keeps its name: the project already staged it.
    """
    if table.origin == "model":
        return col.name
    name = snake_case(col.name)
    if col.name == primary_key(table) and name == "id":
        return f"{singular(entity_name(table.name))}_id"
    if is_load_timestamp(col):
        return "loaded_at"
    if base_type(col.data_type) == "BOOLEAN" and not name.startswith(("is_", "has_", "was_", "can_")):
        return f"is_{name}"
    for suffix in MINOR_SUFFIXES + MICROS_SUFFIXES:
        if name.endswith(suffix) and is_money(col):
            return name.removesuffix(suffix)
    if epoch_scale(col) is not None:
        bare = re.sub(r"_(epoch|unix|ts|timestamp|epoch_ms|ms)$", "", name)
        return bare if bare.endswith(("_at", "_time")) else f"{bare}_at"
    if is_text_timestamp(col) and not name.endswith(("_at", "_date", "_time")):
        return f"{name}_at"
    return name


NEVER_EVENT = re.compile(r"(^|_)(birth\w*|dob|born|expir\w*|valid_(to|until|from))($|_)")


def load_timestamp(table: TableProfile) -> ColumnProfile | None:
    """The loader's timestamp column of ``table``, if any."""
    return next((c for c in table.columns if is_load_timestamp(c)), None)


def event_time(table: TableProfile) -> ColumnProfile | None:
    """The business event time of a table (not the load time), by name preference."""
    temporal = [c for c in table.columns if is_temporal(c) and not is_load_timestamp(c)
                and not c.name.lower().startswith(("updated", "cancel", "deleted", "modified"))
                and not NEVER_EVENT.search(snake_case(c.name))]
    for preferred in EVENT_TIME_PREFERENCE:
        for c in temporal:
            if snake_case(c.name) == preferred:
                return c
    return temporal[0] if temporal else None


def find_column(table: TableProfile, *patterns: str, money: bool | None = None) -> ColumnProfile | None:
    """First column whose snake_case name matches one of the regex ``patterns`` (in order)."""
    prefix = column_prefix([c.name for c in table.columns])
    for pattern in patterns:
        for c in table.columns:
            names = {snake_case(c.name), bare_name(c.name, prefix)}
            names |= {n.removesuffix(suffix) for n in names for suffix in ("_cents", "_minor") if n.endswith(suffix)}
            if any(re.fullmatch(pattern, n) for n in names) and (money is None or is_money(c) == money):
                twin = next((o for o in table.columns if o is not c and is_minor_units(c) and not is_minor_units(o)
                             and is_money(o) and snake_case(o.name) == staged_name_base(c)), None)
                return twin or c  # subtotal (dollars) beats subtotal_cents
    return None


def staged_name_base(col: ColumnProfile) -> str:
    """A money column's name without its minor-unit suffix (``subtotal_cents`` → ``subtotal``)."""
    name = snake_case(col.name)
    for suffix in MINOR_SUFFIXES + MICROS_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def is_rate(col: ColumnProfile) -> bool:
    """A fraction between 0 and 1 (a discount or tax rate), not an amount."""
    try:
        low, high = float(col.min_value or "nan"), float(col.max_value or "nan")
    except ValueError:
        return False
    return base_type(col.data_type) in {"DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC"} and 0 <= low and high <= 1


def line_value_sql(quantity: str | None, price: str, rate: str | None = None) -> str:
    """SQL of one line's value: quantity × unit price, or an extended amount, less a discount rate."""
    value = f"{quantity} * {price}" if quantity else price
    return f"{value} * (1 - coalesce({rate}, 0))" if rate else value


DATE_PARTS = (("year", "yr"), ("month", "mon", "mo"), ("day", "dom", "mday"))


def date_parts(table: TableProfile) -> tuple[ColumnProfile, ColumnProfile, ColumnProfile] | None:
    """``(year, month, day)`` integer columns when a table dates its rows by calendar parts."""
    prefix = column_prefix([c.name for c in table.columns])
    found = []
    for names in DATE_PARTS:
        col = next((c for c in table.columns if bare_name(c.name, prefix) in names
                    and base_type(c.data_type) in INTEGER_TYPES and c.null_fraction == 0), None)
        if col is None:
            return None
        found.append(col)
    year, month, day = found
    try:
        ok = 1000 <= float(year.min_value or 0) and float(month.max_value or 99) <= 12 and float(day.max_value or 99) <= 31
    except ValueError:
        return None
    return (year, month, day) if ok else None


MEASURE_MEANINGS = (  # (meaning, words in a column name) for sums beyond money
    ("distance", ("distance", "miles", "km", "kilometers", "kilometres", "mileage")),
    ("duration", ("duration", "minutes", "seconds", "milliseconds", "hours_spent", "runtime", "length_ms")),
    ("quantity", ("quantity", "qty", "units", "count_of", "seats", "passengers", "bytes")),
)


def measure_meaning(col: ColumnProfile) -> str | None:
    """What summing a numeric column means: money, distance, duration, quantity (None when not additive)."""
    if is_money(col):
        return "money"
    numeric = base_type(col.data_type) in NUMERIC_TYPES
    if not numeric or snake_case(col.name).endswith(("_id", "key")):
        return None
    words = set(snake_case(col.name).split("_")) | {bare_name(col.name, "")}
    for meaning, vocabulary in MEASURE_MEANINGS:
        if words & set(vocabulary) or any(snake_case(col.name).endswith(w) for w in vocabulary):
            return meaning
    return None


@dataclass(frozen=True)
class SalesBinding:
    """How the raw warehouse answers 'sales': which tables and columns play which role."""

    orders: TableProfile
    order_time: ColumnProfile
    customer: ColumnProfile | None
    test_flag: ColumnProfile | None
    cancelled: ColumnProfile | None
    discount: ColumnProfile | None
    lines: TableProfile | None
    line_order: ColumnProfile | None
    line_quantity: ColumnProfile | None
    line_price: ColumnProfile | None
    order_amount: ColumnProfile | None
    refunds: TableProfile | None
    refund_order: ColumnProfile | None
    refund_amount: ColumnProfile | None
    refund_time: ColumnProfile | None
    currency: str | None
    line_rate: ColumnProfile | None = None
    line_amount: bool = False
    discount_percent: ColumnProfile | None = None
    refunded_status: ColumnProfile | None = None  # no refund table: the orders' status says which were refunded

    def roles(self) -> dict[str, str]:
        """Role → ``table`` / ``table.column`` for the plan."""
        pairs = {
            "orders": (self.orders, None), "order_time": (self.orders, self.order_time),
            "customer": (self.orders, self.customer), "test_flag": (self.orders, self.test_flag),
            "cancelled": (self.orders, self.cancelled), "discount": (self.orders, self.discount),
            "discount_percent": (self.orders, self.discount_percent),
            "order_amount": (self.orders, self.order_amount),
            "lines": (self.lines, None), "line_order": (self.lines, self.line_order),
            "line_quantity": (self.lines, self.line_quantity), "line_price": (self.lines, self.line_price),
            "line_discount_rate": (self.lines, self.line_rate),
            "refunds": (self.refunds, None), "refund_order": (self.refunds, self.refund_order),
            "refund_amount": (self.refunds, self.refund_amount), "refund_time": (self.refunds, self.refund_time),
            "refunded_status": (self.orders, self.refunded_status),
        }
        out: dict[str, str] = {}
        for role, (table, col) in pairs.items():
            if table is None or (col is None and role not in {"orders", "lines", "refunds"}):
                continue
            out[role] = table.name if col is None else f"{table.name}.{col.name}"
        return out


def _child_with_fk(profile: WarehouseProfile, parent: TableProfile, name_hint: str | None = None) -> list[tuple[TableProfile, ColumnProfile]]:
    out = []
    for fk in profile.foreign_keys:
        if fk.ref_table == parent.name:
            child = profile.table(fk.table)
            if child is not None and (name_hint is None or re.search(name_hint, snake_case(child.name))):
                out.append((child, child.column(fk.column)))
    return out


SALE_WORDS = ("order", "sale", "invoice", "transaction", "purchase", "booking", "receipt", "checkout", "basket")


def sale_likeness(table: TableProfile) -> int:
    """How much a table's name says it records sales (0 when it does not)."""
    words = snake_case(table.name).split("_")
    return sum(1 for w in words for s in SALE_WORDS if w.startswith(s) or w.rstrip("s") == s)


def _line_binding(child: TableProfile) -> tuple[ColumnProfile | None, ColumnProfile, ColumnProfile | None] | None:
    """``(quantity, price or line amount, discount rate)`` when a child of an order holds its line items."""
    qty = find_column(child, r"quantity", r"qty", r"units?")
    unit_price = find_column(child, r"(unit_)?price", r"unit_amount", r"price_per_unit", money=True)
    if qty and unit_price:
        return qty, unit_price, None
    extended = find_column(child, r"extended_?price", r"ext_?price", r"line_?(total|amount)", r"extended_?amount",
                           money=True)
    if qty and extended:  # an extended line amount (quantity × price already), maybe less a discount rate
        rate = find_column(child, r"discount(_rate|_pct|_percent)?")
        return None, extended, rate if rate is not None and is_rate(rate) else None
    return None


def _discount_percent(orders: TableProfile) -> ColumnProfile | None:
    """An order-level discount stored as a percent (0–100) or a rate (0–1), never an amount."""
    if find_column(orders, r"total_discounts?", r"discounts?(_amount)?", money=True) is not None:
        return None
    return find_column(orders, r"discount_?(pct|percent|percentage|rate)", r"(pct|percent)_?discount", money=False)


def bind_sales(profile: WarehouseProfile) -> SalesBinding | None:
    """Find the most sale-like fact and what measures sales can be computed from, or None.

    A candidate is any table with a primary key and an event time whose value is known: its own money
    column, line items that reference it (quantity × unit price, or an extended amount less a discount
    rate), or payments. Among candidates the most sale-like wins (line items, then a name from a general
    sales vocabulary: orders, sales, invoices, transactions…), then the most rows.
    """
    bindings = [b for t in profile.tables if primary_key(t) and event_time(t) if (b := _bind_fact(t, profile))]
    if not bindings:
        return None
    return max(bindings, key=lambda b: (b.lines is not None and b.line_quantity is not None or b.line_amount,
                                        sale_likeness(b.orders) > 0, b.lines is not None or b.order_amount is not None,
                                        b.orders.row_count))


def sales_candidates(profile: WarehouseProfile) -> list[SalesBinding]:
    """Every fact that could answer sales, most sale-like first."""
    out = [b for t in profile.tables if primary_key(t) and event_time(t) if (b := _bind_fact(t, profile))]
    best = bind_sales(profile)
    return sorted(out, key=lambda b: b.orders is not (best.orders if best else None))


def _bind_fact(orders: TableProfile, profile: WarehouseProfile) -> SalesBinding | None:
    order_time = event_time(orders)
    assert order_time is not None
    fks = {fk.column: fk for fk in profile.foreign_keys if fk.table == orders.name}
    customer = next((orders.column(c) for c, fk in fks.items() if re.search(r"customer|user|client|member|account",
                                                                            snake_case(fk.ref_table))), None)
    customer = customer or find_column(orders, r"customer_id", r"user_id", r"client_id")

    lines = line_order = line_quantity = line_price = line_rate = None
    line_amount = False
    for child, fk_col in _child_with_fk(profile, orders):
        found = _line_binding(child)
        if found and child.name != orders.name and not re.search(r"refund|return", snake_case(child.name)):
            lines, line_order = child, fk_col
            line_quantity, line_price, line_rate = found
            line_amount = line_quantity is None
            break
    if lines is None:  # no line items: payments per order carry the order value (as jaffle-shop does)
        for child, fk_col in _child_with_fk(profile, orders, r"payment|transaction|charge"):
            amount = find_column(child, r"amount", r".*amount", money=True)
            if amount and not find_column(child, r"kind", r"type"):  # refunds mixed in: not a plain payment table
                lines, line_order, line_price = child, fk_col, amount
                break
    refunds = refund_order = refund_amount = refund_time = None
    for child, fk_col in _child_with_fk(profile, orders, r"refund|return"):
        amount = find_column(child, r"amount", r".*amount", r"total", money=True)
        when = event_time(child)
        if amount and when:
            refunds, refund_order, refund_amount, refund_time = child, fk_col, amount, when
            break
    order_amount = find_column(orders, r"subtotal(_price)?", r"gross(_amount)?", r"total_?price", r"total(_amount)?",
                               r"amount", r"order_total", r"grand_total", r"amount_(due|paid|total|charged)",
                               money=True)
    if lines is None and order_amount is None:
        return None
    if lines is not None and line_quantity is None and not line_amount and order_amount is not None:
        lines = line_order = line_price = None  # the order's own amount beats summing payments
    currency_col = find_column(orders, r"currency(_code)?")
    currency = currency_col.top_values[0] if currency_col and len(currency_col.top_values) == 1 else None
    return SalesBinding(
        orders=orders,
        order_time=order_time,
        customer=customer,
        test_flag=find_column(orders, r"(is_)?test(_order)?"),
        cancelled=find_column(orders, r"cancell?ed_at", r"is_cancell?ed", r"is_deleted", r"deleted_at", r"_?fivetran_deleted"),
        discount=find_column(orders, r"total_discounts?", r"discounts?(_amount)?", money=True),
        lines=lines, line_order=line_order, line_quantity=line_quantity, line_price=line_price,
        order_amount=order_amount,
        refunds=refunds, refund_order=refund_order, refund_amount=refund_amount, refund_time=refund_time,
        currency=currency, line_rate=line_rate, line_amount=line_amount,
        discount_percent=_discount_percent(orders) if order_amount is not None and lines is None else None,
        refunded_status=None if refunds is not None else _refunded_status(orders),
    )


def _refunded_status(orders: TableProfile) -> ColumnProfile | None:
    from dataeng_crew.agents.semantic_layer import refunded_status  # it builds on this module

    return refunded_status(orders)


def referenced_table(profile: WarehouseProfile, table: str, column: str) -> str | None:
    """The table ``table.column`` refers to (a foreign key found in the data), or None."""
    return next((f.ref_table for f in profile.foreign_keys if f.table == table and f.column == column), None)


def repeated_key(table: TableProfile | None) -> str | None:
    """The key of one of the project's models whose rows repeat it (re-synced copies the project does not
    dedupe: a key it tests unique, or an id with a few repeats); None when every key is unique."""
    if table is None or table.origin != "model":
        return None
    return next((k for k in [*table.declared_keys, *table.duplicate_key_rows] if k not in table.candidate_keys
                 and table.column(k) is not None), None)


def newest_first(table: TableProfile) -> str:
    """The column that orders a key's copies newest first: the update or load time, else the key itself."""
    when = (find_column(table, r"updated_?at", r"_?loaded_?at", r"modified_?at", r"_?synced_?at")
            or load_timestamp(table))
    return f"{when.name} desc" if when is not None else str(repeated_key(table))


def import_cte(alias: str, model: str, profile: WarehouseProfile | None = None) -> str:
    """``alias as (select * from ref(model))``; a project model whose key repeats keeps one row per key (the
    newest), or every sum over it would count the copies."""
    table = next((t for t in profile.tables if t.ref_name == model or t.name == model), None) if profile else None
    key = repeated_key(table)
    dedupe = (f"\n    qualify row_number() over (partition by {key} order by {newest_first(table)}) = 1"  # type: ignore[arg-type]
              if key else "")
    return f"{alias} as (\n\n    select * from {{{{ ref('{model}') }}}}{dedupe}\n\n)"


def deduplication_notes(tables: list[TableProfile]) -> list[str]:
    """One plan statement per project model read whose key repeats."""
    out = []
    for t in tables:
        key = repeated_key(t)
        if key:
            extra = t.duplicate_key_rows.get(key)
            out.append(f"{t.ref_name or t.name} repeats {key}" + (f" ({extra} extra rows in the profile)" if extra else "")
                       + f" and the project's model does not deduplicate it: one row per {key} is kept (ordered by "
                       f"{newest_first(t)}), so nothing is counted twice.")
    return out
