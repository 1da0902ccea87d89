"""Servers for the scaling failover tests: Valkey under Sentinel, Debian's PgBouncer in
transaction mode, a physical standby of the replica; and a till's stream of sales."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from inventory.runtime.postgres import EmbeddedPostgres, postgres_bin
from inventory.runtime.processes import free_port, make_traversable, unprivileged_user
from inventory.runtime.valkey_server import server_path

SERVICE = "inventory-redis"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def server_folder(prefix: str) -> Path:
    """A fresh folder the servers' system user (when we are root) can reach."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    make_traversable(folder)
    return folder


def _as_user() -> dict[str, Any]:
    user = unprivileged_user()
    return {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}


def _spawn(command: list[str], log: Path, **options: Any) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **options,
        )


def _end(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def wait(check: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Poll `check` until true; the seconds it took (AssertionError after `timeout`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


@dataclass
class SentinelSet:
    """A Valkey master and its replica, watched by three sentinels (quorum 2)."""

    folder: Path
    password: str
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The service's `redis+sentinel://` URL naming all three sentinels."""
        hosts = ",".join(f"127.0.0.1:{self.ports[f's{n}']}" for n in range(3))
        return f"redis+sentinel://:{self.password}@{hosts}/{SERVICE}/0"

    def _valkey(self, name: str, *lines: str) -> None:
        port = self.ports[name] = free_port()
        folder = self.folder / name
        folder.mkdir()
        config = folder / "valkey.conf"
        config.write_text(
            "\n".join(["bind 127.0.0.1", f"port {port}", f"dir {folder}", 'save ""', *lines, ""])
        )
        config.chmod(0o600)
        command = [str(server_path()), str(config)]
        if name.startswith("s"):
            command.append("--sentinel")
        self.processes[name] = _spawn(command, self.folder / f"{name}.log", cwd=folder)

    def start(self) -> None:
        """Master, replica, then the sentinels; returns once they know each other."""
        auth = [f"requirepass {self.password}", f"masterauth {self.password}"]
        self._valkey("master", *auth)
        master = self.ports["master"]
        self._valkey("replica", *auth, f"replicaof 127.0.0.1 {master}")
        for number in range(3):
            self._valkey(
                f"s{number}",
                f"sentinel monitor {SERVICE} 127.0.0.1 {master} 2",
                f"sentinel auth-pass {SERVICE} {self.password}",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 2000",
            )
        wait(self._discovered, "sentinels discovering each other and the replica", 60)

    def _discovered(self) -> bool:
        try:
            for number in range(3):
                with redis.Redis(port=self.ports[f"s{number}"], socket_timeout=1) as sentinel:
                    state = sentinel.sentinel_master(SERVICE)
                if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                    return False
        except redis.RedisError:
            return False
        return True

    def master_port(self) -> int:
        """The port of the master the sentinels name now."""
        with redis.Redis(port=self.ports["s0"], socket_timeout=1) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def kill_master(self) -> None:
        """SIGKILL whichever server is master now."""
        port = self.master_port()
        name = next(name for name, each in self.ports.items() if each == port)
        self.processes[name].kill()
        self.processes[name].wait(15)

    def kill_all_data(self) -> None:
        """SIGKILL both data servers: no master anywhere, the sentinels left talking."""
        for name in ("master", "replica"):
            self.processes[name].kill()
            self.processes[name].wait(15)

    def stop(self) -> None:
        """End every process this set started."""
        for process in self.processes.values():
            _end(process)


@contextmanager
def sentinel_set(password: str) -> Iterator[SentinelSet]:
    """A running SentinelSet in a folder of its own, stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="inventory-sentinel-"))
    servers = SentinelSet(folder, password)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def pgbouncer(primary_url: str, pool_size: int = 8) -> Iterator[str]:
    """Debian's PgBouncer in transaction mode before the primary's database; yields the
    application's URL through it (same role and password)."""
    params = conninfo_to_dict(primary_url)
    folder = server_folder("inventory-pgbouncer-")
    port = free_port()
    user, password, database = params["user"], params["password"], params["dbname"]
    (folder / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    (folder / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"{database} = host={params['host']} port={params['port']} dbname={database}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = scram-sha-256",
                f"auth_file = {folder / 'userlist.txt'}",
                "pool_mode = transaction",
                "max_client_conn = 400",
                f"default_pool_size = {pool_size}",
                "ignore_startup_parameters = extra_float_digits",
                "",
            ]
        )
    )
    user_ids = unprivileged_user()
    for path in folder.iterdir():
        path.chmod(0o600)
        if user_ids is not None:
            os.chown(path, *user_ids)
    process = _spawn([PGBOUNCER, str(folder / "pgbouncer.ini")], folder / "log", **_as_user())
    url = f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"
    try:
        wait(lambda: _answers(url), "PgBouncer accepting connections", 30)
        yield url
    finally:
        _end(process)
        shutil.rmtree(folder, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@contextmanager
def replica_standby(replica_admin_url: str, password: str) -> Iterator[EmbeddedPostgres]:
    """A physical standby of the replica (pg_basebackup -R), started and streaming."""
    folder = server_folder("inventory-standby-")
    standby = EmbeddedPostgres("standby", folder / "data", free_port(), durable=False)
    source = make_conninfo(replica_admin_url, dbname="inventory")
    make_traversable(postgres_bin())
    standby.data_dir.mkdir(mode=0o700)
    if (user := unprivileged_user()) is not None:
        os.chown(standby.data_dir, *user)
    command = [str(postgres_bin() / "pg_basebackup"), "-D", str(standby.data_dir), "-R"]
    result = subprocess.run(
        [*command, "-c", "fast", "-X", "stream", "-d", source],
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,
        **_as_user(),
    )
    assert result.returncode == 0, result.stderr
    standby.start()
    try:
        standby.wait_ready(password)
        yield standby
    finally:
        if standby.process is not None and standby.process.poll() is None:
            standby.stop()
        shutil.rmtree(folder, ignore_errors=True)


def read_url(replica_url: str, *ports: int, balance: bool = False) -> str:
    """The replica's application URL on `ports` of loopback (libpq's multi-host form)."""
    params = conninfo_to_dict(replica_url)
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    query = "?load_balance_hosts=random" if balance else ""
    return f"postgresql://{params['user']}:{params['password']}@{hosts}/{params['dbname']}{query}"
