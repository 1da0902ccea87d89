"""The shipped alert rules and dashboard: well formed, each alert with a runbook, and every
metric they name one our code declares (tests/e2e/test_worker_metrics.py checks the same
names against what running processes export)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import litestar.plugins.prometheus.middleware as litestar_prometheus
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "inventory.rules.yml"
SCRAPE = ROOT / "ops" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "inventory.json"
RUNBOOK = ROOT / "docs" / "observability.md"

# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "le",
    "inf",
    "nan",
}
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, legends
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS or re.fullmatch(r"\d+\w*", name):
            continue
        names.add(name)
    return names


def rules() -> list[dict[str, Any]]:
    """Every rule of the shipped rules file."""
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    """Every query of the shipped dashboard's panels."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def shipped_names() -> set[str]:
    """Every metric the rules and the dashboard read."""
    exprs = [rule["expr"] for rule in rules()] + dashboard_exprs()
    return set().union(*(metric_names(expr) for expr in exprs))


def family(name: str) -> str:
    """A sample's metric family (`x_total` -> `x`, `x_bucket` -> `x`)."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def declared_families() -> set[str]:
    """The families our source declares, and those Litestar's middleware makes with the
    prefix api/app.py gives it."""
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "inventory").rglob("*.py"))
    declared = set(re.findall(r'"(inventory_[a-z0-9_]+)"', source))
    app = (ROOT / "src" / "inventory" / "api" / "app.py").read_text()
    prefix = re.search(r'prefix="(\w+)"', app)
    assert prefix is not None
    middleware = Path(litestar_prometheus.__file__).read_text()
    for suffix in re.findall(r'f"\{self\._config\.prefix\}_(\w+)"', middleware):
        declared.add(family(f"{prefix.group(1)}_{suffix}"))
    return declared


def test_the_name_parser_finds_metrics_only() -> None:
    expr = (
        'sum by (instance) (rate(inventory_requests_total{status_code=~"5.."}[5m])) '
        '/ histogram_quantile(0.9, sum by (le) (rate(x_bucket{job="$api_job"}[$__rate_interval])))'
        " > 0.01 and on(instance) up offset 1h"
    )
    assert metric_names(expr) == {"inventory_requests_total", "x_bucket", "up"}


def test_every_rule_is_complete_and_has_a_runbook_entry() -> None:
    runbook = RUNBOOK.read_text().lower()
    seen = set()
    for rule in rules():
        name = rule["alert"]
        assert name not in seen, name
        seen.add(name)
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == name.lower(), name
        assert f"### {name.lower()}" in runbook, f"{name} has no runbook entry"
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), name


def test_every_metric_shipped_is_one_our_code_declares() -> None:
    declared = declared_families()
    unknown = {n for n in shipped_names() if n not in PROMETHEUS_OWN and family(n) not in declared}
    assert not unknown, f"alerts or panels read metrics nobody exports: {sorted(unknown)}"


def test_an_alert_on_an_unknown_metric_would_fail() -> None:
    assert family("inventory_no_such_thing_total") not in declared_families()


def test_the_scrape_example_loads_the_rules_and_names_both_jobs() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    assert RULES.name in config["rule_files"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"inventory-api", "inventory-worker"}
    exprs = [rule["expr"] for rule in rules()] + dashboard_exprs()
    for job in jobs:
        assert any(job in expr for expr in exprs), job


def test_the_dashboard_has_a_panel_per_area_on_a_chosen_datasource() -> None:
    board = json.loads(DASHBOARD.read_text())
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == ["API", "Worker", "Replication", "Feed"]
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
