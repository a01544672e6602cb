"""A synthetic population for load tests and benchmarks: realistic Cambodian households, written
straight into the registry's tables in bulk.

Household number i of a seed (and office) is a pure function of (seed, office, i): loading N, then
2N, adds households N..2N-1; loading the same N again adds nothing. People carry the same derived
columns as registered ones (folded search name, transliteration keys, birth year, office, one
consent record per household), so search and duplicate matching find them exactly like registered
people. They are NOT registrations: no audit row and no activity event is written, so central
monitoring never counts them. National IDs start with "SY" so they can never be mistaken for a real
card.

What the generator aims at, from rounded national figures (General Population Census 2019 as
commonly reported; a plausible shape, not an official calibration): households of 4.4 people on
average, 29% of people under 15 and 9% aged 60 or over, 95 men per 100 women, about a quarter of
households headed by a woman, 15-20% of households holding an IDPoor card (a third of them level 1),
3-4% of people with a disability by the Washington Group cut-off (rising steeply with age), pregnancy
among women of 15-45, school enrolment falling with age, informal work for most, NSSF-covered formal
work for about one worker in eight, job-seekers, retirees; urban households in provincial towns
(and a few in district centres). tests/test_synthetic.py checks these shapes."""

from __future__ import annotations

import asyncio
import csv
import random
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time as day_time, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import Location, Office
from app.services import synthetic_writer
from app.services.demography import age_in_years
from app.services.names import name_keys, part_key, search_name
from app.vocabulary import DISABILITY_DOMAINS

NAMES_FILE = Path(__file__).resolve().parent.parent / "data" / "khmer_names.csv"
NATIONAL_ID_PREFIX = "SY"
BATCH_HOUSEHOLDS = 2000


class SyntheticError(ValueError):
    """A reason the population cannot be loaded (unknown office, no villages...)."""


# ---- distributions --------------------------------------------------------------------------------

# Household size: weights giving a mean of about 4.4 (census 2019: 4.3 to 4.6 by province).
HOUSEHOLD_SIZES = {1: 4, 2: 9, 3: 16, 4: 22, 5: 20, 6: 14, 7: 7, 8: 4, 9: 2, 10: 1, 11: 0.5, 12: 0.5}
# Age of the head of household, by band (from, to inclusive): weight.
HEAD_AGES = {(20, 24): 5, (25, 34): 21, (35, 44): 23, (45, 54): 21, (55, 64): 16, (65, 74): 10, (75, 89): 4}
FEMALE_HEAD = 0.18  # of households of two or more with a head under 60; widows head many older ones
FEMALE_HEAD_OLDER = 0.40
FEMALE_SINGLE = 0.60
URBAN_IN_MUNICIPALITY = 0.85  # households in a provincial town (krong) or Phnom Penh
URBAN_ELSEWHERE = 0.08  # district centres
URBAN_VILLAGE_WEIGHT = 3.0  # town villages are bigger than rural ones
IDPOOR_SHARE = {"urban": 0.08, "rural": 0.20}  # holding a card; a third of them level 1
IDPOOR_LEVEL1 = 0.35
# Washington Group cut-off ("a lot" or "cannot" in any domain), by age; "some difficulty" is about
# twice as common. Not asked under 5.
SEVERE_DISABILITY_BY_AGE = ((5, 0.0), (18, 0.008), (40, 0.015), (50, 0.03), (60, 0.06), (70, 0.12), (80, 0.22), (200, 0.38))
DISABILITY_DOMAIN_WEIGHTS = {"walking": 35, "seeing": 25, "hearing": 12, "remembering": 12, "self_care": 8, "communicating": 8}
# Pregnant now, women by age (about 22 births per 1000 people a year).
PREGNANT_BY_AGE = ((15, 0.0), (20, 0.05), (25, 0.13), (30, 0.14), (35, 0.11), (40, 0.06), (46, 0.02))
# School enrolment by age band (net rates), and when in an IDPoor household.
ENROLMENT = ((6, 0.0, 0.0), (12, 0.92, 0.85), (15, 0.72, 0.60), (18, 0.45, 0.30), (20, 0.20, 0.08))
MONTHLY_INCOME = {  # KHR: (low, mode, high); about 4,000 KHR to the dollar, garment minimum wage ~830,000
    "formal": (800_000, 1_000_000, 2_400_000),
    "self_employed": (200_000, 600_000, 2_000_000),
    "informal": (100_000, 450_000, 1_200_000),
}
PHONE_PREFIXES = ("10", "11", "12", "15", "16", "17", "61", "69", "70", "76", "77", "78", "85", "86", "87", "89",
                  "92", "93", "95", "96", "97", "98", "99")
