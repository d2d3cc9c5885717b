"""The embedded sample warehouse: a Shopify-like shop, generated deterministically from a seed.

The raw schema is messy the way real loads are, and the staging layer has to clean all of it:

* re-synced duplicate rows: the stale copy has an earlier ``_loaded_at`` and out-of-date values
  (pending status, no discount yet), so picking the wrong copy changes the numbers;
* mixed-case / padded status values (``'PAID'``, ``'Paid '``, ``'sale'`` vs ``'SALE'``);
* test orders (``test = true``) and cancelled orders;
* NULLs (guest checkouts without a customer, missing phones and vendors);
* money in minor units (integer cents);
* timestamps stored as strings in ``orders`` (two formats, as two API versions wrote them);
* days with no orders at all (the shop was closed).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from dataeng_crew.errors import ConfigError

RAW_SCHEMA = "raw_shop"
WINDOW_START = dt.datetime(2024, 1, 1)
WINDOW_DAYS = 366
CLOSED_DAYS = (dt.date(2024, 7, 4), dt.date(2024, 12, 25))
DEFAULT_SCALE = 5_000
MAX_SCALE = 20_000_000

FIRST_NAMES = [
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mia", "Lucas", "Sofia", "Mateo", "Zoë",
    "Chloé", "Jürgen", "Amara", "Kenji", "Priya", "Omar", "Fatima", "Isla", "Leo", "Nina",
]
LAST_NAMES = [
    "Smith", "Garcia", "Nguyen", "Müller", "Rossi", "Kowalski", "Okafor", "Tanaka", "Patel",
    "O'Brien", "Silva", "Dubois", "Jensen", "Haddad", "Kim", "Lopez", "Novak", "Ivanova",
]
CITIES = [
    ("Austin", "US"), ("Portland", "US"), ("Toronto", "CA"), ("London", "GB"), ("Berlin", "DE"),
    ("Lyon", "FR"), ("Madrid", "ES"), ("Osaka", "JP"), ("Sydney", "AU"), ("São Paulo", "BR"),
]
PRODUCT_TYPES = ["Coffee", "Tea", "Mugs", "Brewing Gear", "Gift Card"]
VENDORS = ["Northwind Roasters", "Blue Kettle", "Oak & Clay", None]
GATEWAYS = ["shopify_payments", "paypal", "gift_card", "manual"]


@dataclass(frozen=True)
class SampleInfo:
    """What :func:`build_sample_warehouse` wrote."""

    path: Path
    database: str
    schema: str
    row_counts: dict[str, int]


def build_sample_warehouse(path: Path, scale: int = DEFAULT_SCALE, seed: int = 42) -> SampleInfo:
    """Generate the sample shop into a DuckDB file, atomically.

    Args:
        path: DuckDB file to write. Replaced only once the new file is complete.
        scale: Number of orders (customers = scale / 3, lines ~ 2.5 per order).
        seed: Random seed; the same seed and scale give the same data.

    Returns:
        Where the data went and how many rows each raw table holds.

    Raises:
        ConfigError: When the scale is out of range.
    """
    if not 10 <= scale <= MAX_SCALE:
        raise ConfigError(f"--scale must be between 10 and {MAX_SCALE:,} orders, got {scale:,}")
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".duckdb", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # duckdb wants to create the file itself
    try:
        con = duckdb.connect(str(tmp))
        try:
            counts = _generate(con, scale, np.random.default_rng(seed))
        finally:
            con.close()
        # the database name of a DuckDB file is its stem: rename keeps the stem of `path`
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return SampleInfo(path=path, database=path.stem, schema=RAW_SCHEMA, row_counts=counts)


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random order timestamps in the window, skipping the days the shop was closed."""
    seconds = rng.integers(0, WINDOW_DAYS * 86_400, size=n)
    stamps = np.datetime64(WINDOW_START, "s") + seconds.astype("timedelta64[s]")
    days = stamps.astype("datetime64[D]")
    for closed in CLOSED_DAYS:
        on_closed = days == np.datetime64(closed, "D")
        stamps[on_closed] += np.timedelta64(1, "D")  # moved to the next day
    return stamps


def _register(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, np.ndarray]) -> None:
    import pandas as pd

    con.register(name, pd.DataFrame(columns))


