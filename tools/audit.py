"""Append-only audit log: who did what, when, with which outcome and how long it took.

One JSON object per line in ``.dataeng-crew/audit.jsonl``. Arguments are recorded without secrets:
keys that look like credentials and values that look like tokens are replaced by ``"***"``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
import subprocess
from pathlib import Path
from typing import Any

SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|credential)", re.I)
SECRET_VALUE = re.compile(r"(gh[pousr]_[A-Za-z0-9]{8,}|github_pat_\w{8,}|sk-[A-Za-z0-9\-_]{8,}|xox[abp]-\S{8,}|"
                          r"AKIA[0-9A-Z]{12,})")


def redact(value: Any, key: str = "") -> Any:
    """``value`` with secrets replaced by ``***`` (recursively for dicts and lists)."""
    if SECRET_KEY.search(key):
        return "***"
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE.sub("***", value)
    return value


def who(repo: Path | None) -> str:
    """The git user (``name <email>``) of ``repo``, else the OS user."""
    if repo is not None:
        def cfg(key: str) -> str:
            done = subprocess.run(["git", "-C", str(repo), "config", key], capture_output=True, text=True)
            return done.stdout.strip()

        name, email = cfg("user.name"), cfg("user.email")
        if name or email:
            return f"{name} <{email}>".strip()
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"


class AuditLog:
    """Appends one line per recorded action to ``<state_dir>/audit.jsonl``."""

    def __init__(self, state_dir: Path, actor: str) -> None:
        """Open the log of ``state_dir`` for ``actor``."""
        self.path = state_dir / "audit.jsonl"
        self.actor = actor

    def record(self, what: str, args: dict[str, Any], outcome: str, seconds: float, proposal_id: str = "") -> None:
        """Append one entry (the file is only ever appended to)."""
        entry = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), "who": self.actor,
                 "what": what, "args": redact(args), "outcome": outcome, "seconds": round(seconds, 3),
                 "proposal_id": proposal_id}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
