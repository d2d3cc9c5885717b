"""`dataeng-crew history`: past proposals of a project, newest first, from their reports."""

from __future__ import annotations

import json
from pathlib import Path

from dataeng_crew.contracts import Proposal


def load_proposals(state_dir: Path) -> list[Proposal]:
    """Every readable ``report.json`` under ``<state_dir>/proposals``, newest first."""
    out = []
    for report in sorted((state_dir / "proposals").glob("*/report.json"), reverse=True):
        try:
            out.append(Proposal.model_validate_json(report.read_text()))
        except ValueError:
            continue  # a report from an older version of the tool: skipped, never fatal
    return out


def find_proposal(state_dir: Path, proposal_id: str | None) -> Proposal | None:
    """The proposal with ``proposal_id`` (a unique prefix is enough), or the newest published one."""
    proposals = load_proposals(state_dir)
    if proposal_id is None:
        return next((p for p in proposals if p.status == "published"), None)
    matches = [p for p in proposals if p.proposal_id.startswith(proposal_id)]
    return matches[0] if len(matches) == 1 else None
