"""The address a listener binds: an IP address or a host name, checked before anything starts."""

from __future__ import annotations

import ipaddress
import re

LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
SHOWN = 64  # characters of a refused value quoted back: enough to spot it, never a flood


class ListenHostError(ValueError):
    """The value is neither an IP address nor a host name."""


def check_listen_host(name: str, raw: str) -> str:
    """`raw` as a listener's address (an IP address, `[::1]` unbracketed, or an RFC 1123
    host name), else an error naming the variable `name` and quoting `raw` shortened."""
    value = raw.strip()
    try:
        return str(ipaddress.ip_address(value.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    labels = value.removesuffix(".").split(".")
    # An all-digit last label is a mistyped IPv4 address ("10.0.0.300"), never a name.
    named = len(value) <= 253 and all(LABEL.fullmatch(part) for part in labels)
    if named and not labels[-1].isdigit():
        return value
    shown = value if len(value) <= SHOWN else f"{value[:SHOWN]}... ({len(value)} characters)"
    if "@" in value:  # a URL pasted with its user and password: never quoted into a log
        shown = "a URL with user information (not shown)"
    raise ListenHostError(
        f"{name} must be an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name, got {shown!r}"
    )
