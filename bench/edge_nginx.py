"""A plain-HTTP nginx on loopback with the shipped edge's routing maps, for bench/commands.py.

It includes ops/nginx/snippets/inventory-http.conf (the maps that pick `inventory_api` or,
for a store's command, `inventory_api_by_store`) and proxies as the shipped edge does,
without TLS (the same for every configuration measured) and without an access log.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from inventory.runtime.processes import free_port, stop_process

SNIPPETS = Path(__file__).resolve().parents[1] / "ops" / "nginx" / "snippets"


def nginx_binary() -> str | None:
    """Debian's nginx (`.ci/run` installs it), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


class Edge:
    """One nginx: `routed` hashes a store's commands as the shipped edge does; otherwise
    they go `least_conn`, like every other request."""

    def __init__(self, binary: str, apis: list[int], routed: bool, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # workers run as `nobody` when the bench runs as root
        self.port = free_port()
        servers = "".join(f"        server 127.0.0.1:{port} max_fails=1;\n" for port in apis)
        balance = "hash $inventory_store consistent" if routed else "least_conn"
        temp = "".join(
            f"    {kind}_temp_path {folder}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = folder / "nginx.conf"
        self.conf.write_text(
            f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
            "worker_processes 1;\nevents { worker_connections 4096; }\n"
            f"http {{\n{temp}    access_log off;\n    include {SNIPPETS}/inventory-http.conf;\n"
            f"    upstream inventory_api {{\n        least_conn;\n{servers}"
            "        keepalive 128;\n    }\n"
            f"    upstream inventory_api_by_store {{\n        {balance};\n{servers}"
            "        keepalive 128;\n    }\n"
            f"    server {{\n        listen 127.0.0.1:{self.port} backlog=4096;\n"
            "        location / {\n            proxy_http_version 1.1;\n"
            '            proxy_set_header Connection "";\n'
            "            proxy_pass http://$inventory_upstream;\n        }\n    }\n}\n"
        )
        command = [binary, "-p", str(folder), "-c", str(self.conf), "-g", "daemon off;"]
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nginx did not start: {(folder / 'error.log').read_text()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/health/live", timeout=2)
        except httpx.TransportError:
            return False
        return True

    def pids(self) -> list[int]:
        """The master's and its worker's pids (their CPU is part of the serving path)."""
        master = psutil.Process(self.process.pid)
        return [master.pid, *(child.pid for child in master.children())]

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            stop_process(self.process.pid, first=signal.SIGQUIT, timeout=20)
            self.process.wait(10)
