"""The two apps bench/auth.py compares: one trivial endpoint, with and without security.

uvicorn --app-dir bench auth_app:secured --factory   (the API's middleware and guard)
uvicorn --app-dir bench auth_app:plain --factory     (the same endpoint, no security)
"""

from __future__ import annotations

from litestar import Litestar, get

from inventory import wiring
from inventory.api.auth import security_middleware
from inventory.runtime.logging import configure_logging
from inventory.security.policy import RouteClass, protect


@get("/bench/ping", **protect(RouteClass.SELF))
async def secured_ping() -> dict[str, str]:
    """A trivial authenticated endpoint."""
    return {"status": "ok"}


@get("/bench/ping")
async def plain_ping() -> dict[str, str]:
    """The same endpoint without authentication or rate limits."""
    return {"status": "ok"}


def secured() -> Litestar:
    """The real API (every middleware) plus the protected endpoint."""
    configure_logging("WARNING")
    app = wiring.app()
    app.register(secured_ping)
    return app


def plain() -> Litestar:
    """The real API, with the unprotected endpoint registered after the security
    middleware is taken out of the app's list: its route gets every other middleware."""
    configure_logging("WARNING")
    app = wiring.app()
    app.middleware.remove(security_middleware)
    app.register(plain_ping)
    return app
