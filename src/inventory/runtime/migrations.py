"""Forward-only SQL migrations: numbered files, checksums, one runner at a time."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog
from psycopg import sql

log = structlog.get_logger(__name__)

NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
NO_TRANSACTION = "-- migrate: no-transaction"
CONCURRENT_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"((?:\"[^\"]+\"|[\w$]+)(?:\.(?:\"[^\"]+\"|[\w$]+))?)",
    re.IGNORECASE,
)
INVALID_INDEX = """
SELECT i.indexrelid::regclass::text FROM pg_index AS i
WHERE i.indexrelid = to_regclass(%s) AND NOT i.indisvalid
"""
# One advisory lock key for every runner of this project, on whichever database.
LOCK_KEY = 0x1E7E_0001
SUBSCRIPTION = "inventory_events"
PUBLICATION = "inventory_events"


class MigrationError(Exception):
    """The database's schema history disagrees with the migration files."""


@dataclass(frozen=True)
class Migration:
    """One SQL file and its checksum."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def sql_directory(kind: str) -> Path:
    """`migrations/` or `projections/`, from an installed wheel or a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_sql" / kind
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[3] / kind
    if source.is_dir():
        return source
    raise MigrationError(f"cannot find the {kind}/ directory")


def load(directory: Path) -> list[Migration]:
    """The migrations in `directory`, in order; a misnamed .sql file is an error."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        if not NAME.match(path.name):
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(path.name, path.read_text()))
    return found


def migrate(url: str, directory: Path, *, lock_timeout: float = 300.0) -> list[str]:
    """Apply the pending migrations of `directory` to the database at `url`.

    Any number of processes may run this at once: they queue on an advisory lock taken
    by polling on an autocommit session (never inside a transaction, so a migration
    using CREATE INDEX CONCURRENTLY cannot deadlock against a waiting runner), and each
    re-reads the ledger once it holds the lock. Returns the names applied by this call.
    """
    migrations = load(directory)
    with psycopg.connect(url, autocommit=True) as conn:
        _lock(conn, lock_timeout)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute("SELECT name, checksum FROM schema_migrations").fetchall()
            applied: dict[str, str] = {str(name): str(checksum) for name, checksum in rows}
            done = []
            for migration in migrations:
                if migration.name in applied:
                    if applied[migration.name] != migration.checksum:
                        raise MigrationError(
                            f"{migration.name} was edited after it was applied; "
                            "write a new migration instead"
                        )
                    continue
                _apply(conn, migration)
                done.append(migration.name)
            return done
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _lock(conn: psycopg.Connection[tuple[object, ...]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if row is not None and row[0]:
            return
        if time.monotonic() > deadline:
            raise MigrationError(f"another migration held the lock for over {timeout:.0f} s")
        time.sleep(0.1)


def _apply(conn: psycopg.Connection[tuple[object, ...]], migration: Migration) -> None:
    log.info("applying migration", migration=migration.name)
    record = "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)"
    if migration.sql.startswith(NO_TRANSACTION):
        _drop_invalid_indexes(conn, migration)
        conn.execute(migration.sql.encode())
        conn.execute(record, (migration.name, migration.checksum))
        return
    with conn.transaction():
        conn.execute(migration.sql.encode())
        conn.execute(record, (migration.name, migration.checksum))


def _drop_invalid_indexes(
    conn: psycopg.Connection[tuple[object, ...]], migration: Migration
) -> None:
    """Drop what an interrupted CREATE INDEX CONCURRENTLY of this migration left: an
    INVALID index of the name it builds. Rerun, the build would otherwise fail on the
    name, or skip it (IF NOT EXISTS) and leave an index that is kept up to date but
    never used, nor enforces its uniqueness."""
    code = "\n".join(line.split("--", 1)[0] for line in migration.sql.splitlines())
    for name in CONCURRENT_INDEX.findall(code):
        row = conn.execute(INVALID_INDEX, (name,)).fetchone()
        if row is not None:
            log.warning("dropping an invalid index an interrupted build left", index=row[0])
            conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.SQL(str(row[0])))
            )


def ensure_subscription(replica_admin_url: str, conninfo: str, name: str = SUBSCRIPTION) -> None:
    """Create the replica's subscription to the primary's events, or bring it up to date.

    CREATE SUBSCRIPTION cannot run in a transaction block, hence autocommit. The
    connection string is updated in place when the primary moved (a new port). The slot
    is a failover slot (PostgreSQL 17+): a primary's standby keeps a synced copy, so the
    replica's place in the stream survives a promotion (docs/operations.md, primary loss).
    """
    subscription = sql.Identifier(name)
    with psycopg.connect(replica_admin_url, autocommit=True) as conn:
        _lock(conn, 300.0)
        try:
            row = conn.execute(
                "SELECT subconninfo, subenabled, subfailover FROM pg_subscription"
                " WHERE subname = %s",
                (name,),
            ).fetchone()
            if row is None:
                log.info("creating the subscription to the primary's events")
                conn.execute(
                    sql.SQL(
                        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}"
                        " WITH (streaming = off, failover = true)"
                    ).format(subscription, sql.Literal(conninfo), sql.Identifier(PUBLICATION))
                )
                order_initial_copy(conn, name)
                return
            if row[0] != conninfo:
                conn.execute(
                    sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(
                        subscription, sql.Literal(conninfo)
                    )
                )
            if not row[2]:
                make_failover(conn, name)
            elif not row[1]:
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(subscription))
            order_initial_copy(conn, name)  # a no-op once done; finishes an interrupted one
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def make_failover(
    conn: psycopg.Connection[tuple[object, ...]], name: str, timeout: float = 60.0
) -> None:
    """Turn an older subscription's slot into a failover slot: DISABLE, SET, ENABLE.

    SET (failover) alters the slot on the primary, which refuses while the apply worker
    that DISABLE just stopped still holds it: retried until the slot is free.
    """
    subscription = sql.Identifier(name)
    log.info("making the subscription's slot a failover slot", subscription=name)
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(subscription))
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                conn.execute(
                    sql.SQL("ALTER SUBSCRIPTION {} SET (failover = true)").format(subscription)
                )
                break
            except (psycopg.errors.ObjectInUse, psycopg.errors.ProtocolViolation):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(subscription))


SYNC_PENDING = """
SELECT count(*) FROM pg_subscription_rel AS r JOIN pg_subscription AS s ON s.oid = r.srsubid
WHERE s.subname = %s AND r.srsubstate <> 'r'
"""
# The initial copy's rows are those the table-sync transaction wrote: the xmin of the row
# with the lowest seq. Their seqs are handed out again in position order (positions of
# one stream rise with its versions; the copy precedes every streamed row, so only the
# copied rows' order among themselves is wrong). seq is GENERATED ALWAYS: made BY DEFAULT
# for the swap, through negative values because its unique index is checked row by row.
ORDER_COPY = """
CREATE TEMP TABLE copied ON COMMIT DROP AS
    SELECT position, seq FROM events WHERE xmin = (SELECT xmin FROM events ORDER BY seq LIMIT 1);
