"""docs/operations.md's table of environment variables agrees with the code: every
`INVENTORY_*` variable the code reads is in it with the code's default, and every
variable in it is read."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from inventory.runtime.settings import MigrationSettings, Settings, home_from_env

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
SOURCE = ROOT / "src" / "inventory"
# Each required URL, so that the settings build; the defaults are what the rest take.
REQUIRED = {
    "INVENTORY_PRIMARY_URL": "postgresql://inventory:app@db1:5432/inventory",
    "INVENTORY_REPLICA_URL": "postgresql://inventory:app@db2:5432/inventory",
    "INVENTORY_REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
}
NAME = re.compile(r"INVENTORY_[A-Z0-9_]*[A-Z0-9]\b(?![{])")


class Recording(Mapping[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        self.data = values
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.data[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        """Mapping.get, remembered."""
        self.asked.add(key)
        return self.data.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def table() -> dict[str, str]:
    """The variables of the "Environment variables" section, each with its default cell."""
    text = DOC.read_text()
    section = text.split("## 3. Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`INVENTORY_"):
            rows[cells[0].strip("`")] = cells[1]
    assert rows, "no table under '## 3. Environment variables'"
    return rows


def read_by_settings() -> set[str]:
    """Every name the settings look up, as the code runs."""
    asked: set[str] = set()
    for build in (Settings.from_env, MigrationSettings.from_env, home_from_env):
        env = Recording(dict(REQUIRED))
        build(env)
        asked |= env.asked
    return asked


def named_in_code() -> set[str]:
    """Every complete `INVENTORY_*` name written in our source (f-string prefixes aside)."""
    names = set()
    for path in SOURCE.rglob("*.py"):
        names |= set(NAME.findall(path.read_text()))
    return names


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    missing = (read_by_settings() | named_in_code()) - set(table())

    assert not missing, f"add these to docs/operations.md, section 3: {sorted(missing)}"


def test_every_variable_in_the_table_is_read_by_the_code() -> None:
    unread = set(table()) - read_by_settings() - named_in_code()

    assert not unread, f"documented but never read: {sorted(unread)}"


def settings_variables() -> list[str]:
    """The table's variables that the settings read, required ones aside."""
    return sorted(read_by_settings() & set(table()) - set(REQUIRED) - {"INVENTORY_HOME"})


def documented_value(cell: str) -> str:
    """The default as a value to set: `600/60` as is, `$VAR` as VAR's value, (none) empty."""
    quoted = re.fullmatch(r"`([^`]*)`", cell)
    if quoted is None:
        assert cell.startswith("("), f"a default is `value` or (words): {cell!r}"
        return ""
    value = quoted[1]
    # With no admin URL set, the primary's admin URL is its app URL.
    resolved = {**REQUIRED, "INVENTORY_PRIMARY_ADMIN_URL": REQUIRED["INVENTORY_PRIMARY_URL"]}
    return resolved[value[1:]] if value.startswith("$") else value


@pytest.mark.parametrize("name", settings_variables())
def test_setting_the_documented_default_changes_nothing(name: str) -> None:
    cell = table()[name]
    if cell.startswith("(required"):
        return  # a secret with no default (INVENTORY_JWT_SECRET): nothing to compare
    explicit = {**REQUIRED, name: documented_value(cell)}

    assert Settings.from_env(explicit) == Settings.from_env(REQUIRED), (name, cell)
    assert MigrationSettings.from_env(explicit) == MigrationSettings.from_env(REQUIRED)


def test_the_homes_default_is_the_documented_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert table()["INVENTORY_HOME"] == "`./.inventory`"
    assert home_from_env({}) == home_from_env({"INVENTORY_HOME": "./.inventory"})


def test_every_required_variable_is_marked_required() -> None:
    rows = table()

    for name in REQUIRED:
        assert rows[name] == "(required)", name
    assert rows["INVENTORY_JWT_SECRET"].startswith("(required")


def test_the_default_log_level_is_the_documented_one() -> None:
    cli = (SOURCE / "cli" / "__init__.py").read_text()

    default = re.search(r'"INVENTORY_LOG_LEVEL", "([A-Z]+)"', cli)
    assert default is not None
    assert table()["INVENTORY_LOG_LEVEL"] == f"`{default[1]}`"
