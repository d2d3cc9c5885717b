"""Real-shaped dbt projects for the tests: dbt Labs' jaffle_shop_duckdb (seeds) and a monorepo project with a
declared source, staging, a local package, custom model-/test-paths and a hand-written mart."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import duckdb

from dataeng_crew.tools.dbt_runner import run_dbt

JAFFLE_DUCKDB = Path(__file__).resolve().parent / "data" / "jaffle_shop_duckdb"  # vendored copy, Apache-2.0
CLASSIC = Path(__file__).resolve().parent / "data" / "jaffle_shop_classic"


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit_all(repo: Path, message: str = "initial project") -> None:
    """``git init`` (when needed) and commit everything."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "Test User")
        git(repo, "config", "user.email", "test@example.com")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@contextlib.contextmanager
def cwd(path: Path) -> Iterator[None]:
    """Run in ``path`` (the projects' own profiles hold DuckDB paths relative to the project)."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def dbt_here(project: Path, *args: str):  # noqa: ANN201 - BuildResult
    """``dbt <args> --profiles-dir .`` in the project with its own profile, as a user runs it."""
    with cwd(project):
        if args[0] == "deps":
            return run_dbt(list(args), project, project, log_path=project / "logs")
        return run_dbt(list(args), project, project, target_path=project / "target", log_path=project / "logs",
                       write_json=False)


def jaffle_duckdb(dest: Path) -> Path:
    """A git copy of jaffle_shop_duckdb with its seeds loaded (``dbt seed``), as its README says."""
    if not JAFFLE_DUCKDB.is_dir():  # pragma: no cover - the shared copy is part of the test machine
        raise FileNotFoundError(JAFFLE_DUCKDB)
    shutil.copytree(JAFFLE_DUCKDB, dest)
    (dest / ".gitignore").write_text("target/\nlogs/\n*.duckdb\n*.duckdb.wal\ndbt_packages/\n.dataeng-crew/\n")
    commit_all(dest)
    seeded = dbt_here(dest, "seed")
    assert seeded.success, seeded.error
    return dest


ACME_PROJECT = """name: acme
profile: acme
config-version: 2
version: '1.0'
require-dbt-version: ">=1.10.0"
model-paths: ["transform"]
test-paths: ["checks"]
seed-paths: ["seeds"]
macro-paths: ["macros"]
models:
  acme:
    staging:
      +materialized: view
    marts:
      +materialized: table
"""
ACME_PROFILE = """acme:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
      schema: main
      threads: 2
"""
ACME_SOURCES = """version: 2

sources:
  # loaded nightly by the shop's EL job
  - name: jaffle
    schema: raw_jaffle
    tables:
      - name: orders  # one row per order
      - name: customers
"""
STG_ORDERS = """with source as (
    select * from {{ source('jaffle', 'orders') }}
)

select
    id as order_id,
    user_id as customer_id,
    order_date,
    status
from source
"""
STG_CUSTOMERS = """with source as (
    select * from {{ source('jaffle', 'customers') }}
)

select
    id as customer_id,
    first_name,
    last_name
from source
"""
STAGING_YML = """version: 2

models:
  - name: stg_jaffle__orders
    description: One row per order.
    columns:
      - name: order_id
        description: The order's key.
        data_tests:
          - unique
          - not_null
      - name: customer_id
        description: The customer who placed the order.
        data_tests:
          - acme_utils.is_positive
  - name: stg_jaffle__customers
    description: One row per customer.
    columns:
      - name: customer_id
        data_tests:
          - unique
          - not_null
"""
HAND_MART = """select order_date, count(*) as orders
from {{ ref('stg_jaffle__orders') }}
group by order_date
"""
PACKAGE_PROJECT = "name: acme_utils\nversion: '1.0'\nconfig-version: 2\n"
PACKAGE_TEST = """{% test is_positive(model, column_name) %}
select * from {{ model }} where {{ column_name }} <= 0
{% endtest %}
"""


def acme_monorepo(dest: Path) -> Path:
    """A monorepo with the dbt project in ``analytics/``: a declared source over two of the three raw tables,
    staging for them, a local package (installed with ``dbt deps``), custom model-/test-paths and a
    hand-written ``fct_daily_sales``. The warehouse holds jaffle-shop classic's raw tables in ``raw_jaffle``."""
    project = dest / "analytics"
    files = {
        "dbt_project.yml": ACME_PROJECT, "profiles.yml": ACME_PROFILE,
        "packages.yml": "packages:\n  - local: local_packages/acme_utils\n",
        "local_packages/acme_utils/dbt_project.yml": PACKAGE_PROJECT,
        "local_packages/acme_utils/macros/is_positive.sql": PACKAGE_TEST,
        "transform/staging/jaffle/_jaffle__sources.yml": ACME_SOURCES,
        "transform/staging/jaffle/stg_jaffle__orders.sql": STG_ORDERS,
        "transform/staging/jaffle/stg_jaffle__customers.sql": STG_CUSTOMERS,
        "transform/staging/jaffle/_jaffle__models.yml": STAGING_YML,
        "transform/marts/fct_daily_sales.sql": HAND_MART,
        "checks/.gitkeep": "",
    }
    for rel, text in files.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    (dest / "README.md").write_text("acme monorepo\n")
    (dest / ".gitignore").write_text("*.duckdb\n*.duckdb.wal\ntarget/\nlogs/\ndbt_packages/\n.dataeng-crew/\n")
    con = duckdb.connect(str(project / "warehouse.duckdb"))
    con.execute("create schema raw_jaffle")
    for name in ("customers", "orders", "payments"):
        con.execute(f"create table raw_jaffle.{name} as select * from read_csv_auto('{CLASSIC / f'raw_{name}.csv'}')")
    con.close()
    commit_all(dest)
    deps = dbt_here(project, "deps")
    assert deps.success, deps.error
    return project
