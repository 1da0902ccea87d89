"""The client's IP: the peer, or `X-Forwarded-For` only when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Networks from a comma-separated list of addresses or CIDRs; ValueError when bad."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """Walk `X-Forwarded-For` from the right while the hop is a trusted proxy.

    The rightmost entry was appended by the proxy that talked to us; entries further left
    were written by whoever came before and can be forged, so we stop at the first
    address that is not one of our proxies. Without a trusted peer the header is ignored.
    """
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, proxies):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a malformed hop: trust nothing beyond the last good one
        address = hop
        if not _trusted(hop, proxies):
            return hop
    return address
