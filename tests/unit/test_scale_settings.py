"""The settings for more than one box: multi-host read URLs, Sentinel URLs, PgBouncer mode,
the rate limiter's policy without Redis and the standby lag allowance."""

from __future__ import annotations

import pytest

from inventory.runtime import redis_clients
from inventory.runtime.redis_clients import SentinelTarget, parse_sentinel
from inventory.runtime.settings import ConfigurationError, Settings

BASE = {
    "INVENTORY_PRIMARY_URL": "postgresql://inventory:app@db1:5432/inventory",
    "INVENTORY_REPLICA_URL": "postgresql://inventory:app@db2:5432/inventory",
    "INVENTORY_REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
}


def settings(**extra: str) -> Settings:
    return Settings.from_env({**BASE, **extra})


def test_the_read_url_defaults_to_the_replica_and_the_direct_url_to_the_primary() -> None:
    found = settings()
    assert found.read_url == BASE["INVENTORY_REPLICA_URL"]
    assert found.primary_direct_url == BASE["INVENTORY_PRIMARY_URL"]
    assert not found.pgbouncer
    assert found.rate_limit_fail_open
    assert found.max_standby_lag_seconds == 30.0


def test_a_read_url_may_list_several_hosts_in_libpq_form() -> None:
    url = "postgresql://inventory:app@r1:5432,r2:5433,db2/inventory?load_balance_hosts=random"
    assert settings(INVENTORY_READ_URL=url).read_url == url
    keywords = "host=r1,r2 port=5432,5433 dbname=inventory user=inventory"
    assert settings(INVENTORY_READ_URL=keywords).read_url == keywords


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://inventory:secret@r1:5432,r2:99999/inventory",
        "postgresql://inventory:secret@r1:5432,,r2/inventory",
        "host=r1,r2,r3 port=1,2 password=secret",
        "postgresql://inventory:secret@r1/inventory?load_balance_hosts=sometimes&bogus=1",
        "not a url password=secret",
    ],
)
def test_a_bad_read_url_is_refused_without_showing_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="INVENTORY_READ_URL") as refused:
        settings(INVENTORY_READ_URL=url)
    assert "secret" not in str(refused.value)


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    url = "redis+sentinel://:pw@s1:26379,s2:26380,[::1]:26381/inventory-redis/2"
    assert parse_sentinel(url) == SentinelTarget(
        sentinels=(("s1", 26379), ("s2", 26380), ("::1", 26381)),
        service="inventory-redis",
        db=2,
        password="pw",
    )
    assert settings(INVENTORY_REDIS_URL=url).redis_url == url


def test_a_sentinel_without_a_port_is_on_sentinels_port_and_may_have_its_own_password() -> None:
    target = parse_sentinel("redis+sentinel://app:pw@s1/main?sentinel_password=sp")
    assert target.sentinels == (("s1", 26379),)
    assert (target.username, target.password, target.sentinel_password) == ("app", "pw", "sp")
    assert target.db == 0


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:secret@s1:26379/",
        "redis+sentinel://:secret@s1:26379/name/db/extra",
        "redis+sentinel://:secret@s1:26379/name/zero",
        "redis+sentinel://:secret@s1:port/name",
        "redis+sentinel://:secret@s1:26379,/name",
        "redis+sentinel://:secret@s1:26379/name?retries=3",
        "http://:secret@s1:6379/0",
    ],
)
def test_a_bad_redis_url_is_refused_without_showing_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="INVENTORY_REDIS_URL") as refused:
        settings(INVENTORY_REDIS_URL=url)
    assert "secret" not in str(refused.value)


def test_a_plain_redis_url_gives_a_plain_client() -> None:
    client = redis_clients.sync_client("redis://127.0.0.1:1/0")
    assert client.connection_pool.connection_kwargs["port"] == 1
    client.close()


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("0", False), ("off", False)]
)
def test_pgbouncer_mode_reads_yes_and_no(raw: str, expected: bool) -> None:
    assert settings(INVENTORY_PGBOUNCER=raw).pgbouncer is expected


@pytest.mark.parametrize(
    "extra",
    [
        {"INVENTORY_PGBOUNCER": "maybe"},
        {"INVENTORY_RATE_LIMIT_WITHOUT_REDIS": "ajar"},
        {"INVENTORY_MAX_STANDBY_LAG_SECONDS": "0"},
        {"INVENTORY_MAX_STANDBY_LAG_SECONDS": "inf"},
        {"INVENTORY_MAX_STANDBY_LAG_SECONDS": "soon"},
    ],
)
def test_a_bad_switch_or_allowance_is_refused_by_name(extra: dict[str, str]) -> None:
    (name,) = extra
    with pytest.raises(ConfigurationError, match=name):
        settings(**extra)


def test_the_limiter_may_fail_closed_and_the_allowance_may_be_a_fraction() -> None:
    found = settings(
        INVENTORY_RATE_LIMIT_WITHOUT_REDIS="closed", INVENTORY_MAX_STANDBY_LAG_SECONDS="2.5"
    )
    assert not found.rate_limit_fail_open
    assert found.max_standby_lag_seconds == 2.5
