"""``--validate-on-target``: the committed SQL built in a scratch schema of the real warehouse (PostgreSQL or Spark).

The scratch project is the sandbox's project with the committed (target-dialect) files written over it, plus a
``generate_schema_name`` override that puts every node in ``dataeng_crew_<proposal id>`` and refuses any other
schema; its ``profiles.yml`` reads the password (a Spark target's token) from an environment variable set only
while dbt runs (no file holds it). The scratch schema (a Spark database) is dropped afterwards, also when the build
fails or Ctrl-C arrives.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
import shutil
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

from dataeng_crew.contracts import WarehouseTarget
from dataeng_crew.errors import ConfigError
from dataeng_crew.tools.extract import SCRATCH_PREFIX, pg_open
from dataeng_crew.tools.spark import SparkReader, spark_ident, spark_rel
from dataeng_crew.tools.warehouse import quote_ident

PASSWORD_ENV = "DATAENG_CREW_TARGET_PASS"  # not matched by the dbt runner's secret scrubber, on purpose
MACRO_FILE = "macros/dataeng_crew_scratch_schema.sql"
SCHEMA_MACRO = re.compile(r"{%-?\s*macro\s+generate_schema_name\s*\(")
MAX_DIFF_ROWS = 200_000


def scratch_schema(proposal_id: str) -> str:
    """``dataeng_crew_<proposal id>``: lower-case, ``[a-z0-9_]``, at most 63 characters (PostgreSQL's limit)."""
    return (SCRATCH_PREFIX + re.sub(r"[^a-z0-9_]+", "_", proposal_id.lower())).strip("_")[:63]


def schema_macro(schema: str) -> str:
    """The ``generate_schema_name`` override: every node in ``schema``; a target naming another schema fails."""
    return (
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
        f"    {{%- if target.schema != '{schema}' -%}}\n"
        f"        {{{{ exceptions.raise_compiler_error('dataeng-crew builds only in schema {schema}, "
        "not ' ~ target.schema) }}\n"
        "    {%- endif -%}\n"
        f"    {schema}\n"
        "{%- endmacro %}\n")


def prepare_scratch_project(source: Path, dest: Path, files: dict[str, str], schema: str) -> Path:
    """A copy of ``source`` (the sandbox project) with ``files`` written over it and the schema override.

    Project macros that define ``generate_schema_name`` are removed from the copy: the override must win.
    """
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target", "logs", ".git", ".dataeng-crew", "*.duckdb",
                                                              "*.duckdb.wal", ".venv", "node_modules"))
    for rel, text in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    for macro in (dest / "macros").rglob("*.sql") if (dest / "macros").is_dir() else []:
        if SCHEMA_MACRO.search(macro.read_text(errors="replace")):
            macro.unlink()
    (dest / MACRO_FILE).parent.mkdir(parents=True, exist_ok=True)
    (dest / MACRO_FILE).write_text(schema_macro(schema))
    return dest


def write_target_profile(folder: Path, profile_name: str, target: WarehouseTarget, schema: str) -> Path:
    """``profiles.yml`` for the scratch build: the target's server, ``schema``, the secret as an ``env_var``."""
    secret = "{{ env_var('" + PASSWORD_ENV + "', '') }}"
    if target.type == "postgres":
        output = {"type": "postgres", "host": target.host or "localhost", "port": target.port or 5432,
                  "user": target.user or "postgres", "password": secret, "dbname": target.dbname, "schema": schema,
                  "threads": 4}
    elif target.type == "spark":
        output = {"type": "spark", "method": target.method, "host": target.host or "localhost", "schema": schema,
                  **({"port": target.port} if target.port else {}), **({"user": target.user} if target.user else {}),
                  **target.options, "threads": 4}
        if target.password.get_secret_value():  # http authenticates with a token, thrift (LDAP) with a password
            output["password" if target.method == "thrift" else "token"] = secret
    else:
        raise ConfigError(f"--validate-on-target supports PostgreSQL and Spark targets; {target.label} is "
                          f"{target.type!r}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump({profile_name: {"target": "scratch",
                                                                        "outputs": {"scratch": output}}}))
    return folder


@contextmanager
def password_in_env(target: WarehouseTarget) -> Iterator[None]:
    """The target's password in :data:`PASSWORD_ENV` while dbt runs, removed afterwards."""
    before = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = target.password.get_secret_value()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = before


def drop_scratch_schema(target: WarehouseTarget, schema: str) -> bool:
    """``drop schema ... cascade`` of the scratch schema (only a ``dataeng_crew_`` one); True when it is gone."""
    if not schema.startswith(SCRATCH_PREFIX):
        raise ConfigError(f"refusing to drop schema {schema!r}: dataeng-crew drops only its own scratch schemas")
    if target.type == "spark":
        spark = SparkReader(target)
        try:
            spark.execute(f"drop database if exists {spark_ident(schema)} cascade")
            return schema.lower() not in {d.lower() for d in spark.databases()}
        finally:
            spark.close()
    con = pg_open(target)
    try:
        with con.cursor() as cur:
            cur.execute(f"drop schema if exists {quote_ident(schema)} cascade")
            cur.execute("select 1 from pg_namespace where nspname = %s", (schema,))
            return cur.fetchone() is None
    finally:
        con.close()


def _norm(value: object) -> str:
    """One spelling per value across engines (decimals without trailing zeros, ISO dates, floats to 6 digits)."""
    if value is None:
        return "∅"
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, float):
        return format(decimal.Decimal(repr(round(value, 6))).normalize(), "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def rows_differing(left: list[tuple], right: list[tuple]) -> int:
    """Rows in one list but not the other (multiset symmetric difference of normalized rows)."""
    a = Counter(tuple(_norm(v) for v in r) for r in left)
    b = Counter(tuple(_norm(v) for v in r) for r in right)
    return sum(((a - b) + (b - a)).values())


def target_rows(target: WarehouseTarget, schema: str, table: str, columns: list[str]) -> list[tuple]:
    """The rows of ``schema.table`` on the target (``columns`` in order; at most MAX_DIFF_ROWS)."""
    if target.type == "spark":
        spark = SparkReader(target)
        try:
            return spark.rows(f"select {', '.join(spark_ident(c) for c in columns)} from {spark_rel(schema, table)} "
                              f"limit {MAX_DIFF_ROWS}")
        finally:
            spark.close()
    con = pg_open(target)
    try:
        with con.cursor() as cur:
            cur.execute(f"select {', '.join(quote_ident(c) for c in columns)} from "
                        f"{quote_ident(schema)}.{quote_ident(table)} limit {MAX_DIFF_ROWS}")
            return cur.fetchall()
    finally:
        con.close()


def existing_roles(target: WarehouseTarget, roles: list[str]) -> set[str]:
    """Which of ``roles`` the target server has (raises WarehouseError when it cannot be reached)."""
    con = pg_open(target)
    try:
        with con.cursor() as cur:
            cur.execute("select rolname from pg_roles where rolname = any(%s)", (list(roles),))
            return {r[0] for r in cur.fetchall()}
    finally:
        con.close()