def _generate(con: duckdb.DuckDBPyConnection, scale: int, rng: np.random.Generator) -> dict[str, int]:
    n_orders = scale
    n_customers = max(10, scale // 3)
    n_products = min(2_000, 40 + scale // 1_000)

    con.execute(f"create schema {RAW_SCHEMA}")
    con.execute("create temp table first_names as select * from (select unnest(?) as v, generate_subscripts(?, 1) - 1 as i)", [FIRST_NAMES, FIRST_NAMES])
    con.execute("create temp table last_names as select * from (select unnest(?) as v, generate_subscripts(?, 1) - 1 as i)", [LAST_NAMES, LAST_NAMES])
    con.execute(
        "create temp table cities as select * from (select unnest(?) as city, unnest(?) as country, generate_subscripts(?, 1) - 1 as i)",
        [[c for c, _ in CITIES], [k for _, k in CITIES], CITIES],
    )

    # ---- customers
    c_created = np.datetime64(WINDOW_START - dt.timedelta(days=400), "s") + rng.integers(
        0, 500 * 86_400, size=n_customers
    ).astype("timedelta64[s]")
    _register(con, "c_df", {
        "id": np.arange(1, n_customers + 1, dtype=np.int64),
        "fi": rng.integers(0, len(FIRST_NAMES), n_customers),
        "li": rng.integers(0, len(LAST_NAMES), n_customers),
        "ci": rng.integers(0, len(CITIES), n_customers),
        "has_phone": rng.random(n_customers) > 0.2,
        "phone_n": rng.integers(2_000_000, 9_999_999, n_customers),
        "opt_in": rng.random(n_customers) < 0.4,
        "shouty": rng.random(n_customers) < 0.05,
        "created_at": c_created,
    })
    con.execute(f"""
        create table {RAW_SCHEMA}.customers as
        select
            c.id,
            case when c.shouty then upper(f.v || '.' || l.v || c.id || '@example.com')
                 else lower(replace(f.v, ' ', '') || '.' || replace(l.v, '''', '') || c.id || '@example.com') end as email,
            f.v as first_name,
            l.v as last_name,
            case when c.has_phone then '+1-555-' || lpad(cast(c.phone_n % 10000000 as varchar), 7, '0') end as phone,
            cast(10 + c.id % 990 as varchar) || ' ' || l.v || ' ' ||
                case c.id % 3 when 0 then 'Street' when 1 then 'Avenue' else 'Road' end as address1,
            ci.city,
            ci.country as country_code,
            c.opt_in as marketing_opt_in,
            cast(c.created_at as timestamp) as created_at,
            cast(c.created_at as timestamp) + interval 3 day as updated_at,
            cast(c.created_at as timestamp) + interval 1 hour as _loaded_at
        from c_df as c
        join first_names as f on f.i = c.fi
        join last_names as l on l.i = c.li
        join cities as ci on ci.i = c.ci
    """)

    # ---- products
    _register(con, "p_df", {
        "id": np.arange(1, n_products + 1, dtype=np.int64),
        "ti": rng.integers(0, len(PRODUCT_TYPES), n_products),
        "vi": rng.integers(0, len(VENDORS), n_products),
        "price": (rng.integers(4, 60, n_products) * 100 + rng.choice([0, 50, 99], n_products)).astype(np.int64),
    })
    con.execute("create temp table product_types as select unnest(?) as v, generate_subscripts(?, 1) - 1 as i", [PRODUCT_TYPES, PRODUCT_TYPES])
    con.execute("create temp table vendors as select unnest(?) as v, generate_subscripts(?, 1) - 1 as i", [VENDORS, VENDORS])
    con.execute(f"""
        create table {RAW_SCHEMA}.products as
        select
            p.id,
            t.v || ' #' || p.id as title,
            t.v as product_type,
            v.v as vendor,
            p.price,
            'SKU-' || lpad(cast(p.id as varchar), 5, '0') as sku,
            timestamp '2023-06-01 09:00:00' + p.id * interval 1 hour as created_at,
            timestamp '2023-06-01 10:00:00' + p.id * interval 1 hour as _loaded_at
        from p_df as p
        join product_types as t on t.i = p.ti
        join vendors as v on v.i = p.vi
    """)

    # ---- orders and their lines
    o_ids = np.arange(1001, 1001 + n_orders, dtype=np.int64)
    o_at = np.sort(_timestamps(rng, n_orders))
    n_lines = rng.integers(1, 5, n_orders)
    line_order = np.repeat(o_ids, n_lines)
    n_total_lines = int(n_lines.sum())
    line_product = rng.integers(1, n_products + 1, n_total_lines)
    _register(con, "l_df", {
        "id": np.arange(1, n_total_lines + 1, dtype=np.int64),
        "order_id": line_order,
        "product_id": line_product.astype(np.int64),
        "quantity": rng.integers(1, 4, n_total_lines).astype(np.int64),
        "discount_pct": np.where(rng.random(n_total_lines) < 0.25, rng.choice([5, 10, 20], n_total_lines), 0),
    })
    con.execute(f"""
        create temp table lines as
        select l.id, l.order_id, l.product_id, l.quantity, p.price,
               cast(round(l.quantity * p.price * l.discount_pct / 100.0) as bigint) as total_discount
        from l_df as l join {RAW_SCHEMA}.products as p on p.id = l.product_id
    """)
    status_roll = rng.random(n_orders)
    _register(con, "o_df", {
        "id": o_ids,
        "customer_id": np.where(rng.random(n_orders) < 0.03, -1, rng.integers(1, n_customers + 1, n_orders)),
        "created_at": o_at.astype("datetime64[us]"),
        "iso_z": rng.random(n_orders) < 0.15,
        "is_test": rng.random(n_orders) < 0.01,
        "is_cancelled": status_roll < 0.02,
        "is_refunded": (status_roll >= 0.02) & (status_roll < 0.08),
        "case_variant": rng.integers(0, 4, n_orders),
        "shipping": rng.choice([0, 499, 799], n_orders).astype(np.int64),
        "refund_days": rng.integers(1, 11, n_orders),
        "refund_share": rng.choice([0.25, 0.5, 1.0], n_orders),
        "gateway_i": rng.integers(0, len(GATEWAYS), n_orders),
        "failed_attempt": rng.random(n_orders) < 0.03,
    })
    window_end = np.datetime64(WINDOW_START + dt.timedelta(days=WINDOW_DAYS), "s") - np.timedelta64(1, "s")
    con.execute(f"""
        create temp table orders_clean as
        with totals as (
            select order_id, cast(sum(quantity * price) as bigint) as subtotal,
                   cast(sum(total_discount) as bigint) as discounts
            from lines group by order_id
        )
        select
            o.*,
            t.subtotal,
            t.discounts,
            cast(round((t.subtotal - t.discounts) * 0.08) as bigint) as tax,
            case when o.is_refunded
                 then least(o.created_at + o.refund_days * interval 1 day, timestamp '{window_end}')
            end as refunded_at,
            case when o.is_refunded
                 then cast(round((t.subtotal - t.discounts) * o.refund_share) as bigint)
            end as refund_amount
        from o_df as o join totals as t on t.order_id = o.id
    """)
    con.execute(f"""
        create table {RAW_SCHEMA}.orders as
        with current_rows as (
            select
                id,
                '#' || id as order_number,
                case when customer_id > 0 then customer_id end as customer_id,
                case when iso_z then strftime(created_at, '%Y-%m-%dT%H:%M:%SZ')
                     else strftime(created_at, '%Y-%m-%d %H:%M:%S') end as created_at,
                case case_variant when 0 then fs when 1 then upper(fs)
                                  when 2 then upper(fs[1]) || fs[2:] || ' ' else fs end as financial_status,
                'USD' as currency,
                subtotal as subtotal_price,
                discounts as total_discounts,
                tax as total_tax,
                shipping as total_shipping,
                subtotal - discounts + tax + shipping as total_price,
                is_test as test,
                case when is_cancelled then strftime(created_at + interval 2 hour, '%Y-%m-%d %H:%M:%S') end as cancelled_at,
                created_at + interval 30 minute as _loaded_at
            from (
                select *,
                    case when is_cancelled then 'voided'
                         when is_refunded and refund_share = 1.0 then 'refunded'
                         when is_refunded then 'partially_refunded'
                         else 'paid' end as fs
                from orders_clean
            )
        ),
        stale as (
            -- first sync of ~5% of orders: before payment captured and discounts applied
            select * replace ('pending' as financial_status, 0 as total_discounts,
                              subtotal_price + total_tax + total_shipping as total_price,
                              _loaded_at - interval 20 minute as _loaded_at)
            from current_rows where hash(id) % 20 = 0
        )
        select * from current_rows
        union all
        select * from stale
    """)
    con.execute(f"""
        create table {RAW_SCHEMA}.order_lines as
        select id, order_id, product_id, quantity, price, total_discount,
               timestamp '2024-01-01' + (order_id - 1000) * interval 5 second as _loaded_at
        from lines
        union all
        select id, order_id, product_id, quantity, price, 0 as total_discount,
               timestamp '2024-01-01' + (order_id - 1000) * interval 5 second - interval 1 minute as _loaded_at
        from lines where hash(id) % 25 = 0
    """)

    # ---- transactions: captures (plus failed attempts) and refunds
    _register(con, "g_df", {"v": np.array(GATEWAYS, dtype=object), "i": np.arange(len(GATEWAYS))})
    con.execute(f"""
        create table {RAW_SCHEMA}.transactions as
        with sales as (
            select o.id as order_id, 'sale' as kind, 'success' as status, g.v as gateway,
                   o.subtotal - o.discounts + o.tax + o.shipping as amount,
                   o.created_at + interval 1 minute as processed_at, o.case_variant
            from orders_clean as o join g_df as g on g.i = o.gateway_i
            where not o.is_cancelled
            union all
            select o.id, 'sale', 'failure', g.v, o.subtotal - o.discounts + o.tax + o.shipping,
                   o.created_at, o.case_variant
            from orders_clean as o join g_df as g on g.i = o.gateway_i
            where o.failed_attempt
            union all
            select o.id, 'refund', 'success', g.v, o.refund_amount, o.refunded_at, o.case_variant
            from orders_clean as o join g_df as g on g.i = o.gateway_i
            where o.is_refunded
        )
        select
            row_number() over (order by processed_at, order_id, kind) as id,
            order_id,
            case case_variant when 1 then upper(kind) else kind end as kind,
            status,
            gateway,
            cast(amount as bigint) as amount,
            cast(processed_at as timestamp) as processed_at,
            processed_at + interval 10 minute as _loaded_at
        from sales
    """)

    # ---- refunds (valid orders only, refund date inside the window)
    con.execute(f"""
        create table {RAW_SCHEMA}.refunds as
        with r as (
            select row_number() over (order by refunded_at, id) + 500000 as id,
                   id as order_id, refunded_at as created_at, refund_amount as amount,
                   case when refund_share = 1.0 then 'Customer returned everything' end as note,
                   refunded_at + interval 15 minute as _loaded_at
            from orders_clean
            where is_refunded and not is_test and not is_cancelled
        )
        select * from r
        union all
        select * replace (_loaded_at - interval 5 minute as _loaded_at) from r where hash(id) % 10 = 0
    """)
    counts = {}
    for table in ("customers", "products", "orders", "order_lines", "transactions", "refunds"):
        counts[table] = con.execute(f"select count(*) from {RAW_SCHEMA}.{table}").fetchone()[0]
    con.execute("checkpoint")
    return counts


SAMPLE_PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "governance.yml", "README.md",
                        "models/.gitkeep", "macros/.gitkeep", "tests/generic/.gitkeep")
SAMPLE_GITIGNORE = "warehouse/\ntarget/\nlogs/\ndbt_packages/\n.dataeng-crew/\n*.duckdb.wal\n"


def sample_template() -> Path:
    """The sample dbt project's folder: inside the installed package, or ``dbt_project/`` of a source checkout.

    Raises:
        ConfigError: When neither exists (a broken installation).
    """
    package = Path(__file__).resolve().parent.parent  # dataeng_crew/ when installed; the repo root in a checkout
    for candidate in (package / "sample_project", package.parent / "dbt_project", package / "dbt_project"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise ConfigError(f"the sample dbt project is missing from this installation (looked next to {package}); "
                      "reinstall dataeng-crew")


def init_sample_project(dest: Path, scale: int = DEFAULT_SCALE, seed: int = 42) -> SampleInfo:
    """Create a runnable sample: a dbt project, its warehouse and a git repository with one commit.

    ``cd dest && dataeng-crew propose "daily_sales mart"`` then works from anywhere.

    Args:
        dest: A folder that does not exist yet or is empty.
        scale: Number of orders.
        seed: Random seed.

    Returns:
        The warehouse written (``dest/warehouse/shop.duckdb``).

    Raises:
        ConfigError: When ``dest`` is not empty, cannot be written, or git is missing.
    """
    import shutil
    import subprocess

    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} exists and is not an empty folder: choose a new folder for the sample")
    if shutil.which("git") is None:
        raise ConfigError("git is not installed: the sample is a git repository (install git, then run again)")
    template = sample_template()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for rel in SAMPLE_PROJECT_FILES:
            source = template / rel
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(source.read_bytes() if source.is_file() else b"")
        (dest / ".gitignore").write_text(SAMPLE_GITIGNORE)
    except OSError as exc:
        raise ConfigError(f"cannot create the sample in {dest}: {exc.strerror or exc}") from None
    info = build_sample_warehouse(dest / "warehouse" / "shop.duckdb", scale=scale, seed=seed)
    env = {**os.environ, "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "dataeng-crew sample"),
           "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "sample@dataeng-crew.invalid"),
           "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "dataeng-crew sample"),
           "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "sample@dataeng-crew.invalid")}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Sample dbt project"]):
        proc = subprocess.run(["git", "-C", str(dest), *args], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise ConfigError(f"git {args[0]} in {dest} failed: {proc.stderr.strip()[:300]}")
    return info
