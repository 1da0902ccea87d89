"""The blocking and the asyncio Redis clients read a URL the same way (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.runtime import redis_clients

SENTINELS = "redis+sentinel://:pw@127.0.0.1:26379,[::1]:26380/mymaster/2?sentinel_password=sp"
KEYS = ("host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout")


def shape(client: Any) -> dict[str, Any]:
    """What a client would connect to and with which options, and its sentinels'."""
    pool = client.connection_pool
    found = {"pool": type(pool).__name__, "service": getattr(pool, "service_name", None)}
    found |= {key: pool.connection_kwargs.get(key) for key in KEYS}
    manager = getattr(pool, "sentinel_manager", None)
    found["sentinels"] = [
        {key: sentinel.connection_pool.connection_kwargs.get(key) for key in KEYS}
        for sentinel in (manager.sentinels if manager else [])
    ]
    return found


@pytest.mark.parametrize("url", [SENTINELS, "redis://:pw@127.0.0.1:6379/3"])
def test_both_clients_of_a_url_have_the_same_target_and_options(url: str) -> None:
    options = {"socket_connect_timeout": 5, "socket_timeout": 7}
    assert shape(redis_clients.sync_client(url, **options)) == shape(
        redis_clients.async_client(url, **options)
    )


def test_a_sentinel_url_gives_the_master_its_login_and_the_sentinels_theirs() -> None:
    found = shape(redis_clients.sync_client(SENTINELS, socket_connect_timeout=5))
    assert (found["service"], found["db"], found["password"]) == ("mymaster", 2, "pw")
    assert found["socket_connect_timeout"] == 5
    # A dead sentinel holds a reconnect for at most a second, whatever the caller allows.
    assert [(each["host"], each["port"], each["password"]) for each in found["sentinels"]] == [
        ("127.0.0.1", 26379, "sp"),
        ("::1", 26380, "sp"),
    ]
    assert {each["socket_timeout"] for each in found["sentinels"]} == {1.0}
