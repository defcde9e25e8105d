"""Schemathesis over the whole API against the real app and warehouse, as `st run --checks all` would run it,
signed in as an admin with valid tokens (every endpoint answers past its authentication; the `ignored_auth`
check sends requests without the token too); deleting the account is called as a new user each time, so that
the admin stays. The rate limits are lifted for the run: its requests come from one address and one user.

A stateless run sized for CI: the schema's examples, coverage of boundaries and of what the schema forbids,
and a few fuzzed cases per operation, with every check: no 5xx, status codes, content types, headers and
bodies as documented, valid input accepted, invalid input rejected, 405 with `Allow` for methods the schema
does not list. Generation is deterministic, so its findings are reproducible.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.core.failures import Failure, ServerError
from schemathesis.core.transport import Response
from schemathesis.engine import Status, events, from_schema
from schemathesis.hooks import HookContext
from schemathesis.openapi.checks import RejectedPositiveData

from serving.app import create_app
from tests.serving.support import Warehouse, api_settings, new_account, new_admin

# Fuzzed cases per operation: the coverage phase already walks every parameter's boundaries.
EXAMPLES = 5
ERASED_ACCOUNT = ("DELETE", "/api/v1/me")
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
TRANSACTIONS = "/api/v1/portfolios/{portfolio_id}/transactions"
# Rules of one operation a schema cannot state either, which only the warehouse or the clock know: each a 422
# saying so. A broker's CSV file is one string to the schema, whatever its lines hold.
SCREEN_FIELDS = "unknown field"  # the features the warehouse's marts hold (GET /api/v1/screens/fields)
RULES_OF_AN_OPERATION = {
    ("POST", TRANSACTIONS): ("unknown symbol", "after today"),
    ("POST", f"{TRANSACTIONS}/import"): ("line ", "the file "),
    ("POST", "/api/v1/watchlists"): ("unknown symbol",),
    ("POST", "/api/v1/screens"): (SCREEN_FIELDS,),
    ("PATCH", "/api/v1/screens/{screen_id}"): (SCREEN_FIELDS,),
    # Which of level and top_n an alert takes follows its kind.
    ("POST", "/api/v1/alerts"): ("alert takes", "unknown symbol"),
}
# The one operation that depends on a service the run has no copy of (the Dagster webserver): its documented
# 503 says that service is down, not that the API broke.
ORCHESTRATOR_DOWN = ("POST", "/api/v1/admin/refresh")


@pytest.fixture(scope="module")
def api_schema(
    api_warehouse: Warehouse, redis_url: str, accounts_client: TestClient
) -> schemathesis.BaseSchema:
    # As many requests as the run makes from one address and one user are expected, not limited.
    unlimited = {f"rate_limit_{name}": "1000000/minute" for name in ("per_user", "per_ip", "login")}
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(api_settings(api_warehouse.api_url, redis_url, **unlimited))
    )
    schema.config.checks.update(included_check_names=["all"])
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)
    _, admin = new_admin(accounts_client, api_warehouse.url, "schemathesis")

    @schema.auth()
    class SignedIn:
        def get(self, case: schemathesis.Case[Any], context: Any) -> dict[str, str]:
            return admin

        def set(self, case: schemathesis.Case[Any], data: dict[str, str], context: Any) -> None:
            if (case.method.upper(), case.path) == ERASED_ACCOUNT:
                data = new_account(accounts_client, "erased")[1]
            case.headers = {**(case.headers or {}), **data}

    @schema.hook
    def filter_failure(
        context: HookContext, failure: Failure, case: schemathesis.Case[Any], response: Response
    ) -> bool:
        operation = (case.method.upper(), case.path)
        if isinstance(failure, ServerError) and operation == ORCHESTRATOR_DOWN:
            documented = "503" in case.operation.definition.raw["responses"]
            return not (documented and response.status_code == 503 and "retry-after" in response.headers)
        if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
            return True
        detail = str(response.json().get("detail", ""))
        rules = RULES_BETWEEN_PARAMETERS + RULES_OF_AN_OPERATION.get(operation, ())
        return not any(rule in detail for rule in rules)

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
