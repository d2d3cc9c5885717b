"""A third warehouse shape for tests: hostile names around an order fact with amounts in cents.

Schema and table names with spaces and capitals, a table called ``Order`` (reserved word), columns
``"Full Name"``, ``"E-Mail"``, ``"group"``, ``"order"``, ``"Région"`` next to ``"region"`` (the same
name once folded to ASCII), CamelCase keys, and money as integer minor units. Guest orders (no
customer), test orders, customers without orders and days without orders are all present.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SCHEMA = "Web Shop"


def build_hostile_shop(db: Path, orders: int = 300, start_id: int = 1000, day_offset: int = 0) -> Path:
    """Create (or extend) the hostile shop in ``db``; a second call appends ``orders`` new orders.

    Args:
        db: DuckDB file to write.
        orders: Number of orders to insert.
        start_id: First ``OrderID``.
        day_offset: Shift of the order dates in days (to append later orders).
    """
    con = duckdb.connect(str(db))
    exists = con.execute("select count(*) from information_schema.tables where table_schema = ?", [SCHEMA]).fetchone()[0]
    if not exists:
        con.execute(f'create schema "{SCHEMA}"')
        con.execute(f'''create table "{SCHEMA}"."Customers" as select
            range + 1 as "CustomerID",
            'Kundin ' || range as "Full Name",
            'Person' || range || '@Example.COM' as "E-Mail",
            (['gold', 'silver', 'bronze'])[range % 3 + 1] as "group",
            (['Zürich', 'Genève', 'Bern'])[range % 3 + 1] as "Région",
            (['north', 'south'])[range % 2 + 1] as "region",
            timestamp '2030-12-01' + range * interval 7 hour as "SignupDate"
            from range(60)''')
        con.execute(f'''create table "{SCHEMA}"."Order" ("OrderID" bigint, "CustomerID" bigint,
            "Order Date" timestamp, "order" bigint, "AMOUNT" bigint, "Discount" integer, "IsTest" boolean,
            "Status" varchar)''')
    con.execute(f'''insert into "{SCHEMA}"."Order" select
        range + {start_id},
        case when range % 11 = 0 then null else range % 50 + 1 end,
        timestamp '2031-01-01 08:00' + ({day_offset} + range * 9 % 40) * interval 1 day + (range % 5) * interval 1 hour
            + case when range * 9 % 40 in (12, 13) then interval 3 day else interval 0 day end,
        range % 4,
        1000 + (range * 37) % 9000,
        case when range % 6 = 0 then 250 else 0 end,
        range % 17 = 0,
        (['completed', 'returned', 'placed'])[range % 3 + 1]
        from range({orders})''')
    con.close()
    return db
