"""Signed checkpoints of the chains' heads, kept as files outside the database."""

# A superuser can rewrite a store's whole history and recompute every link: the chain
# alone then verifies. A checkpoint signed with a key the database never sees pins each
# head as it was; since every link commits to all the events before it, the event at a
# checkpointed position must still carry the checkpointed chain.

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inventory.eventstore.chain_audit import chain_at, chain_at_async, chain_heads

FORMAT = "inventory-chain-checkpoint/1"
PREFIX, SUFFIX = "checkpoint-", ".json"
_KEY_CONTEXT = b"inventory audit checkpoint key\n"


class CheckpointError(Exception):
    """A checkpoint file that is unreadable, of another key, or not validly signed."""


@dataclass(frozen=True, slots=True)
class Head:
    """One chain's head at checkpoint time."""

    store: str
    position: int
    chain: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every chain's head at one moment, signed."""

    taken_at: str
    public_key: str
    heads: tuple[Head, ...]


def signing_key(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 key of the INVENTORY_AUDIT_SIGNING_KEY setting (any long random text:
    the seed is its SHA-256, so `openssl rand -hex 32` or a generated token both serve)."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(_KEY_CONTEXT + secret.encode()).digest()
    )


def public_hex(key: Ed25519PublicKey) -> str:
    """The raw public key in hex (what a checkpoint names and an auditor keeps)."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _message(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def take(conn: psycopg.Connection[Any], key: Ed25519PrivateKey, directory: Path) -> Path:
    """Sign every chain's head (its last event) and write it to `directory`."""
    heads = [Head(store, position, chain) for store, position, chain in chain_heads(conn)]
    now = datetime.now(UTC)
    body = {
        "format": FORMAT,
        "taken_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "public_key": public_hex(key.public_key()),
        "heads": [asdict(head) for head in heads],
    }
    body["signature"] = key.sign(_message(body)).hex()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}{SUFFIX}"
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("w") as out:
        out.write(json.dumps(body, indent=1, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(target)
    return target


def latest(directory: Path) -> Path | None:
    """The newest checkpoint file in `directory` (names sort by time), if any."""
    if not directory.is_dir():
        return None
    found = sorted(directory.glob(f"{PREFIX}*{SUFFIX}"))
    return found[-1] if found else None


def load(path: Path, key: Ed25519PublicKey) -> Checkpoint:
    """Read a checkpoint and check its signature against `key`."""
    try:
        body = json.loads(path.read_text())
        signature = bytes.fromhex(body.pop("signature"))
        if body.get("format") != FORMAT:
            raise CheckpointError(f"{path.name}: not a {FORMAT} file")
        if body.get("public_key") != public_hex(key):
            raise CheckpointError(
                f"{path.name}: signed with another key ({body.get('public_key')})"
            )
        key.verify(signature, _message(body))
        heads = tuple(Head(**head) for head in body["heads"])
        return Checkpoint(str(body["taken_at"]), str(body["public_key"]), heads)
    except InvalidSignature:
        raise CheckpointError(f"{path.name}: the signature does not match its contents") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path.name}: unreadable ({error})") from None


def compare(conn: psycopg.Connection[Any], heads: Iterable[Head]) -> list[str]:
    """What differs between the checkpointed heads and the events on the primary now."""
    pinned = list(heads)
    return differences(pinned, [chain_at(conn, h.store, h.position) for h in pinned])


async def compare_async(conn: psycopg.AsyncConnection[Any], heads: Iterable[Head]) -> list[str]:
    """`compare` on an async connection (the API's primary pool)."""
    pinned = list(heads)
    return differences(pinned, [await chain_at_async(conn, h.store, h.position) for h in pinned])


def differences(heads: Sequence[Head], stored: Sequence[str | None]) -> list[str]:
    """Each checkpointed head against the chain its event carries now (None: gone)."""
    problems = []
    for head, found in zip(heads, stored, strict=True):
        name = head.store or "(no store)"
        if found is None:
            problems.append(f"{name}: the checkpointed event at position {head.position} is gone")
        elif found != head.chain:
            problems.append(
                f"{name}: the event at position {head.position} carries chain {found[:16]}...,"
                f" the checkpoint signed {head.chain[:16]}...: the history up to it was rewritten"
            )
    return problems
