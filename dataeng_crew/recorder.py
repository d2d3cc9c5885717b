"""What every flow stage leaves behind: progress, timing, an OpenLineage child run, an audit line and
a thought → action → observation step of the run trace."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from dataeng_crew.contracts import Proposal, StageTiming, TraceStep
from dataeng_crew.tools.audit import AuditLog
from dataeng_crew.tools.lineage import DatasetRef, Lineage, RunRef


@dataclass
class StageIO:
    """Filled by a stage body: datasets read/written (lineage) and what it saw (trace)."""

    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    thought: str = ""
    observation: str = ""


@dataclass
class Recorder:
    """Wraps each stage of one proposal."""

    proposal: Proposal
    lineage: Lineage
    audit: AuditLog
    args: dict[str, Any]
    progress: Callable[[str], None] = lambda _s: None
    parent: RunRef | None = None

    @contextmanager
    def stage(self, name: str, role: str = "flow", action: str = "") -> Iterator[StageIO]:
        """Run a stage: progress line, timing, lineage START/COMPLETE|FAIL, audit entry, trace step."""
        self.progress(name)
        io = StageIO()
        started = time.perf_counter()
        outcome = "ok"
        job = "dataeng_crew." + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        ref = self.lineage.start(job, self.parent)
        try:
            yield io
        except KeyboardInterrupt:
            outcome = "interrupted"
            self.lineage.fail(ref, self.parent, "interrupted by the user")
            raise
        except BaseException as exc:
            outcome = f"error: {type(exc).__name__}"
            self.lineage.fail(ref, self.parent, f"{type(exc).__name__}: {str(exc)[:500]}")
            io.observation = io.observation or f"failed: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
            raise
        else:
            self.lineage.complete(ref, self.parent, io.inputs, io.outputs)
        finally:
            seconds = time.perf_counter() - started
            self.proposal.timings.append(StageTiming(stage=name, seconds=round(seconds, 3)))
            self.audit.record(name, self.args, outcome, seconds, self.proposal.proposal_id)
            self.proposal.trace.append(TraceStep(role=role, thought=io.thought, action=action or name,
                                                 observation=io.observation or outcome))
