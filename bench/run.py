"""Every bench, one after another, and one table of their headline figures against goals.

    uv run python bench/run.py --quick [--only a,b] [--skip a,b] [--timeout SECONDS]

A bench is a `bench/*.py` file with a module-level `def main` and an
`if __name__ == "__main__":` block (the apps a bench serves, `*_app.py`, have neither),
except this file. New scripts are picked up by that rule alone. A bench has a quick mode
when its source names the `--quick` option; with `--quick`, one without is listed as
"no quick mode" and not run (it would take its long default). Each bench runs as its own
subprocess, never two at once, with its output in a log file, under a per-script timeout:
past it, the bench's process group gets SIGINT (its `finally` blocks stop its servers),
then SIGKILL 30 s later. Each bench prints one line per headline figure:

    BENCH-RESULT {"bench": "...", "metric": "...", "value": 0.31, "goal": ">= 0.40", "met": false}

The exit status is 1 when a bench failed (non-zero exit), timed out, printed no
BENCH-RESULT line or a malformed one; a goal not met is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PREFIX = "BENCH-RESULT "
QUICK_TIMEOUT = 150.0  # a quick run should take <= 60 s; the machine is shared
LONG_TIMEOUT = 1800.0
QUICK_BUDGET = 300.0  # issue 19: where the project stands in five minutes
GRACE = 30.0  # seconds between SIGINT and SIGKILL
TAIL = 15  # lines of a failed bench's output shown


@dataclass(frozen=True)
class Bench:
    """One bench script and whether it has a quick mode."""

    name: str
    path: Path
    quick: bool


@dataclass(frozen=True)
class Result:
    """One BENCH-RESULT line."""

    bench: str
    metric: str
    value: object
    goal: str | None
    met: bool | None


@dataclass
class Outcome:
    """What one bench did: a status ("ok" when it ran well), its figures, its time."""

    bench: Bench
    status: str = "ok"
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "no quick mode")


def is_bench(source: str) -> tuple[bool, bool]:
    """(has a module-level main and a __main__ block, names the --quick option)."""
    tree = ast.parse(source)
    has_main = any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)
    has_entry = any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
    )
    quick = any(
        isinstance(node, ast.Constant) and node.value == "--quick" for node in ast.walk(tree)
    )
    return has_main and has_entry, quick


def discover(folder: Path = BENCH) -> list[Bench]:
    """Every bench in `folder`, by name."""
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "run.py":
            continue
        bench, quick = is_bench(path.read_text())
        if bench:
            found.append(Bench(path.stem, path, quick))
    return found


def parse_results(output: str, script: str) -> tuple[list[Result], list[str]]:
    """The BENCH-RESULT lines of `output`, and the lines that start so but do not parse."""
    results, bad = [], []
    for line in output.splitlines():
        if not line.startswith(PREFIX):
            continue
        try:
            data = json.loads(line[len(PREFIX) :])
        except json.JSONDecodeError:
            bad.append(line)
            continue
        if not valid(data):
            bad.append(line)
            continue
        bench = data.get("bench") or script
        results.append(
            Result(str(bench), data["metric"], data["value"], data.get("goal"), data.get("met"))
        )
    return results, bad


def valid(data: object) -> bool:
    """A JSON object with a metric, a value, and a goal and met of the right types."""
    if not isinstance(data, dict) or not isinstance(data.get("metric"), str):
        return False
    value, goal, met = data.get("value", ...), data.get("goal"), data.get("met")
    if value is ... or isinstance(value, (dict, list)):
        return False
    return (goal is None or isinstance(goal, str)) and (met is None or isinstance(met, bool))


def select(benches: list[Bench], only: list[str], skip: list[str]) -> list[Bench]:
    """The benches named by --only (all when empty), minus those named by --skip."""
    names = {bench.name for bench in benches}
    unknown = sorted({name.removesuffix(".py") for name in only + skip} - names)
    if unknown:
        raise SystemExit(
            f"unknown bench(es): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    wanted = {name.removesuffix(".py") for name in only} or names
    dropped = {name.removesuffix(".py") for name in skip}
    return [bench for bench in benches if bench.name in wanted - dropped]


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the bench's process group, so its cleanup runs; SIGKILL after GRACE."""
    for sent in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(GRACE)
        except subprocess.TimeoutExpired:
            continue
        return