KHMER_SCRIPT_SHARE = 0.2  # households whose names were written in Khmer script (with their Latin spelling)
SPELLING_VARIANT_SHARE = 0.15  # a name written in one of its other romanisations


def _band(table: tuple[tuple[int, float], ...], age: int) -> float:
    for upper, value in table:
        if age < upper:
            return value
    return 0.0


# ---- names ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamePool:
    latin: tuple[str, ...]
    khmer: tuple[str, ...]
    variants: tuple[tuple[str, ...], ...]
    cum_weights: tuple[float, ...]

    def pick(self, rng: random.Random, khmer_script: bool) -> str:
        return self.pick_pair(rng, khmer_script)[0]

    def pick_pair(self, rng: random.Random, khmer_script: bool) -> tuple[str, str | None]:
        """A name as registered and, for one in Khmer script, its usual Latin spelling (the ID card's)."""
        i = rng.choices(range(len(self.latin)), cum_weights=self.cum_weights)[0]
        if khmer_script:
            return self.khmer[i], self.latin[i]
        if self.variants[i] and rng.random() < SPELLING_VARIANT_SHARE:
            return rng.choice(self.variants[i]), None
        return self.latin[i], None


@lru_cache(maxsize=1)
def name_pools() -> dict[str, NamePool]:
    """family, female and male names, from app/data/khmer_names.csv (kind,latin,khmer,weight,variants)."""
    rows: dict[str, list[dict[str, str]]] = {"family": [], "female": [], "male": []}
    with NAMES_FILE.open(encoding="utf-8") as names:
        for row in csv.DictReader(names):
            rows[row["kind"]].append(row)
    return {
        kind: NamePool(
            latin=tuple(r["latin"] for r in entries),
            khmer=tuple(r["khmer"] for r in entries),
            variants=tuple(tuple(v for v in r["variants"].split("|") if v) for r in entries),
            cum_weights=tuple(accumulate(float(r["weight"]) for r in entries)),
        )
        for kind, entries in rows.items()
    }


# The registry's own folding and keys (app.services.names), remembered: a few hundred distinct names.
_search_name = lru_cache(maxsize=65536)(search_name)
_part_key = lru_cache(maxsize=4096)(part_key)


# ---- where households go --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Area:
    """The villages households are spread over, each with the office that serves it."""

    scope: str  # the office code, or "*" for every office
    villages: tuple[str, ...]
    office_ids: tuple[uuid.UUID, ...]
    municipal: tuple[bool, ...]  # in a provincial town or Phnom Penh
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, scope: str, villages: list[tuple[str, uuid.UUID, bool]]) -> Area:
        """villages: (code, serving office id, municipal) in a stable order."""
        return cls(
            scope=scope,
            villages=tuple(v[0] for v in villages),
            office_ids=tuple(v[1] for v in villages),
            municipal=tuple(v[2] for v in villages),
            cum_weights=tuple(accumulate(URBAN_VILLAGE_WEIGHT if v[2] else 1.0 for v in villages)),
        )

    @property
    def scope_key(self) -> int:
        return zlib.crc32(self.scope.encode())


