"""Pure parts of security: tokens, key shapes, client IPs, scopes, budgets."""

from __future__ import annotations

import time

import jwt
import pytest

from inventory.runtime.settings import ConfigurationError, Settings
from inventory.security import api_keys
from inventory.security.client_ip import client_ip, parse_networks
from inventory.security.context import PrincipalCache
from inventory.security.passwords import hash_password, verify_password
from inventory.security.principal import Principal, Role, check_scope
from inventory.security.ratelimit import Budget, Decision
from inventory.security.tokens import InvalidToken, issue_token, looks_like_jwt, verify_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def test_a_token_names_its_subject_until_it_expires() -> None:
    token = issue_token(SECRET, "user-1", 60, now=1_000_000)

    claims = verify_token(SECRET, token, now=1_000_030)

    assert claims.subject == "user-1"
    assert claims.expires_at == 1_000_060
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token, now=1_000_060)


def test_an_expired_token_is_refused_on_the_real_clock() -> None:
    token = issue_token(SECRET, "user-1", 1, now=time.time() - 10)

    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = issue_token("another-secret-of-sufficient-length-000", "user-1", 60)

    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


def test_a_tampered_payload_breaks_the_signature() -> None:
    header, _, signature = issue_token(SECRET, "user-1", 60).split(".")
    forged = jwt.encode({"sub": "admin", "exp": time.time() + 60}, "x" * 32).split(".")[1]

    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"{header}.{forged}.{signature}")


def test_an_unsigned_token_is_refused() -> None:
    claims = {"iss": "inventory", "sub": "u", "iat": 1, "exp": time.time() + 60, "jti": "j"}
    unsigned = jwt.encode(claims, None, algorithm="none")

    with pytest.raises(InvalidToken):
        verify_token(SECRET, unsigned)


def test_garbage_is_not_a_token() -> None:
    for garbage in ("", "a.b.c", "..", "x" * 5000):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, garbage)


def test_a_key_has_a_visible_prefix_and_parses_back() -> None:
    new = api_keys.generate_key()

    assert new.key.startswith(f"inv_{new.prefix}_")
    assert api_keys.parse_key(new.key) == new.prefix
    assert api_keys.matches(new.key, new.digest)
    assert not api_keys.matches(new.key + "x", new.digest)
    assert not looks_like_jwt(new.key)


@pytest.mark.parametrize(
    "token",
    ["", "inv_", "inv_short_secret", "key_abcdefghij_" + "a" * 43, "inv_ABCDEFGHIJ_" + "a" * 43],
)
def test_keys_of_the_wrong_shape_do_not_parse(token: str) -> None:
    assert api_keys.parse_key(token) is None


def test_two_keys_differ() -> None:
    assert api_keys.generate_key().key != api_keys.generate_key().key


PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "1.2.3.4", "203.0.113.5"),  # an untrusted peer cannot claim an IP
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the forged left entry is ignored
        ("10.0.0.2", "1.2.3.4, 10.0.0.9", "1.2.3.4"),  # two proxies in a row
        ("192.168.1.1", "2001:db8::1", "2001:db8::1"),
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),  # only proxies: the leftmost one
        (None, "1.2.3.4", "unknown"),
    ],
)
def test_the_client_ip_comes_from_forwarded_for_only_through_trusted_proxies(
    peer: str | None, forwarded: str | None, expected: str
) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected


def test_scopes_are_checked() -> None:
    assert check_scope(["s1", "s2"]) == []
    assert check_scope(["*"], Role.ADMIN) == []
    assert check_scope([])
    assert check_scope(["*", "s1"])
    assert check_scope(["s1", "s1"])
    assert check_scope(["bad store!"])
    assert check_scope(["s1"], Role.ADMIN)


def test_a_principal_sees_only_its_stores() -> None:
    clerk = Principal("k", "api_key", "pos", Role.CLERK, ("s1",), "127.0.0.1")
    auditor = Principal("a", "user", "ann", Role.AUDITOR, ("*",), "127.0.0.1")

    assert clerk.in_scope("s1") and not clerk.in_scope("s2")
    assert clerk.scoped(None) == ["s1"]
    assert clerk.scoped(["s1", "s2"]) == ["s1"]
    assert auditor.scoped(None) is None
    assert auditor.in_scope("anything")


def test_passwords_verify_and_unknown_users_cost_a_verification() -> None:
    stored = hash_password("correct horse")

    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")
    assert not verify_password(None, "correct horse")


def test_budgets_come_from_the_environment(server_env_minimal: dict[str, str]) -> None:
    settings = Settings.from_env(
        {
            **server_env_minimal,
            "INVENTORY_RATE_LIMIT_CLERK": "50/10",
            "INVENTORY_RATE_LIMIT_LOGIN": "3/60s",
        }
    )

    assert settings.budgets["clerk"] == Budget(50, 10)
    assert settings.budgets["login"] == Budget(3, 60)
    assert settings.budgets["viewer"] == Budget(300, 60)


@pytest.mark.parametrize("raw", ["many", "0/60", "5/0", "5/x"])
def test_a_bad_budget_is_a_configuration_error(
    server_env_minimal: dict[str, str], raw: str
) -> None:
    with pytest.raises(ConfigurationError, match="INVENTORY_RATE_LIMIT_VIEWER"):
        Settings.from_env({**server_env_minimal, "INVENTORY_RATE_LIMIT_VIEWER": raw})


def test_a_bad_trusted_proxy_is_a_configuration_error(server_env_minimal: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="INVENTORY_TRUSTED_PROXIES"):
        Settings.from_env({**server_env_minimal, "INVENTORY_TRUSTED_PROXIES": "10.0.0.0/8,nope"})


def test_decisions_describe_themselves_in_headers() -> None:
    allowed = Decision("clerk", True, 100, 60, 99, 42)
    refused = Decision("login", False, 5, 60, 0, 17)

    assert allowed.headers() == {
        "RateLimit-Policy": '"clerk";q=100;w=60',
        "RateLimit": '"clerk";r=99;t=42',
    }
    assert refused.headers()["Retry-After"] == "17"


@pytest.fixture
def server_env_minimal() -> dict[str, str]:
    return {
        "INVENTORY_PRIMARY_URL": "postgresql://u:p@localhost:5432/db",
        "INVENTORY_REPLICA_URL": "postgresql://u:p@localhost:5433/db",
        "INVENTORY_REDIS_URL": "redis://localhost:6379/0",
    }


def test_a_cached_principal_never_outlives_its_token() -> None:
    cache = PrincipalCache()
    caller = Principal("u", "user", "ann", Role.VIEWER, ("*",), "127.0.0.1")
    cache.put(b"live", caller, 1, None)
    cache.put(b"expired", caller, 1, time.time() - 1)

    live = cache.get(b"live")
    assert live is not None and live.epoch == 1
    assert cache.get(b"expired") is None
