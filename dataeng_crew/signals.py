"""Signals: SIGTERM is handled like Ctrl-C, and short critical sections hold both until they end.

A run stopped by SIGINT raises :class:`KeyboardInterrupt` (exit 130); by SIGTERM,
:class:`~dataeng_crew.errors.Terminated` (a ``KeyboardInterrupt``, exit 143), so every cleanup path
written for Ctrl-C (report, audit line, temporary index, sandbox) also runs for a polite kill.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from dataeng_crew.errors import Terminated


_PENDING: list[int] = []  # signals raised inside the block: an exception raised while Python runs a finalizer
# (a multiprocessing Finalize during dbt's build) is printed and dropped, so the run checks between stages too


def _raise_terminated(signum: int, _frame: object) -> None:
    _PENDING.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def raise_if_interrupted() -> None:
    """Raise the interrupt a signal stood for when its exception was dropped (it landed in a finalizer).

    Raises:
        Terminated: A SIGTERM arrived inside :func:`sigterm_as_interrupt`.
        KeyboardInterrupt: A SIGINT did.
    """
    if _PENDING:
        raise Terminated() if signal.SIGTERM in _PENDING else KeyboardInterrupt()


@contextmanager
def signal_as_the_cause() -> Iterator[None]:
    """A failure inside the block while a signal is pending is that signal: dbt stopped mid-command, or DuckDB,
    which turns the handler's interrupt into ``RuntimeError('Query interrupted')``.

    Raises:
        Terminated: The block failed after a SIGTERM arrived (see :func:`raise_if_interrupted`).
        KeyboardInterrupt: It failed after a SIGINT.
    """
    try:
        yield
    except Exception:
        raise_if_interrupted()
        raise


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises :class:`Terminated` and SIGINT :class:`KeyboardInterrupt`, and both are
    remembered for :func:`raise_if_interrupted` (only in the main thread; else a no-op)."""
    if not _main_thread():
        yield
        return
    _PENDING.clear()
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM, signal.SIGINT)}
    hook = sys.unraisablehook

    def quiet(unraisable: Any) -> None:  # a dropped interrupt is remembered, never printed as a traceback
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = hook
        _PENDING.clear()


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
