"""Prometheus metrics of one service (its own registry, so two services in one process do not clash)."""

from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    """Proposals by outcome, stage durations, queue depth, webhook deliveries, LLM calls and tokens by role."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        """Create the metrics; ``queue_depth`` is read at every scrape."""
        self.registry = CollectorRegistry()
        self.proposals = Counter("dataeng_crew_proposals", "Jobs finished, by kind and outcome.",
                                 ["kind", "outcome"], registry=self.registry)
        self.stages = Histogram("dataeng_crew_stage_duration_seconds", "Duration of each flow stage.", ["stage"],
                                buckets=STAGE_BUCKETS, registry=self.registry)
        self.queue = Gauge("dataeng_crew_queue_depth", "Jobs waiting in the queue.", registry=self.registry)
        self.queue.set_function(queue_depth)
        self.webhooks = Counter("dataeng_crew_webhook_deliveries", "GitHub webhook deliveries, by result.",
                                ["result"], registry=self.registry)
        self.llm_calls = Counter("dataeng_crew_llm_calls", "LLM calls, by role.", ["role"], registry=self.registry)
        self.llm_tokens = Counter("dataeng_crew_llm_tokens", "LLM tokens, by role and direction.",
                                  ["role", "direction"], registry=self.registry)

    def job_done(self, kind: str, status: str, timings: list[dict[str, Any]], usage: list[dict[str, Any]]) -> None:
        """Count a finished job, observe its stage timings and its LLM usage."""
        self.proposals.labels(kind, status).inc()
        for t in timings:
            self.stages.labels(str(t.get("stage", "?"))).observe(float(t.get("seconds") or 0.0))
        for u in usage:
            role = str(u.get("role", "?"))
            self.llm_calls.labels(role).inc(int(u.get("calls") or 0))
            self.llm_tokens.labels(role, "in").inc(int(u.get("tokens_in") or 0))
            self.llm_tokens.labels(role, "out").inc(int(u.get("tokens_out") or 0))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
