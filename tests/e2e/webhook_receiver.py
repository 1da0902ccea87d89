"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 that verifies every
request's signature with the `standardwebhooks` package and records what came."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as it came: its headers, body, and which known secrets verify it."""

    webhook_id: str
    body: dict[str, Any]
    signature: str
    verified_by: list[str]
    at: float  # time.time() on arrival


@dataclass
class Receiver:
    """What the server knows (secrets), answers (a plan of statuses, then 200) and got."""

    secrets: list[str] = field(default_factory=list)
    plan: list[int] = field(default_factory=list)
    delay: float = 0.0
    gate: threading.Event | None = None  # when set up, the next request waits on it
    held: threading.Event = field(default_factory=threading.Event)  # a request is waiting
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        """The receiver's URL."""
        return f"http://127.0.0.1:{self.port}/hook"

    def verify(self, body: bytes, headers: dict[str, str]) -> list[str]:
        """The known secrets under which `standardwebhooks` accepts the request."""
        good = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            good.append(secret)
        return good

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        """Record the request, then the status to answer with."""
        item = Received(
            headers.get("webhook-id", ""),
            json.loads(body),
            headers.get("webhook-signature", ""),
            self.verify(body, headers),
            time.time(),
        )
        with self.lock:
            self.received.append(item)
            status = self.plan.pop(0) if self.plan else 200
            gate, self.gate = self.gate, None
        if gate is not None:
            self.held.set()
            gate.wait(60)
        if self.delay:
            time.sleep(self.delay)
        return status

    def ids(self) -> list[str]:
        """The webhook-ids in order of arrival."""
        with self.lock:
            return [item.webhook_id for item in self.received]

    def of_type(self, kind: str) -> list[Received]:
        """The requests of one type."""
        with self.lock:
            return [item for item in self.received if item.body["type"] == kind]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver.answer(body, headers)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            return

    return Handler


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    """Serve `receiver` on a free port of 127.0.0.1 until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.gate is not None:
            receiver.gate.set()
        server.shutdown()
        server.server_close()
