"""Who may call what, generated from the route table.

RULES names, for every route of every instance role (office, central, standalone, bench endpoints on),
the roles it lets in. A route without a rule, or a rule without a route, fails the suite; so does a
route whose dependencies let in other roles than its rule says. Then every route is called by every
kind of caller (nobody, a clerk of office A and of office B, a supervisor, a monitor, a partner, an
admin, an office's relay) and answers as its rule says: 401 with WWW-Authenticate, 403 forbidden, or
the handler's own answer. Another office's record (another scheme's, for a partner) answers exactly
like a missing one: the same 404 with the same problem type, for every route that names a record."""

import json
import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import update
from starlette.routing import Route

from app import clock
from app.config import InstanceRole, Settings
from app.deps import current_principal
from app.main import create_app
from app.models import Application
from app.vocabulary import Role
from helpers import household_body, register
from monitoring_support import household_registered

PUBLIC = None  # no token needed
ANYONE = frozenset(Role)  # any signed-in caller
ADMIN = frozenset({Role.admin})
SUPERVISOR = frozenset({Role.admin, Role.supervisor})
OFFICE = frozenset({Role.admin, Role.supervisor, Role.clerk})
MONITOR = frozenset({Role.admin, Role.monitor})
PARTNER = frozenset({Role.partner})
RELAY = frozenset({Role.relay})
PEOPLE = frozenset({Role.admin, Role.supervisor, Role.clerk, Role.monitor})  # not service accounts
DCI_CLIENT = "a DCI partner client's token"  # DCI message endpoints: no user's token is taken there

