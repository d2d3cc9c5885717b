"""A signal whose exception lands in a finalizer is dropped by Python: the run must still stop."""

from __future__ import annotations

import gc
import os
import signal

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
