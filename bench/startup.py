"""Start-up time and idle memory of `inventory dev`, next to one bare PostgreSQL start.

    uv run python bench/startup.py [--runs 5] [--quick]

Each run gets a brand-new INVENTORY_HOME. In a run: one bare embedded PostgreSQL is
initialised and started (the baseline), then `inventory dev` starts on the empty home
(first start), is stopped with SIGTERM, starts again on the same home (restart), idles
3 s, has its process tree's memory read, and is stopped again. Every start and stop is
bounded; a process still alive at the end is killed and reported as a failure.
`--quick` is one run. No goal: the figures are printed for comparison over time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from inventory.runtime.postgres import EmbeddedPostgres
from inventory.runtime.processes import RuntimeFailure, free_port

RUN_LIMIT = 120.0  # seconds a start may take before the run counts as failed
STOP_LIMIT = 60.0  # seconds SIGTERM may take before we kill the tree
IDLE = 3.0  # seconds of idling after ready before memory is read
KINDS = ("postgres primary", "postgres replica", "redis", "api", "worker", "supervisor")
MIB = 1024 * 1024


class BenchFailure(Exception):
    """A start or stop went wrong; the run's figures are discarded."""


@dataclass
class Memory:
    """Idle memory of one `inventory dev` process tree, by process kind."""

    rss: dict[str, int] = field(default_factory=dict)
    pss: dict[str, int] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    @property
    def total_rss(self) -> int:
        return sum(self.rss.values())


@dataclass
class Results:
    bare: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    restart: list[float] = field(default_factory=list)
    stop: list[float] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Tracker:
    """Every temp root and process the benchmark created, for the final sweep."""

    def __init__(self) -> None:
        self.roots: list[Path] = []
        self.seen: dict[int, float] = {}  # pid -> create_time, so reused pids are not hit

    def new_root(self) -> Path:
        """A fresh temp folder the servers' system user can reach, as new_home() makes."""
        root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
        root.chmod(0o755)
        self.roots.append(root)
        return root

    def note(self, procs: list[psutil.Process]) -> None:
        for proc in procs:
            try:
                self.seen[proc.pid] = proc.create_time()
            except psutil.NoSuchProcess:
                continue

    def survivors(self) -> list[psutil.Process]:
        """Processes we saw or that belong to one of our roots, still running."""
        found: dict[int, psutil.Process] = {}
        for root in self.roots:
            for proc in processes_in(root):
                found[proc.pid] = proc
        for pid, created in self.seen.items():
            try:
                proc = psutil.Process(pid)
                if abs(proc.create_time() - created) < 0.01:
                    found[pid] = proc
            except psutil.NoSuchProcess:
                continue
        return [proc for proc in found.values() if is_running(proc)]


