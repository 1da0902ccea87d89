"""Webhook pieces without servers: the SSRF rules, signatures as `standardwebhooks` checks
them, the retry schedule and message ids."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from inventory.webhooks import delivery, messages, signing
from inventory.webhooks.targets import TargetRefused, networks, parse, pin, refusal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2001:db8::1",
    ],
)
def test_every_non_public_address_is_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) is None


def test_an_allowed_network_lets_its_addresses_through_and_no_others() -> None:
    allowed = networks(["127.0.0.0/8"])
    assert refusal(ipaddress.ip_address("127.0.0.2"), allowed) is None
    assert refusal(ipaddress.ip_address("::1"), allowed) is not None
    assert refusal(ipaddress.ip_address("169.254.169.254"), allowed) == "a cloud metadata address"


def test_a_name_resolving_to_loopback_is_refused_and_pinned_when_allowed() -> None:
    with pytest.raises(TargetRefused) as refused:
        pin(parse("http://localhost:9/hook"), ())
    assert refused.value.code == "unsafe_webhook_target"
    pinned = pin(parse("http://localhost:9/hook?a=1"), networks(["127.0.0.0/8", "::1/128"]))
    assert pinned.address in ("127.0.0.1", "::1")
    assert (pinned.target.host, pinned.target.port, pinned.target.path) == (
        "localhost",
        9,
        "/hook?a=1",
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://a.example/", "http://u:p@a.example/", "http://:80/", "javascript:x", "http://a b/"],
)
def test_urls_other_than_plain_http_or_https_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        parse(url)
    assert refused.value.code == "invalid_webhook_url"


def test_standardwebhooks_verifies_every_signature_of_a_rotation() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = messages.body("stock.sold", datetime.now(UTC), {"seq": 1}).encode()
    now = int(time.time())
    header = signing.signature_header([new, old], "msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "stock.sold"
    assert header.split(" ")[0] == Webhook(new).sign(
        "msg_1", datetime.fromtimestamp(now, UTC), body.decode()
    )


def test_retries_double_from_five_seconds_with_jitter_up_to_six_hours() -> None:
    for attempts in range(1, 40):
        ceiling = min(5 * 2 ** (attempts - 1), 6 * 3600)
        assert ceiling / 2 <= delivery.backoff(attempts) <= ceiling


def test_a_messages_id_depends_only_on_its_subscription_and_place() -> None:
    subscription = "0b7f6a52-8a1e-4d0c-9d43-5f2a3e1c9b10"
    assert messages.message_id(subscription, 42, 0) == "msg_0b7f6a528a1e4d0c9d435f2a3e1c9b10_42"
    assert messages.message_id(subscription, 42, 2).endswith("_42_2")
