"""Run the service on uvicorn (``dataeng-crew serve``)."""

from __future__ import annotations

import logging
from pathlib import Path


def serve(host: str = "127.0.0.1", port: int = 8765, project: Path | None = None,
          config_path: Path | None = None) -> None:
    """Serve until SIGINT/SIGTERM; then drain (the running job settles, queued jobs stay queued).

    Raises:
        ConfigError: No dbt project, or a bad config file.
    """
    import uvicorn

    from dataeng_crew.service.app import create_app
    from dataeng_crew.service.runtime import build_service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = build_service(project, config_path)
    logging.getLogger("dataeng_crew.serve").info(
        "serving %s (state %s; %d API tokens; webhook %s) on http://%s:%d", service.project, service.store.path,
        len(service.config.tokens), "on" if service.config.webhook_secret else "off (no secret)", host, port)
    server = uvicorn.Server(uvicorn.Config(create_app(service), host=host, port=port, lifespan="on",
                                           log_level="info", timeout_graceful_shutdown=30))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT/SIGTERM it drained on: the stop was clean
        pass
    finally:
        queued = service.store.count("queued")
        service.store.close()
    logging.getLogger("dataeng_crew.serve").info("stopped; %d queued jobs stay queued for the next start", queued)


class ThreadedServer:
    """The app on uvicorn in a background thread, on a free loopback port (tests and benchmarks)."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:  # noqa: ANN001 - a FastAPI app
        """Bind a free port on ``host`` (nothing is served before :meth:`start`)."""
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", backlog=1024))
        self.thread = None

    def start(self, timeout: float = 30.0) -> "ThreadedServer":
        """Serve; return once the server accepts connections."""
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 180.0) -> None:
        """Shut down as on SIGTERM: stop accepting, drain the worker, join."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.sock.close()
