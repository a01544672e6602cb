"""Request bodies and assertions shared by the tests."""

import copy
import itertools
from typing import Any

import httpx
from sqlalchemy import func, inspect, select

from app.models import Base

_national_ids = itertools.count(100_000_001)


def national_id() -> str:
    return str(next(_national_ids))


CONTRACT_EXAMPLE: dict[str, Any] = {
    "village_code": "17010101",
    "address": "Phum Ta Prohm",
    "area_type": "rural",
    "idpoor": {"level": 1, "card_number": "EQ-17-0001234", "valid_until": "2027-06-30"},
    "consent": {"purposes": ["registry", "eligibility_sharing"], "given_by": "Sok Chanthou", "method": "verbal"},
    "members": [
        {"given_name": "Chanthou", "family_name": "Sok", "sex": "female", "birth_date": "1986-03-14",
         "relationship": "head", "national_id": "170123456", "phone": "+85512345678",
         "disability": {"seeing": "none", "hearing": "none", "walking": "a_lot", "remembering": "none",
                        "self_care": "none", "communicating": "none"},
         "employment_status": "informal", "monthly_income": 400000},
        {"given_name": "Dara", "family_name": "Sok", "sex": "male", "birth_year": 2015,
         "birth_date_approximate": True, "relationship": "child", "school_enrolled": True},
    ],
}

# None of them spells a part of the contract example's names (Sok Chanthou, Sok Dara), which tests search for.
_SYLLABLES = ["pech", "hout", "vin", "pha", "ren", "rin", "kun", "mey", "ras", "bop", "mony", "leak", "nit", "pov",
              "sam", "yun", "keo", "lim", "oud", "wat"]
_serial = itertools.count(1)


def _made_up_name(n: int, syllables: int) -> str:
    """Pseudo-random syllables: names made for different n share little, so they never look like
    duplicates of each other to the matcher."""
    h = (n * 2654435761) & 0xFFFFFFFF
    parts = []
    for _ in range(syllables):
        parts.append(_SYLLABLES[h % len(_SYLLABLES)])
        h //= len(_SYLLABLES)
    return "".join(parts).capitalize()


def household_body(*, members: int = 2, village_code: str = "17010101", unique: bool = True, **overrides: Any) -> dict[str, Any]:
    """A valid registration. With unique=True every member gets its own made-up name, birth year and
    (for the head) national ID, and the household its own IDPoor card, so households of one test never
    look like duplicates of each other; heads are born 1940-1979 and children 2000-2019, so no child is
    unlikely to be the head's."""
    body = copy.deepcopy(CONTRACT_EXAMPLE)
    body["village_code"] = village_code
    head, child = body["members"]
    body["members"] = []
    for i in range(members):
        member = copy.deepcopy(head if i == 0 else child)
        if unique:
            n = next(_serial)
            member["given_name"] = _made_up_name(n, 3)
            member["family_name"] = _made_up_name(n + 7919, 2)
            if i == 0:
                member["national_id"] = national_id()
                member["birth_date"] = f"{1940 + n % 40}-0{1 + n % 9}-1{n % 10}"
                body["idpoor"]["card_number"] = f"EQ-17-{n:07d}"
            else:
                member["birth_year"] = 2000 + n % 20
        body["members"].append(member)
    body.update(overrides)
    return body


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    return body


# ---- reading the database behind the API -------------------------------------------------------------


async def table_counts(app) -> dict[str, int]:
    """Rows in every table: equal before and after a request that failed."""
    async with app.state.sessionmaker() as session:
        existing = set(await (await session.connection()).run_sync(lambda sync: inspect(sync).get_table_names()))
        return {t.name: (await session.execute(select(func.count()).select_from(t))).scalar_one()
                for t in Base.metadata.sorted_tables if t.name in existing}


async def db_rows(app, model, *where, order_by=None) -> list:
    """ORM rows of a table, read outside any request."""
    query = select(model).where(*where)
    if order_by is not None:
        query = query.order_by(order_by)
    async with app.state.sessionmaker() as session:
        return list((await session.execute(query)).scalars())


def pointers(problem: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in problem.get("errors") or []]


async def register(client: httpx.AsyncClient, account, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register a household as `account` and return it (the registration must succeed)."""
    response = await client.post("/api/v1/households", json=body or household_body(), headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()
