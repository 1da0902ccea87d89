"""Debian's nginx running the shipped edge config on loopback, and its certificate."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from tests.e2e.api_servers import open_store

REPO = Path(__file__).resolve().parents[2]
NGINX_DIR = REPO / "ops" / "nginx"
SITE = NGINX_DIR / "sites-available" / "inventory"
SNIPPETS = NGINX_DIR / "snippets"


def nginx_binary() -> str:
    """Debian's nginx (`.ci/run` installs it); AssertionError when it is missing."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    assert found, "nginx is not installed: apt-get install -y nginx (.ci/run does)"
    return found


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made now with `openssl`."""
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def site_config(upstreams: list[int], ports: tuple[int, int], cert: Path, logs: Path) -> str:
    """The shipped Debian site file with only its addresses, certificate and log paths
    changed: loopback high ports, the test's certificate, the test's folder."""
    http_port, https_port = ports
    text = SITE.read_text()
    changes = {
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{upstreams[0]} ",
        "server 127.0.0.1:8002 ": f"server 127.0.0.1:{upstreams[1]} ",
        "listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
        "listen [::]:80 default_server;": "",
        "listen 443 ssl http2 default_server;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2 default_server;": "",
        "/etc/ssl/inventory/fullchain.pem": str(cert),
        "/etc/ssl/inventory/privkey.pem": str(cert.with_name("privkey.pem")),
        "/var/log/nginx/": f"{logs}/",
        "include snippets/": f"include {SNIPPETS}/",
    }
    for old, new in changes.items():
        assert old in text, f"{SITE} no longer has {old!r}: update the deploy test"
        text = text.replace(old, new)
    return text


class Nginx:
    """`nginx -p <folder> -c <folder>/nginx.conf -g 'daemon off;'` on two loopback ports."""

    def __init__(self, upstreams: list[int], folder: Path | None = None) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="inventory-edge-"))
        # Workers run as `nobody` when the tests run as root: they must reach the folder.
        self.folder.chmod(0o755)
        self.logs = self.folder / "logs"
        self.logs.mkdir(exist_ok=True)
        self.cert, _ = make_certificate(self.folder)
        self.http_port, self.https_port = free_port(), free_port()
        self.site = self.folder / "inventory-site.conf"
        self.site.write_text(
            site_config(upstreams, (self.http_port, self.https_port), self.cert, self.logs)
        )
        self.conf = self.folder / "nginx.conf"
        self.conf.write_text(self.main_config())
        self.process: subprocess.Popen[bytes] | None = None

    def main_config(self) -> str:
        """What Debian's /etc/nginx/nginx.conf gives a site: the test's own paths."""
        temp = "\n".join(
            f"    {kind}_temp_path {self.folder}/{kind}_temp;"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"pid {self.folder}/nginx.pid;\n"
            f"error_log {self.logs}/error.log info;\n"
            "worker_processes 1;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            f"{temp}\n"
            f"    access_log {self.logs}/default-access.log;\n"
            f"    include {self.site};\n"
            "}\n"
        )

    def command(self, *extra: str) -> list[str]:
        """nginx's command line on this folder."""
        return [nginx_binary(), "-p", str(self.folder), "-c", str(self.conf), *extra]

    def start(self, timeout: float = 20) -> None:
        """Start in the foreground and wait until the HTTPS port answers."""
        check = subprocess.run(self.command("-t"), capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        with (self.logs / "stderr.log").open("ab") as output:
            self.process = subprocess.Popen(
                self.command("-g", "daemon off;"), stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            assert self.process.poll() is None, (self.logs / "stderr.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)

    def answers(self) -> bool:
        """Whether the HTTPS port completes a request (any status)."""
        try:
            httpx.get(f"{self.https_url}/nginx-started", verify=self.tls(), timeout=2)
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        """SIGQUIT (graceful) and wait; SIGKILL when it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    @property
    def https_url(self) -> str:
        """The public HTTPS root."""
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        """The plain-HTTP root (it only redirects)."""
        return f"http://127.0.0.1:{self.http_port}"

    def tls(self, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """A client context trusting the test's certificate, pinned to `version` if given."""
        context = ssl.create_default_context(cafile=str(self.cert))
        if version is not None:
            context.minimum_version = context.maximum_version = version
        return context

    def client(self) -> httpx.Client:
        """An HTTPS client for this edge (redirects are not followed)."""
        return httpx.Client(base_url=self.https_url, verify=self.tls(), timeout=30)

    def log_text(self) -> str:
        """Everything nginx wrote: access and error logs and its own output."""
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.iterdir()))


def nginx_version() -> tuple[int, ...]:
    """The installed nginx's version, e.g. (1, 22, 1)."""
    shown = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=True)
    return tuple(int(part) for part in shown.stderr.strip().rsplit("/", 1)[1].split("."))


def compose_config(folder: Path, cert: Path) -> str:
    """The compose variant's nginx.conf with its container paths and names moved into
    `folder` and loopback, and the parts newer than the installed nginx taken out
    (`resolve` needs 1.27.3, `http2 on` 1.25.1)."""
    text = (NGINX_DIR / "nginx.conf").read_text()
    changes = {
        "user nginx;\n": "",
        "/var/log/nginx/": f"{folder}/",
        "/var/run/nginx.pid": f"{folder}/nginx.pid",
        "api1:8000": "127.0.0.1:8001",
        "api2:8000": "127.0.0.1:8002",
        "listen 80;": f"listen 127.0.0.1:{free_port()};",
        "listen 443 ssl;": f"listen 127.0.0.1:{free_port()} ssl;",
        "/run/secrets/tls_certificate;": f"{cert};",
        "/run/secrets/tls_certificate_key;": f"{cert.with_name('privkey.pem')};",
        "include snippets/": f"include {SNIPPETS}/",
        "http {\n": "http {\n"
        + "".join(
            f"    {kind}_temp_path {folder}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    if nginx_version() < (1, 27, 3):
        changes[" resolve "] = " "
    if nginx_version() < (1, 25, 1):
        changes["http2 on;"] = ""
    for old, new in changes.items():
        assert old in text, f"ops/nginx/nginx.conf no longer has {old!r}: update the deploy test"
        text = text.replace(old, new)
    return text


def store_and_product(
    admin: httpx.Client, settings: Settings, store: str, sku: str, name: str
) -> None:
    """Open `store` and register the product `sku` (through `admin`, keyed)."""
    open_store(settings, store)
    made = admin.post(
        "/v1/products",
        json={"sku": sku, "name": name},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert made.status_code == 201, made.text
