"""Real clusters for the primary-loss tests: one etcd, two Patroni members built from
ops/patroni/pg1.yml and pg2.yml, a plain read replica subscribed to both, and Valkey."""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from inventory.runtime.embedded import (
    APP_ROLE,
    DATABASE,
    REPLICATOR_ROLE,
    _ensure_database,
    _ensure_login_role,
)
from inventory.runtime.migrations import ensure_subscription, migrate, sql_directory
from inventory.runtime.postgres import SUPERUSER, EmbeddedPostgres, postgres_bin
from inventory.runtime.processes import free_port, make_traversable, unprivileged_user
from inventory.runtime.valkey_server import EmbeddedValkey

OPS = Path(__file__).resolve().parents[2] / "ops" / "patroni"
PATRONI_VERSION = "4.1.5"
# Patroni runs as the unprivileged server user, from a venv on the system Python (a venv
# under /root is unreadable to that user): built once per machine, reused by later runs.
VENV = Path(tempfile.gettempdir()) / f"inventory-patroni-{PATRONI_VERSION}"
SLOT = "inventory_events"


def _installer() -> list[list[str]]:
    """Commands that make the venv: uv when there is one, else the system venv and pip."""
    spec = f"patroni[etcd3,psycopg3]=={PATRONI_VERSION}"
    python = str(VENV / "bin" / "python")
    found = shutil.which("uv")
    uv = [found] if found else ["/usr/bin/python3", "-m", "uv"]
    probe = subprocess.run([*uv, "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [
            [*uv, "venv", "--python", "/usr/bin/python3", str(VENV)],
            [*uv, "pip", "install", "--python", python, spec],
        ]
    return [["/usr/bin/python3", "-m", "venv", str(VENV)], [python, "-m", "pip", "install", spec]]


def patroni_venv() -> Path:
    """The venv holding Patroni (with etcd3 and psycopg3 support), created if missing."""
    with (Path(tempfile.gettempdir()) / "inventory-patroni-venv.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (VENV / ".complete").exists():
            shutil.rmtree(VENV, ignore_errors=True)
            for command in _installer():
                subprocess.run(command, check=True, capture_output=True, timeout=600)
            (VENV / ".complete").touch()
    return VENV


def wait(check: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Poll `check` until true; the seconds it took. AssertionError after `timeout`."""
    start = time.monotonic()
    while True:
        with suppress(psycopg.Error, httpx.HTTPError):
            if check():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.1)


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement (autocommit) and return its rows (none for commands)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        cursor = conn.execute(sql.encode(), params or None)
        return cursor.fetchall() if cursor.description else []


class Etcd:
    """One etcd 3.4 member on loopback, as Patroni's DCS."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, peer = free_port(), free_port()
        peer_url = f"http://127.0.0.1:{peer}"
        with (folder / "etcd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "etcd",
                    "--name",
                    "etcd1",
                    "--data-dir",
                    str(folder / "etcd"),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{self.port}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{self.port}",
                    "--listen-peer-urls",
                    peer_url,
                    "--initial-advertise-peer-urls",
                    peer_url,
                    "--initial-cluster",
                    f"etcd1={peer_url}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait(
            lambda: httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200,
            "etcd",
        )

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.terminate()
        self.process.wait(30)


class Member:
    """One Patroni member (`pg1` or `pg2`) from its shipped config, on loopback ports."""

    def __init__(self, name: str, folder: Path, etcd_port: int, passwords: dict[str, str]) -> None:
        self.name = name
        self.folder = folder / name
        self.folder.mkdir()
        self.port, self.rest_port = free_port(), free_port()
        self.passwords = passwords
        self.config = self.folder / "patroni.yml"
        self.config.write_text(yaml.safe_dump(self._config(etcd_port)))
        self.process: subprocess.Popen[bytes] | None = None
        user = unprivileged_user()
        if user is not None:
            make_traversable(folder)
            make_traversable(postgres_bin())
            os.chown(self.folder, *user)
            os.chown(self.config, *user)
        self.config.chmod(0o600)

    def _config(self, etcd_port: int) -> dict[str, Any]:
        """ops/patroni/<name>.yml with this machine's addresses, folders and secrets."""
        config: dict[str, Any] = yaml.safe_load((OPS / f"{self.name}.yml").read_text())
        rest = f"127.0.0.1:{self.rest_port}"
        config["restapi"].update(listen=rest, connect_address=rest)
        config["restapi"]["authentication"]["password"] = self.passwords["rest"]
        config["etcd3"]["hosts"] = f"127.0.0.1:{etcd_port}"
        config["bootstrap"]["pg_hba"] = [
            "host replication replicator 127.0.0.1/32 scram-sha-256",
            "host all all 127.0.0.1/32 scram-sha-256",
        ]
        config["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_slot_wal_keep_size"] = "1GB"
        pg = config["postgresql"]
        pg.update(
            listen=f"127.0.0.1:{self.port}",
            connect_address=f"127.0.0.1:{self.port}",
            data_dir=str(self.folder / "data"),
            bin_dir=str(postgres_bin()),
            pgpass=str(self.folder / "pgpass"),
        )
        for role in ("superuser", "replication", "rewind"):
            pg["authentication"][role]["password"] = self.passwords[role]
        # Loopback only (no socket folder), and no /dev/watchdog on a test machine.
        pg["parameters"]["unix_socket_directories"] = ""
        config["watchdog"] = {"mode": "off"}
        config["log"] = {"level": "WARNING"}
        return config

    @property
    def admin_url(self) -> str:
        """This member as the superuser, on the application's database."""
        return f"postgresql://{SUPERUSER}:{self.passwords['superuser']}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        """Start Patroni (which starts, or bootstraps, or clones its PostgreSQL)."""
        user = unprivileged_user()
        as_user: dict[str, Any] = (
            {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
        )
        with (self.folder / "patroni.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(patroni_venv() / "bin" / "patroni"), str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
                **as_user,
            )

    def role(self) -> str:
        """What Patroni's REST API calls this member now (`primary`, `replica`, ...)."""
        return str(
            httpx.get(f"http://127.0.0.1:{self.rest_port}/patroni", timeout=1).json()["role"]
        )

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid from its pid file, None when it is not running."""
        with suppress(OSError, ValueError, IndexError):
            return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        return None

    def kill(self) -> None:
        """Node loss: SIGKILL to Patroni and to the postmaster (its backends then exit)."""
        postmaster = self.postmaster_pid()
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        if postmaster is not None:
            with suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)

    def stop(self) -> None:
        """Patroni's own shutdown (it stops PostgreSQL); SIGKILL if that hangs."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            with suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)

    def patronictl(self, *args: str) -> str:
        """Run `patronictl -c <config> ARGS` as the server user; its output."""
        user = unprivileged_user()
        as_user: dict[str, Any] = (
            {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
        )
        result = subprocess.run(
            [str(patroni_venv() / "bin" / "patronictl"), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.folder,
            timeout=60,
            **as_user,
        )
        return result.stdout


def slot_ready(standby_admin_url: str, primary_admin_url: str) -> bool:
    """Whether the standby holds a synced, permanent copy of the subscription's slot.

    A standby snapshot on the primary each poll lets the slot-sync worker finish in about a
    second instead of up to two minutes (replication.md)."""
    query(primary_admin_url, "SELECT pg_log_standby_snapshot()")
    rows = query(
        standby_admin_url,
        "SELECT synced AND NOT temporary FROM pg_replication_slots WHERE slot_name = %s",
        SLOT,
    )
    return rows == [(True,)]


class PatroniCluster:
    """etcd, pg1 and pg2 under Patroni, the read replica (plain) and Valkey."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        names = ("superuser", "replication", "rewind", "rest", "app", "replicator", "redis", "jwt")
        self.passwords = {name: secrets.token_urlsafe(18) for name in names}
        self.etcd = Etcd(folder)
        self.members = {
            name: Member(name, folder, self.etcd.port, self.passwords) for name in ("pg1", "pg2")
        }
        self.replica = EmbeddedPostgres("replica", folder / "replica", free_port(), durable=False)
        self.redis = EmbeddedValkey(
            folder / "redis", free_port(), self.passwords["redis"], durable=False
        )

    def start(self) -> None:
        """pg1 bootstraps and leads, pg2 clones it as its synchronous standby; the schemas,
        roles and the replica's subscription follow, and the slot is synced on pg2."""
        pg1, pg2 = self.members["pg1"], self.members["pg2"]
        pg1.start()
        self.replica.initialize(self.passwords["superuser"])
        self.replica.start()
        self.redis.start()
        wait(lambda: pg1.role() == "primary", "pg1 leads", 120)
        pg2.start()
        self.replica.wait_ready(self.passwords["superuser"])
        self.redis.wait_ready()
        _ensure_database(pg1.admin_url.rsplit("/", 1)[0] + "/postgres")
        replica_server = self.replica.url(SUPERUSER, self.passwords["superuser"])
        _ensure_database(replica_server)
        # The 5 s default delays the subscription's reconnect after a failover.
        query(replica_server, "ALTER SYSTEM SET wal_retrieve_retry_interval = '200ms'")
        query(replica_server, "SELECT pg_reload_conf()")
        migrate(pg1.admin_url, sql_directory("migrations"))
        migrate(self.replica_admin_url, sql_directory("projections"))
        for url in (pg1.admin_url, self.replica_admin_url):
            _ensure_login_role(url, APP_ROLE, self.passwords["app"], group="inventory_app")
        _ensure_login_role(
            pg1.admin_url,
            REPLICATOR_ROLE,
            self.passwords["replicator"],
            group="inventory_replication",
            replication=True,
        )
        wait(lambda: self.sync_state(pg1, pg2) == "sync", "pg2 a synchronous standby", 120)
        ensure_subscription(self.replica_admin_url, self.subscription_conninfo)
        wait(lambda: slot_ready(pg2.admin_url, pg1.admin_url), "the slot synced on pg2", 120)

    @staticmethod
    def sync_state(primary: Member, standby: Member) -> str | None:
        """pg_stat_replication's sync_state of `standby` as `primary` sees it."""
        rows = query(
            primary.admin_url,
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
            standby.name,
        )
        return str(rows[0][0]) if rows else None

    def _hosts(self) -> str:
        return ",".join(f"127.0.0.1:{member.port}" for member in self.members.values())

    @property
    def replica_admin_url(self) -> str:
        """The read replica as its superuser."""
        return self.replica.url(SUPERUSER, self.passwords["superuser"], DATABASE)

    @property
    def subscription_conninfo(self) -> str:
        """Both members in the key=value form: libpq picks whichever accepts writes."""
        ports = ",".join(str(member.port) for member in self.members.values())
        return (
            f"host=127.0.0.1,127.0.0.1 port={ports} user={REPLICATOR_ROLE} "
            f"password={self.passwords['replicator']} dbname={DATABASE} "
            "target_session_attrs=read-write connect_timeout=3"
        )

    def environment(self) -> dict[str, str]:
        """`INVENTORY_*` for the API, the worker and the CLI: multi-host primary URLs."""
        p = self.passwords
        query_string = "target_session_attrs=read-write&connect_timeout=3"
        return {
            "INVENTORY_HOME": str(self.folder / "home"),
            "INVENTORY_PRIMARY_URL": f"postgresql://{APP_ROLE}:{p['app']}@{self._hosts()}/{DATABASE}?{query_string}",
            "INVENTORY_PRIMARY_ADMIN_URL": f"postgresql://{SUPERUSER}:{p['superuser']}@{self._hosts()}/{DATABASE}?{query_string}",
            "INVENTORY_REPLICA_URL": self.replica.url(APP_ROLE, p["app"], DATABASE),
            "INVENTORY_REPLICA_ADMIN_URL": self.replica_admin_url,
            "INVENTORY_SUBSCRIPTION_CONNINFO": self.subscription_conninfo,
            "INVENTORY_REDIS_URL": self.redis.url,
            "INVENTORY_JWT_SECRET": p["jwt"],
        }

    def leader(self) -> Member | None:
        """The member Patroni made primary, if one is now."""
        for member in self.members.values():
            with suppress(httpx.HTTPError):
                if member.process is not None and member.role() == "primary":
                    return member
        return None

    def set_standby_slots(self, member: Member, slots: str | None) -> None:
        """Name (or stop naming) another member's slot in `member`'s synchronized_standby_slots,
        through its Patroni config and `patronictl reload` (never ALTER SYSTEM: pg_rewind
        would copy that onto a rejoining member)."""
        config = yaml.safe_load(member.config.read_text())
        parameters = config["postgresql"]["parameters"]
        if slots is None:
            parameters.pop("synchronized_standby_slots", None)
        else:
            parameters["synchronized_standby_slots"] = slots
        member.config.write_text(yaml.safe_dump(config))
        member.patronictl("reload", "inventory", member.name, "--force")

    def stop(self) -> None:
        """Stop everything this cluster started."""
        for member in self.members.values():
            member.stop()
        self.replica.stop()
        self.redis.stop()
        self.etcd.stop()


@contextmanager
def patroni_cluster() -> Iterator[PatroniCluster]:
    """A started cluster in a fresh folder the server user can reach; stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="inventory-failover-"))
    folder.chmod(0o755)
    cluster = PatroniCluster(folder)
    try:
        cluster.start()
        yield cluster
    except BaseException:
        for log in sorted(folder.glob("*/*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"--- {log.relative_to(folder)}", *tail, sep="\n")  # noqa: T201
        raise
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def plain_standby(primary: EmbeddedPostgres, password: str, folder: Path) -> EmbeddedPostgres:
    """A streaming standby of `primary` without Patroni, as replication.md's recipe builds
    it: a base backup with its own slot (`standby_slot`), a dbname in primary_conninfo,
    and the settings slot sync needs; started and ready."""
    standby = EmbeddedPostgres("standby", folder / "standby", free_port(), durable=True)
    folder.mkdir(parents=True, exist_ok=True)
    user = unprivileged_user()
    as_user: dict[str, Any] = (
        {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
    )
    if user is not None:
        make_traversable(folder)
        os.chown(folder, *user)
    source = f"host=127.0.0.1 port={primary.port} user={SUPERUSER} dbname={DATABASE}"
    subprocess.run(
        [
            str(postgres_bin() / "pg_basebackup"),
            "-d",
            source,
            "-D",
            str(standby.data_dir),
            "-R",
            "-C",
            "-S",
            "standby_slot",
            "-X",
            "stream",
            "-c",
            "fast",
        ],
        env={**os.environ, "PGPASSWORD": password},
        check=True,
        capture_output=True,
        cwd=folder,
        timeout=120,
        **as_user,
    )
    with (standby.data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write("sync_replication_slots = on\nhot_standby_feedback = on\n")
        conf.write("cluster_name = 'standby'\n")
    standby.start()
    standby.wait_ready(password)
    return standby
