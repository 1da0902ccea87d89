"""The deploy tests' stack: the shipped nginx config in front of two API processes and a
worker on the session's embedded servers."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.edge import Nginx
from tests.e2e.api_servers import ApiServer, api_servers
from tests.e2e.reading import start_worker


@dataclass
class Stack:
    """nginx, the two API processes behind it, and where everything logs."""

    nginx: Nginx
    apis: list[ApiServer]
    folder: Path
    secrets: list[str] = field(default_factory=list)

    def app_log_text(self) -> str:
        """Everything the API processes and the worker wrote."""
        return "\n".join(path.read_text(errors="replace") for path in self.folder.glob("*.log"))


@pytest.fixture(scope="module")
def stack(server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The edge as an operator runs it; the APIs trust only nginx's address (loopback)."""
    folder = Path(tmp_path_factory.mktemp("deploy"))
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(server_env, namespace, folder / "worker.log")
    nginx: Nginx | None = None
    try:
        with api_servers(
            server_env,
            folder,
            count=2,
            INVENTORY_REDIS_NAMESPACE=namespace,
            INVENTORY_TRUSTED_PROXIES="127.0.0.1",
        ) as apis:
            nginx = Nginx([api.port for api in apis])
            nginx.start()
            yield Stack(nginx, apis, folder)
    finally:
        if nginx is not None:
            nginx.stop()
            shutil.rmtree(nginx.folder, ignore_errors=True)
        worker.terminate()
        worker.wait(30)