CREATE TEMP TABLE renumbered ON COMMIT DROP AS
    SELECT p.position, s.seq
    FROM (SELECT position, row_number() OVER (ORDER BY position) AS n FROM copied) AS p
    JOIN (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM copied) AS s USING (n);
ALTER TABLE events ALTER COLUMN seq SET GENERATED BY DEFAULT;
UPDATE events AS e SET seq = -r.seq FROM renumbered AS r
    WHERE e.position = r.position AND e.seq <> r.seq;
UPDATE events SET seq = -seq WHERE seq < 0;
ALTER TABLE events ALTER COLUMN seq SET GENERATED ALWAYS;
"""


def order_initial_copy(
    conn: psycopg.Connection[tuple[object, ...]], name: str, timeout: float = 3600.0
) -> None:
    """Once per subscription: wait for its initial copy, then put the copied events in
    position order (the copy reads the primary's heap in physical order, where concurrent
    inserts can place a stream's later version on an earlier page). Runs before any
    projector reads the copy: `inventory migrate` / `inventory dev` start workers after it.
    """
    done = conn.execute("SELECT 1 FROM initial_copies WHERE subscription = %s", (name,))
    if done.fetchone() is not None:
        return
    deadline = time.monotonic() + timeout
    while (pending := conn.execute(SYNC_PENDING, (name,)).fetchone()) and pending[0]:
        if time.monotonic() > deadline:
            raise MigrationError(f"the initial copy of {name} took over {timeout:.0f} s")
        time.sleep(0.1)
    with conn.transaction():
        # The apply worker waits here; it runs as a replication session, the copy's guard
        # trigger lets this one through the same way.
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(ORDER_COPY.encode())
        counted = conn.execute("SELECT count(*) FROM copied").fetchone()
        rows = counted[0] if counted and isinstance(counted[0], int) else 0
        conn.execute(
            "INSERT INTO initial_copies (subscription, rows) VALUES (%s, %s)", (name, rows)
        )
    log.info("initial copy in position order", subscription=name, events=rows)


def migrate_all(
    primary_admin_url: str, replica_admin_url: str, subscription_conninfo: str
) -> dict[str, list[str]]:
    """The primary's migrations, the replica's projections schema, then the subscription."""
    applied = {
        "primary": migrate(primary_admin_url, sql_directory("migrations")),
        "replica": migrate(replica_admin_url, sql_directory("projections")),
    }
    ensure_subscription(replica_admin_url, subscription_conninfo)
    return applied
