"""The HTTP API (FastAPI): proposals, approvals, revisions, the GitHub webhook, metrics and the status page."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dataeng_crew.errors import DataengCrewError, RequestError
from dataeng_crew.service.config import TokenEntry
from dataeng_crew.service.page import render_page
from dataeng_crew.service.runtime import Service
from dataeng_crew.service.statuses import NotFound, Unauthorized, error_body, http_status, status_for
from dataeng_crew.service.store import Job

log = logging.getLogger("dataeng_crew.serve")


class ProposalOptions(BaseModel):
    """Options of a proposal (a subset of ``propose``'s; the warehouse and repository are the service's)."""

    publish: Literal["local", "github", "none", "auto"] | None = Field(
        default=None, description="Default: the config file's `publish`.")
    target_dialect: Literal["duckdb", "postgres", "snowflake", "bigquery", "databricks", "spark"] | None = None
    semantic_layer: bool | None = None


class ProposalCreate(BaseModel):
    """``POST /api/v1/proposals``."""

    request: str = Field(min_length=1, max_length=2000, examples=["daily_sales mart"])
    options: ProposalOptions = Field(default_factory=ProposalOptions)


class ReviseBody(BaseModel):
    """``POST /api/v1/proposals/{id}/revise``."""

    comment: str = Field(min_length=1, max_length=20_000)


class Decision(BaseModel):
    """``approve`` / ``reject``: an optional note (recorded in the audit log)."""

    note: str = Field(default="", max_length=2000)


class Accepted(BaseModel):
    """A queued job."""

    id: str
    status: str
    url: str


class JobView(Job):
    """A job as the API shows it, with the HTTP status its exit code maps to."""

    http_status: int = 200


def view(job: Job) -> JobView:
    """The API's view of ``job``."""
    return JobView(**job.model_dump(), http_status=http_status(job.exit_code))


def create_app(service: Service) -> FastAPI:
    """The FastAPI application of ``service`` (the worker starts and drains with the app's lifespan)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        service.worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.worker.stop)

    app = FastAPI(title="dataeng-crew", version="1", lifespan=lifespan,
                  description="Proposals from an API and from GitHub comments; see the README's "
                              "'Run it as a service'.")

    @app.exception_handler(DataengCrewError)
    async def _error(_request: Request, exc: DataengCrewError) -> JSONResponse:
        status = status_for(exc)
        headers = {"Retry-After": "5"} if status == 429 else ({"WWW-Authenticate": "Bearer"} if status == 401 else {})
        return JSONResponse(error_body(exc), status_code=status, headers=headers)

    _api_routes(app, service)
    _other_routes(app, service)
    return app


def _client(service: Service):  # noqa: ANN202 - a FastAPI dependency
    def client(authorization: str | None = Header(default=None)) -> TokenEntry:
        scheme, _, token = (authorization or "").partition(" ")
        entry = service.config.client(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            raise Unauthorized("a valid bearer token is needed (Authorization: Bearer <token from the config file>)")
        return entry
    return client


def _job(service: Service, job_id: str) -> Job:
    job = service.store.get(job_id)
    if job is None:
        raise NotFound(f"no proposal {job_id}")
    return job


def _api_routes(app: FastAPI, service: Service) -> None:
    client = Depends(_client(service))

    @app.post("/api/v1/proposals", status_code=202, response_model=Accepted)
    def create(body: ProposalCreate, who: TokenEntry = client) -> Accepted:
        """Queue a proposal (202); 429 when the queue is full."""
        from dataeng_crew.flow import clean_request

        request = clean_request(body.request)
        if not request:
            raise RequestError("the request is empty once control characters are removed")
        job = service.worker.submit("propose", request, body.options.model_dump(exclude_none=True),
                                    f"api:{who.name}", "api")
        return Accepted(id=job.id, status=job.status, url=f"/api/v1/proposals/{job.id}")

    @app.get("/api/v1/proposals", response_model=list[JobView])
    async def list_jobs(status: str | None = None, limit: int = 100) -> list[JobView]:
        """Jobs, newest first."""
        return [view(j) for j in service.store.list(min(max(limit, 1), 1000), status)]

    @app.get("/api/v1/proposals/{job_id}", response_model=JobView)
    async def get_job(job_id: str) -> JobView:
        """One job: status, stages with timings, result (branch, PR, build, data diff), error and exit code."""
        return view(_job(service, job_id))

    @app.post("/api/v1/proposals/{job_id}/approve", status_code=202, response_model=JobView)
    def approve(job_id: str, body: Decision | None = None, who: TokenEntry = client) -> JobView:
        """An approver named in the policy approves a held proposal: it is published (queued again)."""
        return view(service.decide(_job(service, job_id), who, "approve", (body or Decision()).note))

    @app.post("/api/v1/proposals/{job_id}/reject", response_model=JobView)
    def reject(job_id: str, body: Decision | None = None, who: TokenEntry = client) -> JobView:
        """An approver rejects a held proposal: nothing is published."""
        return view(service.decide(_job(service, job_id), who, "reject", (body or Decision()).note))

    @app.post("/api/v1/proposals/{job_id}/revise", status_code=202, response_model=Accepted)
    def revise(job_id: str, body: ReviseBody, who: TokenEntry = client) -> Accepted:
        """A follow-up commit on the proposal's branch from ``comment``."""
        job = _job(service, job_id)
        branch = (job.result or {}).get("branch")
        if not branch:
            raise RequestError(f"proposal {job_id} has no branch to revise (status {job.status})")
        pr = ((job.result or {}).get("pull_request") or {}).get("number")
        options: dict[str, Any] = {"target": branch, "comments": [body.comment], "parent": job.id}
        new = service.worker.submit("revise", job.request, options, f"api:{who.name}", "api")
        if pr:
            log.info("job %s revises PR #%s from a local comment", new.id, pr)
        return Accepted(id=new.id, status=new.status, url=f"/api/v1/proposals/{new.id}")


def _other_routes(app: FastAPI, service: Service) -> None:
    @app.post("/github/webhook")
    async def webhook(request: Request) -> JSONResponse:
        """A GitHub delivery (signed with the webhook secret; anything else: 401)."""
        body = await request.body()
        status, answer = await run_in_threadpool(service.webhook, body, dict(request.headers))
        return JSONResponse(answer, status_code=status)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        """The status page."""
        return HTMLResponse(render_page(service.store.list(200), service.store.count("queued"),
                                        service.worker.running))

    @app.get("/healthz")
    async def health() -> dict[str, Any]:
        """Liveness, queue depth and the running job."""
        return {"ok": True, "queued": service.store.count("queued"), "running": service.worker.running}


