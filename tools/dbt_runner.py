"""dbt runner: ``dbtRunner().invoke`` with per-node results, secrets kept out of dbt's environment.

dbt costs ~1.2 s of imports before its first command. The CLI starts :data:`WORKER` as it starts: a process that
imports dbt while this one profiles and plans, then runs every dbt command of the run and keeps the manifests it
parsed (a later command reuses one without parsing again). Without a running worker (a library call, a test, a
worker that died) dbt runs in this process, one invocation at a time: same function, same results.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from dataeng_crew.settings import PII_KEY_ENV
from dataeng_crew.tools import dbt_schemas
from dataeng_crew.tools.line_worker import LineWorker

if TYPE_CHECKING:  # the contracts (pydantic, ~0.15 s) load at the first command: the CLI starts the worker sooner
    from dataeng_crew.contracts import BuildResult, NodeResult

SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|_KEY$|CREDENTIAL)", re.I)
_LOCK = threading.Lock()


SANDBOX_PII_KEY = secrets.token_hex(16)  # this process's masking key: hashes agree between its own builds


def dbt_environment() -> dict[str, str]:
    """The environment dbt runs with: this process's, without secret-looking variables, and with this process's
    random masking key (``DATAENG_CREW_PII_KEY``), never the user's."""
    env = {k: v for k, v in os.environ.items() if not SECRET_ENV.search(k)}
    env[PII_KEY_ENV] = SANDBOX_PII_KEY
    return env


@contextmanager
def scrubbed_environment(env: dict[str, str] | None = None) -> Iterator[None]:
    """``os.environ`` is ``env`` (default :func:`dbt_environment`) for the duration of a dbt call, then restored."""
    env = dbt_environment() if env is None else env
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


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


def rebase_manifest(manifest: Any, project: Path) -> None:
    """Point the nodes of a manifest at ``project``, where the files are now.

    A partial parse keeps the nodes of unchanged files from the saved parse, with the project folder of the
    proposal that saved it; dbt reads seeds from that folder at run time. That folder may be gone (a user cleared
    ``.dataeng-crew/proposals``) or hold another commit's files.
    """
    nodes = [*manifest.nodes.values(), *manifest.macros.values()]
    old = next((n.root_path for n in nodes if n.package_name == manifest.metadata.project_name
                and getattr(n, "root_path", None)), None)
    new = str(project)
    if not old or old == new:
        return
    for node in nodes:
        path = getattr(node, "root_path", None)
        if path and (path == old or path.startswith(old + os.sep)):
            node.root_path = new + path[len(old):]


@dataclass(frozen=True)
class WorkerManifest:
    """A manifest the dbt worker parsed and keeps (what ``keep["manifest"]`` holds when dbt runs there)."""

    key: int
    worker: int  # the worker's pid: another worker does not have it


def run_dbt(args: list[str], project_dir: Path, profiles_dir: Path, target_path: Path | None = None,
            log_path: Path | None = None, write_json: bool = True, manifest: Any = None,
            keep: dict[str, Any] | None = None, in_process: bool = False,
            semantic_manifest: bool = False) -> BuildResult:
    """Run one dbt command (in the worker when it runs, else in this process) and collect per-node results.

    Args:
        args: dbt arguments, e.g. ``["build", "--select", "+fct_daily_sales"]``.
        project_dir: dbt project folder.
        profiles_dir: Folder holding the ``profiles.yml`` to use.
        target_path: Where dbt writes ``target/`` (defaults to the project's).
        log_path: Where dbt writes its logs.
        write_json: Whether dbt writes manifest.json and run_results.json.
        manifest: A manifest parsed earlier from the same files (``keep["manifest"]`` of a ``parse``): dbt does
            not parse again. Only for commands that run on the files that manifest was parsed from.
        keep: When given, a ``parse`` leaves its manifest there (``keep["manifest"]``).
        in_process: Run here even when the worker runs (dbt-spark's ``session`` method uses this process's Spark).
        semantic_manifest: A ``parse`` without ``write_json`` still writes ``semantic_manifest.json`` (what
            MetricFlow reads) into the target path, and only that: no ``manifest.json`` (~0.1 s).

    Returns:
        The outcome: success, the error when dbt itself failed, and one result per node.
    """
    full = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir)]
    if target_path:
        full += ["--target-path", str(target_path)]
    if log_path:
        full += ["--log-path", str(log_path)]
    if not write_json:  # results come back in memory; skipping manifest/run_results saves time
        full += ["--no-write-json"]
    full += ["--no-use-colors", "--log-level", "none", "--log-level-file", "debug",
             "--no-send-anonymous-usage-stats", "--no-version-check"]
    with _LOCK:
        answer = None if in_process else WORKER.run(args, full, manifest, keep is not None, semantic_manifest)
        if answer is None:  # no worker: here
            local = manifest if manifest is not None and not isinstance(manifest, WorkerManifest) else None
            result, parsed = invoke(args, full, local, keep is not None, dbt_environment(), semantic_manifest)
        else:
            result, parsed = answer
    if keep is not None and parsed is not None:
        keep["manifest"] = parsed
    return result


