"""A contract run against the live stack: schemathesis generates requests for every operation of the
OpenAPI document the Worker serves, sends them with a real user's token, and checks that no request
gets a 5xx and every answer matches the documented status, content type and schema; requests valid by
the schema are accepted, except for the refusals a schema cannot foresee (SEMANTIC_REFUSALS); requests
the schema does not allow (negative mode) never get a 5xx either (unknown query parameters are ignored,
so they are not required to be refused)."""

import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from gpu_export import Client

EXAMPLES_PER_OPERATION = 12
# Refusals of schema-valid requests that depend on more than the schema can say.
SEMANTIC_REFUSALS = {
    "POST /api/videos/upload-url": {413},  # over this deployment's MAX_UPLOAD_BYTES
    "POST /api/videos/multipart": {413},
    "POST /api/jobs": {422},  # a crop that leaves the frame (x + w > 1): a relation between two fields
    "GET /api/jobs": {400},  # a cursor not made by this API
    "GET /api/jobs/{job_id}/ws": {426},  # a plain GET, not a WebSocket upgrade
}


def test_every_operation_keeps_its_contract(stack):
    with Client(stack.url) as client:
        token = client.sign_up_anonymous().token
    schema = schemathesis.openapi.from_url(f"{stack.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    failures, calls, started = {}, [0], time.monotonic()

    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:
        allowed = SEMANTIC_REFUSALS.get(operation.label) if mode is GenerationMode.POSITIVE else None

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_its_contract(case):
            calls[0] += 1
            excluded = [positive_data_acceptance] if allowed else []
            if mode is GenerationMode.NEGATIVE:  # unknown query parameters are ignored, as HTTP APIs do
                excluded.append(negative_data_rejection)
            response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, timeout=30,
                                              excluded_checks=excluded)
            if allowed:
                assert response.status_code < 400 or response.status_code in allowed | {401, 404, 409}, \
                    f"{operation.label}: {response.status_code} {response.text[:300]}"

        try:
            keeps_its_contract()
        except Unsatisfiable:  # no invalid request exists for an operation without parameters or body
            assert mode is GenerationMode.NEGATIVE and not operation.body and not operation.query
        except (Exception, BaseExceptionGroup) as e:  # failed checks: schemathesis says which request, which check
            failures[f"{operation.label} ({mode.value})"] = str(e)[:2000]
    print(f"contract run: {len(operations)} operations, {calls[0]} requests, {len(failures)} failing, "
          f"{time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
