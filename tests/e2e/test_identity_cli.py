"""`inventory users` and `inventory keys`: bootstrapping identities from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.api_servers import ApiServer, api_servers, bearer
from tests.e2e.processes import inventory

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with api_servers(server_env, Path(tmp_path_factory.mktemp("cli")), count=1) as (server,):
        yield server


def with_stdin(env: dict[str, str], text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inventory", *args],
        env={**os.environ, **env},
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_user_created_from_stdin_can_log_in(server_env: dict[str, str], api: ApiServer) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = with_stdin(
        server_env,
        "a password from stdin\n",
        "users",
        "create",
        name,
        "--role",
        "manager",
        "--stores",
        "s1,s2",
        "--password-stdin",
    )

    assert created.returncode == 0, created.stderr
    assert "a password from stdin" not in created.stdout + created.stderr
    token = httpx.post(
        f"{api.base_url}/v1/auth/token",
        json={"username": name, "password": "a password from stdin"},
    ).json()["access_token"]
    me = httpx.get(f"{api.base_url}/v1/me", headers=bearer(token)).json()
    assert me["role"] == "manager" and me["stores"] == ["s1", "s2"]

    again = with_stdin(
        server_env,
        "a password from stdin\n",
        "users",
        "create",
        name,
        "--role",
        "viewer",
        "--password-stdin",
    )
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_password_is_never_taken_from_argv_nor_without_a_terminal(
    server_env: dict[str, str],
) -> None:
    in_argv = inventory(
        "users", "create", "x", "--role", "viewer", "--password", "p", env=server_env
    )
    no_terminal = with_stdin(server_env, "", "users", "create", "nobody", "--role", "viewer")
    too_short = with_stdin(
        server_env, "short\n", "users", "create", "nobody", "--role", "viewer", "--password-stdin"
    )

    assert in_argv.returncode == 2
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    assert too_short.returncode == 2 and "at least" in too_short.stderr


def test_a_key_is_printed_once_and_revoked_from_the_command_line(
    server_env: dict[str, str], api: ApiServer
) -> None:
    created = inventory("keys", "create", "till 9", "--role", "clerk", env=server_env)
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split()[3]
    key = created.stdout.strip().splitlines()[-1]
    assert httpx.get(f"{api.base_url}/v1/me", headers=bearer(key)).json()["id"] == key_id

    # The CLI tells API processes through Redis, under their namespace.
    namespace = {"INVENTORY_REDIS_NAMESPACE": api.env["INVENTORY_REDIS_NAMESPACE"]}
    revoked = inventory("keys", "revoke", key_id, env={**server_env, **namespace})

    assert revoked.returncode == 0, revoked.stderr
    assert key not in revoked.stdout
    assert httpx.get(f"{api.base_url}/v1/me", headers=bearer(key)).status_code == 401
    again = inventory("keys", "revoke", key_id, env=server_env)
    assert again.returncode == 2 and "no active API key" in again.stderr


def test_an_admin_key_must_cover_every_store(server_env: dict[str, str]) -> None:
    result = inventory("keys", "create", "x", "--role", "admin", "--stores", "s1", env=server_env)

    assert result.returncode == 2 and "--stores" in result.stderr
