"""One running service: its project, config, store, worker and metrics, and the decisions it takes
(approvals, webhook deliveries)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataeng_crew.errors import AccessDenied, DataengCrewError
from dataeng_crew.service.config import ServeConfig, TokenEntry, load_config
from dataeng_crew.service.jobs import JobContext, Runner, git_said, run_job
from dataeng_crew.service.metrics import Metrics
from dataeng_crew.service.statuses import error_body, status_for
from dataeng_crew.service.store import DB_FILE, Job, Store
from dataeng_crew.service.worker import Worker

log = logging.getLogger("dataeng_crew.serve")


def _handle(name: str) -> str:
    return name.strip().lstrip("@").lower()


@dataclass
class Service:
    """Everything one ``dataeng-crew serve`` holds."""

    project: Path
    state_dir: Path
    repo: Path | None
    config: ServeConfig
    store: Store
    worker: Worker
    metrics: Metrics

    def decide(self, job: Job, who: TokenEntry, decision: str, note: str = "") -> Job:
        """``approve`` or ``reject`` a held proposal as ``who`` (an approver named in the policy).

        Raises:
            AccessDenied: ``who`` is none of the approvers (recorded in the audit log too).
            RequestError: The job is not waiting for an approval.
        """
        from dataeng_crew.errors import RequestError

        if job.status != "awaiting_approval":
            raise RequestError(f"proposal {job.id} is {job.status}, not awaiting approval")
        wanted = {_handle(a) for req in job.approvals for a in req.get("approvers", [])}
        mine = [i for i in who.identities if _handle(i) in wanted]
        proposal_id = str((job.result or {}).get("proposal_id") or "")
        if not mine:
            self.audit(who, f"{decision} refused", {"job": job.id, "approvers": sorted(wanted)}, proposal_id)
            raise AccessDenied(f"{who.name} is not an approver of proposal {job.id} "
                               f"(approvers: {', '.join(sorted('@' + w for w in wanted))})")
        self.audit(who, decision, {"job": job.id, "approver": mine[0], "note": note,
                                   "kinds": [r.get("kind") for r in job.approvals]}, proposal_id)
        if decision == "reject":
            self.store.update(job.id, status="rejected", decided_by=f"{who.name} as {mine[0]}",
                              error=f"rejected by {mine[0]}" + (f": {note}" if note else ""))
            self.metrics.proposals.labels(job.kind, "rejected").inc()
        else:
            self.worker.requeue(job.id, decided_by=f"{who.name} as {mine[0]}", error=None, exit_code=None,
                                options={**job.options, "approved_by": mine[0]})
        return self.store.get(job.id)  # type: ignore[return-value]

    def audit(self, who: TokenEntry, what: str, args: dict[str, Any], proposal_id: str = "") -> None:
        """One audit line (the client's name and the identity it acted as; never its token)."""
        from dataeng_crew.tools.audit import AuditLog

        AuditLog(self.state_dir, f"serve:{who.name}").record(what, args, "ok", 0.0, proposal_id)

    def webhook(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer one GitHub delivery: ``(HTTP status, JSON body)``."""
        from dataeng_crew.service import webhook as hooks

        secret = self.config.webhook_secret.get_secret_value() if self.config.webhook_secret else None
        if not hooks.verify_signature(secret, body, headers.get("x-hub-signature-256")):
            self.metrics.webhooks.labels("bad_signature").inc()
            return 401, {"status": "refused", "error": "bad or missing X-Hub-Signature-256", "exit_code": 12}
        delivery, event = headers.get("x-github-delivery", ""), headers.get("x-github-event", "")
        if not delivery:
            self.metrics.webhooks.labels("no_delivery_id").inc()
            return 400, {"status": "refused", "error": "missing X-GitHub-Delivery"}
        if not self.store.first_delivery(delivery, event):
            self.metrics.webhooks.labels("duplicate").inc()
            return 200, {"status": "duplicate", "delivery": delivery}
        try:
            result = self._delivery(event, json.loads(body or b"{}"))
        except DataengCrewError as exc:
            result = f"error: {type(exc).__name__}"
            self.store.delivery_result(delivery, result)
            self.metrics.webhooks.labels("error").inc()
            return status_for(exc), error_body(exc)
        except ValueError:
            result = "error: not JSON"
        self.store.delivery_result(delivery, result)
        self.metrics.webhooks.labels(result.split(":")[0]).inc()
        return 202 if result.startswith("queued") else 200, {"status": result, "delivery": delivery}

    def _delivery(self, event: str, payload: dict[str, Any]) -> str:
        from dataeng_crew.service import webhook as hooks

        command = hooks.parse_event(event, payload)
        if isinstance(command, str):
            return command
        if self.config.github.repo and command.repo.lower() != self.config.github.repo.lower():
            return f"ignored: repository {command.repo} is not {self.config.github.repo}"
        api = hooks.GithubApi(self.config, command.repo)
        if api.permission(command.user) not in hooks.WRITERS:
            return f"refused: {command.user} has no write access"
        if command.kind == "propose":
            job = self.worker.submit("propose", command.request, {}, f"github:{command.user}", "webhook",
                                     {"repo": command.repo, "number": command.number})
            return f"queued: {job.id}"
        head = command.head or (api.head(command.number) if command.is_pull else "")
        if not head.startswith(hooks.BRANCH_PREFIX):
            return "ignored: not a dataeng-crew pull request"
        job = self.worker.submit("revise", f"revise PR #{command.number}", {"pr_number": command.number},
                                 f"github:{command.user}", "webhook")
        return f"queued: {job.id}"

    def after_job(self, job: Job) -> None:
        """Answer the issue a webhook job came from (its PR, or why there is none)."""
        if not job.reply_to or job.kind != "propose":
            return
        from dataeng_crew.service import webhook as hooks

        hooks.GithubApi(self.config, job.reply_to["repo"]).comment(int(job.reply_to["number"]), hooks.reply_text(job))


def build_service(project: Path | None = None, config_path: Path | None = None, runner: Runner | None = None,
                  config: ServeConfig | None = None) -> Service:
    """Open the project's service: config, SQLite store under ``.dataeng-crew/``, metrics and worker.

    Args:
        project: The dbt project (default: as for ``propose``).
        config_path: The config file (default: ``.dataeng-crew/serve.yml``; none: no tokens).
        runner: What a job runs (default: the real flow, each job in its own process; tests inject stubs).
        config: A config object instead of a file (tests).

    Raises:
        ConfigError: No dbt project, or a bad config file.
    """
    from dataeng_crew import flow

    ws = flow.resolve_workspace(project)
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    config = config or load_config(config_path, ws.state_dir)
    store = Store(ws.state_dir / DB_FILE)
    metrics = Metrics(lambda: float(store.count("queued")))
    ctx = JobContext(ws.project, config)
    if runner is None:
        from dataeng_crew.service.process import ProcessRunner

        runner = ProcessRunner(run_job)
    worker = Worker(store, ctx, runner, metrics, config.queue_size,
                    recover=lambda job: git_said(job, ws.project))
    service = Service(ws.project, ws.state_dir, ws.repo, config, store, worker, metrics)
    worker.on_done = service.after_job
    return service
