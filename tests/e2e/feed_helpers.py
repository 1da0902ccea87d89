"""A feed test's world (its own Redis, two API processes, a worker) and a feed client."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from inventory.domain.commands import Command, OpenStore, ReceiptLine, ReceiveStock, RegisterProduct
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.runtime.valkey_server import EmbeddedValkey
from tests.e2e.api_servers import ApiServer, api_servers, bearer, run_commands


@dataclass
class Worker:
    """An `inventory worker` process on the world's Redis namespace."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory", "worker", "--threads", "2"],
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


class PlainUvicorn(ApiServer):
    """The API under plain `uvicorn` (its default WebSocket protocol, compression on): no
    frame writer is lent, so the feed takes the ASGI path."""

    def command(self) -> list[str]:
        """plain uvicorn on the same app factory."""
        app = "inventory.wiring:app"
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--factory",
            "--port",
            str(self.port),
            "--no-proxy-headers",
            "--log-level",
            "warning",
        ]


def direct_deliveries(api: ApiServer) -> float:
    """The API process's count of live messages taken by the feed's direct path."""
    for line in httpx.get(f"{api.base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("inventory_feed_direct_deliveries_total "):
            return float(line.split()[1])
    return 0.0


@dataclass
class FeedWorld:
    """Processes sharing the session's databases, with a Redis of their own to restart."""

    settings: Settings
    redis: EmbeddedValkey
    apis: list[ApiServer]
    worker: Worker
    admin_key: str
    products: list[str] = field(default_factory=list)

    def ws_url(self, api: int = 0, **query: Any) -> str:
        port = self.apis[api].port
        pairs = "&".join(f"{name}={value}" for name, value in query.items() if value is not None)
        return f"ws://127.0.0.1:{port}/v1/feed" + (f"?{pairs}" if pairs else "")

    def post(self, path: str, body: Any, api: int = 0) -> httpx.Response:
        headers = {**bearer(self.admin_key), "Idempotency-Key": uuid.uuid4().hex}
        response = httpx.post(
            f"{self.apis[api].base_url}{path}", json=body, headers=headers, timeout=30
        )
        assert response.status_code == 201, response.text
        return response

    def receive(
        self, store: str, skus: list[str], quantity: int = 10, api: int = 0, note: str = ""
    ) -> int:
        """One receipt of `quantity` of each SKU: one event per SKU; returns its position."""
        body: dict[str, Any] = {"lines": [{"sku": sku, "quantity": quantity} for sku in skus]}
        if note:
            body["note"] = note  # every event of the receipt carries it
        position: int = self.post(f"/v1/stores/{store}/receipts", body, api).json()["position"]
        return position

    def open_store(self, store: str) -> None:
        now = datetime.now(UTC)
        run_commands(self.settings, OpenStore(store_id=store, name=f"Store {store}", now=now))

    def receive_direct(self, store: str, skus: list[str], quantity: int = 1) -> None:
        """A receipt through the command service itself (no HTTP, no wake-up)."""
        now = datetime.now(UTC)
        lines = tuple(ReceiptLine(sku=sku, quantity=Decimal(quantity)) for sku in skus)
        run_commands(
            self.settings, ReceiveStock(store_id=store, lines=lines, occurred_at=now, now=now)
        )


@contextmanager
def feed_world(
    server_env: dict[str, str], settings: Settings, folder: Path, admin_key: str
) -> Iterator[FeedWorld]:
    redis = EmbeddedValkey(folder / "redis", free_port(), secrets.token_hex(8), durable=False)
    redis.start()
    redis.wait_ready()
    namespace = f"feed-{uuid.uuid4().hex[:8]}"
    env = {**server_env, "INVENTORY_REDIS_URL": redis.url}
    extra = {
        "INVENTORY_REDIS_NAMESPACE": namespace,
        "INVENTORY_SWEEP_INTERVAL_SECONDS": "1",
        "INVENTORY_FEED_HEARTBEAT_SECONDS": "2",
        "INVENTORY_RATE_LIMIT_ADMIN": "100000/60",
        "INVENTORY_RATE_LIMIT_VIEWER": "100000/60",
        "INVENTORY_RATE_LIMIT_WS_HANDSHAKE": "100000/60",
    }
    worker = Worker({**env, **extra, "INVENTORY_LOG_JSON": "1"}, folder / "worker.log")
    worker.start()
    try:
        with api_servers(env, folder, count=2, **extra) as apis:
            skus = [f"F{index:03d}" for index in range(100)]
            now = datetime.now(UTC)
            setup: list[Command] = [RegisterProduct(sku=s, name=f"Feed {s}", now=now) for s in skus]
            run_commands(settings, *setup)
            yield FeedWorld(settings, redis, apis, worker, admin_key, skus)
    finally:
        worker.stop()
        redis.stop()


def partition_seqs(settings: Settings, store: str, after: int = 0) -> list[int]:
    """The seqs of the store's events in the replica's copy, in order."""
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT seq FROM events WHERE partition = %s AND seq > %s ORDER BY seq",
            (store, after),
        ).fetchall()
    return [int(row[0]) for row in rows]


def wait_projected(settings: Settings, store: str, count: int, timeout: float = 30) -> list[int]:
    """Wait until the replica holds `count` events of the store; their seqs."""
    deadline = time.monotonic() + timeout
    while len(seqs := partition_seqs(settings, store)) < count:
        assert time.monotonic() < deadline, f"only {len(seqs)} of {count} events replicated"
        time.sleep(0.05)
    return seqs


class FeedClient:
    """A feed connection that records what it receives."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []
        self.others: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, key: str, **options: Any) -> FeedClient:
        connection = await websockets.connect(url, additional_headers=bearer(key), **options)
        return cls(connection)

    async def until(self, done: Any, seconds: float = 30) -> None:
        """Receive until `done(self)` is true (within `seconds`)."""
        async with asyncio.timeout(seconds):
            while not done(self):
                self.take(json.loads(await self.connection.recv()))

    def take(self, message: dict[str, Any]) -> None:
        if message["kind"] == "event":
            self.events.append(message)
        else:
            self.others.append(message)

    async def quiet(self, seconds: float) -> None:
        """Keep receiving for `seconds` (what arrives is recorded)."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    self.take(json.loads(await self.connection.recv()))
        except TimeoutError:
            return

    async def close_code(self, seconds: float = 60) -> int | None:
        """Read everything up to the close frame; its code."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    self.take(json.loads(await self.connection.recv()))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    def seqs(self, store: str | None = None) -> list[int]:
        return [e["seq"] for e in self.events if store is None or e["store"] == store]

    async def close(self) -> None:
        await self.connection.close()


class StalledClient:
    """A WebSocket client on a raw socket that, after the handshake, reads nothing until
    asked: its kernel buffer fills and the server's sends stall."""

    def __init__(self, port: int, path: str, key: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {key}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(1)
        assert self.buffer.startswith(b"HTTP/1.1 101"), self.buffer
        self.buffer = b""

    def close_code(self, seconds: float = 60) -> tuple[int | None, int]:
        """Read up to the close frame: (its code, how many text frames came before)."""
        self.sock.settimeout(seconds)
        texts = 0
        while True:
            opcode, payload = self._frame()
            if opcode == 0x8:
                self.sock.close()
                return int.from_bytes(payload[:2], "big"), texts
            texts += opcode == 0x1

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _frame(self) -> tuple[int, bytes]:
        head = self._read(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read(8), "big")
        return head[0] & 0x0F, self._read(length)