V1 = "/api/v1"
RULES: dict[tuple[str, str], frozenset[Role] | None] = {
    # FastAPI's own pages, operations and the problem catalogue
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # open unless GUICHET_METRICS_TOKEN is set (tests/test_operations.py)
    ("GET", "/problems"): PUBLIC,
    ("GET", "/problems/{slug}"): PUBLIC,
    # the front ends: static pages and assets (the console at an office, docs/frontend.md)
    ("GET", "/"): PUBLIC,
    ("GET", "/assets/{version}/{path:path}"): PUBLIC,
    ("GET", "/dashboard"): PUBLIC,  # the ministry's dashboard (central; its root too)
    ("GET", "/office-report"): PUBLIC,  # the office report's page (an office)
    # every instance
    ("POST", f"{V1}/auth/token"): PUBLIC,
    ("POST", f"{V1}/auth/revoke"): PUBLIC,  # holding the refresh token is the proof
    ("POST", f"{V1}/auth/password"): PEOPLE,
    ("GET", f"{V1}/auth/me"): ANYONE,
    ("GET", f"{V1}/locations"): ANYONE,
    ("GET", f"{V1}/locations/{{code}}"): ANYONE,
    ("GET", f"{V1}/offices"): ANYONE,
    ("GET", f"{V1}/offices/{{code}}"): ANYONE,
    ("POST", f"{V1}/offices"): ADMIN,
    ("GET", f"{V1}/users"): ADMIN,
    ("POST", f"{V1}/users"): ADMIN,
    ("GET", f"{V1}/users/{{user_id}}"): ADMIN,
    ("PATCH", f"{V1}/users/{{user_id}}"): ADMIN,
    ("POST", f"{V1}/users/{{user_id}}/unlock"): ADMIN,
    ("GET", f"{V1}/audit"): SUPERVISOR,
    # an office: the registry
    ("POST", f"{V1}/households"): OFFICE,
    ("GET", f"{V1}/households"): OFFICE,
    ("GET", f"{V1}/households/{{household_id}}"): OFFICE,
    ("PATCH", f"{V1}/households/{{household_id}}"): OFFICE,
    ("POST", f"{V1}/households/{{household_id}}/members"): OFFICE,
    ("GET", f"{V1}/households/{{household_id}}/consent"): OFFICE,
    ("POST", f"{V1}/households/{{household_id}}/consent"): OFFICE,
    ("GET", f"{V1}/persons"): OFFICE,
    ("POST", f"{V1}/persons/matches"): OFFICE,
    ("GET", f"{V1}/persons/{{person_id}}"): OFFICE,
    ("PATCH", f"{V1}/persons/{{person_id}}"): OFFICE,
    # an office: schemes and screening
    ("GET", f"{V1}/schemes"): ANYONE,
    ("GET", f"{V1}/schemes/{{code}}"): ANYONE,
    ("POST", f"{V1}/households/{{household_id}}/screenings"): OFFICE,
    ("GET", f"{V1}/households/{{household_id}}/screenings"): OFFICE,
    ("POST", f"{V1}/screenings/preview"): OFFICE,
    ("GET", f"{V1}/screenings/{{screening_id}}"): OFFICE,
    # an office: its relay's state
    ("GET", f"{V1}/sync/status"): SUPERVISOR,
    ("GET", f"{V1}/sync/parked"): SUPERVISOR,
    # an office: case management
    ("POST", f"{V1}/cases"): OFFICE,
    ("GET", f"{V1}/cases"): OFFICE,
    ("GET", f"{V1}/cases/{{case_id}}"): OFFICE,
    ("PATCH", f"{V1}/cases/{{case_id}}"): OFFICE,
    ("GET", f"{V1}/cases/{{case_id}}/timeline"): OFFICE,
    ("POST", f"{V1}/cases/{{case_id}}/notes"): OFFICE,
    ("GET", f"{V1}/cases/{{case_id}}/notes"): OFFICE,
    ("POST", f"{V1}/cases/{{case_id}}/applications"): OFFICE,
    ("GET", f"{V1}/applications"): OFFICE,
    ("GET", f"{V1}/applications/{{application_id}}"): OFFICE,
    ("PATCH", f"{V1}/applications/{{application_id}}"): OFFICE,
    ("POST", f"{V1}/applications/{{application_id}}/decision"): SUPERVISOR,
    ("POST", f"{V1}/applications/{{application_id}}/submission"): OFFICE,
    ("GET", f"{V1}/applications/{{application_id}}/receipt"): OFFICE,
    ("GET", f"{V1}/referral-agencies"): OFFICE,
    ("POST", f"{V1}/cases/{{case_id}}/referrals"): OFFICE,
    ("GET", f"{V1}/referrals"): OFFICE,
    ("GET", f"{V1}/referrals/{{referral_id}}"): OFFICE,
    ("GET", f"{V1}/referrals/{{referral_id}}/slip"): OFFICE,
    ("PATCH", f"{V1}/referrals/{{referral_id}}"): OFFICE,
    ("POST", f"{V1}/cases/{{case_id}}/follow-ups"): OFFICE,
    ("GET", f"{V1}/follow-ups"): OFFICE,
    ("GET", f"{V1}/follow-ups/{{follow_up_id}}"): OFFICE,
    ("PATCH", f"{V1}/follow-ups/{{follow_up_id}}"): OFFICE,
    ("POST", f"{V1}/grievances"): OFFICE,
    ("GET", f"{V1}/grievances"): OFFICE,
    ("GET", f"{V1}/grievances/{{grievance_id}}"): OFFICE,
    ("GET", f"{V1}/grievances/{{grievance_id}}/acknowledgement"): OFFICE,
    ("PATCH", f"{V1}/grievances/{{grievance_id}}"): OFFICE,
    # an office: the partner API (a scheme's or an agency's service account)
    ("GET", f"{V1}/partner/applications"): PARTNER,
    ("GET", f"{V1}/partner/applications/{{application_id}}"): PARTNER,
    ("POST", f"{V1}/partner/applications/{{application_id}}/decision"): PARTNER,
    ("GET", f"{V1}/partner/referrals"): PARTNER,
    ("GET", f"{V1}/partner/referrals/{{referral_id}}"): PARTNER,
    ("PATCH", f"{V1}/partner/referrals/{{referral_id}}"): PARTNER,
    # central: monitoring
    ("POST", f"{V1}/monitoring/events"): RELAY,
    ("GET", f"{V1}/monitoring/indicators/catalog"): MONITOR,
    ("GET", f"{V1}/monitoring/indicators"): MONITOR,
    ("GET", f"{V1}/monitoring/offices"): MONITOR,
    ("GET", f"{V1}/monitoring/dhis2/dataValueSets"): MONITOR,
    ("POST", f"{V1}/exports"): frozenset({Role.admin, Role.monitor, Role.supervisor}),
    ("GET", f"{V1}/office-report"): frozenset({Role.supervisor}),  # their own office's
    # an office: the DCI registry APIs (docs/dci.md)
    ("POST", "/oauth2/client/token"): PUBLIC,
    ("GET", "/.well-known/jwks.json"): PUBLIC,
    ("POST", "/dci/sr/registry/sync/search"): DCI_CLIENT,
    ("POST", "/dci/sr/registry/search"): DCI_CLIENT,
    ("POST", "/dci/sr/registry/sync/txn/status"): DCI_CLIENT,
    ("POST", "/dci/sr/registry/txn/status"): DCI_CLIENT,
    ("POST", "/dci/sr/registry/subscribe"): DCI_CLIENT,
    ("POST", "/dci/sr/registry/unsubscribe"): DCI_CLIENT,
    ("POST", "/dci/ibr/registry/sync/enrolled"): DCI_CLIENT,
    ("POST", "/dci/client/registry/on-search"): PUBLIC,  # an external registry's answer: its signature proves it
    ("POST", f"{V1}/dci/clients"): ADMIN,
    ("GET", f"{V1}/dci/clients"): ADMIN,
    ("GET", f"{V1}/dci/clients/{{client_id}}"): ADMIN,
    ("PATCH", f"{V1}/dci/clients/{{client_id}}"): ADMIN,
    ("POST", f"{V1}/registry-lookups"): OFFICE,
    ("GET", f"{V1}/registry-lookups/{{lookup_id}}"): OFFICE,
    # the benchmarks' floors: no auth, mounted only with GUICHET_BENCH_ENDPOINTS=true
    ("POST", f"{V1}/_bench/floor"): PUBLIC,
    ("POST", f"{V1}/_bench/monitoring-floor"): PUBLIC,
}

