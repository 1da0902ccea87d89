"""No credential survives into a log line: query values, headers and secret shapes."""

from __future__ import annotations

import io
import json
import logging
import string
import sys
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from inventory.runtime.logging import configure_logging
from inventory.runtime.redaction import REDACTED, scrub_event, scrub_text
from inventory.security.api_keys import generate_key
from inventory.security.passwords import hash_password
from inventory.security.tokens import issue_token

SECRET_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=8)
QUERY_NAMES = st.sampled_from(["token", "access_token", "key", "api_key", "password", "TOKEN"])


@given(name=QUERY_NAMES, value=SECRET_TEXT, before=st.sampled_from(["", "stores=s1&"]))
def test_a_credential_query_value_is_redacted_wherever_it_stands(
    name: str, value: str, before: str
) -> None:
    line = f'127.0.0.1:5 - "WebSocket /v1/feed?{before}{name}={value}&after=3" [accepted]'

    scrubbed = scrub_text(line)

    assert value not in scrubbed.split(f"{name}=", 1)[1].split("&", 1)[0] or value == REDACTED
    assert f"{name}={REDACTED}&after=3" in scrubbed


def test_keys_tokens_hashes_bearer_values_and_subprotocols_are_redacted() -> None:
    key = generate_key().key
    jwt = issue_token("s" * 32, "2f1e0c1e-0000-4000-8000-000000000000", 60)
    hashed = hash_password("a long enough password")
    url = "postgresql://inventory_app:db-secret@127.0.0.1:5432/inventory"
    webhook = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    line = f"key {key} jwt {jwt} hash {hashed} Bearer opaque-xyz bearer.opaque-abc {url} {webhook}"

    scrubbed = scrub_text(line)

    for secret in (key, jwt, hashed, "opaque-xyz", "opaque-abc", "db-secret", webhook):
        assert secret not in scrubbed
    assert "Bearer [REDACTED]" in scrubbed and "bearer.[REDACTED]" in scrubbed
    assert "postgresql://inventory_app:[REDACTED]@127.0.0.1:5432/inventory" in scrubbed


@given(
    name=st.sampled_from(
        ["Authorization", "cookie", "Set-Cookie", "proxy-authorization", "sec-websocket-protocol"]
    ),
    value=SECRET_TEXT,
)
def test_a_credential_headers_value_is_redacted_as_websockets_logs_it(
    name: str, value: str
) -> None:
    scrubbed = scrub_text(f"< {name}: session={value}; theme=dark")

    assert scrubbed == f"< {name}: {REDACTED}"


def test_values_under_secret_keys_are_dropped_in_nested_structures() -> None:
    event = {
        "event": "request",
        "password": "hunter2-hunter2",
        "headers": {"Authorization": "x", "Cookie": "c", "Sec-WebSocket-Protocol": "p"},
        "items": [{"new_password": "swordfish-fish"}],
    }

    scrubbed = scrub_event(None, "info", event)

    assert "hunter2" not in repr(scrubbed) and "swordfish" not in repr(scrubbed)
    assert scrubbed["headers"] == {
        "Authorization": REDACTED,
        "Cookie": REDACTED,
        "Sec-WebSocket-Protocol": REDACTED,
    }


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the process would write to stderr, logging configured as `inventory` does."""
    output = io.StringIO()
    monkeypatch.setattr(sys, "stderr", output)
    configure_logging("INFO", json=True)
    yield output
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


def test_uvicorns_websocket_line_and_an_exception_reach_stderr_scrubbed(
    stderr: io.StringIO,
) -> None:
    key = generate_key().key
    # uvicorn logs the handshake's path with its query string (websockets_sansio_impl).
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:1", f"/v1/feed?token={key}"
    )
    try:
        int(f"bad credentials {key}")
    except ValueError:
        structlog.get_logger("test").exception("failed", authorization=f"Bearer {key}")

    err = stderr.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]

    assert len(lines) == 2
    assert key not in err
    assert "token=[REDACTED]" in lines[0]["event"]
