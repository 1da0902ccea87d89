"""Token generations: a token carries the generation it was issued under; a user's current
session accepts it while that generation is current, or when it is the kept token; an
open socket whose token a password change refused closes with 4401."""

from __future__ import annotations

import asyncio

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.security.principal import Principal, Role, TokenSession
from inventory.security.socket_watch import Watched
from inventory.security.tokens import ALGORITHM, InvalidToken, issue_token, verify_token

SECRET = "a signing secret of thirty-two bytes or more"


def test_a_token_names_its_generation() -> None:
    token = issue_token(SECRET, "user-1", 60, generation=7)

    assert verify_token(SECRET, token).generation == 7


def test_a_token_from_before_generations_is_generation_zero() -> None:
    claims = {"iss": "inventory", "sub": "user-1", "iat": 1, "exp": 2**40, "jti": "x"}
    token = jwt.encode(claims, SECRET, algorithm=ALGORITHM)

    assert verify_token(SECRET, token).generation == 0


@pytest.mark.parametrize("generation", ["7", 1.5, True, None, [1]])
def test_a_generation_that_is_not_an_integer_is_refused(generation: object) -> None:
    claims = {"iss": "inventory", "sub": "u", "iat": 1, "exp": 2**40, "jti": "x"}
    token = jwt.encode({**claims, "gen": generation}, SECRET, algorithm=ALGORITHM)

    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


@given(
    current=st.integers(0, 5),
    issued=st.integers(0, 5),
    kept=st.sampled_from(["", "a", "b"]),
    token_id=st.sampled_from(["a", "b"]),
)
def test_a_session_accepts_its_generation_or_its_kept_token(
    current: int, issued: int, kept: str, token_id: str
) -> None:
    accepted = TokenSession(current, kept).accepts(TokenSession(issued, token_id))

    assert accepted == (issued == current or token_id == kept)


def user(session: TokenSession) -> Principal:
    return Principal("u1", "user", "amna", Role.VIEWER, ("*",), "", session)


def verdict(socket: TokenSession, current: TokenSession) -> tuple[int, str] | None:
    async def judge() -> tuple[int, str] | None:
        watched = Watched(user(socket), None, None)
        watched.judge(user(current), now=0.0)
        return watched.verdict.result() if watched.verdict.done() else None

    return asyncio.run(judge())


def test_a_socket_of_a_refused_token_closes_with_4401() -> None:
    outcome = verdict(TokenSession(0, "old"), TokenSession(1, "other"))

    assert outcome is not None and outcome[0] == 4401 and "password" in outcome[1]


def test_the_socket_of_the_token_that_changed_the_password_stays_open() -> None:
    assert verdict(TokenSession(0, "kept"), TokenSession(1, "kept")) is None
    assert verdict(TokenSession(1, "new"), TokenSession(1, "kept")) is None