def is_municipal(province: str, district_name: str, province_name: str) -> bool:
    """The provincial town carries the province's name (Battambang in Battambang) or is a krong;
    Phnom Penh (12) is all urban."""
    return province == "12" or district_name == province_name or district_name.lower().startswith(("krong", "khan"))


async def resolve_area(session: AsyncSession, office_code: str | None) -> Area:
    """The villages of the office's province or district (or of every office's), each served by the
    office with the most specific location."""
    query = select(Office.id, Office.code, Office.location_code).order_by(Office.code)
    if office_code is not None:
        query = query.where(Office.code == office_code)
    offices = (await session.execute(query)).all()
    if office_code is not None and not offices:
        raise SyntheticError(f"there is no office {office_code}")
    if not offices:
        raise SyntheticError("there is no office to register households at; create one first "
                             "(guichet offices create, or guichet seed demo)")
    names = dict((await session.execute(
        select(Location.code, Location.name).where(Location.level.in_(("province", "district")))
    )).all())
    villages = (await session.execute(
        select(Location.code).where(Location.level == "village").order_by(Location.code)
    )).scalars().all()
    by_specificity = sorted(offices, key=lambda o: -len(o.location_code))
    chosen: list[tuple[str, uuid.UUID, bool]] = []
    for village in villages:
        office = next((o for o in by_specificity if village.startswith(o.location_code)), None)
        if office is not None:
            municipal = is_municipal(village[:2], names.get(village[:4], ""), names.get(village[:2], "?"))
            chosen.append((village, office.id, municipal))
    if not chosen:
        where = ", ".join(f"{o.code} ({o.location_code})" for o in offices)
        raise SyntheticError(f"the gazetteer has no villages in the area of {where}; import them first "
                             "(guichet locations import FILE.csv)")
    return Area.of(office_code or "*", chosen)


# ---- generating -----------------------------------------------------------------------------------


@dataclass(slots=True)
class SyntheticHousehold:
    """Rows for the household, person and consent_record tables, keyed by column name."""

    household: dict[str, Any]
    persons: list[dict[str, Any]]
    consent: dict[str, Any]


@dataclass(slots=True)
class _Member:
    relationship: str
    sex: str
    age: int
    given_name: str = ""
    family_name: str = ""
    given_name_latin: str | None = None
    family_name_latin: str | None = None


def _rng(seed: int, area: Area, index: int) -> random.Random:
    return random.Random((seed << 80) | (area.scope_key << 48) | index)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _cumulative(weights: dict) -> tuple[tuple, tuple[float, ...]]:
    return tuple(weights), tuple(accumulate(weights.values()))


_HEAD_AGES = _cumulative(HEAD_AGES)
_HOUSEHOLD_SIZES = _cumulative(HOUSEHOLD_SIZES)
_DISABILITY_DOMAINS = _cumulative(DISABILITY_DOMAIN_WEIGHTS)
_CONSENT_METHODS = _cumulative({"thumbprint": 45, "verbal": 25, "signature": 25, "guardian": 5})


def _pick(rng: random.Random, table: tuple[tuple, tuple[float, ...]]) -> Any:
    return rng.choices(table[0], cum_weights=table[1])[0]


