"""Verify the hash chains of an `inventory events export` file offline (docs/audit.md).

    python3 ops/verify_chain.py EXPORT.ndjson [--anchor CHAIN]

Standard library only: copy it to the auditor's machine with the export. The lines are
read in the file's (seq) order, which within a store is chain order: every event's `chain` must be
the SHA-256 of the previous event's chain and the event's canonical encoding. The first
event links to 64 zeros, or to `--anchor` (the chain of the event before the export's
first, e.g. from a signed checkpoint or an earlier export). Exit 0 when every link holds,
1 naming the first event that does not, 2 on an unreadable file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

ZERO = "0" * 64
ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def jsonb_string(text: str) -> str:
    """A string as PostgreSQL's jsonb text output writes it."""
    body = "".join(
        ESCAPES.get(char) or (f"\\u{ord(char):04x}" if char < " " else char) for char in text
    )
    return f'"{body}"'


def jsonb_text(value: Any) -> str:
    """A JSON value as jsonb's text output writes it: keys by length then bytes,
    ", " and ": " between items, numbers in plain notation."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: (len(key.encode()), key.encode()))
        return "{" + ", ".join(f"{jsonb_string(k)}: {jsonb_text(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(item) for item in value) + "]"
    if isinstance(value, str):
        return jsonb_string(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value)  # true, false, null, whole numbers


def timestamp(text: str) -> str:
    """An RFC 3339 time as the encoding writes it: UTC, microseconds, Z."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encoding(event: dict[str, Any]) -> str:
    """The canonical encoding: [id, stream, version, type, store, sku, occurred_at,
    recorded_at, data, metadata] in jsonb text."""
    fields = [event["id"], event["stream"], event["version"], event["type"], event["store"]]
    fields += [event["sku"], timestamp(event["occurred_at"]), timestamp(event["recorded_at"])]
    fields += [event["data"], event["metadata"]]
    return "[" + ", ".join(map(jsonb_text, fields)) + "]"


def verify(lines: Iterable[str], anchor: str) -> tuple[int, str]:
    """(exit code, message) for the export's lines, read one at a time."""
    heads: dict[str, str] = {}
    count = 0
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line, parse_float=Decimal)
        count += 1
        store = event["store"] or ""
        expected = hashlib.sha256((heads.get(store, anchor) + encoding(event)).encode()).hexdigest()
        if event["chain"] != expected:
            return 1, (
                f"chain broken at position {event['position']} ({event['stream']} "
                f"v{event['version']}, {event['type']}, id {event['id']}): this event, or the "
                "one before it, was edited, removed or moved"
            )
        heads[store] = expected
    ends = ", ".join(f"{store or '(no store)'} ends at {head}" for store, head in heads.items())
    return 0, f"{count} events verified; {ends}"


def main() -> int:
    """Read the file, verify, print the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="an NDJSON file of `inventory events export`")
    parser.add_argument("--anchor", default=ZERO, help="chain before the first event")
    args = parser.parse_args()
    try:
        with open(args.export, encoding="utf-8") as file:
            code, message = verify(file, args.anchor)
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.stderr.write(f"cannot read {args.export}: {error}\n")
        return 2
    sys.stdout.write(message + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