# Path parameters that name one office's record: another office's answers 404.
OFFICE_RECORDS = {"household_id", "person_id", "screening_id", "case_id", "application_id", "referral_id",
                  "follow_up_id", "grievance_id", "lookup_id"}
RECORD_KEYS = OFFICE_RECORDS | {"spare_household_id", "decided_application_id"}  # the records seed() makes
CODES = {f"{V1}/locations/{{code}}": "17", f"{V1}/offices/{{code}}": "SR-ACH", f"{V1}/schemes/{{code}}": "KH-HEF",
         "/assets/{version}/{path:path}": "missing"}
QUERIES = {f"{V1}/monitoring/indicators": {"indicator": "households_registered", "from": "2026-01-01", "to": "2026-03-31"},
           f"{V1}/monitoring/dhis2/dataValueSets": {"period": "202601"}}


# ---- the route table ---------------------------------------------------------------------------------------


def _dependencies(dependant):
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def allowed_roles(route) -> frozenset[Role] | None:
    """The roles a route lets in, as its dependencies declare them (app.deps.require_roles): None for a
    public route, every role for one that only needs a signed-in caller."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # FastAPI's docs pages
        return PUBLIC
    calls = [d.call for d in _dependencies(dependant)]
    if any(getattr(call, "dci_client_auth", False) for call in calls):
        return DCI_CLIENT
    declared = [call.allowed_roles for call in calls if hasattr(call, "allowed_roles")]
    if declared:
        return frozenset.intersection(*declared)
    return ANYONE if current_principal in calls else PUBLIC


def api_routes(app):
    """(method, path template, route) of every route of the app."""
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute | Route):
            continue
        for method in sorted(set(context.methods) - {"HEAD"}):
            yield method, context.path, context


PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")  # {name} or {name:convertor}


def path_params(template: str, ids: dict[str, Any]) -> dict[str, str]:
    """The path parameters of a route template, naming the seeded records (or codes that exist)."""
    return {name: CODES.get(template) or ids[name] for name in PATH_PARAM.findall(template)}


def path_of(template: str, ids: dict[str, Any]) -> str:
    params = path_params(template, ids)
    return PATH_PARAM.sub(lambda match: str(params[match.group(1)]), template)


# ---- one record of every kind, and a valid request to each route that takes a body --------------------------


async def seed(client, world, make_account, app) -> dict[str, Any]:
    """One record of every kind in office A (by clerk A), and accounts the world lacks."""
    clerk = world.clerk_a.headers
    household = await register(client, world.clerk_a)
    spare = await register(client, world.clerk_a)  # no case yet: a case can be opened for it
    head = household["members"][0]["id"]

    async def post(url: str, body: dict | None = None) -> dict:
        response = await client.post(url, json=body, headers=clerk)
        assert response.status_code == 201, response.text
        return response.json()

    screening = await post(f"{V1}/households/{household['id']}/screenings")
    case = await post(f"{V1}/cases", {"household_id": household["id"]})
    hef = await post(f"{V1}/cases/{case['id']}/applications", {"scheme_code": "KH-HEF"})
    disab = await post(f"{V1}/cases/{case['id']}/applications", {"scheme_code": "KH-DISAB", "person_id": head,
                                                                  "against_screening_reason": "The client asks to apply"})
    due = (clock.today() + timedelta(days=7)).isoformat()
    referral = await post(f"{V1}/cases/{case['id']}/referrals", {"agency": "nea", "reason": "Job search", "due_date": due})
    follow_up = await post(f"{V1}/cases/{case['id']}/follow-ups", {"due_date": due, "action": "Call the client"})
    grievance = await post(f"{V1}/grievances", {"category": "payment", "channel": "in_person",
                                               "complainant": {"kind": "anonymous"}, "description": "No payment in March"})
    await post(f"{V1}/cases/{case['id']}/notes", {"text": "Came with her card"})
    # The partner API shows a partner the applications its scheme's agency decides (route partner), which a
    # scheme reached over HTTP gets when filed (tests/test_applications_partner.py); the catalogue's KH-HEF is
    # decided at the office, so this one is made as if KH-HEF were reached over HTTP and had been sent.
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Application).where(Application.id == uuid.UUID(hef["id"]))
                              .values(route="partner", submission_state="sent"))
    dci_client = await client.post(f"{V1}/dci/clients", json=dci_client_body(), headers=world.admin.headers)
    assert dci_client.status_code == 201, dci_client.text
    lookup = await seed_lookup(client, world)
    return {
        "household_id": household["id"], "person_id": head, "spare_household_id": spare["id"],
        "screening_id": screening["id"], "case_id": case["id"], "application_id": hef["id"],
        "decided_application_id": disab["id"], "referral_id": referral["id"], "follow_up_id": follow_up["id"],
        "grievance_id": grievance["id"], "slug": "not-found", "client_id": dci_client.json()["id"], "lookup_id": lookup,
        # a user of its own: the fuzzer may deactivate it or change its password, never the world's
        "user_id": str((await make_account(Role.clerk, "SR-ACH")).id),
        "relay": await make_account(Role.relay, "SR-ACH"),
        "nea": await make_account(Role.partner, None, "NEA"),  # the agency's partner account (world.partner is KH-HEF's)
    }


def dci_client_body() -> dict[str, Any]:
    return {"client_id": f"partner-{uuid.uuid4().hex[:8]}", "name": "A partner programme", "query_types": ["idtype-value"],
            "fields": ["group_identifier"], "offices": ["SR-ACH"], "signature_required": False}


async def seed_lookup(client, world) -> str:
    """A registry lookup of clerk A's office, as the external registry's answer leaves it (written here: the
    tests of lookups themselves run against a stand-in registry, tests/test_dci_consumer.py)."""
    from app.models import DciLookup
    from app.models.base import utcnow

    app = client._transport.app
    lookup = DciLookup(office_id=world.office_ids["SR-ACH"], requested_by=world.clerk_a.id, registry_code="CRVS",
                       national_id="170555111", transaction_id=str(uuid.uuid4()), status="not_found", created_at=utcnow())
    async with app.state.sessionmaker() as session, session.begin():
        session.add(lookup)
    return str(lookup.id)


def happy(method: str, template: str, ids: dict[str, Any]) -> dict[str, Any]:
    """A valid request body (and headers) for a route that takes one, about the seeded records; `ids`
    names a seeded record other than the default for a path parameter."""
    due = (clock.today() + timedelta(days=10)).isoformat()
    any_version = {"If-Match": "*"}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", f"{V1}/auth/token"): {"data": {"grant_type": "password", "username": "clerk.a",
                                                "password": "correct horse battery"}},
        ("POST", f"{V1}/offices"): {"json": {"code": "FZ-OFC", "name": "Fuzz office", "location_code": "17"}},
        ("POST", f"{V1}/users"): {"json": {"username": f"u{uuid.uuid4().hex[:10]}", "password": "long enough secret",
                                           "role": "clerk", "office_code": "SR-ACH"}},
        ("PATCH", f"{V1}/users/{{user_id}}"): {"json": {"full_name": "Fuzz Person"}, "headers": any_version},
        ("POST", f"{V1}/households"): {"json": household_body()},
        ("PATCH", f"{V1}/households/{{household_id}}"): {"json": {"address": "Phum Thmei"}, "headers": any_version},
        ("POST", f"{V1}/households/{{household_id}}/members"): {"json": {
            "given_name": "Kosal", "family_name": "Pen", "sex": "male", "birth_year": 1950, "birth_date_approximate": True,
            "relationship": "other_relative"}},
        ("POST", f"{V1}/households/{{household_id}}/consent"): {"json": {
            "purposes": ["registry", "eligibility_sharing"], "given_by": "The head", "method": "verbal"}},
        ("POST", f"{V1}/persons/matches"): {"json": {"given_name": "Chanthou", "family_name": "Sok",
                                                     "village_code": "17010101"}},
        ("PATCH", f"{V1}/persons/{{person_id}}"): {"json": {"phone": "012999888"}, "headers": any_version},
        ("POST", f"{V1}/households/{{household_id}}/screenings"): {"json": {"schemes": ["KH-HEF"]}},
        ("POST", f"{V1}/screenings/preview"): {"json": household_body()},
        ("POST", f"{V1}/cases"): {"json": {"household_id": ids["spare_household_id"]}},
        ("PATCH", f"{V1}/cases/{{case_id}}"): {"json": {"summary": "Wants the HEF card renewed"}, "headers": any_version},
        ("POST", f"{V1}/cases/{{case_id}}/notes"): {"json": {"text": "Called back", "confidential": True}},
        ("POST", f"{V1}/cases/{{case_id}}/applications"): {"json": {"scheme_code": "KH-FAMILY-CASH"}},
        ("PATCH", f"{V1}/applications/{{application_id}}"): {"json": {"status": "pending_information",
                                                                      "note": "Bring the IDPoor card"},
                                                             "headers": any_version},
        ("POST", f"{V1}/applications/{{application_id}}/decision"): {"json": {"decision": "approved"},
                                                                     "headers": any_version,
                                                                     "ids": {"application_id": "decided_application_id"}},
        ("POST", f"{V1}/cases/{{case_id}}/referrals"): {"json": {"agency": "nea", "reason": "Training", "due_date": due}},
        ("PATCH", f"{V1}/referrals/{{referral_id}}"): {"json": {"status": "accepted"}, "headers": any_version},
        ("POST", f"{V1}/cases/{{case_id}}/follow-ups"): {"json": {"due_date": due, "action": "Visit the household"}},
        ("PATCH", f"{V1}/follow-ups/{{follow_up_id}}"): {"json": {"status": "completed", "note": "Visited"},
                                                         "headers": any_version},
        ("POST", f"{V1}/grievances"): {"json": {"category": "staff_conduct", "channel": "phone",
                                                "complainant": {"kind": "person", "person_id": ids["person_id"]},
                                                "description": "Was asked for money", "case_id": ids["case_id"]}},
        ("PATCH", f"{V1}/grievances/{{grievance_id}}"): {"json": {"status": "in_review"}, "headers": any_version},
        ("POST", f"{V1}/partner/applications/{{application_id}}/decision"): {
            "json": {"decision": "rejected", "reason_code": "not_poor", "reason_text": "Not in the IDPoor list"},
            "headers": any_version},
        ("PATCH", f"{V1}/partner/referrals/{{referral_id}}"): {"json": {"status": "completed", "note": "Placed in a job"},
                                                               "headers": any_version},
        ("POST", f"{V1}/monitoring/events"): {"json": {"events": [household_registered()]}},
        ("POST", f"{V1}/dci/clients"): {"json": dci_client_body()},
        ("PATCH", f"{V1}/dci/clients/{{client_id}}"): {"json": {"name": "Renamed partner"}, "headers": any_version},
        ("POST", f"{V1}/registry-lookups"): {"json": {"national_id": "170555111"}},
    }
    return bodies.get((method, template), {})


# ---- the tests ------------------------------------------------------------------------------------------------


def _test_settings() -> Settings:
    return Settings(database_url="sqlite+aiosqlite://", secret_key="role-matrix-secret-key-long-enough-0123456789",
                    pseudonym_key="role-matrix")


def test_every_route_of_every_instance_role_has_one_rule_and_its_dependencies_agree():
    settings = _test_settings()
    seen: dict[tuple[str, str], frozenset[Role] | None] = {}
    for role in InstanceRole:
        application = create_app(settings.model_copy(update={"role": role, "bench_endpoints": True}))
        for method, path, route in api_routes(application):
            seen[(method, path)] = allowed_roles(route)
    missing = sorted(set(seen) - set(RULES))
    assert not missing, f"routes without a rule in RULES (say who may call them): {missing}"
    stale = sorted(set(RULES) - set(seen))
    assert not stale, f"rules for routes that do not exist: {stale}"
    disagree = {key: (sorted(seen[key] or []), sorted(RULES[key] or [])) for key in RULES if seen[key] != RULES[key]}
    assert not disagree, f"the route's dependencies let in other roles than its rule: {disagree}"


def _callers(world, ids) -> dict[str, Any]:
    return {"nobody": None, "clerk_a": world.clerk_a, "clerk_b": world.clerk_b, "supervisor_a": world.supervisor_a,
            "monitor": world.monitor, "partner": world.partner, "admin": world.admin, "relay": ids["relay"]}


async def test_each_caller_gets_what_the_rule_says_on_every_route(client, world, app, make_account):
    ids = await seed(client, world, make_account, app)
    failures = []
    checked = 0
    for method, template, _ in api_routes(app):
        rule = RULES[(method, template)]
        if template.startswith(f"{V1}/_bench"):
            continue
        params = set(part[1:-1] for part in template.split("/") if part.startswith("{"))
        for name, caller in _callers(world, ids).items():
            # An empty body: authorisation is decided before the body is read.
            request = {"json": {}} if method in ("POST", "PATCH") else {}
            response = await client.request(method, path_of(template, ids), params=QUERIES.get(template),
                                            headers=caller.headers if caller else {}, **request)
            checked += 1
            status = response.status_code
            if rule is PUBLIC:
                ok = status not in (401, 403) and status < 500
            elif rule is DCI_CLIENT:  # no user's token, whatever the role (tests/test_dci_provider.py has the clients)
                ok = status == 401 and response.headers.get("WWW-Authenticate", "").startswith("Bearer")
            elif caller is None:
                ok = status == 401 and response.headers.get("WWW-Authenticate", "").startswith("Bearer")
            elif caller.role not in rule:
                ok = status == 403 and response.json().get("type") == "/problems/forbidden"
            elif method == "GET" and caller.office_code == "SR-SSN" and params & OFFICE_RECORDS:
                ok = status == 404  # another office's record (the next test compares it with a missing one)
            elif method == "GET" and caller.role is not Role.partner:
                ok = status == 200
            else:
                ok = status not in (401, 403) and status < 500
            if not ok or (status >= 400 and not response.headers["content-type"].startswith("application/problem+json")):
                failures.append(f"{method} {template} as {name}: {status} {response.text[:200]}")
    assert checked > 500
    assert not failures, "\n".join(failures)


async def test_another_offices_record_answers_like_a_missing_one(client, world, app, make_account):
    """For every route naming an office's record (in its path or its body): another office's clerk
    and supervisor, and a partner of another scheme, get exactly what a record that does not exist
    gets (the same status and problem type; a 404 when the path names it); the owners get the record."""
    ids = await seed(client, world, make_account, app)
    missing = {name: str(uuid.uuid4()) for name in RECORD_KEYS}
    elsewhere = await make_account(Role.partner, None, "KH-DISAB")  # world.partner is KH-HEF's, like the application
    failures = []
    compared = set()
    for method, template, _ in api_routes(app):
        rule = RULES[(method, template)]
        request = happy(method, template, ids)
        body = json.dumps(request["json"]) if "json" in request else None
        in_path = {part[1:-1] for part in template.split("/") if part.startswith("{")} & OFFICE_RECORDS
        in_body = {name for name in RECORD_KEYS if body and ids[name] in body}
        if rule is PUBLIC or not (in_path or in_body):
            continue
        callers = [elsewhere] if rule is PARTNER else [c for c in (world.clerk_b, world.supervisor_b) if c.role in rule]
        for caller in callers:
            answers = []
            for values in (ids, missing):
                path_ids = {**ids, **values, **{param: values[key] for param, key in request.get("ids", {}).items()}}
                content = body
                for name in in_body:
                    content = content.replace(ids[name], values[name])
                response = await client.request(
                    method, path_of(template, path_ids), content=content,
                    headers={**caller.headers, **request.get("headers", {}),
                             **({"Content-Type": "application/json"} if content else {})})
                problem = response.json()
                answers.append((response.status_code, problem.get("type"), [e["pointer"] for e in problem.get("errors") or []]))
            foreign, absent = answers
            compared.add((method, template))
            if foreign != absent or foreign[0] < 400 or (in_path and foreign[:2] != (404, "/problems/not-found")):
                failures.append(f"{method} {template} as {caller.username}: another office's {foreign}, a missing one's {absent}")
    assert not failures, "\n".join(failures)
    # Every kind of record was compared through its own GET, and every write that names one.
    for name in OFFICE_RECORDS:
        assert any(f"{{{name}}}" in path for method, path in compared if method == "GET"), name
    assert len([key for key in compared if key[0] != "GET"]) >= 20, sorted(compared)
    # The owners see them (so the 404s above are about the office, not about the request).
    for template in (f"{V1}/households/{{household_id}}", f"{V1}/persons/{{person_id}}", f"{V1}/screenings/{{screening_id}}",
                     f"{V1}/cases/{{case_id}}", f"{V1}/applications/{{application_id}}", f"{V1}/referrals/{{referral_id}}",
                     f"{V1}/follow-ups/{{follow_up_id}}", f"{V1}/grievances/{{grievance_id}}"):
        assert (await client.get(path_of(template, ids), headers=world.supervisor_a.headers)).status_code == 200, template
    assert (await client.get(path_of(f"{V1}/partner/applications/{{application_id}}", ids),
                             headers=world.partner.headers)).status_code == 200
    assert (await client.get(path_of(f"{V1}/partner/referrals/{{referral_id}}", ids),
                             headers=ids["nea"].headers)).status_code == 200


async def test_lists_and_the_audit_trail_never_show_another_offices_records(client, world, app, make_account):
    ids = await seed(client, world, make_account, app)
    mine = [v for k, v in ids.items() if k in OFFICE_RECORDS or k == "spare_household_id"]
    listed = 0
    for method, template, _ in api_routes(app):
        rule = RULES[(method, template)]
        if method != "GET" or "{" in template or rule is PUBLIC or Role.clerk not in rule and Role.supervisor not in rule:
            continue
        for caller in (world.clerk_b, world.supervisor_b):
            if caller.role not in rule:
                continue
            response = await client.get(template, params={"limit": 200} if template != f"{V1}/referral-agencies" else None,
                                        headers=caller.headers)
            assert response.status_code == 200, (template, response.text)
            assert not [i for i in mine if i in response.text], (template, caller.username)
            listed += 1
        # the owners' lists do show them (for lists of records)
        own = await client.get(template, params={"limit": 200} if template != f"{V1}/referral-agencies" else None,
                               headers=world.supervisor_a.headers)
        assert own.status_code == 200
    assert listed >= 10
    # The audit trail: office A's rows are A's supervisor's, not B's, filtered by record or not.
    audit = f"{V1}/audit"
    for name in OFFICE_RECORDS:  # a read of each record leaves a row about it
        template = next(t for m, t, _ in api_routes(app) if m == "GET" and t.endswith(f"{{{name}}}"))
        assert (await client.get(path_of(template, ids), headers=world.clerk_a.headers)).status_code == 200
        own = (await client.get(audit, params={"entity_id": ids[name]}, headers=world.supervisor_a.headers)).json()
        assert own["total"] >= 1, name
        theirs = await client.get(audit, params={"entity_id": ids[name]}, headers=world.supervisor_b.headers)
        nothing = await client.get(audit, params={"entity_id": str(uuid.uuid4())}, headers=world.supervisor_b.headers)
        assert theirs.status_code == nothing.status_code == 200
        assert theirs.json()["items"] == nothing.json()["items"] == [] and theirs.json()["total"] == 0, name
    everything = (await client.get(audit, params={"limit": 200}, headers=world.supervisor_b.headers)).json()
    assert not [i for i in mine if i in json.dumps(everything)]
