"""Great Expectations (1.x): build suites from contracts, save them as GX JSON, validate built tables.

The GX SQL datasource over DuckDB fails every expectation (GX #10738, #11579), so tables are read
from DuckDB into pandas — whole when small, a repeatable reservoir sample when large (row-count
expectations then use the exact count). GX is imported lazily: it costs ~3 s.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from dataeng_crew.contracts import ExpectationOutcome, ExpectationSuiteSpec, SuiteResult
from dataeng_crew.tools.line_worker import LineWorker
from dataeng_crew.tools.prompt_safety import clean_text
from dataeng_crew.tools.warehouse import model_schema, open_readonly, quote_ident

DEFAULT_SAMPLE_ROWS = 200_000
ROW_COUNT_EXPECTATION = "ExpectTableRowCountToBeBetween"


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.ERROR)
    return gx


def build_suite(spec: ExpectationSuiteSpec, context: Any = None) -> Any:
    """A GX ``ExpectationSuite`` from the contract (expectation classes looked up by name).

    Raises:
        ValueError: When an expectation type is not a GX expectation.
    """
    gx = _gx()
    if context is None:
        _context(gx)  # GX needs an active context before expectations can be created
    suite = gx.ExpectationSuite(name=spec.name)
    for exp in spec.expectations:
        cls = getattr(gx.expectations, exp.type, None)
        if cls is None:
            raise ValueError(f"{exp.type} is not a Great Expectations expectation")
        suite.add_expectation(cls(**exp.kwargs))
    return context.suites.add(suite) if context is not None else suite


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def expectation_class(type_name: str) -> str:
    """GX class name for an expectation type as GX JSON writes it (``expect_x_y`` → ``ExpectXY``)."""
    return "".join(w.capitalize() for w in type_name.split("_"))


def suite_json(spec: ExpectationSuiteSpec) -> dict[str, Any]:
    """The suite in GX's JSON format (as ``ExpectationSuite.to_json_dict()`` writes it, without ids).

    Written without importing GX (~3 s); :func:`build_suite` and the tests check GX accepts it.
    """
    return {
        "name": spec.name,
        "expectations": [{"type": _snake(e.type), "kwargs": e.kwargs, "meta": {}, "severity": "critical"}
                         for e in spec.expectations],
        "meta": {"dataeng_crew": {"model": spec.model, "reasons": [e.reason for e in spec.expectations]}},
        "notes": None,
    }


def _context(gx: Any) -> Any:
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return context


def validate_suites(db_file: Path, suites: list[ExpectationSuiteSpec], schema: str = "main",
                    sample_rows: int = DEFAULT_SAMPLE_ROWS) -> list[SuiteResult]:
    """Validate each suite against its built table in ``db_file`` (read-only connection).

    Args:
        db_file: DuckDB file holding the built models.
        suites: Suites to validate.
        schema: Schema of the built models.
        sample_rows: Tables above this are validated on a repeatable sample (row counts stay exact).

    Returns:
        One result per suite: expectations evaluated / passed / failed, with each outcome.
    """
    if not suites:
        return []
    gx = _gx()
    context = _context(gx)
    asset = context.data_sources.add_pandas("dataeng_crew").add_dataframe_asset(name="models")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    results = []
    with open_readonly(db_file) as con:
        for spec in suites:
            relation = f"{quote_ident(model_schema(con, spec.model, preferred=schema))}.{quote_ident(spec.model)}"
            try:
                total = con.execute(f"select count(*) from {relation}").fetchone()[0]
                sampled = total > sample_rows
                query = (f"select * from {relation} using sample reservoir({sample_rows} rows) repeatable (7)"
                         if sampled else f"select * from {relation}")
                frame = con.execute(query).df()
            except Exception as exc:  # noqa: BLE001 - a missing table is a failed suite, not a crash
                results.append(SuiteResult(suite=spec.name, model=spec.model, evaluated=0, passed=0, failed=0,
                                           rows_validated=0, error=clean_text(exc, 300)))
                continue
            in_frame = spec
            exact: list[ExpectationOutcome] = []
            if sampled:  # row counts are checked on the exact count, the rest on the sample
                row_count = [e for e in spec.expectations if e.type == ROW_COUNT_EXPECTATION]
                for e in row_count:
                    lo, hi = e.kwargs.get("min_value"), e.kwargs.get("max_value")
                    ok = (lo is None or total >= lo) and (hi is None or total <= hi)
                    exact.append(ExpectationOutcome(type="expect_table_row_count_to_be_between", success=ok,
                                                    observed=str(total)))
                in_frame = spec.model_copy(update={"expectations": [e for e in spec.expectations
                                                                    if e.type != ROW_COUNT_EXPECTATION]})
            suite = build_suite(in_frame.model_copy(update={"name": f"{spec.name}_{len(results)}"}), context)
            validation = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
            outcomes = exact + [
                ExpectationOutcome(
                    type=r.expectation_config.type,
                    column=r.expectation_config.kwargs.get("column"),
                    success=bool(r.success),
                    observed=clean_text(r.result.get("observed_value", r.result.get("unexpected_count")), 80)
                    if r.result else None,
                )
                for r in validation.results
            ]
            passed = sum(o.success for o in outcomes)
            results.append(SuiteResult(suite=spec.name, model=spec.model, evaluated=len(outcomes), passed=passed,
                                       failed=len(outcomes) - passed, rows_validated=len(frame), sampled=sampled,
                                       outcomes=outcomes))
    return results


# -- Great Expectations off the critical path -----------------------------------------------------------------
class ExpectationsWorker:
    """A Python process that imports Great Expectations (~3 s of CPU) while dbt builds, then validates suites.

    The import runs on another core instead of after the build; the validation itself takes a fraction of a
    second. One worker serves every proposal of a process. When the worker cannot be used (it died, or GX is
    already imported here) suites are validated in this process: same function, same results.
    """

    def __init__(self) -> None:
        self._child = LineWorker("dataeng_crew.tools.expectations")

    def start(self) -> None:
        """Start the worker unless it runs, or GX is imported here already (then in-process is as fast)."""
        if self._child.running() or "great_expectations" in sys.modules:
            return
        from dataeng_crew.tools.dbt_runner import SECRET_ENV

        env = {k: v for k, v in os.environ.items() if not SECRET_ENV.search(k)}  # GX never sees a token
        env["GX_ANALYTICS_ENABLED"] = "false"
        self._child.spawn(env)

    def validate(self, db_file: Path, suites: list[ExpectationSuiteSpec]) -> list[SuiteResult]:
        """:func:`validate_suites` in the worker (in this process when there is none)."""
        answer = self._child.ask({"db_file": str(db_file), "suites": [s.model_dump(mode="json") for s in suites]}) \
            if suites else None
        try:
            if answer is not None:
                return [SuiteResult.model_validate(r) for r in answer]
        except (TypeError, ValueError):  # an answer that is not results: validate here
            self.close()
        return validate_suites(db_file, suites)

    def close(self) -> None:
        """Stop the worker."""
        self._child.close()


WORKER = ExpectationsWorker()
atexit.register(WORKER.close)


def _serve() -> None:
    """The worker: import GX, then answer one JSON line per request until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the worker
    os.nice(10)  # its import may take the cores the run and the dbt worker leave: they are on the critical path
    sys.modules["pyspark"] = None  # type: ignore[assignment]  # suites run on pandas frames: GX's optional Spark
    _context(_gx())  # support would import pyspark (~1 s) when it is installed (the [spark] extra)
    for line in sys.stdin:
        request = json.loads(line)
        suites = [ExpectationSuiteSpec.model_validate(s) for s in request["suites"]]
        try:
            results = validate_suites(Path(request["db_file"]), suites)
            sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in results]) + "\n")
        except Exception:  # noqa: BLE001 - the parent validates in-process on a bad answer
            sys.stdout.write("error\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
