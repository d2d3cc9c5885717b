"""A signal whose exception lands in a finalizer is dropped by Python: the run must still stop."""

from __future__ import annotations

import gc
import os
import signal
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from dataeng_crew.errors import Terminated
from dataeng_crew.signals import raise_if_interrupted, sigterm_as_interrupt


class _KilledInFinalizer:
    """Like multiprocessing's Finalize during dbt's build: SIGTERM arrives while Python runs ``__del__``."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_sigterm_dropped_in_a_finalizer_still_stops_the_run(capsys):
    with sigterm_as_interrupt():
        obj = _KilledInFinalizer()
        del obj  # the handler's Terminated is raised inside __del__: Python reports it as unraisable and goes on
        gc.collect()
        assert "Traceback" not in capsys.readouterr().err  # remembered, not printed
        with pytest.raises(Terminated):
            raise_if_interrupted()  # the flow's next stage raises it
    raise_if_interrupted()  # outside the block nothing is pending: the next run starts clean


def test_sigint_inside_the_block_is_still_ctrl_c():
    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt) as raised:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    assert not isinstance(raised.value, Terminated)


class _Rec:
    """The recorder's one method ``run_stages`` calls, noting how each stage ended."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    @contextmanager
    def stage(self, name: str, _role: str, _action: str):
        try:
            yield None
        except KeyboardInterrupt:
            self.ended.append("interrupted")
            raise
        except Exception:
            self.ended.append("failed")
            raise


def test_a_failure_a_sigterm_caused_stops_the_run_as_interrupted():
    """DuckDB catches the handler's interrupt and raises ``RuntimeError('Query interrupted')`` instead (seen in
    ``serve``: the job was recorded as a failure, a bug). The stage does what DuckDB does, deterministically (a real
    query stopped by a timer's SIGTERM sometimes ran on for minutes before it noticed)."""
    from dataeng_crew.flow import Stage, run_stages

    def profile(_run, _io) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
        except KeyboardInterrupt:
            raise RuntimeError("Query interrupted") from None

    run = SimpleNamespace(rec=_Rec())
    with sigterm_as_interrupt(), pytest.raises(Terminated) as raised:
        run_stages(run, [Stage(profile, "profile warehouse")])
    assert run.rec.ended == ["interrupted"]
    assert "Query interrupted" in str(raised.value.__context__)


def test_a_failure_without_a_signal_stays_the_failure():
    from dataeng_crew.flow import Stage, run_stages

    def broken(_run, _io) -> None:
        raise RuntimeError("a bug")

    run = SimpleNamespace(rec=_Rec())
    with sigterm_as_interrupt(), pytest.raises(RuntimeError, match="a bug"):
        run_stages(run, [Stage(broken, "render")])
    assert run.rec.ended == ["failed"]
