"""The DCI Social Registry at national scale on PostgreSQL, each figure beside the floor of the same run.

    .venv/bin/python bench/dci.py [--persons 1000000] [--requests 300] [--async-requests 50]

Loads the Siem Reap provincial office's registry with the synthetic loader (as bench/scale.py does),
gives the households that consented to eligibility sharing the `registry_sharing` consent too (about
nine in ten), makes a DCI partner client (signed ES256, every field, the office in scope) and starts
Guichet (one uvicorn worker, its DCI worker in process) and, in this process, the partner's callback
receiver on loopback. Then, one client:
- sync search by national ID (`idtype-value`, response_entity Group): p50/p95 — goal p95 < 20 ms;
- predicate search returning a page of 100 Groups (a commune's households by IDPoor level, about
  2,000 matches at a million persons): p50/p95 — goal p95 < 200 ms;
- async search by national ID: from sending the request to the partner receiving the signed
  on-search callback — goal < 1 s (p95 and max).
Messages are built and signed before the clock starts (the partner's signing is not Guichet's time).
GUICHET_BENCH_POSTGRES_URL picks the server (an admin URL; default: the test server)."""

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
import uuid
from datetime import UTC, datetime

import harness
import httpx
import scale
import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy import text

sys.path.insert(0, str(harness.ROOT))

from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.schemas.dci import DciClientCreate  # noqa: E402
from app.security import generate_signing_key, public_jwk, sign_jws  # noqa: E402
from app.services import dci_clients  # noqa: E402
from app.dci.records import FIELDS  # noqa: E402

PARTNER = f"spmis.bench.{uuid.uuid4().hex[:8]}"  # one client per run: a kept database can be measured again


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Signer:
    def __init__(self):
        self.pem = generate_signing_key("ES256")
        self.jwks = {"keys": [public_jwk(self.pem, "ES256")]}

    def message(self, action: str, message: dict) -> dict:
        header = {"version": "1.0.0", "message_id": str(uuid.uuid4()), "message_ts": now(), "action": action,
                  "sender_id": PARTNER, "receiver_id": "guichet", "total_count": len(message["search_request"]),
                  "is_msg_encrypted": False}
        return {"signature": sign_jws(json.dumps({"header": header, "message": message}).encode(), self.pem, "ES256"),
                "header": header, "message": message}


def search(query_type: str, query, *, page_size: int = 10) -> dict:
    return {"transaction_id": str(uuid.uuid4()), "search_request": [{
        "reference_id": str(uuid.uuid4()), "timestamp": now(), "locale": "eng",
        "search_criteria": {"version": "1.0.0", "query_type": query_type, "response_entity": "Group", "query": query,
                            "pagination": {"page_size": page_size, "page_number": 1}}}]}


async def prepare(url: str, persons: int, callback_url: str, signer: Signer, *, load: bool = True) -> dict:
    engine = create_engine(scale.settings(url))
    if load:
        harness.migrate(url)
        await harness.seed_world(url)
        await scale.provincial_office(url)
        _, summary = await scale.load_to(url, persons, 0)
        print(f"loaded {summary.persons} persons in {summary.households} households ({summary.seconds:.0f} s)")
        async with create_sessionmaker(engine)() as session, session.begin():
            shared = await session.execute(text(
                "UPDATE consent_record SET purposes = purposes || '[\"registry_sharing\"]'::jsonb "
                "WHERE purposes @> '[\"eligibility_sharing\"]'::jsonb"))
            print(f"registry_sharing consent added to {shared.rowcount} households")
    async with create_sessionmaker(engine)() as session, session.begin():
        client = await dci_clients.create_client(session, None, DciClientCreate(
            client_id=PARTNER, name="Benchmark partner", query_types=["idtype-value", "predicate", "expression"],
            fields=list(FIELDS), offices=[scale.OFFICE], callback_url=callback_url, jwks=signer.jwks))
        communes = [row[0] for row in await session.execute(text(
            "SELECT substr(village_code, 1, 6) AS commune FROM household GROUP BY 1 HAVING count(*) <= 9000 "
            "ORDER BY count(*) DESC LIMIT 20"))]
    await engine.dispose()
    await scale.settle(url)
    people = await scale.sample(url, 400, seed=3)
    return {"secret": client.client_secret, "national_ids": people["national_ids"], "communes": communes}


