"""The API reference walks its own document: every operation says what it does and who may
call it, and shows a real example, valid against its schema, for its request, its
answer and each problem it may send (issue 20, item 5)."""

from __future__ import annotations

from typing import Any, cast

import jsonschema
import pytest

from inventory.api.app import create_app
from inventory.api.reference import reference
from inventory.runtime.settings import Settings

METHODS = ("get", "put", "post", "delete", "patch")
# Litestar warns, building the app, of query parameters declared in its older style.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::litestar.exceptions.base_exceptions.LitestarDeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:Deprecated 'query' parameter:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # The document needs no services: the lifespan that builds them never runs here.
    app = create_app(cast("Settings", None), cast("Any", None))
    return reference(app.openapi_schema.to_schema(), app)


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method in METHODS
        if (operation := item.get(method)) is not None
    ]


def check(document: dict[str, Any], where: str, media: dict[str, Any]) -> list[str]:
    """Problems with one media type's example: missing, or refused by its schema."""
    if "example" not in media:
        return [f"{where}: no example"]
    root = {**media["schema"], "components": document["components"]}
    errors = jsonschema.Draft202012Validator(root).iter_errors(media["example"])
    return [f"{where}: {error.message}" for error in errors]


def test_the_document_has_every_operation(document: dict[str, Any]) -> None:
    names = {name for name, _ in operations(document)}
    assert len(names) >= 47
    assert {"POST /v1/auth/refresh", "POST /v1/alerts/{alert_id}/acknowledge"} <= names


def test_every_operation_says_what_it_does_and_who_may_call_it(document: dict[str, Any]) -> None:
    missing = [
        name
        for name, operation in operations(document)
        if len(operation.get("description", "")) < 60
        or "**Who may call it:**" not in operation["description"]
    ]
    assert missing == []


def test_every_request_answer_and_problem_has_a_valid_example(document: dict[str, Any]) -> None:
    problems: list[str] = []
    for name, operation in operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            problems += check(document, f"{name} request {media_type}", media)
        for status, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if media_type != "text/csv":
                    problems += check(document, f"{name} {status} {media_type}", media)
    assert problems == []


def test_problem_examples_have_the_shape_errors_py_sends(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/problem+json")
            if media is None:
                continue
            example = media["example"]
            assert example["status"] == int(status), name
            assert example["type"] == f"urn:inventory:problem:{example['code']}", name
            assert set(example) <= {"type", "title", "status", "detail", "code", "errors"}
    token = dict(operations(document))["POST /v1/auth/token"]
    bad_request = token["responses"]["400"]["content"]["application/problem+json"]["example"]
    assert bad_request["code"] == "invalid_json" and bad_request["title"] == "Bad Request"


def test_no_content_answers_carry_no_body(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        if "204" in operation["responses"]:
            assert "content" not in operation["responses"]["204"], name
