"""Finding and stopping server processes, including those a killed run left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import structlog

log = structlog.get_logger(__name__)


class RuntimeFailure(Exception):
    """An embedded server or child process could not be started or stopped."""


def stop_process(
    pid: int, *, first: signal.Signals = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Send `first`, wait up to `timeout`, then SIGKILL; return once the process is gone."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(first)
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        log.warning("process did not stop in time, killing it", pid=pid, timeout=timeout)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            proc.wait(10)


def process_in(pid: int, directory: Path, names: tuple[str, ...]) -> bool:
    """True when `pid` is alive, is one of `names` and runs in `directory` (its cwd)."""
    try:
        proc = psutil.Process(pid)
        return proc.name() in names and Path(proc.cwd()).resolve() == directory.resolve()
    except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
        return False


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None when it is missing or unreadable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on `host:port` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, alive: psutil.Process | None
) -> None:
    """Poll `check()` until it is true; fail early when `alive` has exited."""
    deadline = time.monotonic() + timeout
    while not check():
        if alive is not None and not alive.is_running():
            raise RuntimeFailure(f"{what} exited during start-up")
        if alive is not None and alive.status() == psutil.STATUS_ZOMBIE:
            raise RuntimeFailure(f"{what} exited during start-up")
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"{what} was not ready after {timeout:.0f} s")
        time.sleep(0.05)


def unprivileged_user() -> tuple[int, int] | None:
    """The (uid, gid) servers must run as when we are root, creating the user if needed.

    PostgreSQL refuses to run as root, so a root caller (CI, containers) runs the
    embedded servers as the system user `inventory`.
    """
    if os.geteuid() != 0:
        return None
    import pwd  # noqa: PLC0415 - POSIX only, and only needed as root
    import subprocess  # noqa: PLC0415

    name = "inventory"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def make_traversable(path: Path) -> None:
    """Let other users pass through (not list) every parent of `path`.

    Needed only when we run as root and the servers run as `inventory`: the data
    directories and the PostgreSQL binaries must be reachable by that user.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            log.warning("allowing other users to traverse a directory", path=str(parent))
            parent.chmod(mode | 0o001)
