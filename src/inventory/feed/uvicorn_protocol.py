"""uvicorn's WebSocket protocol, lending each connection a `FrameWriter` (feed/frames.py).

The feed writes one prebuilt frame per live message straight to each connection's
transport instead of going through ASGI send, websockets' framing and a task per
connection. Only a connection with no extension negotiated gets the writer (its frames
are the plain, unmasked bytes). The writer refuses while the transport is paused (the
feed then queues, as ASGI send would wait) and once a close frame has been sent, so a
close always follows the last data frame. `inventory serve` passes this class as `ws=`.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from inventory.feed.frames import EXTENSION


class _Frames:
    """The writer lent to one connection."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: FeedWebSocketProtocol) -> None:
        self.protocol = protocol

    def writable(self) -> bool:
        protocol = self.protocol
        return protocol.writable.is_set() and self._open()

    def write(self, frames: bytes) -> None:
        if self._open():
            self.protocol.transport.write(frames)

    async def drained(self) -> None:
        await self.protocol.writable.wait()

    def _open(self) -> bool:
        protocol = self.protocol
        return (
            protocol.handshake_complete
            and not protocol.close_sent
            and not protocol.disconnected
            and not protocol.transport.is_closing()
        )


class FeedWebSocketProtocol(WebSocketsSansIOProtocol):
    """The sans-I/O websockets protocol plus the `inventory.frames` scope extension."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The ASGI task is created but has not run yet: the scope can still gain a key.
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][EXTENSION] = _Frames(self)
