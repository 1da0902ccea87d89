"""WebSocket frames built once per message and written to every connection as they are.

A server's frames are not masked, so with no extension negotiated (no permessage-deflate)
a message's frame is the same bytes for every client. The ASGI server lends each feed
connection a `FrameWriter` under `scope["extensions"][EXTENSION]` (see
`feed/uvicorn_protocol.py`); without it the feed sends through the plain ASGI path.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

EXTENSION = "inventory.frames"

_FIN_TEXT = 0x81
_SHORT = 125
_MEDIUM = 0xFFFF


class FrameWriter(Protocol):
    """Writes whole frames to one connection's transport, after what it already holds."""

    def writable(self) -> bool:
        """Whether frames may be written now: open, before its close frame, and the
        transport not paused (over its high-water mark: ASGI send would wait)."""
        ...

    def write(self, frames: bytes) -> None:
        """Write `frames` now; nothing once the connection is closing or closed."""
        ...

    async def drained(self) -> None:
        """Return once the transport is below its high-water mark (at once if it is)."""
        ...


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying `payload` (UTF-8 JSON)."""
    size = len(payload)
    if size <= _SHORT:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size <= _MEDIUM:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


def frame_writer(scope: Any) -> FrameWriter | None:
    """The connection's frame writer, if the ASGI server lends one."""
    extensions = scope.get("extensions") or {}
    writer: FrameWriter | None = extensions.get(EXTENSION)
    return writer