def run_one(bench: Bench, quick: bool, timeout: float, logs: Path) -> Outcome:
    """Run one bench in its own process group; its figures, status and time."""
    outcome = Outcome(bench)
    if quick and not bench.quick:
        outcome.status = "no quick mode"
        return outcome
    log = logs / f"{bench.name}.log"
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(bench.path), *(["--quick"] if quick else [])],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the timeout stops the bench and what it started
        )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_group(process)
            code = None
    outcome.seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    outcome.results, bad = parse_results(text, bench.name)
    outcome.status = status(code, timeout, outcome.results, bad)
    if outcome.failed:
        outcome.tail = text.splitlines()[-TAIL:]
    return outcome


def status(code: int | None, timeout: float, results: list[Result], bad: list[str]) -> str:
    """The one-word account of a finished bench."""
    if code is None:
        return f"timed out after {timeout:.0f} s"
    if code != 0:
        return f"failed (exit {code})"
    if bad:
        return f"{len(bad)} malformed BENCH-RESULT line(s)"
    if not results:
        return "no BENCH-RESULT"
    return "ok"


def show(value: object) -> str:
    """A figure for the table: whole and large ones grouped, small ones with three digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else str(value)
    if isinstance(value, int) or value == 0:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(outcomes: list[Outcome]) -> str:
    """The results of every bench as one aligned table: bench, metric, value, goal, met."""
    rows = [("bench", "metric", "value", "goal", "met")]
    for outcome in outcomes:
        for result in outcome.results:
            met = {True: "yes", False: "NO", None: "-"}[result.met]
            rows.append((result.bench, result.metric, show(result.value), result.goal or "-", met))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.rjust(widths[2]) if column == 2 else cell.ljust(widths[column])
            for column, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def summary(outcomes: list[Outcome], seconds: float, quick: bool) -> str:
    """Goals met, the benches that did not run well, and the total wall time."""
    results = [result for outcome in outcomes for result in outcome.results]
    met = sum(result.met is True for result in results)
    missed = sum(result.met is False for result in results)
    plain = len(results) - met - missed
    lines = [f"\n{len(results)} figures: {met} goals met, {missed} NOT met, {plain} without a goal"]
    lines += [f"  {each.bench.name}: {each.status}" for each in outcomes if each.status != "ok"]
    budget = ""
    if quick:
        verdict = "met" if seconds <= QUICK_BUDGET else "NOT met"
        budget = f" (goal for --quick: <= {QUICK_BUDGET:.0f} s, {verdict})"
    lines.append(f"total wall time {seconds:.0f} s{budget}")
    return "\n".join(lines)


def names(text: str) -> list[str]:
    """A comma-separated list of bench names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def main() -> int:
    """Run the selected benches one after another; print the table; 1 when one failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each bench's short mode")
    parser.add_argument("--only", type=names, default=[], help="these benches (a,b)")
    parser.add_argument("--skip", type=names, default=[], help="not these benches (a,b)")
    parser.add_argument("--timeout", type=float, help="seconds per bench (150 quick, 1800)")
    parser.add_argument("--logs", type=Path, help="folder for each bench's output")
    args = parser.parse_args()
    benches = select(discover(), args.only, args.skip)
    timeout = args.timeout or (QUICK_TIMEOUT if args.quick else LONG_TIMEOUT)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="inventory-bench-run-"))
    logs.mkdir(parents=True, exist_ok=True)
    started, outcomes = time.monotonic(), []
    for number, bench in enumerate(benches, 1):
        print(f"[{number}/{len(benches)}] {bench.name} ...", end=" ", flush=True)
        outcome = run_one(bench, args.quick, timeout, logs)
        print(
            f"{outcome.status}, {outcome.seconds:.0f} s, {len(outcome.results)} figures", flush=True
        )
        for line in outcome.tail:
            print(f"    | {line}")
        outcomes.append(outcome)
    print()
    print(table(outcomes))
    print(summary(outcomes, time.monotonic() - started, args.quick))
    print(f"each bench's output: {logs}")
    return 1 if any(outcome.failed for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
