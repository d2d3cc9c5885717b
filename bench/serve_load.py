"""Benchmark: `dataeng-crew serve` under load on loopback — 20 queued proposals and 200 concurrent status
requests while they wait; every job must end in a known state; the p95 status latency is measured.

``--runner real`` (default): ``dataeng-crew serve`` in a subprocess on a scratch copy of the sample project, jobs
running the real flow (publish none: validated, not committed). ``--runner stub``: the service in this process
(uvicorn in a thread) with a job runner that returns at once (the HTTP and store path only; the client shares the
server's GIL there, so its latencies are pessimistic). The status requests are fired while the
queue is full, in ``--rounds`` waves of 200 concurrent requests.

    python bench/serve_load.py [--runner real|stub] [--jobs 20] [--concurrent 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_project  # noqa: E402

TOKEN = "bench-token-0123456789-abcdef"
REQUESTS = ("daily_sales mart", "monthly_sales mart", "weekly_sales mart", "monthly rocket launches")
KNOWN = {"published", "validated", "failed", "interrupted", "rejected", "revised", "unchanged",
         "awaiting_approval"}


class _Cli:
    """``dataeng-crew serve`` in a subprocess, as a user runs it (the client's load does not share its GIL)."""

    def __init__(self, project: Path, jobs: int) -> None:
        import os
        import socket
        import subprocess

        from _common import CLI, ENV

        config = project.parent / "serve-bench.yml"
        config.write_text(f"tokens: [{{name: bench, token: {TOKEN}}}]\npublish: none\nqueue_size: {jobs}\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = (project.parent / "serve.log").open("wb")
        self.proc = subprocess.Popen([CLI, "serve", "--project", str(project), "--config", str(config), "--port",
                                      str(port)], stdout=self.log, stderr=subprocess.STDOUT, env={**ENV, **os.environ})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("dataeng-crew serve did not start")

    def stop(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=300)
        self.log.close()


def _service(project: Path, runner: str, jobs: int):  # noqa: ANN202
    if runner == "real":
        return _Cli(project, jobs)
    from dataeng_crew.service.app import create_app
    from dataeng_crew.service.config import ServeConfig
    from dataeng_crew.service.jobs import JobOutcome
    from dataeng_crew.service.runtime import build_service
    from dataeng_crew.service.server import ThreadedServer

    def stub(job, ctx):  # noqa: ANN001, ANN202
        ctx.progress("stub")
        return JobOutcome(status="validated", timings=[{"stage": "stub", "seconds": 0.0}])

    config = ServeConfig.model_validate({"tokens": [{"name": "bench", "token": TOKEN}], "publish": "none",
                                         "queue_size": jobs})
    service = build_service(project, config=config, runner=stub)
    return ThreadedServer(create_app(service)).start()


async def _get(host: str, port: int, path: str) -> float:
    """One GET on a new connection, timed to the last byte (a bare asyncio client: httpx's async pool is itself
    the bottleneck at 200 concurrent connections, seconds per wave, which would measure the client)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"GET {path}: {data[:200]!r}")
    return time.perf_counter() - started


async def _wave(url: str, ids: list[str], concurrent: int) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    return list(await asyncio.gather(*(_get(host, int(port), f"/api/v1/proposals/{ids[i % len(ids)]}")
                                       for i in range(concurrent))))


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runner", choices=["real", "stub"], default="real")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        project = scratch_project(Path(tmp))
        server = _service(project, args.runner, args.jobs)
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                ids = [client.post("/api/v1/proposals", json={"request": REQUESTS[i % len(REQUESTS)]},
                                   headers={"Authorization": f"Bearer {TOKEN}"}).json()["id"] for i in range(args.jobs)]
                latencies = [s for _ in range(args.rounds) for s in asyncio.run(_wave(server.url, ids, args.concurrent))]
                queued_during = client.get("/healthz").json()["queued"]
                finals = _wait_all(client, ids)
        finally:
            server.stop()
    wall = time.perf_counter() - started
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"runner {args.runner}: {args.jobs} jobs, {args.rounds} waves of {args.concurrent} concurrent status requests "
          f"({queued_during} jobs still queued after the waves)")
    print(f"status latency: p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms over {len(latencies)} requests")
    counts = {s: finals.count(s) for s in sorted(set(finals))}
    print(f"jobs: {counts} in {wall:.1f} s wall; every job in a known state: {set(finals) <= KNOWN}")
    sys.exit(0 if set(finals) <= KNOWN and len(finals) == args.jobs else 1)


def _wait_all(client: httpx.Client, ids: list[str], timeout: float = 3600.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [client.get(f"/api/v1/proposals/{i}").json()["status"] for i in ids]
        if all(s in KNOWN for s in statuses):
            return statuses
        time.sleep(1.0)
    return statuses


if __name__ == "__main__":
    main()
