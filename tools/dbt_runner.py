"""dbt runner: ``dbtRunner().invoke`` with per-node results, secrets kept out of dbt's environment.

dbt is imported lazily (it costs ~1.7 s) and only one invocation runs at a time per process.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from dataeng_crew.contracts import BuildResult, NodeResult
from dataeng_crew.settings import PII_KEY_ENV

SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|_KEY$|CREDENTIAL)", re.I)
_LOCK = threading.Lock()


SANDBOX_PII_KEY = secrets.token_hex(16)  # this process's masking key: hashes agree between its own builds


@contextmanager
def scrubbed_environment() -> Iterator[None]:
    """Remove secret-looking variables from ``os.environ`` for the duration of a dbt call; the masking key
    (``DATAENG_CREW_PII_KEY``) is replaced by this process's random one, never the user's."""
    removed = {k: os.environ.pop(k) for k in list(os.environ) if SECRET_ENV.search(k)}
    os.environ[PII_KEY_ENV] = SANDBOX_PII_KEY
    try:
        yield
    finally:
        os.environ.pop(PII_KEY_ENV, None)
        os.environ.update(removed)


@contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """dbt logs ``sys.argv`` as its invocation command (``dbt.log``, ``run_results.json``): during a dbt call it
    is dbt's own arguments, never this process's command line (which may hold an ``--llm-base-url`` password)."""
    before = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = before


def _release_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB handle open for the process; close it so others can open the file."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - another adapter
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager.close_all_connections()


def run_dbt(args: list[str], project_dir: Path, profiles_dir: Path, target_path: Path | None = None,
            log_path: Path | None = None, write_json: bool = True, manifest: Any = None,
            keep: dict[str, Any] | None = None) -> BuildResult:
    """Run one dbt command in-process and collect per-node results.

    Args:
        args: dbt arguments, e.g. ``["build", "--select", "+fct_daily_sales"]``.
        project_dir: dbt project folder.
        profiles_dir: Folder holding the ``profiles.yml`` to use.
        target_path: Where dbt writes ``target/`` (defaults to the project's).
        log_path: Where dbt writes its logs.
        write_json: Whether dbt writes manifest.json and run_results.json.
        manifest: A manifest parsed earlier from the same files (``keep["manifest"]`` of a ``parse``): dbt does
            not parse again. Only for commands that run on the files that manifest was parsed from.
        keep: When given, a ``parse`` leaves its manifest object there (``keep["manifest"]``).

    Returns:
        The outcome: success, the error when dbt itself failed, and one result per node.
    """
    from dbt.cli.main import dbtRunner  # lazy: dbt import is slow

    full = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir)]
    if target_path:
        full += ["--target-path", str(target_path)]
    if log_path:
        full += ["--log-path", str(log_path)]
    if not write_json:  # results come back in memory; skipping manifest/run_results saves time
        full += ["--no-write-json"]
    full += ["--no-use-colors", "--log-level", "none", "--log-level-file", "debug",
             "--no-send-anonymous-usage-stats", "--no-version-check"]
    started = time.perf_counter()
    with _LOCK, scrubbed_environment(), _argv(["dbt", *full]):
        try:
            res = dbtRunner(manifest=manifest).invoke(full)
        except Exception as exc:  # dbt raises on some internal failures instead of returning
            return BuildResult(command=args, success=False, error=f"{type(exc).__name__}: {exc}",
                               elapsed_seconds=time.perf_counter() - started)
        finally:
            _release_duckdb()
    if isinstance(res.exception, KeyboardInterrupt):
        raise res.exception  # SIGTERM stays Terminated; dbt swallows Ctrl-C into its result; the flow must see it
    if keep is not None and args[:1] == ["parse"] and res.success:
        keep["manifest"] = res.result
    nodes = []
    results = getattr(res.result, "results", None) or []
    for r in results:
        node = getattr(r, "node", None)
        status = getattr(r, "status", "")
        status_text = str(getattr(status, "value", status))
        metadata = getattr(node, "test_metadata", None)
        attached = getattr(node, "attached_node", None) or ""
        kind = str(getattr(node, "resource_type", "?")).split(".")[-1].lower()
        if not attached and kind == "test":  # a seed's `sources` property raises (dbt disallows seed deps)
            sources = getattr(node, "sources", None)
            attached = ".".join(sources[0]) if sources else ""
        nodes.append(NodeResult(
            unique_id=getattr(node, "unique_id", "?"),
            resource_type=str(getattr(node, "resource_type", "?")).split(".")[-1].lower(),
            status=status_text,
            message=(getattr(r, "message", None) or None),
            failures=getattr(r, "failures", None),
            execution_time=float(getattr(r, "execution_time", 0.0) or 0.0),
            test_name=getattr(metadata, "name", None),
            attached_to=attached.split(".")[-1] or None,
            column=getattr(node, "column_name", None),
            compiled_code=getattr(node, "compiled_code", None) if status_text in {"fail", "warn", "error"} else None,
        ))
    error = None
    if res.exception is not None:
        error = f"{type(res.exception).__name__}: {res.exception}"
    return BuildResult(command=args, success=bool(res.success), error=error, nodes=nodes,
                       elapsed_seconds=round(time.perf_counter() - started, 3))
