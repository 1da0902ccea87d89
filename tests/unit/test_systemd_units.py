"""The systemd units in ops/systemd: valid for systemd, running commands the CLI accepts,
unprivileged and hardened, stopping no sooner than the app's own shutdown."""

from __future__ import annotations

import ctypes
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from inventory.cli import parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "ops" / "systemd"
INSTALLED = "/opt/inventory/bin/inventory"
SERVICES = ("inventory-api@.service", "inventory-worker.service", "inventory-migrate.service")
LONG_RUNNING = ("inventory-api@.service", "inventory-worker.service")
Unit = dict[str, list[tuple[str, str]]]


def read_unit(path: Path) -> Unit:
    """Sections of (key, value) pairs in order; systemd allows a key more than once."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, equals, value = line.partition("=")
        assert equals and current is not None, f"{path.name}:{number}: not key=value: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: Unit, section: str, key: str) -> list[str]:
    """Every value of `key` in `section`, space-separated lists split."""
    return [word for k, v in unit.get(section, []) if k == key for word in v.split()]


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of `key` in `section`."""
    found = [v for k, v in unit.get(section, []) if k == key]
    assert len(found) == 1, f"{key}= in [{section}]: {found}"
    return found[0]


def seconds(text: str) -> float:
    """A systemd time span like 20s, 1min 30s or 70min, in seconds."""
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+)\s*([a-z]+)", text)
    assert parts, text
    return float(sum(int(n) * units[u] for n, u in parts))


def test_the_shipped_units_are_the_expected_ones() -> None:
    names = sorted(p.name for p in UNITS.iterdir())

    assert names == sorted(
        [*SERVICES, "inventory.target", "inventory.env.example", "migrate.env.example"]
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists: point it at this checkout's script.
    script = Path(sys.executable).parent / "inventory"
    for source in UNITS.glob("inventory*.*"):
        if source.suffix in (".service", ".target"):
            text = source.read_text().replace(INSTALLED, str(script))
            name = source.name.replace("@.", "@8001.")
            (tmp_path / name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())

    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    # verify exits 0 on unknown keys and bad values, but says so on stderr.
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_exec_start_is_a_command_the_cli_accepts(name: str) -> None:
    unit = read_unit(UNITS / name)
    argv = shlex.split(one(unit, "Service", "ExecStart").replace("%i", "8001"))

    assert argv[0] == INSTALLED
    try:
        args = parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"inventory refuses {argv[1:]}")
    if name == "inventory-api@.service":
        assert (args.command, args.host, args.port) == ("serve", "127.0.0.1", 8001)


HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_unprivileged_and_hardened(name: str) -> None:
    unit = read_unit(UNITS / name)

    assert one(unit, "Service", "User") == "inventory"
    assert one(unit, "Service", "Group") == "inventory"
    for key, wanted in HARDENING.items():
        assert one(unit, "Service", key) == wanted, key
    # Nothing of ours writes to disk: no path is opened for writing.
    assert not values(unit, "Service", "ReadWritePaths")
    assert "@system-service" in values(unit, "Service", "SystemCallFilter")
    assert values(unit, "Service", "EnvironmentFile")[0] == "/etc/inventory/inventory.env"


def test_only_migrate_gets_the_superuser_urls() -> None:
    for name in SERVICES:
        files = values(read_unit(UNITS / name), "Service", "EnvironmentFile")
        wanted = ["/etc/inventory/inventory.env"]
        if name == "inventory-migrate.service":
            wanted.append("/etc/inventory/migrate.env")
        assert files == wanted, name


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_api_and_worker_start_only_after_migrate_succeeded(name: str) -> None:
    unit = read_unit(UNITS / name)

    assert "inventory-migrate.service" in values(unit, "Unit", "Requires")
    assert "inventory-migrate.service" in values(unit, "Unit", "After")
    assert one(unit, "Unit", "PartOf") == "inventory.target"
    assert one(unit, "Install", "WantedBy") == "inventory.target"


def test_migrate_runs_once_per_start() -> None:
    unit = read_unit(UNITS / "inventory-migrate.service")

    assert one(unit, "Service", "Type") == "oneshot"
    # Without RemainAfterExit every start of an API runs migrate again (a no-op check).
    assert not values(unit, "Service", "RemainAfterExit")
    assert "Install" not in unit


def graceful_seconds() -> dict[str, float]:
    """How long serve and worker take to stop on SIGTERM, read from their code."""
    serve = (ROOT / "src/inventory/cli/serve.py").read_text()
    worker = (ROOT / "src/inventory/worker/main.py").read_text()
    drain = re.search(r"timeout_graceful_shutdown=(\d+)", serve)
    stop = re.search(r"worker\.stop\(timeout=([\d_]+)\)", worker)
    assert drain and stop
    return {
        "inventory-api@.service": float(drain[1]),
        "inventory-worker.service": int(stop[1]) / 1000,
    }


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_units_restart_and_outwait_the_apps_shutdown(name: str) -> None:
    unit = read_unit(UNITS / name)

    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert seconds(one(unit, "Service", "TimeoutStopSec")) >= 2 * graceful_seconds()[name]


@pytest.mark.parametrize("name", ["inventory.env.example", "migrate.env.example"])
def test_the_example_environments_hold_no_secret(name: str) -> None:
    for line in (UNITS / name).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        assert key.startswith("INVENTORY_"), line
        if "SECRET" in key or "PASSWORD" in key:
            assert value.startswith("<"), f"{name}: {key} is not a placeholder"
        if value.startswith(("postgresql://", "redis://")):
            password = urlsplit(value).password
            assert password is None or password.startswith("<"), f"{name}: {key}"


PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1

# What the API and the worker run natively, exercised once each under the kernel's
# memory-deny-write-execute: an event loop on uvloop, psycopg's C implementation, msgspec,
# an argon2 hash, hiredis, the built Litestar app and the CLI parser.
UNDER_MDWE = """
import asyncio, ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(66, 0, 0, 0, 0) == 1, "MDWE not inherited across exec"
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    raise SystemExit("a writable and executable mapping was allowed")
except PermissionError:
    pass
import uvloop, psycopg, msgspec, hiredis, argon2, httptools, websockets, dramatiq
assert psycopg.pq.__impl__ == "binary", psycopg.pq.__impl__
async def main():
    await asyncio.sleep(0)
    return 1
assert uvloop.run(main()) == 1
assert msgspec.json.decode(msgspec.json.encode({"a": [1, 2]})) == {"a": [1, 2]}
argon2.PasswordHasher().verify(argon2.PasswordHasher().hash("pw"), "pw")
reader = hiredis.Reader(); reader.feed(b"+OK\\r\\n"); assert reader.gets() == b"OK"
from inventory import wiring
from inventory.cli import parser
from inventory.runtime.settings import Settings
settings = Settings.from_env({
    "INVENTORY_PRIMARY_URL": "postgresql://u:p@127.0.0.1:1/db",
    "INVENTORY_REPLICA_URL": "postgresql://u:p@127.0.0.1:1/db",
    "INVENTORY_REDIS_URL": "redis://127.0.0.1:1/0",
    "INVENTORY_JWT_SECRET": "x" * 32,
})
wiring.app(settings)
parser().parse_args(["serve"])
print("ok")
"""


def test_the_service_stack_runs_with_memory_deny_write_execute() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    launcher = (
        "import ctypes, os, sys\n"
        f"assert ctypes.CDLL(None).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) == 0\n"
        "os.execv(sys.executable, [sys.executable, '-c', sys.argv[1]])\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", launcher, UNDER_MDWE],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr
