"""One webhook POST over a connection to the pinned address: timeouts on connect and read,
at most a few bytes of the answer read, no redirect followed."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from inventory.webhooks.targets import Pinned

MAX_ANSWER_BYTES = 4096  # what a receiver's answer may tell us; the rest is never read
USER_AGENT = "inventory-webhooks/1"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to connect and to wait for each read of the answer."""

    connect: float = 5.0
    read: float = 15.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: `status` is None when no answer arrived."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        """Only a 2xx answer counts: a 3xx is a failure (redirects are not followed)."""
        return self.status is not None and 200 <= self.status < 300


class _PinnedHttp(http.client.HTTPConnection):
    """HTTP to the pinned address; the Host header still names the URL's host."""

    def __init__(self, pinned: Pinned, timeouts: Timeouts) -> None:
        super().__init__(pinned.target.host, pinned.target.port, timeout=timeouts.read)
        self.pinned = pinned
        self.timeouts = timeouts

    def connect(self) -> None:
        """Connect to the pinned address, never to a fresh lookup of the host."""
        self.sock = socket.create_connection(
            (self.pinned.address, self.pinned.target.port), timeout=self.timeouts.connect
        )
        self.sock.settimeout(self.timeouts.read)


class _PinnedHttps(_PinnedHttp):
    """HTTPS to the pinned address, the certificate checked against the URL's host."""

    context = ssl.create_default_context()

    def connect(self) -> None:
        """Connect, then wrap in TLS with SNI and verification for the URL's host."""
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.pinned.target.host)


def post(pinned: Pinned, headers: dict[str, str], body: bytes, timeouts: Timeouts) -> Outcome:
    """POST `body` to the pinned target; any error becomes an Outcome, never an exception."""
    kind = _PinnedHttps if pinned.target.scheme == "https" else _PinnedHttp
    connection = kind(pinned, timeouts)
    try:
        connection.request(
            "POST",
            pinned.target.path,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        return Outcome(response.status, None)
    except (OSError, http.client.HTTPException) as error:
        return Outcome(None, f"{type(error).__name__}: {error}"[:500])
    finally:
        connection.close()
