"""Schemathesis over the whole API against the real app and warehouse, as `st run --checks all` would run it,
anonymously: the signed-in routes answer their documented 401 (tests/serving/test_accounts.py and
test_portfolios.py exercise them signed in).

A stateless run sized for CI: the schema's examples, coverage of boundaries and of what the schema forbids,
and a few fuzzed cases per operation, with every check: no 5xx, status codes, content types, headers and
bodies as documented, valid input accepted, invalid input rejected, 405 with `Allow` for methods the schema
does not list. Generation is deterministic, so its findings are reproducible.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.core.transport import Response
from schemathesis.engine import Status, events, from_schema
from schemathesis.hooks import HookContext
from schemathesis.openapi.checks import RejectedPositiveData

from serving.app import create_app
from tests.serving.support import Warehouse, api_settings

# Fuzzed cases per operation: the coverage phase already walks every parameter's boundaries.
EXAMPLES = 5
# What a schema-valid request may still break: rules between parameters, which an OpenAPI document cannot
# state and the parameters' descriptions give. Each is a 422 saying so.
RULES_BETWEEN_PARAMETERS = (
    "is after end",  # start, end
    "exceeds max_market_cap",  # min_market_cap, max_market_cap
    "bars asked for, at most",  # symbols, start, end, interval
    "symbols per request",  # at most 500 symbols
    # Not a rule between parameters, but one a schema cannot state either: the JSON Schema "email" format is
    # looser than the address rules (RFC 5321 lengths, special-use domains) email-validator applies.
    "value is not a valid email address",
)


@pytest.fixture(scope="module")
def api_schema(api_warehouse: Warehouse, redis_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(api_settings(api_warehouse.url, redis_url))
    )
    schema.config.checks.update(included_check_names=["all"])
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)

    @schema.hook
    def filter_failure(
        context: HookContext, failure: Failure, case: schemathesis.Case[Any], response: Response
    ) -> bool:
        if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
            return True
        detail = str(response.json().get("detail", ""))
        return not any(rule in detail for rule in RULES_BETWEEN_PARAMETERS)

    return schema


def test_every_check_over_every_operation_finds_nothing(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    errors: list[str] = []
    tested: set[str] = set()
    phases: dict[str, Status] = {}
    for event in from_schema(api_schema).execute():
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name] = event.status
        elif isinstance(event, events.ScenarioFinished):
            tested.add(event.recorder.label)
            for case_id, checks in event.recorder.checks.items():
                case = event.recorder.cases[case_id].value
                failures.extend(
                    f"{check.name}: {case.method} {case.formatted_path} query={case.query}: "
                    f"{check.failure_info.failure.title}"
                    for check in checks
                    if check.failure_info is not None
                )
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            errors.append(repr(event.exception))
    assert not errors, "\n".join(errors)
    for phase in ("examples", "coverage", "fuzzing"):
        assert phases[phase] is not Status.SKIP, phase
    assert not failures, "\n".join(sorted(set(failures)))
    operations = [result.ok().label for result in api_schema.get_all_operations()]
    assert len(operations) >= 15 and set(operations) <= tested
