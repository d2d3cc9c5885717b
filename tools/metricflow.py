"""The MetricFlow oracle: an independent second computation of a mart's numbers.

A copy of a built sandbox project gets the query's semantic layer (and a time spine when it has none), ``dbt parse``
writes ``target/semantic_manifest.json``, and MetricFlow's Python engine compiles the metric query and runs it on
the sandbox's DuckDB file over a read-only connection (no CLI, no dbt adapter state, nothing written). The rows
are then compared with the mart table, row for row on its keys.

MetricFlow is imported lazily (~1 s).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import yaml

from dataeng_crew.contracts import OracleResult
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.semantic_yaml import dump_yaml, has_time_spine, time_spine_files
from dataeng_crew.tools.warehouse import connect

TOLERANCE = 0.01
DEFAULT_TIMEOUT = 120.0
LAYER_FILE = "_crew_oracle__semantic_layer.yml"
COPY_IGNORE = shutil.ignore_patterns("target", "logs", ".user.yml", "*.duckdb", "*.duckdb.wal")


class OracleError(Exception):
    """MetricFlow could not answer: the layer did not parse, the query did not compile or run, or it timed out."""


@dataclass(frozen=True)
class OracleQuery:
    """What to ask MetricFlow and how its answer lines up with the mart.

    Attributes:
        mart: The mart's table (relation name in the sandbox's default schema).
        metrics: Metrics to query; each is also a column of the mart.
        group_by: MetricFlow group-by items (``metric_time__week``, ``order__customer__city``).
        keys: (mart column, MetricFlow column) pairs the rows are matched on.
        zero_metrics: Metrics the mart fills with 0 where there are no rows (counts, sums): a row MetricFlow does
            not return counts as 0 for them (NULL for the others).
        where: Query-time filters (Jinja where templates), e.g. rows without a time are not counted.
    """

    mart: str
    metrics: tuple[str, ...]
    group_by: tuple[str, ...]
    keys: tuple[tuple[str, str], ...]
    zero_metrics: tuple[str, ...] = ()
    where: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the engine over DuckDB


def _duckdb_client(db_file: Path) -> Any:
    """A MetricFlow ``SqlClient`` over a read-only DuckDB connection (external access and extensions off)."""
    from metricflow.data_table.mf_table import MetricFlowDataTable
    from metricflow.protocols.sql_client import SqlEngine
    from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer

    class DuckDbClient:
        """MetricFlow's SqlClient protocol, answered by DuckDB."""

        def __init__(self, path: Path) -> None:
            self.connection = connect(path)  # a sandbox's warehouse attached read-only, then locked
            self._renderer = DuckDbSqlPlanRenderer()

        @property
        def sql_engine_type(self) -> SqlEngine:
            return SqlEngine.DUCKDB

        @property
        def sql_plan_renderer(self) -> DuckDbSqlPlanRenderer:
            return self._renderer

        def query(self, stmt: str, sql_bind_parameter_set: Any = None) -> MetricFlowDataTable:
            cursor = self.connection.execute(stmt, dict(sql_bind_parameter_set.param_dict)
                                             if sql_bind_parameter_set and sql_bind_parameter_set.param_dict else None)
            names = [d[0] for d in cursor.description or []]
            return MetricFlowDataTable.create_from_rows(column_names=names, rows=cursor.fetchall())

        def execute(self, stmt: str, sql_bind_parameter_set: Any = None) -> None:
            raise OracleError("the oracle only reads: MetricFlow asked to execute " + stmt[:80])

        def dry_run(self, stmt: str, sql_bind_parameter_set: Any = None) -> None:
            self.connection.execute("explain " + stmt)

        def close(self) -> None:
            self.connection.close()

        def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
            return "$" + bind_parameter_key

    return DuckDbClient(db_file)


