"""Hostile JSON bodies, checked before a handler decodes them (api.md "Conventions").

The checks here know nothing of any one route: they read the body's bytes and, for the
plain decimal grammar and U+0000, walk the decoded value beside the msgspec type the
route declares. What passes is then decoded by Litestar as before.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec
from msgspec import inspect as types

from inventory.api.errors import ApiError

MAX_DEPTH = 32
# A JSON string, escapes included: removed before brackets are counted.
STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
EMPTY_CONTAINER = re.compile(rb"\[\]|\{\}")
# api.md: a quantity is `-?digits[.digits]` in ASCII, as a JSON number or a string.
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class _Number(str):
    """The literal text of a JSON number with a fraction or an exponent."""

    __slots__ = ()


# Floats keep their literal text, so an exponent or a long fraction is seen as written.
DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=_Number)


def _invalid_json(detail: str) -> ApiError:
    return ApiError(400, "invalid_json", detail)


def _too_deep(body: bytes) -> bool:
    """True when containers nest deeper than MAX_DEPTH (no recursion, no decoding).

    Each pass removes every empty container, i.e. the innermost level of every branch;
    what is left after MAX_DEPTH passes lies deeper (or is not JSON at all). A body with
    no more opening brackets than MAX_DEPTH (strings included) cannot nest deeper: nearly
    every body, answered by two counts instead of the passes.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    brackets = STRING.sub(b"", body).translate(None, NOT_BRACKET)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = EMPTY_CONTAINER.sub(b"", brackets)
    return bool(brackets)