def receiver() -> FastAPI:
    app = FastAPI()
    app.state.arrived = {}
    app.state.events = {}

    @app.post("/dci/registry/on-search")
    async def on_search(request: Request):
        body = await request.json()
        transaction_id = body["message"]["transaction_id"]
        app.state.arrived[transaction_id] = time.perf_counter()
        app.state.events.setdefault(transaction_id, asyncio.Event()).set()
        return {"message": {"ack_status": "ACK", "timestamp": now(), "correlation_id": body["message"]["correlation_id"]}}

    return app


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--async-requests", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="Keep the database (its URL is printed).")
    parser.add_argument("--reuse", metavar="URL", help="Measure a database kept by an earlier --keep run (no loading).")
    args = parser.parse_args()

    signer = Signer()
    partner = receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    partner_server = uvicorn.Server(uvicorn.Config(partner, log_level="warning", lifespan="off"))
    partner_task = asyncio.create_task(partner_server.serve(sockets=[sock]))
    callback_url = f"http://127.0.0.1:{sock.getsockname()[1]}/dci"
    load_before = os.getloadavg()[0]
    async with contextlib.AsyncExitStack() as stack:
        url = args.reuse or await stack.enter_async_context(harness.fresh_database(keep=args.keep))
        if args.keep:
            print(f"database kept: {url}")
        data = await prepare(url, args.persons, callback_url, signer, load=not args.reuse)
        guichet_key = generate_signing_key("ES256")
        with harness.server(url, GUICHET_DCI_SIGNING_KEY=guichet_key, GUICHET_DCI_SENDER_ID="guichet") as (base_url, _pid):
            async with httpx.AsyncClient(base_url=base_url) as http:
                token = (await http.post("/oauth2/client/token", data={
                    "grant_type": "client_credentials", "client_id": PARTNER, "client_secret": data["secret"]})).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            ids = data["national_ids"]
            by_id = [signer.message("search", search("idtype-value", {"type": "NID", "value": ids[i % len(ids)]}))
                     for i in range(args.requests)]
            pages = [signer.message("search", search("predicate", [{
                "seq_num": 1, "expression1": {"attribute_name": "location", "operator": "eq", "attribute_value": commune},
                "condition": "and", "expression2": {"attribute_name": "poverty_score", "operator": "le", "attribute_value": 2}}],
                page_size=100)) for commune in (data["communes"] * (args.requests // max(1, len(data["communes"])) + 1))[:args.requests]]
            floor = await harness.floor(base_url, concurrency=1, total=args.requests)

            found: list[int] = []

            def sync(bodies):
                async def send(client, i):
                    response = await client.post("/dci/sr/registry/sync/search", json=bodies[i], headers=auth)
                    answer = response.json()
                    if "message" not in answer:  # a problem+json, not a DCI answer: say which
                        raise httpx.HTTPError(f"{response.status_code} {answer.get('type')}: {answer.get('detail')}")
                    item = answer["message"]["search_response"][0]
                    if item["status"] != "succ":  # counted as an error, by its reason code
                        raise httpx.HTTPError(item.get("status_reason_code", "rjct"))
                    found.append(len(item["data"]["reg_records"]))
                    return response
                return send

            id_run = await harness.load("sync search by ID", base_url, sync(by_id), concurrency=1, total=args.requests)
            by_id_found = sum(found) / max(1, len(found))
            found.clear()
            page_run = await harness.load("predicate, page of 100 Groups", base_url, sync(pages), concurrency=1,
                                          total=args.requests)
            page_found = sum(found) / max(1, len(found))
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                async_ms = []
                for i in range(args.async_requests):
                    body = signer.message("search", search("idtype-value", {"type": "NID", "value": ids[-1 - i % len(ids)]}))
                    transaction_id = body["message"]["transaction_id"]
                    event = partner.state.events.setdefault(transaction_id, asyncio.Event())
                    sent = time.perf_counter()
                    response = await http.post("/dci/sr/registry/search", json=body, headers=auth)
                    assert response.json()["message"]["ack_status"] == "ACK", response.text
                    await asyncio.wait_for(event.wait(), 30)
                    async_ms.append((partner.state.arrived[transaction_id] - sent) * 1000)
    partner_server.should_exit = True
    await partner_task
    callback = harness.Run("async search to callback", async_ms, [], 1, 0, {})
    print(f"\nload average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}; {args.persons} persons")
    for run in (floor, id_run, page_run):
        print(f"{run.line()}  p95 {run.pct(95):.1f} ms")
    print(f"records per answer: by ID {by_id_found:.2f}, predicate page {page_found:.1f}")
    print(f"{'async: request to callback received':<34} p50 {callback.pct(50):.1f} ms  p95 {callback.pct(95):.1f} ms  "
          f"max {max(async_ms):.1f} ms")
    print(f"\ngoals: by ID p95 < 20 ms {'✓' if id_run.pct(95) < 20 else '✗'}; page of 100 Groups p95 < 200 ms "
          f"{'✓' if page_run.pct(95) < 200 else '✗'}; callback < 1 s {'✓' if max(async_ms) < 1000 else '✗'} "
          f"(errors: {id_run.errors + page_run.errors})")


if __name__ == "__main__":
    asyncio.run(main())
