"""Run each job in its own process, so a proposal (dbt, profiling: CPU-bound Python) never holds the server's GIL.

The child runs :func:`~dataeng_crew.service.jobs.run_job` in its main thread, so SIGTERM / SIGINT reach the flow
exactly as they reach ``dataeng-crew propose``: it settles what git holds and reports ``interrupted``. Processes come
from a fork server that has the flow imported already (a job starts in milliseconds, not seconds of imports).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

from dataeng_crew.errors import Terminated
from dataeng_crew.service.config import ServeConfig
from dataeng_crew.service.jobs import JobContext, JobOutcome, Runner, run_job
from dataeng_crew.service.store import Job

PRELOAD = ["dataeng_crew.service.jobs", "dataeng_crew.flow", "dataeng_crew.revise"]


def _child(conn: Any, runner: Runner, job: Job, project: Path, config: ServeConfig, env: dict[str, str]) -> None:
    os.environ.update(env)
    ctx = JobContext(project, config, lambda stage: conn.send(("stage", stage)))
    try:
        outcome = runner(job, ctx)
    except KeyboardInterrupt as exc:  # before the flow took over the signal: nothing ran yet
        outcome = JobOutcome(status="interrupted", error="stopped before the job started",
                             exit_code=getattr(exc, "exit_code", 130))
    conn.send(("done", dataclasses.asdict(outcome)))
    conn.close()


class ProcessRunner:
    """A runner that runs ``inner`` in a child process per job; :meth:`interrupt` sends it SIGTERM."""

    def __init__(self, inner: Runner = run_job) -> None:
        """Use ``inner`` (default: the real flow) in the children."""
        self.inner = inner
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)
        self._proc: Any = None
        self._lock = threading.Lock()

    def __call__(self, job: Job, ctx: JobContext) -> JobOutcome:
        """Run ``job`` in a child; stage names are passed on to ``ctx.progress`` as they arrive."""
        parent, child = self._mp.Pipe(duplex=False)
        env = {k: v for k, v in os.environ.items()}
        proc = self._mp.Process(target=_child, args=(child, self.inner, job, ctx.project, ctx.config, env),
                                name=f"dataeng-crew-job-{job.id}")  # not daemonic: the flow starts its own workers
        with self._lock:
            proc.start()
            self._proc = proc
        child.close()
        outcome = None
        try:
            while outcome is None:
                try:
                    kind, value = parent.recv()
                except EOFError:
                    break
                if kind == "stage":
                    ctx.progress(value)
                else:
                    outcome = JobOutcome(**value)
        finally:
            proc.join()
            with self._lock:
                self._proc = None
            parent.close()
        return outcome or JobOutcome(status="interrupted", exit_code=Terminated.exit_code,
                                     error=f"the job's process ended without a result (exit {proc.exitcode})")

    def interrupt(self) -> bool:
        """Send SIGTERM to the running child (it settles like the CLI on Ctrl-C); False when none runs."""
        with self._lock:
            if self._proc is None or self._proc.pid is None:
                return False
            try:
                os.kill(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                return False
            return True
