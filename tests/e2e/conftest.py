"""Fixtures the end-to-end files share: the module's API process (with a worker when the
module asks for one) and an admin's key and clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, api_servers
from tests.e2e.reading import Client, Pos
from tests.e2e.window_setup import api_with_worker


def module_name(request: pytest.FixtureRequest) -> str:
    """The test module's own name (`test_reports`), for its folders and keys."""
    return str(request.module.__name__).rsplit(".", 1)[-1]


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest,
    server_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    """One API process for the module's tests, on a fresh Redis namespace. A module's
    `API_ENV` adds variables (rate budgets); `API_WORKER = True` starts a worker on the
    same namespace first, for tests that read what the projectors wrote."""
    folder = Path(tmp_path_factory.mktemp(module_name(request)))
    extra: dict[str, str] = dict(getattr(request.module, "API_ENV", {}))
    if getattr(request.module, "API_WORKER", False):
        with api_with_worker(server_env, folder, **extra) as served:
            yield served
    else:
        with api_servers(server_env, folder, count=1, **extra) as apis:
            yield apis[0]


@pytest.fixture(scope="module")
def admin_key(request: pytest.FixtureRequest, settings: Settings) -> str:
    """A new API key of an admin over every store, named after the module."""
    return api_key(settings, Role.ADMIN, ["*"], f"{module_name(request)} admin")


@pytest.fixture(scope="module")
def admin(api: ApiServer, admin_key: str) -> Client:
    """The module's API as its admin."""
    return Client(api, admin_key)


@pytest.fixture(scope="module")
def pos(api: ApiServer, admin_key: str) -> Pos:
    """The module's API as its admin, keyed per call as a till sends commands."""
    return Pos(api, admin_key)
