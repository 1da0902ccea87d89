"""The CSV reader and the row rules of bulk import, without servers: worst values first."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.api.json_body import PLAIN_DECIMAL as API_DECIMAL
from inventory.api.schemas import NewProduct
from inventory.imports.csvfile import LINE_CAP, FileRefused, records
from inventory.imports.plan import RowOutcome, RowPlan
from inventory.imports.rows import PLAIN_DECIMAL, ImportRow, row_plan


def split(data: bytes, size: int = 7) -> Iterator[bytes]:
    """The bytes in small chunks, so that lines and characters straddle them."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def plans(data: bytes, size: int = 7) -> list[RowPlan | RowOutcome]:
    return [row_plan(record) for record in records(split(data, size))]


def test_bom_crlf_and_quoted_newlines_keep_line_numbers() -> None:
    data = '\ufeffsku,name,description\r\nA1,Apple,"two\r\nlines"\r\n\r\nB2,Pear,\r\n'
    rows = plans(data.encode())
    assert [(row.line, row.sku) for row in rows] == [(2, "A1"), (5, "B2")]
    assert isinstance(rows[0], RowPlan)
    assert rows[0].description == "two\r\nlines"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"name,unit\nApple,each\n", "invalid_header"),
        (b"sku,name,sku\nA,B,C\n", "invalid_header"),
        (b"sku,colour\nA,red\n", "invalid_header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "invalid_header"),
    ],
)
def test_a_file_without_a_usable_header_is_refused_whole(data: bytes, code: str) -> None:
    with pytest.raises(FileRefused) as refused:
        plans(data)
    assert refused.value.code == code


def bad(row: RowPlan | RowOutcome) -> tuple[int, str | None]:
    assert isinstance(row, RowOutcome), row
    return row.line, row.code


@pytest.mark.parametrize(
    "row",
    [
        "A,Apple,1" + "0" * 999,  # 10^999 decimals
        "A,Apple,-1",
        "A,Apple,4",
        "A,Apple,NaN",
        "A,Apple\x00,1",
        "A B,Apple,1",  # white space in a SKU
        "A,Apple",  # ragged: short
        "A,Apple,1,extra",  # ragged: long
        "A," + "x" * 201 + ",1",  # name over 200 characters
    ],
)
def test_a_row_the_api_would_refuse_is_a_bad_row_with_its_line(row: str) -> None:
    data = f"sku,name,decimals\nOK,Fine,0\n{row}\nOK2,Fine,1\n".encode()
    rows = plans(data)
    assert isinstance(rows[0], RowPlan)
    assert bad(rows[1]) == (3, "validation_failed")
    assert isinstance(rows[2], RowPlan)
    assert rows[2].line == 4


@pytest.mark.parametrize("value", ["1e999", "NaN", "-Infinity", "1,5", " 2", "0x10", "\u0661"])
def test_quantities_follow_the_plain_decimal_grammar(value: str) -> None:
    rows = plans(f'sku,on_hand\nA,"{value}"\n'.encode())
    assert bad(rows[0]) == (2, "validation_failed")


def test_negative_and_huge_plain_quantities_reach_the_domain_rules() -> None:
    rows = plans(b"sku,on_hand,unit_cost\nA,-3,1.25\nB,1" + b"0" * 999 + b",\n")
    assert isinstance(rows[0], RowPlan) and rows[0].on_hand == Decimal(-3)
    assert isinstance(rows[1], RowPlan)  # the count's decider refuses it: ±10^12


def test_a_million_character_cell_is_one_bad_row() -> None:
    data = b"sku,description\nA," + b"x" * 1_000_000 + b"\nB,fine\n"
    rows = plans(data, 1 << 16)
    assert bad(rows[0]) == (2, "row_too_long")
    assert isinstance(rows[1], RowPlan) and rows[1].line == 3


def test_a_line_over_the_cap_is_dropped_not_held() -> None:
    data = b"sku,description\nA," + b"y" * (LINE_CAP + 10) + b"\nB,fine\n"
    rows = plans(data, 1 << 16)
    assert bad(rows[0]) == (2, "row_too_long")
    assert isinstance(rows[1], RowPlan) and rows[1].line == 3


def test_bytes_that_are_not_utf8_spoil_only_their_row() -> None:
    rows = plans(b"sku,name\nA,caf\xe9\nB,ok\n")
    assert bad(rows[0]) == (2, "invalid_encoding")
    assert isinstance(rows[1], RowPlan)


cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(st.tuples(cell, cell), max_size=15), st.integers(1, 64))
def test_any_file_yields_one_outcome_per_record_in_line_order(
    cells: list[tuple[str, str]], size: int
) -> None:
    lines = ["sku,name"] + [
        f'"{a.replace(chr(34), chr(34) * 2)}",{b.replace(chr(10), "")}' for a, b in cells
    ]
    data = "\n".join(lines).encode()
    try:
        rows = plans(data, size)
    except FileRefused:
        return
    numbers = [row.line for row in rows]
    assert numbers == sorted(set(numbers))
    assert all(2 <= number <= data.count(b"\n") + 1 for number in numbers)


def constraints(struct: type, name: str) -> object:
    """A field's type with its constraints, optional or not."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    (found,) = [f.type for f in info.fields if f.name == name]
    if isinstance(found, msgspec.inspect.UnionType):
        (found,) = [t for t in found.types if not isinstance(t, msgspec.inspect.NoneType)]
    return found


@pytest.mark.parametrize(
    "name", ["sku", "name", "description", "barcode", "unit", "decimals", "category"]
)
def test_the_row_rules_are_the_apis_body_rules(name: str) -> None:
    assert constraints(ImportRow, name) == constraints(NewProduct, name)


def test_the_quantity_grammar_is_the_apis() -> None:
    assert PLAIN_DECIMAL.pattern == API_DECIMAL.pattern
