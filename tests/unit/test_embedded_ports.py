"""The embedded topology's ports: three servers, three ports, whatever the kernel says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory.runtime import embedded
from inventory.runtime.processes import free_port


def test_the_three_servers_get_three_ports_when_the_kernel_hands_one_out_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bind(0) may answer the port it answered a moment ago, once that socket is closed.
    first, second, third = _three_free_ports()
    answers: Iterator[int] = iter([first, first, second, first, third])
    monkeypatch.setattr(embedded, "free_port", lambda: next(answers))

    ports = embedded.EmbeddedTopology(tmp_path)._choose_ports()

    assert ports == {"primary": first, "replica": second, "redis": third}


def _three_free_ports() -> tuple[int, int, int]:
    found: list[int] = []
    while len(found) < 3:
        port = free_port()
        if port not in found:
            found.append(port)
    return found[0], found[1], found[2]