def _members(rng: random.Random, size: int) -> list[_Member]:
    """Who lives together: a head, usually a spouse, their children, sometimes an old parent; in
    older households a married child with a spouse and grandchildren (the stem family)."""
    head_age = rng.randint(*_pick(rng, _HEAD_AGES))
    if size == 1 and rng.random() < 0.45:  # living alone: the young worker or the old widow(er)
        head_age = rng.randint(20, 34) if rng.random() < 0.4 else rng.randint(60, 88)
    if head_age < 30 and size > 4:  # young couples have small families
        size = rng.randint(2, 4)
    female_share = FEMALE_SINGLE if size == 1 else FEMALE_HEAD if head_age < 60 else FEMALE_HEAD_OLDER
    head_female = rng.random() < female_share
    members = [_Member("head", "female" if head_female else "male", head_age)]

    def add(relationship: str, age: int, sex: str | None = None) -> None:
        # 105 boys are born for 100 girls; more grown sons than daughters work away from home.
        if sex is None:
            sex = "male" if rng.random() < (0.512 if age < 18 else 0.47) else "female"
        if len(members) < size:
            members.append(_Member(relationship, sex, max(0, age)))

    mother_age = head_age if head_female else None
    if size > 1 and rng.random() < (0.30 if head_female else 0.92 if head_age < 65 else 0.75):
        gap = rng.randint(0, 6)
        spouse_age = max(18, head_age + gap if head_female else head_age - gap)
        add("spouse", spouse_age, "male" if head_female else "female")
        mother_age = mother_age if head_female else spouse_age
    if mother_age is None:  # a man without a wife at home: a widower, or a wife working away
        mother_age = head_age - rng.randint(0, 5)
    if head_age < 55 and rng.random() < (0.20 if head_age < 40 else 0.08):
        add("parent", min(95, head_age + rng.randint(22, 32)), "female" if rng.random() < 0.78 else "male")
    oldest_child, youngest_child = mother_age - 17, max(0, mother_age - 44)
    if head_age >= 45 and size - len(members) >= 2 and rng.random() < 0.45:
        low = max(18, youngest_child)
        married_child = rng.randint(low, max(low, min(oldest_child, 38)))
        # Often a daughter and her husband: newly-weds tend to live with the wife's parents.
        daughter = rng.random() < 0.6
        add("child", married_child, "female" if daughter else "male")
        add("other_relative", married_child + rng.randint(-3, 4), "male" if daughter else "female")
        while len(members) < size and married_child >= 20 and rng.random() < 0.8:
            add("grandchild", rng.randint(0, min(17, married_child - 18)))
    while len(members) < size:
        if oldest_child >= 0:
            age = rng.randint(youngest_child, oldest_child)
            if age >= 25 and youngest_child <= 24 and rng.random() < 0.6:  # most grown children have left home
                age = rng.randint(youngest_child, min(oldest_child, 24))
            add("child", age)
        else:
            add("sibling" if rng.random() < 0.6 else "other_relative", head_age + rng.randint(-8, 8))
    return members


def _name_members(rng: random.Random, members: list[_Member], khmer_script: bool) -> None:
    """Khmer family names pass from the father: children and the head share it, a spouse and a
    parent keep their own."""
    pools = name_pools()
    family = pools["family"].pick_pair(rng, khmer_script)
    for m in members:
        m.family_name, m.family_name_latin = family if m.relationship in ("head", "child", "grandchild", "sibling") or (
            m.relationship == "parent" and m.sex == "male") else pools["family"].pick_pair(rng, khmer_script)
        m.given_name, m.given_name_latin = pools[m.sex].pick_pair(rng, khmer_script)


def _birth(rng: random.Random, age: int, as_of: date) -> tuple[date | None, int, bool]:
    born = as_of - timedelta(days=int(age * 365.25) + rng.randrange(365))
    approximate = rng.random() < (0.40 if age >= 60 else 0.12)
    return (None, born.year, True) if approximate else (born, born.year, False)


def _disability(rng: random.Random, age: int) -> dict[str, str]:
    levels = dict.fromkeys(DISABILITY_DOMAINS, "none")
    severe = _band(SEVERE_DISABILITY_BY_AGE, age)
    draw = rng.random()
    if draw < severe:
        for domain in rng.choices(_DISABILITY_DOMAINS[0], cum_weights=_DISABILITY_DOMAINS[1], k=2 if rng.random() < 0.3 else 1):
            levels[domain] = "cannot" if rng.random() < 0.25 else "a_lot"
    elif draw < 3 * severe:
        levels[_pick(rng, _DISABILITY_DOMAINS)] = "some"
    return levels


