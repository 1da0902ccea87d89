"""Integers written as text, proven over generated strings: only plain ASCII decimal digits
in bounds pass, with the value they spell; and every integer parameter of every route is
one the door checks, with the bounds the OpenAPI document states."""

from __future__ import annotations

from typing import Any, cast

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.routes import HTTPRoute

from inventory.api.app import create_app
from inventory.api.contract import true_contract
from inventory.api.door import check_query, integer_parameters, shapes_of
from inventory.api.errors import ApiError
from inventory.api.integers import BIGINT_MAX, BIGINT_MIN, Bounds, parse

# Litestar warns, building the app, of query parameters declared in its older style.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::litestar.exceptions.base_exceptions.LitestarDeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:Deprecated 'query' parameter:DeprecationWarning"),
]


def spelt(text: str, bounds: Bounds) -> int | None:
    """The oracle: the value whose one spelling `str()` writes is `text`, within `bounds`.
    (`int()` alone is no oracle: it takes `+1`, ` 1`, `1_0`, `007` and Unicode digits.)"""
    try:
        value = int(text)
    except ValueError:  # not digits at all, or past int()'s 4,300-digit limit
        return None
    return value if str(value) == text and bounds.lowest <= value <= bounds.highest else None


bigints = st.integers(min_value=BIGINT_MIN, max_value=BIGINT_MAX)
declared = st.sampled_from([Bounds(), Bounds(lowest=0), Bounds(1, 1000)])
bounds = declared | st.builds(lambda a, b: Bounds(min(a, b), max(a, b)), bigints, bigints)
JUNK = [" ", "\t", "\n", "_", "+", "-", ".", "e", "E", "e3", ".0", "0", "x", "\u00a0"]
DIGITS = ["\u0663", "\uff11", "\u00b2", "\u0967", "\U0001d7ce"]  # Arabic-Indic, fullwidth...
numbers = st.integers().map(str)  # in and far past a bigint
spoilt = st.builds(
    lambda text, junk, at: text[: at % (len(text) + 1)] + junk + text[at % (len(text) + 1) :],
    numbers,
    st.sampled_from(JUNK + DIGITS),
    st.integers(min_value=0),
)
floats = st.floats().map(str) | st.from_regex(
    r"-?[0-9]{1,4}(\.[0-9]{0,3})?[eE][+-]?[0-9]{1,3}", fullmatch=True
)
texts = numbers | spoilt | floats | st.text(max_size=25) | st.text("0123456789-+", max_size=25)


@given(texts, bounds)
@example("1e3", Bounds())
@example("1.0", Bounds())
@example("007", Bounds())
@example("-0", Bounds())
@example(str(BIGINT_MAX + 1), Bounds())
@example(str(BIGINT_MIN), Bounds())
@example("1" * 5000, Bounds())
def test_only_plain_decimal_digits_in_bounds_pass_with_their_value(
    text: str, within: Bounds
) -> None:
    assert parse(text, within) == spelt(text, within)


@given(bigints, bounds)
def test_every_integer_in_bounds_passes_in_its_own_spelling(value: int, within: Bounds) -> None:
    text = str(value)
    accepted = parse(text, within)
    assert accepted == (value if within.lowest <= value <= within.highest else None)
    if accepted is not None:  # and Litestar, handed the same text, reads the same value
        assert msgspec.convert(text, int, strict=False) == accepted


@pytest.mark.parametrize(
    "text",
    [
        "1e3", "1E3", "1e+3", "1.0", "1.0e3", "10e-1", "1.000000000000000001", "0.0", "-0.0",
        "-0", "1.5", "+1", " 1", "1 ", "\t1", "1\n", "0x10", "0o7", "0b1", "1_000", "\uff11",
        "\u0663", "\u00b2", "", "-", "--1", "NaN", "nan", "inf", "-inf", "Infinity", "007",
        "00", str(2**63), str(-(2**63) - 1), "9" * 30,
    ],
)  # fmt: skip
def test_every_shape_lax_parsers_take_is_refused(text: str) -> None:
    assert parse(text, Bounds()) is None


def test_declared_bounds_are_kept_within_a_bigint() -> None:
    class Declared:
        ge, gt, le, lt = 0, None, None, None

    class Open:
        ge = gt = le = lt = None

    assert Bounds.declared(Declared()) == Bounds(0, BIGINT_MAX)
    assert Bounds.declared(Open(), msgspec.Meta(gt=1, lt=10)) == Bounds(2, 9)
    assert Bounds.declared(msgspec.Meta(ge=-(2**70), le=2**70)) == Bounds()
    assert "no `+`" in Bounds(0, 9).expected() and "`-`" not in Bounds(0, 9).expected()


@pytest.fixture(scope="module")
def app() -> Litestar:
    # The routes need no services: the lifespan that builds them never runs here.
    return create_app(cast("Any", None), cast("Any", None))


def documented_integers(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each operation's query and path parameters the OpenAPI document types `integer`."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                kinds = [schema.get("type"), *(o.get("type") for o in schema.get("oneOf", []))]
                if parameter["in"] in ("query", "path") and "integer" in kinds:
                    found.setdefault((method, path), {})[parameter["name"]] = schema
    return found


def test_the_door_checks_every_integer_the_document_offers_with_its_bounds(app: Litestar) -> None:
    document = true_contract(app.openapi_schema.to_schema(), app)
    checked = {key: found for key, found in integer_parameters(app).items() if found}
    documented = documented_integers(document)
    assert {key: set(names) for key, names in documented.items()} == {
        key: set(names) for key, names in checked.items() if key[0] != "options"
    }
    assert len(documented) >= 20 and ("get", "/v1/events") in documented
    for key, parameters in documented.items():
        for name, schema in parameters.items():
            found = checked[key][name]
            assert (schema["minimum"], schema["maximum"]) == (found.lowest, found.highest)
            assert isinstance(schema["minimum"], int) and isinstance(schema["maximum"], int)


def test_an_integer_path_parameter_reaches_the_door_as_text(app: Litestar) -> None:
    """Litestar's `:int` converts with int() before any middleware; `:str` leaves the
    text for the door to check."""
    converted = [
        f"{route.path} ({name})"
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for name, parameter in route.path_parameters.items()
        if parameter.type is int
    ]
    assert converted == []
    alerts = integer_parameters(app)["post", "/v1/alerts/{alert_id}/acknowledge"]
    assert alerts == {"alert_id": Bounds(1, BIGINT_MAX)}


def test_the_door_names_each_misread_integer_as_the_client_spelt_it(app: Litestar) -> None:
    (route,) = [r for r in app.routes if isinstance(r, HTTPRoute) and r.path == "/v1/events"]
    shape = shapes_of(app)[id(route.route_handler_map["GET"][0])]
    check_query(b"after=0&limit=1000&min_position=9223372036854775807", shape)
    with pytest.raises(ApiError) as raised:
        check_query(b"after=%EF%BC%91&limit=1e3&type=x&min_position=1.0", shape)
    assert raised.value.status == 422 and raised.value.code == "validation_failed"
    assert [error["field"] for error in raised.value.errors or []] == [
        "after",
        "limit",
        "min_position",
    ]
