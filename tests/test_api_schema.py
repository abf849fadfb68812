"""Property-based tests from the OpenAPI document: no 5xx, and every answer fits the schema.

Schemathesis generates requests for every operation of ``/openapi.json``, valid and invalid ones,
and runs them through the ASGI app against a real SQLite warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from coursemart.api import create_app
from tests.test_api import fill, settings_for

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
KEY = "schema-test-key"
#: Examples per operation and generation mode: enough to find trouble, quick enough for every run.
EXAMPLES = 25
OPERATIONS = {
    GenerationMode.POSITIVE: {
        "/api/GetRecentCourses",
        "/v1/courses/recent",
        "/v1/categories",
        "/v1/levels",
        "/v1/courses/{course_id}",
        "/health",
    },
    GenerationMode.NEGATIVE: {"/api/GetRecentCourses", "/v1/courses/recent"},
}


@pytest.fixture(scope="module")
def filled_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder: Path = tmp_path_factory.mktemp("schema")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    fill(folder / "lake", url, courses=300, crowded=100)
    return url


def fuzz(schema: Any, mode: GenerationMode, **call: Any) -> set[str]:
    """Run ``EXAMPLES`` generated cases through every operation; returns the paths exercised.

    Invalid input can only be made for operations that take parameters.
    """
    seen = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        parameters = [p for p in operation.iter_parameters() if p.location != "header"]
        if mode is GenerationMode.NEGATIVE and not parameters:
            continue
        seen.add(operation.path)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(**call)

        check()
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_open_api_answers_fit_the_schema(filled_sqlite: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(settings_for(filled_sqlite))
    )
    assert OPERATIONS[mode] <= fuzz(schema, mode, checks=CHECKS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_keyed_api_answers_fit_the_schema(filled_sqlite: str, mode: GenerationMode) -> None:
    app = create_app(settings_for(filled_sqlite, api_keys=KEY))
    # The key in one of the four schemes the document declares (any one of them is enough).
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"Bearer": {"bearer": KEY}}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    assert OPERATIONS[mode] <= fuzz(schema, mode, checks=[*CHECKS, ignored_auth])
