"""bench/run.py: finding benches, reading BENCH-RESULT lines, the table, a bench's status."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def load() -> ModuleType:
    """bench/run.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


run = load()


def line(**fields: object) -> str:
    return "BENCH-RESULT " + json.dumps(fields)


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


BENCH = """
    import sys
    def main():
        if "--quick" in sys.argv:
            print("quick")
    if __name__ == "__main__":
        main()
"""


def test_results_are_read_from_their_lines_and_other_output_is_ignored() -> None:
    output = "\n".join(
        [
            "some human table",
            line(bench="commands", metric="sale / insert", value=0.31, goal=">= 0.40", met=False),
            "  " + line(metric="indented, not a result", value=1),
            line(metric="no bench named", value=12, goal=None, met=None),
        ]
    )
    results, bad = run.parse_results(output, "commands_script")
    assert bad == []
    assert results == [
        run.Result("commands", "sale / insert", 0.31, ">= 0.40", False),
        run.Result("commands_script", "no bench named", 12, None, None),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "BENCH-RESULT {not json",
        "BENCH-RESULT [1, 2]",
        line(value=1),
        line(metric="m"),
        line(metric="m", value={"a": 1}),
        line(metric="m", value=1, met="yes"),
        line(metric="m", value=1, goal=3),
    ],
)
def test_a_malformed_result_line_is_reported_not_taken(text: str) -> None:
    results, bad = run.parse_results(text, "x")
    assert results == []
    assert bad == [text]


def test_the_table_aligns_its_columns_and_spells_out_met() -> None:
    outcome = run.Outcome(run.Bench("x", Path("x.py"), quick=True))
    outcome.results = [
        run.Result("commands", "sale many SKUs / one-INSERT", 0.3125, ">= 0.40", False),
        run.Result("commands", "req/s", 2918.4, None, None),
        run.Result("auth", "overhead", 12.5, "< 15%", True),
    ]
    assert run.table([outcome]).splitlines() == [
        "bench     metric                       value  goal     met",
        "--------  ---------------------------  -----  -------  ---",
        "commands  sale many SKUs / one-INSERT  0.312  >= 0.40  NO",
        "commands  req/s                        2,918  -        -",
        "auth      overhead                     12.50  < 15%    yes",
    ]


def test_figures_are_shown_by_size() -> None:
    values = (0.31234, 3.14159, 2918.4, 0.0, 7, 12345, None, True, "x")
    assert [run.show(value) for value in values] == [
        "0.312",
        "3.14",
        "2,918",
        "0",
        "7",
        "12,345",
        "n/a",
        "True",
        "x",
    ]


def test_benches_are_scripts_with_a_main_and_an_entry_point(tmp_path: Path) -> None:
    script(tmp_path, "fast.py", BENCH)
    script(tmp_path, "slow.py", BENCH.replace('"--quick"', '"--long"'))
    script(tmp_path, "thing_app.py", "def main():\n    pass\n")
    script(tmp_path, "run.py", BENCH)
    found = run.discover(tmp_path)
    assert [(bench.name, bench.quick) for bench in found] == [("fast", True), ("slow", False)]


def test_only_and_skip_choose_benches_by_name(tmp_path: Path) -> None:
    benches = [run.Bench(name, tmp_path / f"{name}.py", quick=True) for name in "abc"]
    assert [bench.name for bench in run.select(benches, ["a", "c.py"], [])] == ["a", "c"]
    assert [bench.name for bench in run.select(benches, [], ["b"])] == ["a", "c"]
    with pytest.raises(SystemExit, match="unknown bench"):
        run.select(benches, ["nope"], [])


def outcome_of(tmp_path: Path, body: str, *, timeout: float = 30) -> Any:
    path = script(tmp_path, "probe.py", body)
    bench = run.Bench("probe", path, quick=True)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return run.run_one(bench, True, timeout, logs)


def test_a_bench_that_prints_its_results_is_ok(tmp_path: Path) -> None:
    body = f"""
        import sys
        assert sys.argv[1:] == ["--quick"]
        print({line(bench="probe", metric="m", value=1.5, goal="<= 2", met=True)!r})
    """
    outcome = outcome_of(tmp_path, body)
    assert (outcome.status, outcome.failed) == ("ok", False)
    assert outcome.results == [run.Result("probe", "m", 1.5, "<= 2", True)]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("raise SystemExit(3)", "failed (exit 3)"),
        ("print('a table without results')", "no BENCH-RESULT"),
        ("print('BENCH-RESULT {oops')", "1 malformed BENCH-RESULT line(s)"),
        ("import time\ntime.sleep(60)", "timed out after 1 s"),
    ],
)
def test_a_bench_that_did_not_run_well_fails_with_its_output(
    tmp_path: Path, body: str, status: str
) -> None:
    outcome = outcome_of(tmp_path, f"print('last words')\n{body}\n", timeout=1)
    assert outcome.status == status
    assert outcome.failed
    assert "last words" in outcome.tail


def test_a_bench_without_a_quick_mode_is_not_run_and_not_a_failure(tmp_path: Path) -> None:
    bench = run.Bench("slow", tmp_path / "missing.py", quick=False)
    outcome = run.run_one(bench, True, 30, tmp_path)
    assert (outcome.status, outcome.failed, outcome.seconds) == ("no quick mode", False, 0.0)
    assert "slow: no quick mode" in run.summary([outcome], 1.0, quick=True)


def test_the_summary_counts_goals_and_names_the_benches_that_failed() -> None:
    good = run.Outcome(run.Bench("good", Path("good.py"), quick=True))
    good.results = [
        run.Result("good", "a", 1, "<= 2", True),
        run.Result("good", "b", 3, "<= 2", False),
        run.Result("good", "c", 3, None, None),
    ]
    broken = run.Outcome(run.Bench("broken", Path("broken.py"), quick=True), "failed (exit 1)")
    text = run.summary([good, broken], 281.4, quick=True)
    assert "3 figures: 1 goals met, 1 NOT met, 1 without a goal" in text
    assert "broken: failed (exit 1)" in text
    assert "good:" not in text
    assert "total wall time 281 s (goal for --quick: <= 300 s, met)" in text
    assert "total wall time 312 s (goal for --quick: <= 300 s, NOT met)" in run.summary(
        [good], 312.0, quick=True
    )
    assert run.summary([good], 312.0, quick=False).endswith("total wall time 312 s")
