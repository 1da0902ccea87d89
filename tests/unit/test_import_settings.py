"""INVENTORY_IMPORT_STALL_SECONDS (like every whole-number setting): 0 to 2^31 - 1, read as
at least 1 second; anything else is refused before the worker starts."""

from __future__ import annotations

import pytest

from inventory.runtime.settings import ConfigurationError, Settings

SERVERS = {
    "INVENTORY_PRIMARY_URL": "postgresql://app@127.0.0.1:5432/inventory",
    "INVENTORY_REPLICA_URL": "postgresql://app@127.0.0.1:5433/inventory",
    "INVENTORY_REDIS_URL": "redis://127.0.0.1:6379/0",
}


@pytest.mark.parametrize("value", ["abc", "10" + "0" * 999, "2147483648", "-5", "60\x00", "1e3"])
def test_a_stall_that_is_not_a_whole_number_in_range_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="INVENTORY_IMPORT_STALL_SECONDS"):
        Settings.from_env({**SERVERS, "INVENTORY_IMPORT_STALL_SECONDS": value})


@pytest.mark.parametrize(("value", "seconds"), [("", 60.0), ("90", 90.0), ("0", 1.0)])
def test_the_stall_defaults_to_a_minute_and_is_never_below_a_second(
    value: str, seconds: float
) -> None:
    settings = Settings.from_env({**SERVERS, "INVENTORY_IMPORT_STALL_SECONDS": value})
    assert settings.import_stall_seconds == seconds


@pytest.mark.parametrize(
    "name", ["INVENTORY_IMPORT_RETENTION_DAYS", "INVENTORY_SESSION_MAX_SECONDS"]
)
@pytest.mark.parametrize("value", ["abc", "10" + "0" * 999, "2147483648", "-5", "60\x00", "1e3"])
def test_the_retention_and_session_length_refuse_the_same_worst_values(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({**SERVERS, name: value})
