"""A throwaway local PostgreSQL server for the tests: initdb into a temp dir, pg_ctl start on a free port
(unix socket in the same dir), stop and delete at teardown.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user (which the
Debian package creates). The binaries are found in ``$PG_BIN``, on PATH, or under /usr/lib/postgresql.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dataeng_crew.tools.postgres import PgConnection

SKIP_ENV = "DATAENG_CREW_SKIP_POSTGRES"


def pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest version), or None."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    """A running throwaway server."""

    root: Path
    bin_dir: Path
    port: int
    run_as: str | None

    @property
    def conn(self) -> PgConnection:
        """How to reach it (TCP on localhost, trust auth, superuser ``postgres``)."""
        return PgConnection(host="127.0.0.1", port=self.port, user="postgres")

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        subprocess.run(self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w",
                                 "stop"), capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start_local_postgres() -> LocalPostgres:
    """initdb + pg_ctl start; raises RuntimeError with the server's own words when it cannot start."""
    bin_dir = pg_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise RuntimeError("PostgreSQL binaries not found (install the `postgresql` package, or set PG_BIN)")
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="dcpg-", dir="/tmp"))  # short: the unix socket path is limited
    if run_as:
        shutil.chown(root, user=run_as)
    server = LocalPostgres(root=root, bin_dir=bin_dir, port=_free_port(), run_as=run_as)
    steps = [
        [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--no-locale", "--no-sync"],
        [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60",
         "-o", f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
         "start"],
    ]
    for step in steps:
        done = subprocess.run(server._cmd(*step), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"{Path(step[0]).name} failed ({done.returncode}): {done.stderr.strip()} {log[-800:]}")
    return server
