"""Multi-host primary URLs in the settings, and the manual failover's new conninfo."""

from __future__ import annotations

import pytest

from inventory.runtime.failover import new_conninfo
from inventory.runtime.settings import ConfigurationError, Settings, redact

BASE = {
    "INVENTORY_REPLICA_URL": "postgresql://u:p@replica:5432/db",
    "INVENTORY_REDIS_URL": "redis://r:6379/0",
}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db1:5432,db2:5432/inventory?target_session_attrs=read-write",
        "postgresql://u:p@db1,db2/inventory?target_session_attrs=read-write&connect_timeout=3",
        "postgresql://u:p@[::1]:5432,db2:5433/inventory",
        "host=db1,db2 port=5432,5433 user=u password=p dbname=inventory"
        " target_session_attrs=read-write",
        "host=db1,db2 port=5432 user=u dbname=inventory",
    ],
)
def test_a_primary_may_be_listed_with_its_standby(url: str) -> None:
    settings = Settings.from_env(
        {**BASE, "INVENTORY_PRIMARY_URL": url, "INVENTORY_SUBSCRIPTION_CONNINFO": url}
    )
    assert settings.primary_url == url
    assert settings.subscription_conninfo == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db1:5432,db2:x/inventory",
        "postgresql://u:p@db1:5432,:5432/inventory",
        "postgresql://u:p@db1:70000/inventory",
        "host=db1,db2 port=1,2,3 dbname=inventory",
        "host=db1 port=five dbname=inventory",
        "dbname=inventory",
        "not a conninfo at all",
        "mysql://u:p@db1/inventory",
    ],
)
def test_a_bad_host_list_fails_at_start_up_without_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(
            {**BASE, "INVENTORY_PRIMARY_URL": url + " password=secret" if "=" in url else url}
        )
    assert "secret" not in str(raised.value)


def test_redact_hides_the_password_in_both_forms() -> None:
    assert redact("postgresql://u:s3cret@db1,db2/x") == "postgresql://u:***@db1,db2/x"
    assert "s3cret" not in redact("host=db1 password='s3 cret' user=u")
    assert "s3cret" not in redact("host=db1 password=s3cret user=u")


def test_the_subscription_is_aimed_at_the_standby_unless_it_already_lists_it() -> None:
    single = "host=db1 port=5432 user=inventory_replicator password=p dbname=inventory"
    aimed = new_conninfo(single, "postgresql://postgres:x@db2:5433/inventory")
    assert aimed is not None
    assert "host=db2" in aimed and "port=5433" in aimed and "user=inventory_replicator" in aimed
    both = "host=db1,db2 port=5432,5433 user=r dbname=inventory target_session_attrs=read-write"
    assert new_conninfo(both, "postgresql://postgres:x@db2:5433/inventory") is None
    assert (
        new_conninfo(
            both.replace(" target_session_attrs=read-write", ""),
            "postgresql://postgres:x@db2:5433/inventory",
        )
        is not None
    )
