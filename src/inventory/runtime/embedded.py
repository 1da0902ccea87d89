"""The embedded topology: primary, replica and Valkey (for Redis) under one home folder.

Used by `inventory dev` and by the test suite alike, so tests run against exactly the
servers a developer runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import psycopg
import structlog
from psycopg import sql

from inventory.runtime.extra import require_embedded
from inventory.runtime.migrations import ensure_subscription, migrate, sql_directory
from inventory.runtime.postgres import SUPERUSER, EmbeddedPostgres
from inventory.runtime.processes import RuntimeFailure, free_port, port_is_free
from inventory.runtime.valkey_server import EmbeddedValkey

log = structlog.get_logger(__name__)

DATABASE = "inventory"
APP_ROLE = "inventory"
REPLICATOR_ROLE = "inventory_replicator"
SECRET_NAMES = ("postgres", "app", "replicator", "redis", "jwt", "admin", "audit")


class EmbeddedTopology:
    """Start, bootstrap and stop the three embedded servers that `inventory dev` runs."""

    def __init__(self, home: Path, *, durable: bool = True) -> None:
        self.home = home
        self.durable = durable
        self._lock: IO[str] | None = None
        self.secrets: dict[str, str] = {}
        self.primary: EmbeddedPostgres | None = None
        self.replica: EmbeddedPostgres | None = None
        self.redis: EmbeddedValkey | None = None

    def start(self) -> dict[str, str]:
        """Bring everything up and return the environment that points at it."""
        require_embedded()
        self.home.mkdir(parents=True, exist_ok=True)
        self._take_home_lock()
        self.secrets = self._load_secrets()
        ports = self._choose_ports()
        self.primary = EmbeddedPostgres(
            "primary", self.home / "primary", ports["primary"], durable=self.durable
        )
        self.replica = EmbeddedPostgres(
            "replica", self.home / "replica", ports["replica"], durable=self.durable
        )
        self.redis = EmbeddedValkey(
            self.home / "redis", ports["redis"], self.secrets["redis"], durable=self.durable
        )
        servers = (self.primary, self.replica)
        for server in servers:
            server.stop_leftover()
        self.redis.stop_leftover()
        self._check_ports(ports)
        try:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda s: s.initialize(self.secrets["postgres"]), servers))
            for server in servers:
                server.start()
            self.redis.start()
            for server in servers:
                server.wait_ready(self.secrets["postgres"])
            self.redis.wait_ready()
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        env = self.environment()
        self._write_env_file(env)
        return env

    def environment(self) -> dict[str, str]:
        """`INVENTORY_*` variables naming the running servers."""
        assert self.primary and self.replica and self.redis
        s = self.secrets
        return {
            "INVENTORY_HOME": str(self.home),
            "INVENTORY_PRIMARY_URL": self.primary.url(APP_ROLE, s["app"], DATABASE),
            "INVENTORY_REPLICA_URL": self.replica.url(APP_ROLE, s["app"], DATABASE),
            "INVENTORY_REDIS_URL": self.redis.url,
            "INVENTORY_PRIMARY_ADMIN_URL": self.primary.url(SUPERUSER, s["postgres"], DATABASE),
            "INVENTORY_REPLICA_ADMIN_URL": self.replica.url(SUPERUSER, s["postgres"], DATABASE),
            "INVENTORY_SUBSCRIPTION_CONNINFO": self.primary.url(
                REPLICATOR_ROLE, s["replicator"], DATABASE
            ),
            "INVENTORY_JWT_SECRET": s["jwt"],
            "INVENTORY_AUDIT_SIGNING_KEY": s["audit"],
        }

    def stop(self) -> None:
        """Stop what this object started, Valkey first, then the replica, then the primary."""
        for server in (self.redis, self.replica, self.primary):
            if server is not None:
                server.stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_home_lock(self) -> None:
        handle = (self.home / "lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RuntimeFailure(
                f"another inventory process is using {self.home}; stop it first "
                "or set INVENTORY_HOME to another folder"
            ) from None
        self._lock = handle

    def _load_secrets(self) -> dict[str, str]:
        path = self.home / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        changed = False
        for name in SECRET_NAMES:
            if name not in stored:
                stored[name] = secrets.token_urlsafe(24)
                changed = True
        if changed:
            _write_private(path, json.dumps(stored, indent=2))
        return stored

    def _choose_ports(self) -> dict[str, int]:
        """Reuse last run's ports when they are free, so URLs stay stable for tools."""
        path = self.home / "ports.json"
        previous: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        ports: dict[str, int] = {}
        for name in ("primary", "replica", "redis"):
            port = previous.get(name)
            # The kernel may hand the same free port out twice in a row: two servers given
            # one port would be one server answering for both.
            while port is None or not port_is_free(port) or port in ports.values():
                port = free_port()
            ports[name] = port
        path.write_text(json.dumps(ports))
        return ports

    @staticmethod
    def _check_ports(ports: dict[str, int]) -> None:
        for name, port in ports.items():
            if not port_is_free(port):
                raise RuntimeFailure(f"port {port} for the {name} is in use by another process")

    def _bootstrap(self) -> None:
        """Databases, schema, login roles and the subscription: each created if missing."""
        assert self.primary and self.replica
        password = self.secrets["postgres"]
        for server in (self.primary, self.replica):
            _ensure_database(server.url(SUPERUSER, password))
        env = self.environment()
        primary, replica = env["INVENTORY_PRIMARY_ADMIN_URL"], env["INVENTORY_REPLICA_ADMIN_URL"]
        # Schema first: it creates the group roles the login roles join.
        migrate(primary, sql_directory("migrations"))
        migrate(replica, sql_directory("projections"))
        for url in (primary, replica):
            _ensure_login_role(url, APP_ROLE, self.secrets["app"], group="inventory_app")
        _ensure_login_role(
            primary,
            REPLICATOR_ROLE,
            self.secrets["replicator"],
            group="inventory_replication",
            replication=True,
        )
        ensure_subscription(replica, env["INVENTORY_SUBSCRIPTION_CONNINFO"])

    def _write_env_file(self, env: dict[str, str]) -> None:
        lines = [f"{name}={value}" for name, value in env.items()]
        _write_private(self.home / "dev.env", "\n".join(lines) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def _ensure_database(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def _ensure_login_role(
    admin_url: str, role: str, password: str, *, group: str, replication: bool = False
) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        cursor: Any = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN {} PASSWORD {}").format(
                sql.SQL(verb),
                sql.Identifier(role),
                sql.SQL("REPLICATION" if replication else "NOREPLICATION"),
                sql.Literal(password),
            )
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role)))
