"""An open socket's verdict when its principal changes: 4401 gone or expired, 4403 when
its role or scope no longer covers what it watches, open otherwise."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from inventory.security.policy import POLICY, RouteClass
from inventory.security.principal import ALL_STORES, Principal, Role
from inventory.security.socket_watch import Watched

STORES = st.sets(st.sampled_from(["s1", "s2", "s3", "s4"]), min_size=1)
SCOPES = STORES.map(sorted) | st.just([ALL_STORES])
WATCHED = STORES.map(frozenset) | st.none()


def principal(role: Role, stores: list[str]) -> Principal:
    return Principal("7", "api_key", "k", role, tuple(stores), "127.0.0.1")


def verdict(
    watched_stores: frozenset[str] | None,
    current: Principal | None,
    expires_in: float | None = None,
) -> tuple[int, str] | None:
    async def judge() -> tuple[int, str] | None:
        expires_at = None if expires_in is None else 1000.0 + expires_in
        watched = Watched(principal(Role.VIEWER, [ALL_STORES]), watched_stores, expires_at)
        watched.judge(current, now=1000.0)
        return watched.verdict.result() if watched.verdict.done() else None

    return asyncio.run(judge())


@given(watched=WATCHED, role=st.sampled_from(list(Role)), scope=SCOPES)
def test_a_socket_stays_open_exactly_while_the_principal_may_watch_what_it_watches(
    watched: frozenset[str] | None, role: Role, scope: list[str]
) -> None:
    current = principal(role, scope)
    covers = ALL_STORES in scope or (watched is not None and watched <= set(scope))

    outcome = verdict(watched, current)

    if role in POLICY[RouteClass.FEED] and covers:
        assert outcome is None
    else:
        assert outcome is not None and outcome[0] == 4403


@given(watched=WATCHED, expires_in=st.floats(-100, 0) | st.none())
def test_a_gone_principal_or_an_expired_token_closes_with_4401(
    watched: frozenset[str] | None, expires_in: float | None
) -> None:
    outcome = verdict(watched, None, expires_in)
    assert outcome is not None and outcome[0] == 4401


@given(watched=WATCHED, expires_in=st.floats(-100, 0))
def test_an_expired_token_closes_with_4401_even_if_the_user_is_fine(
    watched: frozenset[str] | None, expires_in: float
) -> None:
    outcome = verdict(watched, principal(Role.ADMIN, [ALL_STORES]), expires_in)
    assert outcome is not None and outcome[0] == 4401
