"""The worker: one job at a time for the repository (the flow takes the run lock), a bounded queue, a drain on
shutdown and a recovery on start.

Shutdown (SIGTERM to the server) interrupts the running job the way Ctrl-C interrupts the CLI: a
:class:`~dataeng_crew.errors.Terminated` is raised inside the job's thread, the flow settles what git holds and the
job is recorded as interrupted (or published, if the branch was written). Queued jobs stay queued in SQLite and
resume when the service starts again; jobs a killed service left running are marked interrupted on start.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import Callable

from dataeng_crew.errors import BusyError, Terminated
from dataeng_crew.service.jobs import JobContext, JobOutcome, Runner
from dataeng_crew.service.metrics import Metrics
from dataeng_crew.service.store import Job, Store, now

log = logging.getLogger("dataeng_crew.serve")
BUSY_RETRY_SECONDS = 2.0


class Worker:
    """Runs queued jobs in one background thread."""

    def __init__(self, store: Store, ctx: JobContext, runner: Runner, metrics: Metrics, queue_size: int,
                 on_done: Callable[[Job], None] = lambda _j: None,
                 recover: Callable[[Job], str] = lambda _j: "") -> None:
        """Set the worker up (nothing runs before :meth:`start`)."""
        self.store, self.ctx, self.runner, self.metrics = store, ctx, runner, metrics
        self.queue_size, self.on_done, self.recover = queue_size, on_done, recover
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._current: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Mark jobs a previous service left running as interrupted, then start the thread (queued jobs resume)."""
        for job in self.store.list(limit=10_000, status="running"):
            said = self.recover(job)
            self.store.update(job.id, status="interrupted", finished_at=now(), exit_code=Terminated.exit_code,
                              error="the service stopped while this job ran" + (f"; {said}" if said else ""))
            self.metrics.proposals.labels(job.kind, "interrupted").inc()
        self._thread = threading.Thread(target=self._loop, name="dataeng-crew-worker", daemon=True)
        self._thread.start()

    def submit(self, kind: str, request: str, options: dict, submitted_by: str, source: str,
               reply_to: dict | None = None) -> Job:
        """Queue a job.

        Raises:
            BusyError: The queue is full (HTTP 429).
        """
        job = self.store.add(kind, request, options, submitted_by, source, reply_to, limit=self.queue_size)
        if job is None:
            raise BusyError(f"the queue is full ({self.queue_size} jobs waiting); try again later")
        self._wake.set()
        return job

    def requeue(self, job_id: str, **fields: object) -> None:
        """Put an existing job back in the queue (an approved proposal)."""
        self.store.update(job_id, status="queued", **fields)
        self._wake.set()

    @property
    def running(self) -> str | None:
        """The id of the job running now."""
        return self._current

    def stop(self, timeout: float = 120.0) -> None:
        """Drain: take no new job, interrupt the running one (it settles), wait for the thread."""
        self._stopping.set()
        self._wake.set()
        with self._guard:
            if self._current is not None and not self._interrupt_runner():
                self._interrupt_thread()
        if self._thread is not None:
            self._thread.join(timeout)

    def _interrupt_runner(self) -> bool:
        interrupt = getattr(self.runner, "interrupt", None)
        return bool(interrupt()) if interrupt is not None else False

    def _interrupt_thread(self) -> None:
        """A runner in this process (a stub): raise Terminated in the worker thread."""
        if self._thread is not None and self._thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident),
                                                       ctypes.py_object(Terminated))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            job = self.store.next_queued()
            if job is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                self._run(job)
            except Exception:  # noqa: BLE001 - never let the worker die; the job is recorded as failed
                log.exception("job %s: worker error", job.id)
                self.store.update(job.id, status="failed", error="worker error (see the service log)", exit_code=1,
                                  finished_at=now())

    def _run(self, job: Job) -> None:
        def progress(stage: str) -> None:
            self.store.add_stage(job.id, {"stage": stage, "started_at": now()})

        started = time.perf_counter()
        ctx = JobContext(self.ctx.project, self.ctx.config, progress)
        try:
            with self._guard:
                self._current = job.id
            outcome = self.runner(job, ctx)
            with self._guard:
                self._current = None
        except KeyboardInterrupt as exc:  # a stub runner, or the signal landed between the runner and the guard
            with self._guard:
                self._current = None
            outcome = JobOutcome(status="interrupted", error="terminated (SIGTERM); the job stopped",
                                 exit_code=getattr(exc, "exit_code", 130))
        if outcome.exit_code == BusyError.exit_code and not self._stopping.is_set():
            self.store.update(job.id, status="queued", error=outcome.error)  # a CLI run holds the lock: wait
            time.sleep(BUSY_RETRY_SECONDS)
            return
        self._finish(job, outcome, time.perf_counter() - started)

    def _finish(self, job: Job, outcome: JobOutcome, seconds: float) -> None:
        fields: dict = {"status": outcome.status, "result": outcome.result, "error": outcome.error,
                        "exit_code": outcome.exit_code, "approvals": outcome.approvals}
        if outcome.proposal_dir:
            fields["proposal_dir"] = outcome.proposal_dir
        if outcome.timings:
            fields["stages"] = outcome.timings
        if outcome.status != "awaiting_approval":
            fields["finished_at"] = now()
        self.store.update(job.id, **fields)
        self.metrics.job_done(job.kind, outcome.status, outcome.timings, outcome.llm_usage)
        log.info("job %s (%s) %s in %.1f s", job.id, job.kind, outcome.status, seconds)
        done = self.store.get(job.id)
        if done is not None:
            try:
                self.on_done(done)
            except Exception:  # noqa: BLE001 - a failed reply never loses the job
                log.exception("job %s: after-job hook failed", job.id)
