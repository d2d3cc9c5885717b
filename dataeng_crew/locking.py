"""One dataeng-crew run at a time per repository (or project folder outside git).

The lock is an OS file lock (``flock``) on ``<state dir>/run.lock``: it disappears with the process,
so a killed run never leaves a stale lock behind. The file also says who holds it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dataeng_crew.errors import BusyError, ConfigError

DEFAULT_WAIT_SECONDS = 10.0


def wait_seconds() -> float:
    """How long a second run waits for the lock (``DATAENG_CREW_LOCK_WAIT``, default 10 s)."""
    try:
        return max(0.0, float(os.environ.get("DATAENG_CREW_LOCK_WAIT", DEFAULT_WAIT_SECONDS)))
    except ValueError:
        return DEFAULT_WAIT_SECONDS


@contextmanager
def run_lock(state_dir: Path, what: str, wait: float | None = None) -> Iterator[None]:
    """Hold the run lock of ``state_dir`` inside the block.

    Args:
        state_dir: The workspace's ``.dataeng-crew`` folder (one per repository).
        what: What this run does (shown to a run that has to wait).
        wait: Seconds to wait for another run to finish (default: :func:`wait_seconds`).

    Raises:
        BusyError: When another run still holds the lock after ``wait`` seconds.
        ConfigError: When the lock file cannot be created (read-only folder).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    path = state_dir / "run.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot create the run lock {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + (wait_seconds() if wait is None else wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(f"another dataeng-crew run is working in {state_dir.parent} ({_holder(path)}); "
                                    "wait for it to finish, then run again") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "what": what,
                                 "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return f"pid {info.get('pid')}: {info.get('what', '')!r} since {info.get('since')}"
