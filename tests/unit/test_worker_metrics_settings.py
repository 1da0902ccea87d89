"""The worker's metrics listener refuses a port no socket can have, before anything starts."""

from __future__ import annotations

import pytest

from inventory.runtime.settings import ConfigurationError, Settings

SERVERS = {
    "INVENTORY_PRIMARY_URL": "postgresql://app@127.0.0.1:5432/inventory",
    "INVENTORY_REPLICA_URL": "postgresql://app@127.0.0.1:5433/inventory",
    "INVENTORY_REDIS_URL": "redis://127.0.0.1:6379/0",
}


@pytest.mark.parametrize("port", ["-1", "65536", "10" + "0" * 999, "9310\x00", "nine", "1e3"])
def test_a_worker_metrics_port_out_of_range_is_a_configuration_error(port: str) -> None:
    with pytest.raises(ConfigurationError, match="INVENTORY_WORKER_METRICS_PORT"):
        Settings.from_env({**SERVERS, "INVENTORY_WORKER_METRICS_PORT": port})


def test_port_zero_turns_the_listener_off_and_empty_means_the_default() -> None:
    assert (
        Settings.from_env({**SERVERS, "INVENTORY_WORKER_METRICS_PORT": "0"}).worker_metrics_port
        == 0
    )
    assert (
        Settings.from_env({**SERVERS, "INVENTORY_WORKER_METRICS_PORT": ""}).worker_metrics_port
        == 9310
    )


@pytest.mark.parametrize(
    ("host", "bound"),
    [
        ("0.0.0.0", "0.0.0.0"),  # noqa: S104 - the setting's documented "every interface"
        ("::1", "::1"),
        ("[::1]", "::1"),
        (" 10.1.2.3 ", "10.1.2.3"),
        ("worker-1.internal", "worker-1.internal"),
        ("localhost", "localhost"),
        ("", "127.0.0.1"),
        ("   ", "127.0.0.1"),
    ],
)
def test_a_worker_metrics_host_is_an_address_or_a_host_name(host: str, bound: str) -> None:
    settings = Settings.from_env({**SERVERS, "INVENTORY_WORKER_METRICS_HOST": host})
    assert settings.worker_metrics_host == bound


SECRET = "s3cret-Pa55word"  # a password that must never be echoed


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1\x00",
        "10.0.0.300",
        "http://127.0.0.1",
        "127.0.0.1:9310",
        "-worker",
        "bad_host",
        "a b",
        "x" * 1_000_000,
        "'; DROP TABLE events; --",
        f"app:{SECRET}@127.0.0.1",
        "é.example",
    ],
)
def test_a_bad_worker_metrics_host_is_refused_naming_the_variable(host: str) -> None:
    env = {
        **SERVERS,
        "INVENTORY_PRIMARY_URL": f"postgresql://app:{SECRET}@127.0.0.1:5432/inventory",
        "INVENTORY_WORKER_METRICS_HOST": host,
    }
    with pytest.raises(ConfigurationError, match="INVENTORY_WORKER_METRICS_HOST") as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert len(message) < 300
    assert SECRET not in message
