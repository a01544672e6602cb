"""Every read of personal data is audited: each GET of the route table under the personal-data
resources (and the two POSTs that read people without changing anything) leaves exactly one audit row,
carrying the request's id, the reader and the office. The list is derived from the routes, so a new
personal-data GET that forgets its audit row fails here."""

from sqlalchemy import func, select

from app.models import AuditEvent
from app.vocabulary import Role
from test_role_matrix import QUERIES, V1, api_routes, happy, path_params, seed

# The first segment after /api/v1 of every resource holding personal data (partner: what an agency reads).
PERSONAL = {"households", "persons", "screenings", "cases", "applications", "referrals", "follow-ups", "grievances",
            "partner", "registry-lookups"}
# Reads that are POSTs: matching candidates for a newcomer, and screening typed-in facts.
READING_POSTS = {("POST", f"{V1}/persons/matches"), ("POST", f"{V1}/screenings/preview")}


def personal_reads(app) -> list[tuple[str, str]]:
    reads = []
    for method, template, _ in api_routes(app):
        parts = template.split("/")
        if template.startswith(f"{V1}/") and parts[3] in PERSONAL and (method == "GET" or (method, template) in READING_POSTS):
            reads.append((method, template))
    return reads


async def _audit_rows(app, request_id: str) -> tuple[int, list[AuditEvent]]:
    async with app.state.sessionmaker() as session:
        total = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.request_id == request_id))).scalars().all()
    return total, list(rows)


async def _second_of_each(client, world, ids) -> None:
    """Two records of every kind at least, so that a list audited once per record is caught."""
    clerk = world.clerk_a.headers
    case = f"{V1}/cases/{ids['case_id']}"
    for method, template in ((("POST", f"{V1}/households/{{household_id}}/screenings"), ("POST", f"{V1}/cases"))
                             + tuple(("POST", f"{V1}/cases/{{case_id}}/{kind}") for kind in ("notes", "referrals",
                                                                                            "follow-ups"))
                             + (("POST", f"{V1}/grievances"),)):
        response = await client.post(template.format(**path_params(template, ids)),
                                     json=happy(method, template, ids).get("json"), headers=clerk)
        assert response.status_code == 201, (template, response.text)
    shared = {"purposes": ["registry", "referral_sharing"], "given_by": "The head", "method": "verbal"}
    assert (await client.post(f"{V1}/households/{ids['household_id']}/consent", json=shared, headers=clerk)).status_code == 201
    assert (await client.get(f"{case}/timeline", headers=clerk)).json()["total"] >= 8


async def test_every_read_of_personal_data_leaves_exactly_one_audit_row(client, world, app, make_account):
    ids = await seed(client, world, make_account, app)
    await _second_of_each(client, world, ids)
    reads = personal_reads(app)
    assert {(m, t) for m, t in reads if m == "POST"} == READING_POSTS
    assert len(reads) >= 25  # the lists, the records, consent, timeline, notes, receipt, the partner's reads
    failures = []
    for method, template in reads:
        reader = ids["nea"] if "/partner/referrals" in template else world.partner if "/partner/" in template \
            else world.clerk_a
        printable = template.endswith(("/receipt", "/slip", "/acknowledgement"))
        accepts = ["application/json", "text/html"] if printable else ["application/json"]
        for accept in accepts:
            before, _ = await _audit_rows(app, "")
            request = happy(method, template, ids)
            response = await client.request(method, template.format(**path_params(template, ids)),
                                            params=QUERIES.get(template), json=request.get("json"),
                                            headers={**reader.headers, "Accept": accept})
            label = f"{method} {template} ({accept})"
            if response.status_code != 200:
                failures.append(f"{label}: {response.status_code} {response.text[:200]}")
                continue
            after, rows = await _audit_rows(app, response.headers["X-Request-ID"])
            if after - before != 1 or len(rows) != 1:
                failures.append(f"{label}: {after - before} new audit rows, {len(rows)} with its request id")
                continue
            row = rows[0]
            # A partner's empty page is about no office.
            office = None if reader.role is Role.partner and response.json().get("total") == 0 else world.office_ids["SR-ACH"]
            if (row.actor_id, row.office_id) != (reader.id, office):
                failures.append(f"{label}: audited as {row.actor_username} of office {row.office_id}")
            record = template.rsplit("/", 1)[-1]
            if record.startswith("{") and row.entity_id != path_params(template, ids)[record[1:-1]]:
                failures.append(f"{label}: audited {row.entity_type} {row.entity_id}, not the record read")
    assert not failures, "\n".join(failures)
