"""Signals: SIGTERM is handled like Ctrl-C, and short critical sections hold both until they end.

A run stopped by SIGINT raises :class:`KeyboardInterrupt` (exit 130); by SIGTERM,
:class:`~dataeng_crew.errors.Terminated` (a ``KeyboardInterrupt``, exit 143), so every cleanup path
written for Ctrl-C (report, audit line, temporary index, sandbox) also runs for a polite kill.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from dataeng_crew.errors import Terminated


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise Terminated()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises :class:`Terminated` (only in the main thread; else a no-op)."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Held:
    """Signals that arrived while they were held (``SIGINT``/``SIGTERM`` numbers, in order)."""

    signals: list[int] = field(default_factory=list)

    def interrupt(self) -> KeyboardInterrupt | None:
        """The interrupt the held signals stand for (SIGTERM wins), or None."""
        if not self.signals:
            return None
        return Terminated() if signal.SIGTERM in self.signals else KeyboardInterrupt()


@contextmanager
def held() -> Iterator[Held]:
    """Hold SIGINT and SIGTERM inside the block (a state write that must not be cut in half).

    The caller decides what a held signal means once the block ended (see :meth:`Held.interrupt`).
    """
    record = Held()
    if not _main_thread():
        yield record
        return

    def note(signum: int, _frame: object) -> None:
        record.signals.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield record
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