def _income(rng: random.Random, status: str, idpoor: bool) -> int:
    low, mode, high = MONTHLY_INCOME[status]
    amount = rng.triangular(low, high, mode) * (0.6 if idpoor else 1.0)
    return int(round(amount, -3))


def _work(rng: random.Random, m: _Member, idpoor: bool, urban: bool) -> dict[str, Any]:
    """Schooling, work, income and NSSF cover of one person."""
    facts: dict[str, Any] = {"employment_status": None, "monthly_income": None, "school_enrolled": None,
                             "school_attendance_percent": None, "nssf_member": None, "nssf_contribution_months": None}
    age = m.age
    enrolled_share = 0.0
    for upper, share, share_idpoor in ENROLMENT:
        if age < upper:
            enrolled_share = share_idpoor if idpoor else share
            break
    if 6 <= age < 20:
        enrolled = rng.random() < enrolled_share * (1.15 if urban else 1.0)
        facts["school_enrolled"] = enrolled
        if enrolled:
            draw = rng.random()
            facts["school_attendance_percent"] = (rng.randint(85, 100) if draw < 0.75 else rng.randint(70, 84)
                                                  if draw < 0.9 else rng.randint(40, 69))
            if age >= 15:
                facts["employment_status"] = "student"
            return facts
    if age < 15:
        return facts
    if 20 <= age < 25 and rng.random() < (0.18 if urban else 0.06):
        facts["employment_status"] = "student"
        return facts
    if age >= 60:
        working = rng.random() < (0.55 if age < 65 else 0.35 if age < 75 else 0.10)
        if not working:
            was_covered = rng.random() < (0.15 if urban else 0.05) and not idpoor
            facts["employment_status"] = "retired" if was_covered or rng.random() < 0.25 else "inactive"
            if was_covered:
                facts |= {"nssf_member": True, "nssf_contribution_months": rng.randint(12, 300),
                          "monthly_income": int(round(rng.uniform(250_000, 700_000), -3))}
            return facts
    elif rng.random() > (0.90 if m.sex == "male" else 0.78) * (0.75 if age < 18 else 1.0):
        facts["employment_status"] = "inactive"
        return facts
    if age < 60 and rng.random() < (0.09 if age < 25 else 0.035):
        facts["employment_status"] = "unemployed"  # looking for work: NEA's job-seekers
        return facts
    formal_share = (0.24 if urban else 0.12) * (0.4 if idpoor else 1.0) * (0.3 if age >= 60 or age < 18 else 1.0)
    draw = rng.random()
    status = "formal" if draw < formal_share else "self_employed" if draw < formal_share + 0.3 else "informal"
    facts["employment_status"] = status
    facts["monthly_income"] = _income(rng, status, idpoor)
    if status == "formal":
        facts["nssf_member"] = True
        facts["nssf_contribution_months"] = rng.randint(1, max(1, min(900, (age - 17) * 12, 240)))
    elif rng.random() < 0.5:
        facts["nssf_member"] = False
    return facts


