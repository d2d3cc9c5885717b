"""A helper process spoken to in JSON lines: the dbt worker and the Great Expectations worker are both one.

The parent writes one JSON request per line to the child's stdin and reads one answer line from its stdout (the
child is ``python -m <module>``; its stderr is discarded). A child that died or answered garbage is closed and
the caller does the work itself; Ctrl-C or SIGTERM while the parent waits closes the child too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


class LineWorker:
    """One child process running ``python -m module``; :meth:`ask` sends a request and returns its answer."""

    def __init__(self, module: str) -> None:
        """A worker that will run ``module`` (nothing starts until :meth:`spawn`)."""
        self.module = module
        self._proc: subprocess.Popen[str] | None = None

    def spawn(self, env: dict[str, str]) -> None:
        """Start the child with ``env`` as its environment (replacing a running one); no child when it cannot
        start (the caller then works in-process)."""
        self.close()
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", self.module], text=True, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError:
            self._proc = None

    def running(self) -> bool:
        """The child was started and has not ended."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The running child's pid."""
        return self._proc.pid if self.running() else None  # type: ignore[union-attr]

    def ask(self, request: Any) -> Any:
        """The child's answer to ``request`` (parsed JSON); None when no child runs, or it died or answered
        something that is not JSON (it is closed then).

        Raises:
            KeyboardInterrupt: Ctrl-C or SIGTERM (``Terminated``) while waiting: the child is closed first, so
                whatever it was doing stops with it.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None or proc.stdin is None or proc.stdout is None:
            return None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())
        except KeyboardInterrupt:
            self.close()
            raise
        except (OSError, ValueError):
            self.close()
            return None

    def close(self) -> None:
        """Stop the child (it also exits by itself when this process goes away: its stdin closes)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
