"""Schemathesis over every operation of the OpenAPI (a standalone instance: office and central
routes): no 5xx, every response as declared (status code, schema, content type, headers), every
error problem+json, and data that breaks the schema refused with a 4xx.

The app and its database engine live on the test's event loop, so the schema is loaded from the app
(`from_dict(app.openapi())`, not `from_asgi`, whose client would run the app on a loop of its own) and
the cases go through the test's ASGI client: Hypothesis runs in a worker thread and hands each
request to the loop. Each
operation is called by the accounts its route lets in, first once with a valid request about
records that exist (so every success is checked against its schema too), then with generated
cases whose ids, half the time, name those records (so the fuzzer reaches the handlers, not only
the 404 in front of them). Bounded for CI: a few examples per operation, derandomized, no shrinking."""

import asyncio
import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.vocabulary import Role
from helpers import assert_problem
from test_role_matrix import PUBLIC, QUERIES, RECORD_KEYS, allowed_roles, api_routes, happy, path_params, seed

# Examples per operation and mode; GUICHET_TEST_FUZZ_EXAMPLES=100 for a deeper run by hand.
_DEEPER = int(os.environ.get("GUICHET_TEST_FUZZ_EXAMPLES", 0))
EXAMPLES = {GenerationMode.POSITIVE: _DEEPER or 4, GenerationMode.NEGATIVE: _DEEPER or 3}


def invalid_data_rejected(ctx, response, case) -> bool | None:
    """Schemathesis's negative_data_rejection, except for a JSON null offered as "invalid" where the
    body is optional: the schema allows null there (anyOf [..., null])."""
    if case.body is None:
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, invalid_data_rejected]
# The valid request is sent by the least privileged caller the route lets in.
LEAST_FIRST = [Role.clerk, Role.supervisor, Role.partner, Role.relay, Role.monitor, Role.admin]
BASE_URL = "http://guichet.test"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def problem_json_errors(ctx, response, case) -> bool:
    """Every error, declared or not, is problem+json with its status in the body."""
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), f"{response.status_code} as {content_type}"
        body = json.loads(response.content)
        assert body["status"] == response.status_code and body["type"] and body["title"], body
    return True


def _with_records(value: Any, ids: dict[str, Any]) -> Any:
    """Generated ids in a body or query replaced by the seeded records of the same name."""
    if isinstance(value, dict):
        return {k: ids[k] if k in RECORD_KEYS and isinstance(v, str) and UUID.match(v) else _with_records(v, ids)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_with_records(v, ids) for v in value]
    return value


async def test_schemathesis_finds_nothing(client, world, app, make_account):
    loop = asyncio.get_running_loop()
    ids = await seed(client, world, make_account, app)
    accounts = {Role.admin: world.admin, Role.supervisor: world.supervisor_a, Role.clerk: world.clerk_a,
                Role.monitor: world.monitor, Role.partner: world.partner, Role.relay: ids["relay"]}
    roles = {(method, path): allowed_roles(route) for method, path, route in api_routes(app)}
    schema = schemathesis.openapi.from_dict(app.openapi())
    sent: dict[str, int] = {}

    def send(case, account) -> None:
        headers = {**(case.headers or {}), **(account.headers if account else {})}
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
        request = {"method": kwargs["method"], "url": kwargs["url"], "headers": kwargs["headers"],
                   "params": kwargs.get("params")}
        if "json" in kwargs:  # NaN and friends go out as Python writes them, as a careless client would
            request["content"] = json.dumps(kwargs["json"]).encode()
            request["headers"] = {**request["headers"], "Content-Type": "application/json"}
        elif isinstance(kwargs.get("data"), bytes | str):
            request["content"] = kwargs["data"]
        elif "data" in kwargs:
            request["data"] = kwargs["data"]
        response = asyncio.run_coroutine_threadsafe(client.request(**request), loop).result()
        sent[case.operation.label] = sent.get(case.operation.label, 0) + 1
        case.validate_response(response, checks=CHECKS, additional_checks=[problem_json_errors], headers=request["headers"])

    def valid_case(operation, method: str, template: str):
        request = happy(method, template, ids)
        path_ids = {**ids, **{param: ids[key] for param, key in request.get("ids", {}).items()}}
        extra = {"query": QUERIES[template]} if template in QUERIES else {}
        if "json" in request:
            extra |= {"body": request["json"], "media_type": "application/json"}
        elif "data" in request:
            extra |= {"body": request["data"], "media_type": "application/x-www-form-urlencoded"}
        return operation.Case(path_parameters=path_params(template, path_ids) or None, headers=request.get("headers"),
                              **extra)

    failures: dict[str, str] = {}
    # The DCI message endpoints answer by the DCI standard, not by this API's conventions: a message they
    # cannot take is acknowledged (200, ERR/NACK or a `rjct` header), which "invalid data refused with a
    # 4xx" does not allow; their own tests (tests/test_dci_*.py) check every answer against the spec.
    skipped = {result.ok().label for result in schema.get_all_operations() if result.ok().path.startswith("/dci/")}

    def fuzz() -> None:
        for result in schema.get_all_operations():
            operation = result.ok()
            method, template = operation.method.upper(), operation.path
            if operation.label in skipped:
                continue
            allowed = roles[(method, template)]
            callers = [None] if allowed is PUBLIC else [accounts[role] for role in LEAST_FIRST if role in allowed]
            if template.startswith("/api/v1/partner/referrals"):
                callers = [ids["nea"]]  # the agency the seeded referral went to
            label = f"{method} {template}"
            try:
                send(valid_case(operation, method, template), callers[0])
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together below
                failures[f"{label} (a valid request)"] = str(exc)[:3000]
            for mode, examples in EXAMPLES.items():
                @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode), caller=st.sampled_from(callers),
                       records=st.booleans())
                def run(case, caller, records):
                    if records and mode is GenerationMode.POSITIVE:  # a negative case keeps its broken ids
                        case.path_parameters = path_params(template, ids) or None
                        case.query = _with_records(case.query, ids)
                        case.body = _with_records(case.body, ids)
                    send(case, caller)

                try:
                    run()
                except Unsatisfiable:  # an operation without parameters has no invalid data to send
                    assert mode is GenerationMode.NEGATIVE, label
                except (Exception, BaseExceptionGroup) as exc:
                    failures[f"{label} ({mode})"] = str(exc)[:3000]

    await asyncio.to_thread(fuzz)
    assert not failures, "\n\n".join(f"== {name}\n{text}" for name, text in failures.items())
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert operations == set(sent) | skipped and len(operations) > 60, operations - set(sent) - skipped
    assert len(skipped) == 8, skipped


async def test_what_the_fuzzer_found_stays_fixed(client, world):
    # GET /problems/{slug} answered an undeclared 404.
    declared = (await client.get("/openapi.json")).json()["paths"]["/problems/{slug}"]["get"]["responses"]
    assert "404" in declared
    assert_problem(await client.get("/problems/0"), 404, "not-found")
    # GET /audit read a bare number as seconds since 1970 where the contract says an ISO 8601 date-time.
    for number in ("0", "1700000000", "-1.5"):
        problem = assert_problem(await client.get("/api/v1/audit", params={"since": number}, headers=world.admin.headers),
                                 422, "validation")
        assert problem["errors"][0]["pointer"] == "#/query/since"
    ok = await client.get("/api/v1/audit", params={"since": "2026-01-31T08:00:00+07:00"}, headers=world.admin.headers)
    assert ok.status_code == 200
