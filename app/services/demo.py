"""Demo data for `make run`: the national gazetteer's locations the database lacks, two Siem Reap
district offices (where the first single-window offices opened in 2014) and one in Battambang, a user
of every role, and a few households. Idempotent: what exists is left alone (locations included)."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.principal import Principal
from app.models import Household, Office, User
from app.schemas.households import HouseholdCreate
from app.services import households, locations, offices, users
from app.vocabulary import Role

DEMO_OFFICES = [
    ("SR-ACH", "Angkor Chum District Single Window Office", "1701"),
    ("SR-SSN", "Srei Snam District Single Window Office", "1712"),
    ("BB-BAN", "Banan District Single Window Office", "0201"),
]
# username -> (role, office, scheme, full name)
DEMO_USERS = {
    "admin": (Role.admin, None, None, "Ministry system administrator"),
    "supervisor.ach": (Role.supervisor, "SR-ACH", None, "Angkor Chum supervisor"),
    "clerk.ach": (Role.clerk, "SR-ACH", None, "Angkor Chum clerk"),
    "clerk.ssn": (Role.clerk, "SR-SSN", None, "Srei Snam clerk"),
    "monitor": (Role.monitor, None, None, "Ministry M&E analyst"),
    "partner.hef": (Role.partner, None, "KH-HEF", "Health Equity Fund service account"),
}
DEMO_USERNAMES = list(DEMO_USERS)

_CONSENT = {"purposes": ["registry", "eligibility_sharing"], "method": "verbal"}
DEMO_HOUSEHOLDS = [
    {"village_code": "17010101", "address": "Phum Prasat", "area_type": "rural",
     "idpoor": {"level": 1, "card_number": "EQ-17-0001234", "valid_until": "2027-06-30"},
     "consent": _CONSENT | {"given_by": "Sok Chanthou"},
     "members": [
         {"given_name": "Chanthou", "family_name": "Sok", "sex": "female", "birth_date": "1986-03-14", "relationship": "head",
          "national_id": "170123456", "phone": "+85512345678", "employment_status": "informal", "monthly_income": 400000,
          "disability": {"walking": "a_lot"}},
         {"given_name": "Dara", "family_name": "Sok", "sex": "male", "birth_year": 2015, "birth_date_approximate": True,
          "relationship": "child", "school_enrolled": True, "school_attendance_percent": 92},
         {"given_name": "Srey Neang", "family_name": "Sok", "sex": "female", "birth_date": "2025-02-01", "relationship": "child"}]},
    {"village_code": "17010102", "address": "Phum Char Chhuk", "area_type": "rural", "idpoor": {"level": 2},
     "consent": _CONSENT | {"given_by": "Chea Vannak"},
     "members": [
         {"given_name": "Vannak", "family_name": "Chea", "sex": "male", "birth_date": "1979-11-02", "relationship": "head",
          "employment_status": "self_employed", "monthly_income": 650000},
         {"given_name": "Sreymom", "family_name": "Kim", "sex": "female", "birth_date": "1990-05-20", "relationship": "spouse",
          "pregnant": True, "expected_delivery_date": "2027-03-01", "employment_status": "informal"},
         {"given_name": "Pisey", "family_name": "Chea", "sex": "female", "birth_year": 1950, "birth_date_approximate": True,
          "relationship": "parent", "disability": {"seeing": "cannot"}}]},
    {"village_code": "17010201", "address": None, "area_type": "rural",
     "consent": _CONSENT | {"given_by": "Heng Sovann", "purposes": ["registry"]},
     "members": [
         {"given_name": "Sovann", "family_name": "Heng", "sex": "male", "birth_date": "2001-08-09", "relationship": "head",
          "employment_status": "unemployed"}]},
    {"village_code": "17010101", "address": "Near the pagoda", "area_type": "rural",
     "consent": _CONSENT | {"given_by": "Mao Sophea"},
     "members": [
         {"given_name": "Sophea", "family_name": "Mao", "sex": "female", "birth_date": "1963-01-15", "relationship": "head",
          "employment_status": "formal", "nssf_member": True, "nssf_contribution_months": 96, "monthly_income": 1200000}]},
]


async def seed(session: AsyncSession, passwords: dict[str, str], *, with_households: bool = True) -> str:
    """with_households=False at a central instance, which holds no personal data."""
    created_locations = await locations.load_national_gazetteer(session)
    existing_offices = set((await session.execute(select(Office.code))).scalars())
    new_offices = 0
    for code, name, location in DEMO_OFFICES:
        if code not in existing_offices:
            await offices.create_office(session, None, code=code, name=name, location_code=location)
            new_offices += 1
    existing_users = set((await session.execute(select(User.username))).scalars())
    new_users = 0
    for username, (role, office, scheme, full_name) in DEMO_USERS.items():
        if username not in existing_users:
            await users.create_user(session, None, username=username, password=passwords[username], role=role,
                                    full_name=full_name, office_code=office, scheme_code=scheme)
            new_users += 1
    office = (await session.execute(select(Office).where(Office.code == "SR-ACH"))).scalar_one()
    new_households = 0
    if with_households and not (await session.execute(select(func.count(Household.id)).where(Household.office_id == office.id))).scalar_one():
        clerk = (await session.execute(select(User).where(User.username == "clerk.ach"))).scalar_one()
        actor = Principal(id=clerk.id, username=clerk.username, role=Role.clerk, office_id=office.id, office_code=office.code,
                          scheme_code=None)
        for household in DEMO_HOUSEHOLDS:
            await households.register_household(session, actor, HouseholdCreate.model_validate(household | {"confirm_new": True}))
            new_households += 1
    return (f"demo data: {created_locations} locations, {new_offices} offices, {new_users} users and "
            f"{new_households} households added")


def describe(passwords: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (username, f"{role}" + (f" at {office}" if office else "") + (f" for scheme {scheme}" if scheme else ""))
        for username, (role, office, scheme, _) in DEMO_USERS.items()
    ]
