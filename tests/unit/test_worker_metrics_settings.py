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
