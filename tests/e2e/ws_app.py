"""The API plus a stand-in feed route, so WebSocket admission is tested on a real server
before the real feed exists (`uvicorn tests.e2e.ws_app:app --factory`)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, WebSocket, websocket

from inventory import wiring
from inventory.security.policy import RouteClass
from inventory.security.websocket import admit_websocket, allow_message, connection_id


@websocket("/test/feed")
async def feed(socket: WebSocket[Any, Any, Any]) -> None:
    """Admit, greet, then echo each message while the connection is within its budget."""
    stores = [s for s in socket.query_params.get("stores", "").split(",") if s]
    admitted = await admit_websocket(socket, RouteClass.FEED, stores)
    if admitted is None:
        return
    principal, _ = admitted
    connection = connection_id()
    await socket.send_json({"kind": "hello", "name": principal.name, "ip": principal.ip})
    while True:
        text = await socket.receive_text()
        if not await allow_message(socket, connection):
            return
        await socket.send_json({"kind": "echo", "text": text})


def app() -> Litestar:
    """The real app with the stand-in route registered."""
    application = wiring.app()
    application.register(feed)
    return application