def decoded(body: bytes) -> Any:
    """The body as plain JSON values; 400 `invalid_json` for bytes that are not JSON."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_json("The body is not UTF-8.") from None
    if b"\x00" in body:
        raise _invalid_json("The body holds a raw U+0000 byte.")
    if _too_deep(body):
        raise _invalid_json(f"The body nests deeper than {MAX_DEPTH} levels.")
    try:
        return DECODER.decode(body)
    except msgspec.DecodeError:
        raise _invalid_json("The body is not valid JSON.") from None


def check_values(value: Any, body_type: Any) -> None:
    """422 `validation_failed` naming each NUL-holding string and each quantity outside
    the plain decimal grammar, by the path the client wrote (`lines[3].quantity`)."""
    errors: list[dict[str, Any]] = []
    _walk(value, _node(_type_info(body_type) if body_type is not None else None), "", errors)
    if errors:
        raise ApiError(422, "validation_failed", errors[0]["message"], errors=errors)


@functools.cache
def _type_info(body_type: Any) -> types.Type:
    """msgspec's description of a route's body type, built once per type: building it
    walks the type's annotations, which cost a tenth of a sale's CPU (bench/profiles/)."""
    return types.type_info(body_type)


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Node:
    """What the walk asks of one msgspec type, answered once per type instead of per value."""

    __slots__ = ("allowed", "decimal", "fields", "item", "kind", "names")

    def __init__(self, kind: types.Type | None) -> None:
        self.kind = kind
        self.decimal = _is_decimal(kind)
        self.allowed = _allowed(kind)
        self.item: _Node | None = None  # the node of a list's items, when first needed
        self.fields: dict[str, _Node] = {}  # nodes of the struct fields met so far
        self.names = frozenset(
            field.encode_name
            for option in _options(kind)
            if isinstance(option, types.StructType)
            for field in option.fields
        )

    def field(self, key: str) -> _Node:
        """The node of the value under `key` (only a struct's own names are kept: the
        client's other keys would grow the table without bound)."""
        node = self.fields.get(key)
        if node is None:
            node = _node(_field_type(self.kind, key))
            if key in self.names:
                self.fields[key] = node
        return node

    def items(self) -> _Node:
        """The node of a list's items."""
        if self.item is None:
            self.item = _node(_item_type(self.kind))
        return self.item


# Nodes by the id of their type (each type kept beside its node, so the id stays its own):
# the types are _type_info's, built once per body type.
_NODES: dict[int, tuple[types.Type | None, _Node]] = {}


def _node(kind: types.Type | None) -> _Node:
    found = _NODES.get(id(kind))
    if found is None:
        found = _NODES[id(kind)] = (kind, _Node(kind))
    return found[1]


def _walk(value: Any, node: _Node, path: str, errors: list[dict[str, Any]]) -> None:
    if isinstance(value, str) and "\x00" in value:
        errors.append({"field": path or "body", "message": "U+0000 is not allowed in text."})
    if node.decimal and not _plain_decimal(value):
        errors.append({"field": path, "message": "Expected a plain decimal (-?digits[.digits])."})
    if node.allowed and isinstance(value, str) and value not in node.allowed:
        errors.append({"field": path, "message": "Not an allowed value.", "allowed": node.allowed})
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                errors.append({"field": _child(path, key), "message": "U+0000 in a field name."})
            _walk(item, node.field(key), _child(path, key), errors)
    elif isinstance(value, list):
        item_node = node.items()
        for index, item in enumerate(value):
            _walk(item, item_node, _child(path, index), errors)


def _plain_decimal(value: Any) -> bool:
    if isinstance(value, bool):
        return True  # not a number at all: the typed decoding names it
    if isinstance(value, int):
        return True
    if isinstance(value, str):  # a string, or a JSON number's literal text (_Number)
        return PLAIN_DECIMAL.fullmatch(value) is not None
    return True  # null, lists, objects: the typed decoding refuses them


def _options(kind: types.Type | None) -> list[types.Type]:
    if isinstance(kind, types.UnionType):
        return [leaf for option in kind.types for leaf in _options(option)]
    if isinstance(kind, types.Metadata):
        return _options(kind.type)
    return [kind] if kind is not None else []


def _is_decimal(kind: types.Type | None) -> bool:
    return any(isinstance(option, types.DecimalType) for option in _options(kind))


def allowed_values(annotation: Any) -> list[str]:
    """The values an enum or literal type admits; empty for any other type."""
    try:
        return _allowed(types.type_info(annotation))
    except TypeError:  # not a type msgspec knows: not an enum either
        return []


def takes_time(annotation: Any) -> bool:
    """Whether a parameter's type is a datetime (alone or beside None)."""
    try:
        options = _options(types.type_info(annotation))
    except TypeError:  # not a type msgspec knows: not a datetime either
        return False
    return any(isinstance(option, types.DateTimeType) for option in options)


def takes_integer(annotation: Any) -> bool:
    """Whether a parameter's type is an integer (alone or beside None)."""
    try:
        options = _options(types.type_info(annotation))
    except TypeError:  # not a type msgspec knows: not an integer either
        return False
    kinds = [option for option in options if not isinstance(option, types.NoneType)]
    return bool(kinds) and all(isinstance(option, types.IntType) for option in kinds)


def _allowed(kind: types.Type | None) -> list[str]:
    """The values an enum or a literal admits (empty when `kind` takes other text too)."""
    allowed: list[str] = []
    for option in _options(kind):
        if isinstance(option, types.LiteralType):
            allowed += [str(value) for value in option.values]
        elif isinstance(option, types.EnumType):
            allowed += [str(member.value) for member in option.cls]
        elif not isinstance(option, types.NoneType):
            return []
    return allowed


def _field_type(kind: types.Type | None, key: str) -> types.Type | None:
    for option in _options(kind):
        if isinstance(option, types.StructType):
            for field in option.fields:
                if field.encode_name == key:
                    return field.type
        if isinstance(option, types.DictType):
            return option.value_type
    return None


def _item_type(kind: types.Type | None) -> types.Type | None:
    for option in _options(kind):
        if isinstance(option, types.ListType | types.SetType | types.VarTupleType):
            return option.item_type
    return None
