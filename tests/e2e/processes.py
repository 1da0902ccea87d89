"""Running `inventory` commands as real processes and inspecting the process table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from inventory.runtime.processes import free_port


def inventory(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run an `inventory` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "inventory", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class DevRun:
    """`inventory dev` in a home folder, on a free port, with its output in a log file."""

    def __init__(
        self, home: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.home = home
        self.env = env or {}
        self.args = args
        self.banner = ""
        self.port = free_port()
        self.output = home.parent / f"dev-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The API's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        """Start and wait for the ready banner."""
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory", "dev", "--port", str(self.port), *self.args],
                env={**os.environ, **self.env, "INVENTORY_HOME": str(self.home)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while b"inventory is ready" not in self.output.read_bytes():
            if self.process.poll() is not None:
                raise AssertionError(f"inventory dev exited:\n{self.output.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"inventory dev not ready:\n{self.output.read_text()}")
            time.sleep(0.1)
        self.banner = self.output.read_text()
        self.output.write_bytes(b"")

    def tree(self) -> set[int]:
        """Every pid this run owns: its descendants and the servers in its home."""
        assert self.process is not None
        pids = {self.process.pid}
        pids |= {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}
        return pids | processes_in_home(self.home)

    def signal(self, sig: signal.Signals) -> int:
        """Send `sig` and wait for the exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(60)

    def ready(self) -> httpx.Response:
        """GET /health/ready."""
        return httpx.get(f"{self.base_url}/health/ready", timeout=10)


def processes_in_home(home: Path) -> set[int]:
    """Servers and workers whose working directory, command line or INVENTORY_HOME lies
    in `home` (`inventory dev` and its API, worker and demo name it only in their
    environment)."""
    found = set()
    for proc in psutil.process_iter(["pid", "cwd", "cmdline", "environ"]):
        cwd = proc.info["cwd"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        env_home = (proc.info["environ"] or {}).get("INVENTORY_HOME", "")
        if cwd.startswith(str(home)) or str(home) in cmdline or env_home.startswith(str(home)):
            found.add(proc.info["pid"])
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of `pids` that still run (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.add(pid)
        except psutil.NoSuchProcess:
            continue
    return running
