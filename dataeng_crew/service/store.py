"""Jobs and webhook deliveries in one SQLite file under the repository's ``.dataeng-crew/`` folder.

A job is one request to the service (a proposal, a revision); it points at the proposal folder the flow made.
The file never holds a token or the webhook secret: only what the API returns.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

DB_FILE = "serve.sqlite3"
TERMINAL = frozenset({"published", "validated", "failed", "interrupted", "rejected", "revised", "unchanged"})
STATUSES = TERMINAL | {"queued", "running", "awaiting_approval"}

SCHEMA = """
create table if not exists jobs (
    id text primary key, seq integer not null, kind text not null, request text not null, options text not null,
    status text not null, submitted_by text not null, source text not null, created_at text not null,
    updated_at text not null, started_at text, finished_at text, stages text not null default '[]',
    result text not null default '{}', error text, exit_code integer, proposal_dir text,
    approvals text not null default '[]', decided_by text, reply_to text
);
create index if not exists jobs_status on jobs(status, seq);
create table if not exists deliveries (
    id text primary key, event text not null, received_at text not null, result text not null
);
"""


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Job(BaseModel):
    """One job as stored and as the API returns it."""

    id: str
    seq: int
    kind: str = Field(description="propose | revise")
    request: str
    options: dict[str, Any] = Field(default_factory=dict)
    status: str
    submitted_by: str
    source: str = Field(description="api | webhook")
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    stages: list[dict[str, Any]] = Field(default_factory=list, description="[{stage, seconds}] in order.")
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    proposal_dir: str | None = None
    approvals: list[dict[str, Any]] = Field(default_factory=list)
    decided_by: str | None = None
    reply_to: dict[str, Any] | None = None


_JSON = ("options", "stages", "result", "approvals", "reply_to")


class Store:
    """Thread-safe access to the SQLite file (one connection, one lock; WAL so readers do not wait on disk)."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the database at ``path``."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("pragma journal_mode=wal")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def add(self, kind: str, request: str, options: dict[str, Any], submitted_by: str, source: str,
            reply_to: dict[str, Any] | None = None, limit: int | None = None) -> Job | None:
        """Queue a new job; None when ``limit`` jobs are queued already (the queue is full)."""
        stamp = now()
        job_id = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        with self._lock:
            self._db.execute("begin immediate")
            try:
                if limit is not None and self._count("queued") >= limit:
                    return None
                seq = self._db.execute("select coalesce(max(seq), 0) + 1 from jobs").fetchone()[0]
                self._db.execute(
                    "insert into jobs (id, seq, kind, request, options, status, submitted_by, source, created_at, "
                    "updated_at, reply_to) values (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                    (job_id, seq, kind, request, json.dumps(options), submitted_by, source, stamp, stamp,
                     json.dumps(reply_to) if reply_to else None))
            finally:
                self._db.execute("commit")
        return self.get(job_id)

    def _count(self, status: str) -> int:
        return self._db.execute("select count(*) from jobs where status = ?", (status,)).fetchone()[0]

    def count(self, status: str) -> int:
        """How many jobs have ``status``."""
        with self._lock:
            return self._count(status)

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._lock:
            row = self._db.execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, limit: int = 100, status: str | None = None) -> list[Job]:
        """Jobs, newest first."""
        sql, args = "select * from jobs", []
        if status:
            sql, args = sql + " where status = ?", [status]
        with self._lock:
            rows = self._db.execute(sql + " order by seq desc limit ?", (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def next_queued(self) -> Job | None:
        """The oldest queued job, now marked running (atomically)."""
        with self._lock:
            row = self._db.execute("select id from jobs where status = 'queued' order by seq limit 1").fetchone()
            if row is None:
                return None
            stamp = now()
            self._db.execute("update jobs set status = 'running', started_at = ?, updated_at = ?, stages = '[]' "
                             "where id = ?", (stamp, stamp, row["id"]))
        return self.get(row["id"])

    def update(self, job_id: str, **fields: Any) -> None:
        """Set ``fields`` of a job (JSON columns are serialised)."""
        if not fields:
            return
        values = {k: json.dumps(v) if k in _JSON and v is not None else v for k, v in fields.items()}
        values["updated_at"] = now()
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._db.execute(f"update jobs set {cols} where id = ?", (*values.values(), job_id))

    def add_stage(self, job_id: str, stage: dict[str, Any]) -> None:
        """Append one stage (``{stage, started_at}``; the worker fills ``seconds`` when the next starts)."""
        with self._lock:
            row = self._db.execute("select stages from jobs where id = ?", (job_id,)).fetchone()
            stages = json.loads(row["stages"]) if row else []
            stages.append(stage)
            self._db.execute("update jobs set stages = ?, updated_at = ? where id = ?",
                             (json.dumps(stages), now(), job_id))

    def first_delivery(self, delivery_id: str, event: str) -> bool:
        """Record a webhook delivery; False when it was seen before (a redelivery: process it once)."""
        with self._lock:
            cur = self._db.execute("insert or ignore into deliveries (id, event, received_at, result) "
                                   "values (?, ?, ?, 'received')", (delivery_id, event, now()))
            return cur.rowcount == 1

    def delivery_result(self, delivery_id: str, result: str) -> None:
        """What a delivery led to."""
        with self._lock:
            self._db.execute("update deliveries set result = ? where id = ?", (result, delivery_id))


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    for key in _JSON:
        data[key] = json.loads(data[key]) if data.get(key) else ({} if key in ("options", "result") else
                                                                   None if key == "reply_to" else [])
    return Job.model_validate(data)
