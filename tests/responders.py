"""A responder for tests that drive the command service without HTTP."""

from __future__ import annotations

import msgspec

from inventory.domain.errors import CommandRejected
from inventory.service import Decision


class JsonResponder:
    """The API's shape in miniature: 201 with the result, the code for a refusal."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        return 201, msgspec.json.encode(decision.result)

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        return 409, msgspec.json.encode({"code": error.code, "errors": error.errors})