def generate(area: Area, *, seed: int, index: int, as_of: date) -> SyntheticHousehold:
    """Household number `index` of the seed: always the same household for the same area and day."""
    rng = _rng(seed, area, index)
    village_index = rng.choices(range(len(area.villages)), cum_weights=area.cum_weights)[0]
    village = area.villages[village_index]
    office_id = area.office_ids[village_index]
    urban = rng.random() < (URBAN_IN_MUNICIPALITY if area.municipal[village_index] else URBAN_ELSEWHERE)
    idpoor = rng.random() < IDPOOR_SHARE["urban" if urban else "rural"]
    size = _pick(rng, _HOUSEHOLD_SIZES)
    if idpoor and size < 10 and rng.random() < 0.2:  # poorer households are a little bigger
        size += 1
    members = _members(rng, size)
    khmer_script = rng.random() < KHMER_SCRIPT_SHARE
    _name_members(rng, members, khmer_script)
    household_id = _uuid(rng)
    registered_at = datetime.combine(as_of, day_time(), UTC) - timedelta(seconds=rng.randrange(3 * 365 * 86400))
    household = {
        "id": household_id,
        "version": 1,
        "created_at": registered_at,
        "updated_at": registered_at,
        "office_id": office_id,
        "village_code": village,
        "address": (f"No. {rng.randint(1, 400)}, Street {rng.randint(1, 60)}" if urban
                    else f"Group {rng.randint(1, 9)}" if rng.random() < 0.5 else None),
        "area_type": "urban" if urban else "rural",
        "idpoor_level": (1 if rng.random() < IDPOOR_LEVEL1 else 2) if idpoor else None,
        # Twelve digits: drawn at random, seven would give two households one card in every large registry,
        # which registration questions (an unlikely fact) and the benchmarks must not run into.
        "idpoor_card_number": f"EQ-{village[:2]}-{rng.randrange(10**12):012d}" if idpoor and rng.random() < 0.9 else None,
        "idpoor_valid_until": as_of + timedelta(days=rng.randint(-150, 1095)) if idpoor else None,
        "registered_by": None,
    }
    persons = []
    for j, m in enumerate(members):
        birth_date, birth_year, approximate = _birth(rng, m.age, as_of)
        m.age = age_in_years(birth_date, birth_year, as_of)  # as the registry will count it (1 July if approximate)
        disability = _disability(rng, m.age)
        pregnant = m.sex == "female" and rng.random() < _band(PREGNANT_BY_AGE, m.age) * (
            0.3 if m.relationship in ("child", "grandchild") else 1.0)
        attributes: dict[str, Any] = {}
        facts = _work(rng, m, idpoor, urban)
        if facts["employment_status"] == "formal" and rng.random() < 0.15:
            attributes["civil_servant"] = True
        if 15 <= m.age < 50 and rng.random() < 0.005:
            attributes["living_with_hiv"] = True
        has_id = rng.random() < (0.92 if m.age >= 18 else 0.35 if m.age >= 15 else 0.0)
        created = registered_at + timedelta(microseconds=j)  # members keep the order they were entered in
        persons.append({
            "id": _uuid(rng),
            "version": 1,
            "created_at": created,
            "updated_at": created,
            "household_id": household_id,
            "office_id": office_id,
            "village_code": village,
            "given_name": m.given_name,
            "family_name": m.family_name,
            "search_name": _search_name(m.given_name, m.family_name),
            "family_key": _part_key(m.family_name),
            "given_key": _part_key(m.given_name),
            "given_name_latin": m.given_name_latin,
            "family_name_latin": m.family_name_latin,
            "name_keys": name_keys(f"{m.family_name} {m.given_name}",
                                   m.family_name_latin and f"{m.family_name_latin} {m.given_name_latin}"),
            "sex": m.sex,
            "birth_date": birth_date,
            "birth_year": birth_year,
            "birth_date_approximate": approximate,
            "national_id": f"{NATIONAL_ID_PREFIX}{rng.randrange(10**16):016d}" if has_id else None,
            "phone": (f"+855{rng.choice(PHONE_PREFIXES)}{rng.randrange(10**6, 10**7)}"
                      if m.age >= 18 and rng.random() < 0.7 else None),
            "relationship": m.relationship,
            **{f"disability_{domain}": level for domain, level in disability.items()},
            "pregnant": pregnant,
            "expected_delivery_date": as_of + timedelta(days=rng.randint(14, 270)) if pregnant else None,
            **facts,
            "attributes": attributes,
            "registered_by": None,
        })
    head = persons[0]
    purposes = ["registry"] if rng.random() < 0.1 else ["registry", "eligibility_sharing"]
    if rng.random() < 0.4:
        purposes.append("contact")
    if rng.random() < 0.3:
        purposes.append("referral_sharing")
    consent = {
        "id": _uuid(rng),
        "household_id": household_id,
        "purposes": purposes,
        "given_by": f"{head['family_name']} {head['given_name']}",
        "method": _pick(rng, _CONSENT_METHODS),
        "note": None,
        "recorded_at": registered_at,
        "recorded_by": None,
    }
    return SyntheticHousehold(household, persons, consent)