def invoke(args: list[str], full: list[str], manifest: Any, keep: bool,
           env: dict[str, str], semantic_manifest: bool = False) -> tuple[BuildResult, Any]:
    """One ``dbtRunner`` invocation in this process with ``env`` as its environment.

    Returns:
        The result, and the parsed manifest object when ``keep`` and the command was a successful ``parse``.

    Raises:
        KeyboardInterrupt: dbt stopped on Ctrl-C or SIGTERM (it returns it in its result; the flow must see it).
    """
    from dbt.cli.main import dbtRunner  # lazy: dbt import is slow

    from dataeng_crew.contracts import BuildResult

    if manifest is not None:
        rebase_manifest(manifest, Path(full[full.index("--project-dir") + 1]))
    dbt_schemas.install()
    started = time.perf_counter()
    with scrubbed_environment(env), _argv(["dbt", *full]):
        try:
            res = dbtRunner(manifest=manifest).invoke(full)
        except Exception as exc:  # dbt raises on some internal failures instead of returning
            return BuildResult(command=args, success=False, error=f"{type(exc).__name__}: {exc}",
                               elapsed_seconds=time.perf_counter() - started), None
        finally:
            _release_duckdb()
            dbt_schemas.save()
    if isinstance(res.exception, KeyboardInterrupt):
        raise res.exception  # SIGTERM stays Terminated; dbt swallows Ctrl-C into its result; the flow must see it
    parsed_ok = args[:1] == ["parse"] and res.success
    if semantic_manifest and parsed_ok:
        from dbt.parser.manifest import write_semantic_manifest

        write_semantic_manifest(res.result, full[full.index("--target-path") + 1])
    parsed = res.result if keep and parsed_ok else None
    error = f"{type(res.exception).__name__}: {res.exception}" if res.exception is not None else None
    return BuildResult(command=args, success=bool(res.success), error=error, nodes=_nodes(res.result),
                       elapsed_seconds=round(time.perf_counter() - started, 3)), parsed


def _nodes(result: Any) -> list[NodeResult]:
    """One :class:`NodeResult` per node dbt ran."""
    from dataeng_crew.contracts import NodeResult

    nodes = []
    for r in getattr(result, "results", None) or []:
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
            resource_type=kind,
            status=status_text,
            message=(getattr(r, "message", None) or None),
            failures=getattr(r, "failures", None),
            execution_time=float(getattr(r, "execution_time", 0.0) or 0.0),
            test_name=getattr(metadata, "name", None),
            attached_to=attached.split(".")[-1] or None,
            column=getattr(node, "column_name", None),
            compiled_code=getattr(node, "compiled_code", None) if status_text in {"fail", "warn", "error"} else None,
        ))
    return nodes


# -- the worker ------------------------------------------------------------------------------------------------
class DbtWorker:
    """A Python process that imports dbt as the CLI starts, then runs the run's dbt commands one at a time.

    Requests and answers are JSON lines on its stdin and a private copy of its stdout. Each request carries the
    environment dbt runs with (:func:`dbt_environment`: no secret crosses). The worker keeps the last few parsed
    manifests; :class:`WorkerManifest` names one. Ctrl-C or SIGTERM here while it runs a command stops it (it is
    killed: the command's sandbox is abandoned with the run).
    """

    KEEP_MANIFESTS = 3

    def __init__(self) -> None:
        self._child = LineWorker("dataeng_crew.tools.dbt_runner")

    def start(self) -> None:
        """Start the worker unless it runs, or dbt is imported here already (then this process is as fast)."""
        if not self.running() and "dbt.cli.main" not in sys.modules:
            self.spawn()

    def spawn(self) -> None:
        """Start a worker process (replacing a running one)."""
        self._child.spawn(dbt_environment())

    def running(self) -> bool:
        """The worker was started and has not ended."""
        return self._child.running()

    def run(self, args: list[str], full: list[str], manifest: Any, keep: bool,
            semantic_manifest: bool = False) -> tuple[BuildResult, Any] | None:
        """Run one command in the worker; None when there is no worker (or it died: the caller runs it here)."""
        pid = self._child.pid
        key = manifest.key if isinstance(manifest, WorkerManifest) and manifest.worker == pid else None
        answer = self._child.ask({"args": args, "full": full, "manifest": key, "keep": keep,
                                  "env": dbt_environment(), "semantic_manifest": semantic_manifest}) \
            if pid is not None else None
        if answer is None:
            return None
        from dataeng_crew.contracts import BuildResult

        if answer.get("interrupted"):
            raise KeyboardInterrupt()
        parsed = WorkerManifest(answer["manifest"], pid) if answer.get("manifest") is not None else None  # type: ignore[arg-type]
        return BuildResult.model_validate(answer["result"]), parsed

    def close(self) -> None:
        """Stop the worker."""
        self._child.close()


WORKER = DbtWorker()
atexit.register(WORKER.close)


def _serve() -> None:
    """The worker: import dbt, then answer one JSON line per request until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills the worker
    answers = os.fdopen(os.dup(1), "w")  # the protocol's own copy: whatever dbt prints goes to stderr
    os.dup2(2, 1)
    from dbt.cli.main import dbtRunner  # noqa: F401 - the import (~1.2 s) is what the worker is for
    import dbt.adapters.duckdb  # noqa: F401
    import dataeng_crew.contracts  # noqa: F401 - before the first request, not during it
    dbt_schemas.install()  # dbt's JSON schemas read back, not built on the first command (~0.5 s)
    manifests: OrderedDict[int, Any] = OrderedDict()
    counter = itertools.count(1)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result, parsed = invoke(request["args"], request["full"], manifests.get(request["manifest"]),
                                    request["keep"], request["env"], request.get("semantic_manifest", False))
            answer: dict[str, Any] = {"result": result.model_dump(mode="json")}
            if parsed is not None:
                key = answer["manifest"] = next(counter)
                manifests[key] = parsed
                while len(manifests) > DbtWorker.KEEP_MANIFESTS:
                    manifests.popitem(last=False)
        except KeyboardInterrupt:
            answer = {"interrupted": True}
        except Exception as exc:  # noqa: BLE001 - the parent reports it as a failed command
            from dataeng_crew.contracts import BuildResult

            answer = {"result": BuildResult(command=request["args"], success=False,
                                            error=f"{type(exc).__name__}: {exc}").model_dump(mode="json")}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()
