"""`inventory dev`: the embedded servers, the API and a worker, stopped together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

import psutil
import structlog

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import RuntimeFailure, port_is_free, stop_process

log = structlog.get_logger(__name__)


DEMO_LINE = "  demo           sample stores and products, simulated POS sales (inventory demo)"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwind and stop everything we started."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Raise once; a second signal during shutdown must not abort the cleanup.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


class DevSupervisor:
    """Owns every process `inventory dev` starts, and only those."""

    def __init__(
        self, home: Path, host: str, port: int, *, durable: bool = True, demo: bool = False
    ) -> None:
        self.home = home
        self.demo = demo
        self.host = host
        self.port = port
        self.topology = EmbeddedTopology(home, durable=durable)
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def _children_file(self) -> Path:
        return self.home / "children.json"

    def run(self) -> int:
        """Start everything, wait for a signal or a child's death, stop everything."""
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        if not port_is_free(self.port, self.host):
            raise RuntimeFailure(f"port {self.port} on {self.host} is in use; pass --port")
        started = time.monotonic()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self._stop_leftover_children()
            env = {**os.environ, **self.topology.start()}
            # Webhooks to a receiver on this machine are what a developer tries first.
            env.setdefault("INVENTORY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
            admin = self._ensure_admin(env)
            self._spawn("api", ["serve", "--host", self.host, "--port", str(self.port)], env)
            self._spawn("worker", ["worker"], env)
            self._wait_ready()
            self._announce(time.monotonic() - started, admin)
            if self.demo:
                url = f"http://{self.host}:{self.port}"
                demo_env = {**env, "INVENTORY_DEMO_TOKEN": self._demo_key(env)}
                self._spawn("demo", ["demo", "--url", url], demo_env)
            return self._watch()
        except Interrupted as why:
            log.info("stopping", signal=str(why))
            return 0
        finally:
            self._stop_children()
            self.topology.stop()
            log.info("stopped every process inventory dev started")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.children[name] = subprocess.Popen(
            [sys.executable, "-m", "inventory", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us alone; we stop children in order
        )
        self._record_children()

    def _record_children(self) -> None:
        entries = [
            {"name": name, "pid": child.pid, "created": psutil.Process(child.pid).create_time()}
            for name, child in self.children.items()
        ]
        self._children_file.write_text(json.dumps(entries))

    def _stop_leftover_children(self) -> None:
        """Stop the API and worker of an earlier run that was killed before it cleaned up."""
        try:
            entries = json.loads(self._children_file.read_text())
        except (OSError, ValueError):
            return
        for entry in entries:
            try:
                proc = psutil.Process(entry["pid"])
                if abs(proc.create_time() - entry["created"]) < 0.01:
                    log.warning("stopping a process left by an earlier run", **entry)
                    stop_process(proc.pid, timeout=15)
            except psutil.NoSuchProcess:
                continue
        self._children_file.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        url = f"http://{self.host}:{self.port}/health/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, child in self.children.items():
                if child.poll() is not None:
                    raise RuntimeFailure(f"the {name} process exited with {child.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeFailure(f"the API did not become ready within {timeout:.0f} s ({url})")

    def _ensure_admin(self, env: dict[str, str]) -> list[str]:
        """Create the user `admin` on first start; the banner lines that announce it."""
        from inventory.security.bootstrap import ensure_user  # noqa: PLC0415
        from inventory.security.principal import Role  # noqa: PLC0415

        chosen = os.environ.get("INVENTORY_ADMIN_PASSWORD")
        password = chosen or self.topology.secrets["admin"]
        if not ensure_user(env["INVENTORY_PRIMARY_URL"], "admin", password, Role.ADMIN):
            return []
        if chosen:
            return ["  user admin     created with the password in INVENTORY_ADMIN_PASSWORD"]
        return [f"  user admin     created; password {password} (shown this once)"]

    def _demo_key(self, env: dict[str, str]) -> str:
        """The demo's admin API key: created on the first `--demo` start, kept in the home
        (0600) for the next ones. Delete `demo.key` to have a new one made."""
        from inventory.security.bootstrap import create_key  # noqa: PLC0415
        from inventory.security.principal import Role  # noqa: PLC0415

        path = self.home / "demo.key"
        if path.exists():
            return path.read_text().strip()
        name = "demo (inventory dev --demo)"
        created = create_key(env["INVENTORY_PRIMARY_URL"], name, Role.ADMIN, ["*"])
        path.touch(mode=0o600)
        path.write_text(created.key)
        return created.key

    def _announce(self, seconds: float, admin: list[str]) -> None:
        base = f"http://{self.host}:{self.port}"
        lines = [
            "",
            f"  inventory is ready ({seconds:.1f} s)",
            f"  dashboard      {base}/",
            f"  API            {base}/v1",
            f"  API reference  {base}/docs",
            f"  OpenAPI        {base}/schema/openapi.json",
            f"  health         {base}/health/ready",
            f"  metrics        {base}/metrics",
            *admin,
            *(
                ["  demo           sample stores and products, simulated POS sales"]
                if self.demo
                else []
            ),
            f"  connection URLs for psql and other tools: {self.home / 'dev.env'}",
            "  Ctrl-C stops everything.",
            "",
        ]
        print("\n".join(lines), flush=True)  # noqa: T201 - the one human-facing banner

    def _watch(self) -> int:
        while True:
            for name, child in list(self.children.items()):
                if child.poll() is None:
                    continue
                if name == "demo":  # sample traffic: the service goes on without it
                    log.warning("the demo exited", code=child.returncode)
                    del self.children[name]
                    self._record_children()
                    continue
                log.error("a child process exited; stopping", process=name, code=child.returncode)
                return 1
            time.sleep(0.5)

    def _stop_children(self) -> None:
        # The demo and the API first (no new commands), then the worker, each given time
        # to finish.
        for name in ("demo", "api", "worker"):
            child = self.children.get(name)
            if child is not None and child.poll() is None:
                stop_process(child.pid, timeout=20)
                child.wait()
        self.children.clear()
        self._children_file.unlink(missing_ok=True)
