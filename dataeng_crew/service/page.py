"""The status page (``GET /``): plain HTML, no JavaScript, every value escaped."""

from __future__ import annotations

from html import escape

from dataeng_crew.service.store import Job

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top;font-size:.9rem}
.status{font-weight:600}.published,.revised,.validated{color:#11703a}.failed,.rejected{color:#b00020}
.interrupted,.unchanged{color:#a15c00}.awaiting_approval,.queued,.running{color:#1d4ed8}
.timeline{display:flex;gap:1px;min-width:16rem}.bar{background:#93c5fd;height:.9rem;min-width:2px}
.bar:nth-child(even){background:#3b82f6}small{color:#666}"""


def _link(job: Job) -> str:
    result = job.result or {}
    pr = result.get("pull_request") or {}
    if pr.get("url"):
        return f'<a href="{escape(str(pr["url"]))}">#{escape(str(pr.get("number")))}</a> ' \
               f'<small>{escape(str(pr.get("branch") or ""))}</small>'
    return escape(str(result.get("branch") or ""))


def _build(job: Job) -> str:
    build = (job.result or {}).get("build")
    if not build:
        return ""
    nodes = build.get("nodes") or []
    passed = sum(1 for n in nodes if n.get("status") in ("pass", "success"))
    return f"{'passed' if build.get('success') else 'FAILED'} ({passed}/{len(nodes)})"


def _timeline(job: Job) -> str:
    stages = [s for s in job.stages if s.get("seconds") is not None]
    total = sum(float(s["seconds"]) for s in stages) or 1.0
    bars = "".join(f'<span class="bar" style="width:{max(0.5, 100 * float(s["seconds"]) / total):.1f}%" '
                   f'title="{escape(str(s.get("stage")))}: {float(s["seconds"]):.2f} s"></span>' for s in stages)
    live = "" if stages else " ".join(escape(str(s.get("stage"))) for s in job.stages[-1:])
    return f'<div class="timeline">{bars}</div><small>{live or f"{total:.1f} s in {len(stages)} stages"}</small>'


def _row(job: Job) -> str:
    error = f"<br><small>{escape(job.error[:300])}</small>" if job.error else ""
    return (f'<tr class="proposal" id="job-{escape(job.id)}" data-status="{escape(job.status)}">'
            f'<td><a href="/api/v1/proposals/{escape(job.id)}">{escape(job.id)}</a><br><small>{escape(job.kind)} · '
            f'{escape(job.source)} · {escape(job.created_at[:19])}</small></td>'
            f'<td class="status {escape(job.status)}">{escape(job.status)}{error}</td>'
            f'<td class="request">{escape(job.request)}</td><td>{_link(job)}</td><td>{_build(job)}</td>'
            f'<td>{_timeline(job)}</td></tr>')


def render_page(jobs: list[Job], queue_depth: int, running: str | None) -> str:
    """The whole page."""
    rows = "".join(_row(j) for j in jobs) or '<tr><td colspan="6">no proposals yet</td></tr>'
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>dataeng-crew</title>'
            f'<style>{STYLE}</style></head><body><h1>dataeng-crew</h1>'
            f'<p id="summary">{len(jobs)} proposals shown · {queue_depth} queued · running: '
            f'{escape(running or "none")} · <a href="/docs">API</a> · <a href="/metrics">metrics</a></p>'
            f'<table id="proposals"><thead><tr><th>job</th><th>status</th><th>request</th><th>branch / PR</th>'
            f'<th>build</th><th>stages</th></tr></thead><tbody>{rows}</tbody></table></body></html>')
