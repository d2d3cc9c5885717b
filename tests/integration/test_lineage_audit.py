"""OpenLineage events, the audit log and the run trace of a real proposal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from dataeng_crew import flow
from tests.conftest import git

pytestmark = pytest.mark.slow

# The OpenLineage RunEvent contract (spec/OpenLineage.json, 2-0-x) transcribed as a JSON Schema: required
# fields, event types, run id format, and every facet carrying _producer and _schemaURL.
FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
         "properties": {"_producer": {"type": "string", "format": "uri", "minLength": 1},
                        "_schemaURL": {"type": "string", "format": "uri", "minLength": 1}}}
DATASET = {"type": "object", "required": ["namespace", "name"],
           "properties": {"namespace": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
                          "facets": {"type": "object", "additionalProperties": FACET}}}
RUN_EVENT = {
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job", "eventType"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri", "minLength": 1},
        "schemaURL": {"type": "string", "pattern": r"^https://openlineage\.io/spec/2-0-\d+/OpenLineage\.json#/\$defs/RunEvent$"},
        "run": {"type": "object", "required": ["runId"],
                "properties": {"runId": {"type": "string",
                                         "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
                               "facets": {"type": "object", "additionalProperties": FACET}}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"facets": {"type": "object", "additionalProperties": FACET}}},
        "inputs": {"type": "array", "items": DATASET},
        "outputs": {"type": "array", "items": DATASET},
    },
}


@pytest.fixture(scope="module")
def run_with_secret(tmp_path_factory, sample_warehouse):
    from tests.conftest import make_git_project

    project = make_git_project(tmp_path_factory.mktemp("lineage") / "repo", sample_warehouse)
    os.environ["GITHUB_TOKEN"] = "ghp_lineage_secret_1234567890"
    try:
        proposal = flow.propose("daily_sales mart", project=project)
    finally:
        del os.environ["GITHUB_TOKEN"]
    state = project.parent / ".dataeng-crew"
    events = [json.loads(line) for line in (state / "lineage.ndjson").read_text().splitlines()]
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    return proposal, events, audit, state


def test_events_validate_and_form_one_tree(run_with_secret):
    proposal, events, _audit, _state = run_with_secret
    for event in events:
        jsonschema.validate(event, RUN_EVENT)
    roots = {e["run"]["runId"] for e in events if e["job"]["name"] == "dataeng_crew.propose"}
    assert len(roots) == 1
    [root] = roots
    children = [e for e in events if e["run"]["runId"] != root]
    assert children and all(e["run"]["facets"]["parent"]["run"]["runId"] == root for e in children)
    assert not any("parent" in e["run"]["facets"] for e in events if e["run"]["runId"] == root)
    by_run: dict[str, list[str]] = {}
    for e in events:
        by_run.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert all(states == ["START", "COMPLETE"] for states in by_run.values()), by_run
    jobs = {e["job"]["name"] for e in events}
    assert {"dataeng_crew.plan", "dataeng_crew.dbt_build_sandbox", "dataeng_crew.profile_warehouse",
            "dataeng_crew.great_expectations"} <= jobs
    assert {f"dataeng_crew.model.{m.name}" for m in proposal.models} <= jobs


def test_model_events_carry_schema_and_column_lineage(run_with_secret):
    _proposal, events, _audit, _state = run_with_secret
    [mart] = [e for e in events if e["job"]["name"] == "dataeng_crew.model.fct_daily_sales"
              and e["eventType"] == "COMPLETE"]
    output = mart["outputs"][0]
    assert output["name"].endswith(".main.fct_daily_sales")
    fields = [f["name"] for f in output["facets"]["schema"]["fields"]]
    assert fields[:2] == ["sales_date", "order_count"]
    net = output["facets"]["columnLineage"]["fields"]["net_sales"]["inputFields"]
    assert {(f["name"].split(".")[-1], f["field"]) for f in net} >= {
        ("stg_shop__order_lines", "quantity"), ("stg_shop__order_lines", "price"),
        ("stg_shop__orders", "total_discounts"), ("stg_shop__refunds", "amount")}
    [stg] = [e for e in events if e["job"]["name"] == "dataeng_crew.model.stg_shop__orders"
             and e["eventType"] == "COMPLETE"]
    assert stg["inputs"][0]["name"] == "shop.raw_shop.orders"
    assert stg["inputs"][0]["namespace"].startswith("duckdb://") and "sandbox" not in stg["inputs"][0]["namespace"]


def test_audit_log_and_no_secret_anywhere(run_with_secret):
    proposal, _events, audit, state = run_with_secret
    assert audit[-1]["what"] == "propose" and audit[-1]["outcome"] == "ok"
    assert audit[-1]["who"] == "Test User <test@example.com>"
    assert {"when", "who", "what", "args", "outcome", "seconds", "proposal_id"} <= set(audit[0])
    assert {a["what"] for a in audit} >= {"profile warehouse", "dbt build (sandbox)", "publish (local branch)"}
    for path in (state / "lineage.ndjson", state / "audit.jsonl", Path(proposal.pr),
                 Path(proposal.proposal_dir) / "report.json"):
        assert "ghp_lineage_secret" not in path.read_text(), path


def test_run_trace_has_thought_action_observation_per_role(run_with_secret):
    proposal, *_ = run_with_secret
    roles = {s.role: s for s in proposal.trace}
    assert {"planner", "modeler", "transformer", "quality", "governance", "tool"} <= set(roles)
    assert "Grain 'day'" in roles["planner"].thought
    assert "Keys from profiling" in roles["modeler"].thought
    body = Path(proposal.pr).read_text()
    assert "<summary>Run trace (thought → action → observation)</summary>" in body


def test_lineage_can_be_disabled(git_project, monkeypatch):
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    flow.propose("daily_sales mart", project=git_project, publish="none")
    assert not (git_project.parent / ".dataeng-crew" / "lineage.ndjson").exists()
    assert git(git_project.parent, "status", "--porcelain") == ""


def test_events_go_to_marquez_over_http_when_openlineage_url_is_set(git_project, monkeypatch):
    """Standard OpenLineage config: OPENLINEAGE_URL sends events over HTTP (a local Marquez stand-in)."""
    import http.server
    import threading

    received: list[dict] = []

    class Marquez(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "event": json.loads(body)})
            self.send_response(201)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Marquez)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        flow.propose("daily_sales mart", project=git_project, publish="none")
    finally:
        server.shutdown()
    assert received and all(r["path"] == "/api/v1/lineage" for r in received)
    assert {r["event"]["job"]["name"] for r in received} >= {"dataeng_crew.propose", "dataeng_crew.model.fct_daily_sales"}
    assert not (git_project.parent / ".dataeng-crew" / "lineage.ndjson").exists()  # not the file transport
