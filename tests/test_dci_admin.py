"""DCI partner clients made by an admin: the API (scopes, keys, secrets, If-Match) and the CLI."""

import json
import uuid

from app.security import verify_password
from dci_support import PartnerKeys
from helpers import assert_problem, pointers, table_counts
from test_cli import seeded  # noqa: F401  (the CLI's own database, migrated and seeded)

CLIENTS = "/api/v1/dci/clients"


def _body(**overrides) -> dict:
    return {"client_id": f"spmis-{uuid.uuid4().hex[:6]}", "name": "Family package MIS", "query_types": ["idtype-value", "predicate"],
            "fields": ["group_identifier", "poverty_score"], "offices": ["SR-ACH"], "callback_url": "https://spmis.example/dci",
            "jwks": PartnerKeys().jwks} | overrides


async def test_an_admin_creates_reads_and_changes_a_client(client, world):
    created = await client.post(CLIENTS, json=_body(), headers=world.admin.headers)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["client_secret"] and created.headers["Location"] == f"{CLIENTS}/{record['id']}"
    read = await client.get(created.headers["Location"], headers=world.admin.headers)
    assert read.status_code == 200 and read.json()["client_secret"] is None and read.headers["ETag"]
    listed = (await client.get(CLIENTS, headers=world.admin.headers)).json()
    assert listed["total"] == 1 and listed["items"][0]["client_id"] == record["client_id"]
    assert_problem(await client.patch(created.headers["Location"], json={"name": "New"}, headers=world.admin.headers), 428)
    assert_problem(await client.patch(created.headers["Location"], json={"name": "New"},
                                      headers={**world.admin.headers, "If-Match": '"99"'}), 412)
    changed = await client.patch(created.headers["Location"], json={"offices": ["SR-ACH", "SR-SSN"], "fields": ["name"]},
                                 headers={**world.admin.headers, "If-Match": read.headers["ETag"]})
    assert changed.status_code == 200 and changed.json()["offices"] == ["SR-ACH", "SR-SSN"] and changed.json()["fields"] == ["name"]
    assert changed.headers["ETag"] != read.headers["ETag"]
    assert_problem(await client.get(f"{CLIENTS}/{uuid.uuid4()}", headers=world.admin.headers), 404, "not-found")
    assert_problem(await client.post(CLIENTS, json=_body(client_id=record["client_id"]), headers=world.admin.headers), 409)


async def test_bad_clients_are_refused_and_change_nothing(client, world, app):
    before = await table_counts(app)
    key = PartnerKeys().jwk
    cases = [
        (_body(offices=["SR-NOPE"]), "#/offices/0"),
        (_body(fields=["password_hash"]), "#/fields/0"),
        (_body(query_types=["sql"]), "#/query_types/0"),
        (_body(jwks=None), "#/jwks"),
        (_body(jwks={"keys": [{**key, "d": "private"}]}), "#/jwks/keys"),
        (_body(jwks={"keys": [{**key, "alg": "HS256"}]}), "#/jwks/keys"),
        (_body(callback_url="ftp://spmis.example"), "#/callback_url"),
        (_body(name="x" * 201), "#/name"),
        (_body(client_id="a b"), "#/client_id"),
        (_body(offices=[]), "#/offices"),
        (_body(unknown=1), "#/unknown"),
    ]
    for body, pointer in cases:
        problem = assert_problem(await client.post(CLIENTS, json=body, headers=world.admin.headers), 422, "validation")
        assert pointer in pointers(problem), (pointer, problem)
    assert_problem(await client.post(CLIENTS, content=b"{", headers={**world.admin.headers, "Content-Type": "application/json"}),
                   400, "malformed-json")
    assert_problem(await client.post(CLIENTS, json=_body(), headers=world.supervisor_a.headers), 403, "forbidden")
    assert_problem(await client.post(CLIENTS, json=_body()), 401, "unauthenticated")
    created = (await client.post(CLIENTS, json=_body(), headers=world.admin.headers)).json()
    path = f"{CLIENTS}/{created['id']}"
    for change, pointer in (({"name": None}, "#/name"), ({"signature_required": True, "jwks": None}, "#/jwks"),
                            ({"offices": ["SR-NOPE"]}, "#/offices/0")):
        problem = assert_problem(await client.patch(path, json=change, headers={**world.admin.headers, "If-Match": "*"}), 422)
        assert pointer in pointers(problem), (change, problem)
    after = await table_counts(app)
    assert {k: v for k, v in after.items() if k not in ("dci_client", "audit_event")} == \
        {k: v for k, v in before.items() if k not in ("dci_client", "audit_event")}
    assert after["dci_client"] == before["dci_client"] + 1


async def test_the_cli_creates_and_lists_clients(seeded):  # noqa: F811
    keys = seeded.workdir / "partner-jwks.json"
    keys.write_text(json.dumps(PartnerKeys().jwks))
    out = seeded.ok("dci", "clients", "create", "--client-id", "ibr.example", "--name", "Integrated beneficiary registry",
                    "--offices", "SR-ACH", "--fields", "group_identifier,member_identifier", "--query-types", "idtype-value",
                    "--callback-url", "https://ibr.example/dci", "--jwks-file", str(keys))
    secret = next(line.split("=", 1)[1] for line in out.splitlines() if line.strip().startswith("client_secret="))
    hashed = await seeded.scalar("SELECT secret_hash FROM dci_client WHERE client_id = 'ibr.example'")
    assert await verify_password(hashed, secret)
    assert "ibr.example\tactive\toffices=SR-ACH\tquery_types=idtype-value\tfields=group_identifier,member_identifier" in \
        seeded.ok("dci", "clients", "list")
    await seeded.fail_all(
        (("dci", "clients", "create", "--client-id", "x.example", "--name", "X", "--offices", "SR-NOPE", "--fields", "name",
          "--unsigned"), None, "no office with code SR-NOPE"),
        (("dci", "clients", "create", "--client-id", "y.example", "--name", "Y", "--offices", "SR-ACH", "--fields", "secrets",
          "--unsigned"), None, "fields"),
        (("dci", "clients", "create", "--client-id", "z.example", "--name", "Z", "--offices", "SR-ACH", "--fields", "name"),
         None, "public keys"),
        (("dci", "clients", "create", "--client-id", "ibr.example", "--name", "Again", "--offices", "SR-ACH", "--fields", "name",
          "--unsigned"), None, "taken"),
    )