def is_running(proc: psutil.Process) -> bool:
    """Alive and not a zombie."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def processes_in(root: Path) -> list[psutil.Process]:
    """Processes whose cwd, command line or INVENTORY_HOME lies under `root`."""
    prefix = str(root)
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        cwd = proc.info["cwd"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        try:
            home = proc.environ().get("INVENTORY_HOME", "")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            home = ""
        if cwd.startswith(prefix) or prefix in cmdline or home.startswith(prefix):
            found.append(proc)
    return found


def kind_of(proc: psutil.Process, supervisor_pid: int) -> str | None:
    """The kind of process `proc` is the root of, or None for a helper of another one."""
    if proc.pid == supervisor_pid:
        return "supervisor"
    name = proc.name()
    cmdline = proc.cmdline()
    if name == "postgres" and "-D" in cmdline:
        data_dir = Path(cmdline[cmdline.index("-D") + 1]).name
        return f"postgres {data_dir}"
    if name.startswith("valkey-server"):
        return "redis"
    if "inventory" in cmdline:
        command = cmdline[cmdline.index("inventory") + 1 :][:1]
        if command == ["serve"]:
            return "api"
        if command == ["worker"]:
            return "worker"
    return None


def classify(proc: psutil.Process, supervisor_pid: int) -> str:
    """The kind of the nearest ancestor (or self) that is a known process kind."""
    current: psutil.Process | None = proc
    while current is not None:
        kind = kind_of(current, supervisor_pid)
        if kind is not None:
            return kind
        current = current.parent()
    return "other"


class DevRun:
    """`python -m inventory dev` on a free port, its output in a log file."""

    def __init__(self, home: Path, tracker: Tracker) -> None:
        self.home = home
        self.tracker = tracker
        self.port = free_port()
        self.log = home.parent / "dev.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Launch and return the seconds until GET /health/ready answers 200."""
        url = f"http://127.0.0.1:{self.port}/health/ready"
        with self.log.open("ab") as output:
            started = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory", "dev", "--port", str(self.port)],
                env={**os.environ, "INVENTORY_HOME": str(self.home)},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        with httpx.Client(timeout=2.0) as client:
            while True:
                elapsed = time.monotonic() - started
                if self.process.poll() is not None:
                    raise BenchFailure(
                        f"inventory dev exited with {self.process.returncode}:\n{self.tail()}"
                    )
                if elapsed > RUN_LIMIT:
                    raise BenchFailure(f"not ready after {RUN_LIMIT:.0f} s:\n{self.tail()}")
                try:
                    if client.get(url).status_code == 200:
                        self.tracker.note(self.tree())
                        return elapsed
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)

    def tree(self) -> list[psutil.Process]:
        """The dev process, its descendants, and the servers running in its home."""
        assert self.process is not None
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.process.pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            pass
        for proc in processes_in(self.home):
            found.setdefault(proc.pid, proc)
        return list(found.values())

    def memory(self) -> Memory:
        """RSS and PSS of the whole tree, summed by process kind."""
        assert self.process is not None
        memory = Memory()
        for proc in self.tree():
            try:
                kind = classify(proc, self.process.pid)
                rss, pss = rss_and_pss(proc)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # a short-lived backend that ended meanwhile
            memory.rss[kind] = memory.rss.get(kind, 0) + rss
            memory.pss[kind] = memory.pss.get(kind, 0) + pss
            memory.count[kind] = memory.count.get(kind, 0) + 1
        return memory

    def stop(self) -> float:
        """SIGTERM and wait; return the seconds until exit. Kills the tree past the limit."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return 0.0
        self.tracker.note(self.tree())
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            kill_all(self.tree())
            self.process.wait()
            raise BenchFailure(f"inventory dev ignored SIGTERM for {STOP_LIMIT:.0f} s") from None
        finally:
            self.process = None
        if code != 0:
            raise BenchFailure(f"inventory dev exited with {code} after SIGTERM:\n{self.tail()}")
        return time.monotonic() - started

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"


def rss_and_pss(proc: psutil.Process) -> tuple[int, int]:
    """RSS (shared pages counted in every process) and PSS (shared pages split); PSS is 0
    when /proc/PID/smaps is not readable to us."""
    try:
        info = proc.memory_full_info()
    except psutil.AccessDenied:
        return proc.memory_info().rss, 0
    return info.rss, info.pss


def kill_all(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(procs, timeout=10)


def bare_postgres(home: Path) -> float:
    """Seconds for initdb + start + first query of one durable embedded PostgreSQL."""
    password = "bench"  # noqa: S105 - a throw-away local server
    server = EmbeddedPostgres("bare", home / "bare", free_port(), durable=True)
    try:
        started = time.monotonic()
        server.initialize(password)
        server.start()
        server.wait_ready(password, timeout=RUN_LIMIT)
        return time.monotonic() - started
    finally:
        server.stop()


def one_run(tracker: Tracker, results: Results) -> None:
    """Baseline, first start, restart and idle memory, each on a brand-new home."""
    root = tracker.new_root()
    home = root / "home"
    home.mkdir()
    results.bare.append(bare_postgres(root / "baseline"))
    dev = DevRun(home, tracker)
    try:
        results.first.append(dev.start())
        results.stop.append(dev.stop())
        dev = DevRun(home, tracker)
        results.restart.append(dev.start())
        time.sleep(IDLE)
        results.memory.append(dev.memory())
        results.stop.append(dev.stop())
    finally:
        try:
            dev.stop()  # only does something when the run failed half-way
        except BenchFailure as failure:
            results.failures.append(str(failure))
        leftovers = [proc for proc in processes_in(root) if is_running(proc)]
        if leftovers:
            kill_all(leftovers)
            pids = ", ".join(str(proc.pid) for proc in leftovers)
            results.failures.append(f"processes left after a run, killed: {pids}")
        shutil.rmtree(root, ignore_errors=True)


def figures(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<34} {'n/a':>8}"
    return (
        f"  {label:<34} {statistics.median(values):>7.2f}s"
        f" {min(values):>7.2f}s {max(values):>7.2f}s"
    )


def report(results: Results, runs: int) -> None:
    cpus = os.cpu_count()
    python = ".".join(map(str, sys.version_info[:3]))
    print(f"\ninventory dev start-up: {runs} runs, {cpus} CPUs, Python {python}")
    print(f"  {'':<34} {'median':>8} {'min':>8} {'max':>8}")
    print(figures("bare PostgreSQL (initdb+start)", results.bare))
    print(figures("inventory dev, first start", results.first))
    print(figures("inventory dev, restart", results.restart))
    print(figures("inventory dev, stop (SIGTERM)", results.stop))
    if results.bare and results.first:
        ratio = statistics.median(results.first) / statistics.median(results.bare)
        print(f"  first start / bare PostgreSQL      {ratio:>7.1f}x")
    if results.memory:
        ranked = sorted(results.memory, key=lambda m: m.total_rss)
        median = ranked[(len(ranked) - 1) // 2]
        totals = [m.total_rss / MIB for m in results.memory]
        print(
            f"\nidle memory {IDLE:.0f} s after ready (restart), total RSS MiB:"
            f" median {statistics.median(totals):.0f}, min {min(totals):.0f},"
            f" max {max(totals):.0f}; breakdown of the median run:"
        )
        print(f"  {'process':<18} {'count':>5} {'RSS MiB':>9} {'PSS MiB':>9}")
        kinds = [*KINDS, *sorted(set(median.rss) - set(KINDS))]
        for kind in kinds:
            print(
                f"  {kind:<18} {median.count.get(kind, 0):>5}"
                f" {median.rss.get(kind, 0) / MIB:>9.1f} {median.pss.get(kind, 0) / MIB:>9.1f}"
            )
        print(
            f"  {'total':<18} {sum(median.count.values()):>5}"
            f" {median.total_rss / MIB:>9.1f} {sum(median.pss.values()) / MIB:>9.1f}"
        )
    if results.failures:
        print(f"\nFAILED: {len(results.failures)} failure(s)")
        for failure in results.failures:
            print(f"  - {failure}")
    else:
        print("\nno failures; no process left behind")


def headline(results: Results) -> None:
    """The medians as BENCH-RESULT lines for bench/run.py (no goal: met is null)."""
    figures = {}
    if results.bare and results.first:
        ratio = statistics.median(results.first) / statistics.median(results.bare)
        figures["first start / bare PostgreSQL"] = round(ratio, 2)
    for label, values in (("first start s", results.first), ("restart s", results.restart)):
        if values:
            figures[label] = round(statistics.median(values), 2)
    if results.memory:
        totals = [memory.total_rss / MIB for memory in results.memory]
        figures["idle RSS MiB"] = round(statistics.median(totals), 1)
    for metric, value in figures.items():
        line = {"bench": "startup", "metric": metric, "value": value, "goal": None, "met": None}
        print("BENCH-RESULT " + json.dumps(line))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (default 5)")
    parser.add_argument("--quick", action="store_true", help="one run")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    tracker = Tracker()
    results = Results()
    try:
        for number in range(1, args.runs + 1):
            print(f"run {number}/{args.runs} ...", flush=True)
            try:
                one_run(tracker, results)
            except (BenchFailure, RuntimeFailure) as failure:
                results.failures.append(f"run {number}: {failure}")
    finally:
        survivors = tracker.survivors()
        if survivors:
            kill_all(survivors)
            pids = ", ".join(str(proc.pid) for proc in survivors)
            results.failures.append(f"processes still running at the end, killed: {pids}")
        for root in tracker.roots:
            shutil.rmtree(root, ignore_errors=True)
    report(results, args.runs)
    headline(results)
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
