"""Who sends a command, as far as the domain's rules depend on it (product.md rules 2 and 4)."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["admin", "manager", "clerk", "auditor", "viewer"]


class Authority(msgspec.Struct, frozen=True, kw_only=True):
    """The sender's role and whether it is an API key (a device) rather than a person.

    The default is the narrowest sender the API admits commands from, a clerk's key, so a
    command built without naming its sender never gets rights it was not given.
    """

    role: Role = "clerk"
    api_key: bool = True

    @property
    def backdate_limited(self) -> bool:
        """Clerks and API keys may date commands at most the store's `backdate_days` back."""
        return self.role == "clerk" or self.api_key

    @property
    def manages(self) -> bool:
        """Managers and admins may return goods against a sale that oversold (rule 4)."""
        return self.role in ("admin", "manager")


SYSTEM = Authority(role="admin", api_key=False)
"""Commands the service issues itself (a reservation's expiry): bound by no clerk's limits."""