def generate_range(area: Area, *, seed: int, start: int, stop: int, as_of: date) -> list[SyntheticHousehold]:
    return [generate(area, seed=seed, index=i, as_of=as_of) for i in range(start, stop)]


def registration_body(household: SyntheticHousehold) -> dict[str, Any]:
    """The same household in the registration contract (POST /api/v1/households), for benchmarks that
    register realistic households through the API."""
    h = household.household
    members = []
    for p in household.persons:
        member = {k: p[k] for k in ("given_name", "family_name", "given_name_latin", "family_name_latin", "sex", "relationship", "national_id", "phone",
                                    "pregnant", "employment_status", "monthly_income", "school_enrolled",
                                    "school_attendance_percent", "nssf_member", "nssf_contribution_months",
                                    "attributes", "birth_date_approximate")
                  if p[k] is not None}
        member["disability"] = {d: p[f"disability_{d}"] for d in DISABILITY_DOMAINS}
        if p["birth_date"] is not None:
            member["birth_date"] = p["birth_date"].isoformat()
        else:
            member["birth_year"] = p["birth_year"]
        if p["expected_delivery_date"] is not None:
            member["expected_delivery_date"] = p["expected_delivery_date"].isoformat()
        members.append(member)
    idpoor = None
    if h["idpoor_level"] is not None:
        idpoor = {"level": h["idpoor_level"], "card_number": h["idpoor_card_number"],
                  "valid_until": h["idpoor_valid_until"].isoformat()}
    c = household.consent
    return {"village_code": h["village_code"], "address": h["address"], "area_type": h["area_type"], "idpoor": idpoor,
            "consent": {"purposes": c["purposes"], "given_by": c["given_by"], "method": c["method"]},
            "members": members}


# ---- loading --------------------------------------------------------------------------------------

@dataclass
class LoadSummary:
    households: int = 0
    persons: int = 0
    skipped: int = 0  # households of the seed already there
    seconds: float = 0.0
    offices: list[str] = field(default_factory=list)

    @property
    def persons_per_second(self) -> float:
        return self.persons / self.seconds if self.seconds else 0.0


async def load(
    engine: AsyncEngine,
    *,
    households: int,
    office_code: str | None = None,
    seed: int = 1,
    as_of: date,
    start: int = 0,
    batch_size: int = BATCH_HOUSEHOLDS,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load households start..households-1 of the seed, one transaction per batch, so that a run
    stopped half-way keeps what it committed and a second run adds only what is missing. The next
    batch is generated (in a thread) while the database takes the current one."""
    from app.db import create_sessionmaker

    started = time.perf_counter()
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        area = await resolve_area(session, office_code)
        offices = dict((await session.execute(select(Office.id, Office.code))).all())
    summary = LoadSummary(offices=sorted({offices[o] for o in area.office_ids}))
    bounds = [(b, min(b + batch_size, households)) for b in range(start, households, batch_size)]

    def make(bound: tuple[int, int]) -> list[SyntheticHousehold]:
        return generate_range(area, seed=seed, start=bound[0], stop=bound[1], as_of=as_of)

    pending = asyncio.ensure_future(asyncio.to_thread(make, bounds[0])) if bounds else None
    for i, bound in enumerate(bounds):
        batch = await pending
        pending = asyncio.ensure_future(asyncio.to_thread(make, bounds[i + 1])) if i + 1 < len(bounds) else None
        async with sessions() as session, session.begin():
            added, people = await synthetic_writer.write(session, batch)
        summary.households += added
        summary.persons += people
        summary.skipped += len(batch) - added
        if on_progress is not None:
            on_progress(len(batch))
    if summary.households:
        await synthetic_writer.analyze(engine)
    summary.seconds = time.perf_counter() - started
    return summary
