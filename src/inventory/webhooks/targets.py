"""Where a webhook may be sent: the URL's shape and the SSRF guard on its resolved address."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services: named even though the ranges below already cover them, so the
# refusal says what the address is.
METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class TargetRefused(Exception):
    """A webhook target the service will not send to; `code` is the API's stable code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: scheme, host as written, port, the path with its query."""

    url: str
    scheme: str
    host: str
    port: int
    path: str


@dataclass(frozen=True, slots=True)
class Pinned:
    """A target with the one address its connection must use (no second DNS lookup)."""

    target: Target
    address: str


def parse(url: str) -> Target:
    """The target of `url`, or TargetRefused `invalid_webhook_url`: http(s) only, a host,
    no user or password, at most MAX_URL_LENGTH characters, no control characters."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused("invalid_webhook_url", f"url is longer than {MAX_URL_LENGTH}.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise TargetRefused("invalid_webhook_url", "url holds spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused("invalid_webhook_url", f"url is not a valid URL: {error}") from None
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("invalid_webhook_url", "url must start with https:// or http://.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("invalid_webhook_url", "url must not carry a user or password.")
    if not parts.hostname:
        raise TargetRefused("invalid_webhook_url", "url names no host.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default = 443 if parts.scheme == "https" else 80
    return Target(url, parts.scheme, parts.hostname, port or default, path)


def networks(spec: Sequence[str]) -> tuple[IpNetwork, ...]:
    """The allowed networks of the settings, parsed."""
    return tuple(ipaddress.ip_network(text, strict=False) for text in spec)


KINDS: tuple[tuple[str, Callable[[IpAddress], bool]], ...] = (
    ("a cloud metadata address", METADATA.__contains__),
    ("a loopback address", lambda a: a.is_loopback),
    ("a link-local address", lambda a: a.is_link_local),
    ("a multicast address", lambda a: a.is_multicast),
    ("a private, unique-local or reserved address", lambda a: a.is_private or not a.is_global),
)


def refusal(address: IpAddress, allowed: Sequence[IpNetwork]) -> str | None:
    """Why `address` may not be a webhook target, or None when it may."""
    if any(address in network for network in allowed if network.version == address.version):
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:  # ::ffff:10.0.0.1 reaches 10.0.0.1
        return refusal(mapped, allowed)
    return next((reason for reason, applies in KINDS if applies(address)), None)


def resolve(target: Target) -> list[IpAddress]:
    """Every address the target's host resolves to, or TargetRefused."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetRefused(
            "unresolvable_webhook_target", f"the host {target.host!r} does not resolve: {error}"
        ) from None
    found: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def pin(target: Target, allowed: Sequence[IpNetwork]) -> Pinned:
    """Resolve the host once and check every address; the first one is the connection's.
    Refusing when any address is unsafe keeps a host that mixes a public address with a
    private one from reaching the private one on some other lookup."""
    addresses = resolve(target)
    if not addresses:
        raise TargetRefused("unresolvable_webhook_target", f"{target.host!r} has no address.")
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is not None:
            raise TargetRefused(
                "unsafe_webhook_target",
                f"{target.host!r} resolves to {address}, {reason}; the operator allows such "
                "targets with INVENTORY_WEBHOOK_ALLOWED_NETWORKS.",
            )
    return Pinned(target, str(addresses[0]))
