"""The security layer's errors; api/errors.py maps each to a problem response."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inventory.security.principal import Principal
    from inventory.security.ratelimit import Decision


class SecurityError(Exception):
    """Base of the security layer's errors."""


class Unauthorized(SecurityError):
    """No credentials, or credentials that do not name a live principal (401)."""

    def __init__(
        self, detail: str, *, invalid: bool = True, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.invalid = invalid  # credentials were sent but are bad (vs. none were sent)
        self.headers = headers or {}  # the anonymous budget's RateLimit headers


class InvalidCredentials(SecurityError):
    """A login with a wrong username or password; which of the two is never said (401)."""

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.headers = headers or {}


class Forbidden(SecurityError):
    """The principal's role or store scope does not cover this call (403)."""


class RateLimited(SecurityError):
    """A budget is spent (429); the decision carries the headers."""

    def __init__(self, decision: Decision, principal: Principal | None = None) -> None:
        super().__init__(
            f"Too many calls: at most {decision.limit} per {decision.window_seconds} s."
        )
        self.decision = decision
        self.principal = principal  # the caller, when known (a replay may still pass)


class UserExists(SecurityError):
    """A live user already has this username (409)."""


class UnknownStores(SecurityError):
    """A scope names stores that do not exist (422)."""

    def __init__(self, stores: list[str]) -> None:
        super().__init__(f"unknown store ids: {', '.join(stores)}")
        self.stores = stores


class UserNotFound(SecurityError):
    """No live user has this id (404)."""


class ApiKeyNotFound(SecurityError):
    """No API key has this id (404)."""


class LastAdmin(SecurityError):
    """The change would leave no enabled admin to administer users (409)."""


class InvalidScope(SecurityError):
    """A role and stores that do not go together, e.g. an admin limited to some stores (422)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
