"""The door's JSON checks, proven over generated bodies: depth is counted exactly, and a
quantity passes only in the plain decimal grammar."""

from __future__ import annotations

import json
import string
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.api import stock_bodies
from inventory.api.errors import ApiError
from inventory.api.json_body import MAX_DEPTH, _too_deep, check_values, decoded

leaves = st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:', max_size=5)
documents = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=60,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    return 0


@given(documents, st.integers(min_value=0, max_value=40))
def test_a_body_is_too_deep_exactly_when_it_nests_past_32(value: Any, wrap: int) -> None:
    for _ in range(wrap):
        value = [value]
    assert _too_deep(json.dumps(value).encode()) == (depth(value) > MAX_DEPTH)


plain = st.from_regex(r"-?[0-9]{1,12}(\.[0-9]{1,3})?", fullmatch=True)


@given(plain)
def test_a_plain_decimal_quantity_passes_as_a_string_or_a_number(text: str) -> None:
    for raw in (f'"{text}"', str(Decimal(text))):  # a JSON number has no leading zeros
        body = f'{{"sale_id": "s", "lines": [{{"sku": "A", "quantity": {raw}}}]}}'
        check_values(decoded(body.encode()), stock_bodies.Sale)


@given(plain, st.sampled_from([" ", "_", "e5", "E-2", "\u0661", "+", "\u00a0"]), st.data())
def test_a_quantity_outside_the_grammar_is_422_at_its_field(
    text: str, bad: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    spoilt = text[:at] + bad + text[at:]
    body = json.dumps(
        {"sale_id": "s", "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": spoilt}]}
    )
    with pytest.raises(ApiError) as raised:
        check_values(decoded(body.encode()), stock_bodies.Sale)
    assert (raised.value.status, raised.value.errors) == (
        422,
        [
            {
                "field": "lines[1].quantity",
                "message": "Expected a plain decimal (-?digits[.digits]).",
            }
        ],
    )


@given(st.text(alphabet=string.printable, max_size=20), st.text(max_size=20))
def test_a_nul_in_any_text_is_422_naming_its_field(before: str, after: str) -> None:
    body = json.dumps({"sale_id": "s", "lines": [{"sku": before + "\x00" + after, "quantity": 1}]})
    with pytest.raises(ApiError) as raised:
        check_values(decoded(body.encode()), stock_bodies.Sale)
    assert raised.value.errors is not None
    assert raised.value.errors[0]["field"] == "lines[0].sku"
