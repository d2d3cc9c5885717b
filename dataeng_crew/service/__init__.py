"""``dataeng-crew serve``: the bot service (issue 25).

Small modules, imported only by the ``serve`` command (FastAPI, uvicorn and prometheus-client never load on the
``propose`` path): :mod:`.config` (the config file: tokens, webhook secret, publishing), :mod:`.store` (jobs and
webhook deliveries in SQLite), :mod:`.worker` (one job at a time, a bounded queue, drain and recovery),
:mod:`.jobs` (what a job runs: the real flow), :mod:`.webhook` (GitHub deliveries), :mod:`.statuses` (CLI exit
codes → HTTP statuses), :mod:`.metrics`, :mod:`.page` (the status page), :mod:`.app` (the HTTP API) and
:mod:`.server` (uvicorn).
"""