def duckdb_path(project_dir: Path, profiles_dir: Path) -> Path:
    """The DuckDB file the project's profile (its default target) builds into.

    Raises:
        OracleError: When the profile is not a DuckDB one (the oracle runs on DuckDB sandboxes).
    """
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    profiles = yaml.safe_load((profiles_dir / "profiles.yml").read_text()) or {}
    entry = profiles.get(project.get("profile")) or {}
    output = (entry.get("outputs") or {}).get(entry.get("target")) or {}
    if output.get("type") != "duckdb" or not output.get("path"):
        raise OracleError(f"the MetricFlow oracle runs on a DuckDB sandbox; the profile's target is "
                          f"{output.get('type')!r}")
    path = Path(str(output["path"]))
    return path if path.is_absolute() else (project_dir / path)


def _cell(value: Any) -> Any:
    """Plain Python values: dates as ISO text, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


ENGINE_MODULES = ("metricflow.engine.metricflow_engine", "metricflow_semantics.model.dbt_manifest_parser",
                  "metricflow_semantics.model.semantic_manifest_lookup")


def preload_engine() -> threading.Thread:
    """Import MetricFlow's engine (~0.5 s) in a background thread, e.g. while this process waits for dbt: the
    oracle's own import then finds it loaded (Python's import lock makes the two imports one)."""
    import importlib

    def load() -> None:
        for name in ENGINE_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the oracle's own import reports it
                return
    thread = threading.Thread(target=load, name="dataeng-crew-metricflow-preload", daemon=True)
    thread.start()
    return thread


def query_metricflow(project_dir: Path, profiles_dir: Path, metrics: list[str], group_by: list[str], *,
                     where: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT,
                     db_file: Path | None = None) -> list[dict[str, Any]]:
    """Run one MetricFlow query on a parsed project (``target/semantic_manifest.json``) and its DuckDB file.

    Args:
        project_dir: The dbt project, parsed (``dbt parse`` wrote its semantic manifest under ``target/``).
        profiles_dir: Folder of its ``profiles.yml`` (the default target names the DuckDB file).
        metrics: Metric names.
        group_by: Group-by items (``metric_time__month``, ``customer__country``).
        where: Jinja where templates applied to the query.
        timeout: Seconds before the query is interrupted.
        db_file: The DuckDB file (default: the profile's).

    Returns:
        One dict per row, keyed by MetricFlow's column names; dates as ISO text, decimals as floats.

    Raises:
        OracleError: No semantic manifest, a query MetricFlow cannot compile, or a timeout.
    """
    manifest_path = project_dir / "target" / "semantic_manifest.json"
    if not manifest_path.is_file():
        raise OracleError(f"no semantic manifest at {manifest_path}: run dbt parse first")
    from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
    from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    manifest = parse_manifest_from_dbt_generated_manifest(manifest_json_string=manifest_path.read_text())
    client = _duckdb_client(db_file or duckdb_path(project_dir, profiles_dir))
    timer = threading.Timer(timeout, client.connection.interrupt)
    timer.start()
    try:
        engine = MetricFlowEngine(SemanticManifestLookup(manifest), client)
        request = MetricFlowQueryRequest.create(metric_names=list(metrics), group_by_names=list(group_by),
                                                where_constraints=list(where) or None)
        try:
            result = engine.query(request)
        except Exception as exc:  # MetricFlow raises many kinds; the caller needs the words, not the class
            if not timer.is_alive():
                raise OracleError(f"MetricFlow query timed out after {timeout:.0f} s") from exc
            raise OracleError(f"MetricFlow: {type(exc).__name__}: {str(exc).strip()[:600]}") from exc
    finally:
        timer.cancel()
        client.close()
    table = result.result_df
    if table is None:
        return []
    names = list(table.column_names)
    return [{n: _cell(v) for n, v in zip(names, row)} for row in table.rows]


# --------------------------------------------------------------------------- a parsed copy of the sandbox


def prepare_project(project_dir: Path, profiles_dir: Path, dest: Path, layer: dict[str, Any] | None,
                    saved_parse: Path | None = None) -> Path:
    """Copy a sandbox project, add the semantic layer (and a time spine when it lacks one), and ``dbt parse`` it.

    Args:
        project_dir: The built sandbox's dbt project (read, never written).
        profiles_dir: Its profiles folder.
        dest: Where the copy goes (replaced).
        layer: ``{"semantic_models": [...], "metrics": [...]}``.
        saved_parse: dbt's saved parse of the sandbox (``partial_parse.msgpack``): the copy parses only the files
            it adds (the layer, a time spine), not the whole project again.

    Returns:
        The parsed copy (its ``target/semantic_manifest.json`` written).

    Raises:
        OracleError: When dbt parse fails (the message names the invalid part of the layer).
    """
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(project_dir, dest, ignore=COPY_IGNORE, symlinks=True)
    conf = yaml.safe_load((dest / "dbt_project.yml").read_text()) or {}
    model_paths = [str(p) for p in conf.get("model-paths") or ["models"]]
    (dest / model_paths[0]).mkdir(parents=True, exist_ok=True)
    if layer is not None:  # None: the proposal already carries its semantic layer
        (dest / model_paths[0] / LAYER_FILE).write_text(dump_yaml(layer))
    if not has_time_spine(dest, model_paths):
        for rel, text in time_spine_files(folder=f"{model_paths[0]}/metricflow").items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_text(text)
    if saved_parse is not None and saved_parse.is_file():
        (dest / "target").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved_parse, dest / "target" / saved_parse.name)
    result = run_dbt(["parse"], dest, profiles_dir, target_path=dest / "target", log_path=dest / "logs",
                     write_json=False, semantic_manifest=True)
    if not result.success or not (dest / "target" / "semantic_manifest.json").is_file():
        raise OracleError("dbt parse rejected the semantic layer: " + _parse_errors(dest / "logs", result.error))
    return dest


def _parse_errors(logs: Path, error: str | None) -> str:
    """dbt's error lines (with the lines that continue them) from its log; else the runner's error."""
    blocks: list[str] = []
    log = logs / "dbt.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    stamped = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d+ ")
    for n, line in enumerate(lines):
        if stamped.match(line) and "[error" in line.lower():
            more = []
            for follow in lines[n + 1:]:
                if stamped.match(follow):
                    break
                more.append(follow.strip())
            text = " ".join([line.split("]:", 1)[-1].strip(), *more]).strip()
            if text and text != "Encountered an error:" or more:
                blocks.append(text)
    text = "; ".join(dict.fromkeys(blocks)) or (error or "unknown error")
    return re.sub(r"FilePath\(.*?project_root='[^']*'\)", "the layer file", text)[:800]


# --------------------------------------------------------------------------- the comparison


def read_mart(db_file: Path, mart: str) -> list[dict[str, Any]]:
    """Every row of the mart table (in whichever schema dbt built it), read-only; dates ISO, decimals floats.

    Raises:
        OracleError: When the DuckDB file holds no relation of that name.
    """
    import duckdb

    con = connect(db_file)
    try:
        found = con.execute(
            "select schema_name from duckdb_tables() where table_name = $name and database_name = current_database() "
            "union all select schema_name from duckdb_views() where view_name = $name and not internal "
            "and database_name = current_database()", {"name": mart}).fetchall()
        if not found:
            raise OracleError(f"the mart {mart!r} is not built in {db_file.name}")
        schema = "main" if ("main",) in found else found[0][0]
        quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, mart))
        cursor = con.execute(f"select * from {quoted}")
        names = [d[0] for d in cursor.description or []]
        return [{n: _cell(v) for n, v in zip(names, row)} for row in cursor.fetchall()]
    except duckdb.Error as exc:
        raise OracleError(f"cannot read the mart {mart!r}: {exc}") from exc
    finally:
        con.close()


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _lookup(row: dict[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    lowered = name.lower()
    return next((v for k, v in row.items() if k.lower() == lowered), None)


def compare_with_mart(rows_mf: list[dict[str, Any]], rows_mart: list[dict[str, Any]], *,
                      keys: Sequence[tuple[str, str]], metrics: Sequence[str], zero_metrics: Sequence[str] = (),
                      tolerance: float = TOLERANCE, max_detail: int = 10) -> OracleResult:
    """Compare MetricFlow's rows with the mart's, row for row on the keys.

    A key MetricFlow does not return is a row of zeros for ``zero_metrics`` (counts and sums: the mart lays them on a
    gap-free spine) and NULLs for the rest; a MetricFlow row the mart lacks is a difference unless it is all zeros or
    NULLs that way too.

    Args:
        rows_mf: MetricFlow's rows.
        rows_mart: The mart's rows.
        keys: (mart column, MetricFlow column) pairs identifying a row (period, dimension).
        metrics: Metric names: the same column name on both sides.
        zero_metrics: Metrics whose missing value is 0.
        tolerance: Absolute tolerance for numbers.
        max_detail: How many differences to describe.

    Returns:
        Rows compared, differences, and the first few differences in words.
    """
    def empty(name: str) -> float | None:
        return 0.0 if name in zero_metrics else None

    mf: dict[tuple, dict[str, Any]] = {}
    for row in rows_mf:
        mf[tuple(_key(_lookup(row, c)) for _, c in keys)] = row
    differences, detail, seen = 0, [], set()
    for row in rows_mart:
        key = tuple(_key(row.get(c)) for c, _ in keys)
        seen.add(key)
        other = mf.get(key)
        wrong = []
        for name in metrics:
            mine = _number(row.get(name))
            theirs = _number(_lookup(other, name)) if other is not None else None
            if theirs is None:
                theirs = empty(name)
            if mine is None and theirs is None:
                continue
            if mine is None or theirs is None or abs(mine - theirs) > tolerance:
                wrong.append(f"{name}: mart {mine} vs MetricFlow {theirs}")
        if wrong:
            differences += 1
            if len(detail) < max_detail:
                where = ", ".join(f"{c}={k}" for (c, _), k in zip(keys, key)) or "the total"
                detail.append(f"{where}: " + "; ".join(wrong))
    for key, row in mf.items():
        if key in seen:
            continue
        values = {name: _number(_lookup(row, name)) for name in metrics}
        if all(v is None or (name in zero_metrics and abs(v) <= tolerance) for name, v in values.items()):
            continue
        differences += 1
        if len(detail) < max_detail:
            where = ", ".join(f"{c}={k}" for (_, c), k in zip(keys, key)) or "the total"
            detail.append(f"{where}: only MetricFlow has this row ({values})")
    return OracleResult(rows=len(rows_mart), differences=differences, detail=detail)


def run_oracle(spec: OracleQuery, layer: dict[str, Any] | None, project_dir: Path, profiles_dir: Path, workdir: Path, *,
               timeout: float = DEFAULT_TIMEOUT, saved_parse: Path | None = None) -> OracleResult:
    """Parse the layer in a copy of the sandbox project, query MetricFlow and compare with the built mart.

    Args:
        spec: The query and how its rows line up with the mart.
        layer: The semantic layer (``semantic_layer_yaml``); None when the project already has it.
        project_dir: The built sandbox's dbt project.
        profiles_dir: Its profiles folder (its default target is the DuckDB file holding the mart).
        workdir: Scratch folder for the parsed copy (replaced).
        timeout: Seconds the MetricFlow query may take.
        saved_parse: The sandbox's saved parse (see :func:`prepare_project`).

    Returns:
        The comparison; ``skipped_reason`` set when MetricFlow could not answer (never raises for that).
    """
    started = time.perf_counter()
    base = OracleResult(metrics=list(spec.metrics), group_by=list(spec.group_by))
    try:
        db_file = duckdb_path(project_dir, profiles_dir)
        copy = prepare_project(project_dir, profiles_dir, workdir / "project", layer, saved_parse)
        rows_mf = query_metricflow(copy, profiles_dir, list(spec.metrics), list(spec.group_by), where=spec.where,
                                   timeout=timeout, db_file=db_file)
        rows_mart = read_mart(db_file, spec.mart)
    except Exception as exc:  # noqa: BLE001 — the oracle never fails a proposal; it says why it could not answer
        reason = str(exc) if isinstance(exc, OracleError) else f"the oracle failed: {type(exc).__name__}: {exc}"
        return base.model_copy(update={"skipped_reason": reason[:1000],
                                       "elapsed_seconds": round(time.perf_counter() - started, 2)})
    result = compare_with_mart(rows_mf, rows_mart, keys=spec.keys, metrics=spec.metrics,
                               zero_metrics=spec.zero_metrics)
    return result.model_copy(update={"metrics": base.metrics, "group_by": base.group_by,
                                     "elapsed_seconds": round(time.perf_counter() - started, 2)})
