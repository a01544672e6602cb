"""Named facts: what a scheme may ask about a person or a household, by the names of the registration
contract. Facts are derived once per screening from the registry (or from a preview body) and read by
every adapter. A fact that is not recorded is None: a rule that reads it is "unknown", never failed.

Ages follow app/services/demography.py: with only an (approximate) birth year, a person is taken as
born on 1 July of that year."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.services.demography import age_in_months
from app.vocabulary import (
    DISABILITY_DOMAINS,
    SEVERE_DISABILITY_LEVELS,
    AreaType,
    DisabilityLevel,
    EmploymentStatus,
    Relationship,
    Sex,
)

ATTRIBUTE_PREFIX = "person.attributes."


@dataclass(frozen=True, slots=True)
class FactSpec:
    name: str
    type: str  # integer | boolean | text | date | any
    description: str
    values: tuple[str, ...] | None = None  # for a value set
    identifying: bool = False  # only sent to a partner that declares it needs it


def _enum(e) -> tuple[str, ...]:
    return tuple(m.value for m in e)


_SPECS = [
    FactSpec("person.age_years", "integer", "Age in whole years on the check date (1 July of the birth year when only the year is known)"),
    FactSpec("person.age_months", "integer", "Age in whole months on the check date"),
    FactSpec("person.birth_date_approximate", "boolean", "Only the birth year is known"),
    FactSpec("person.birth_date", "date", "Birth date (1 July of the birth year when approximate)", identifying=True),
    FactSpec("person.national_id", "text", "National ID number", identifying=True),
    FactSpec("person.sex", "text", "Sex", _enum(Sex)),
    FactSpec("person.relationship", "text", "Relationship to the head of household", _enum(Relationship)),
    FactSpec("person.pregnant", "boolean", "Pregnant"),
    *[FactSpec(f"person.disability.{d}", "text", f"Washington Group difficulty: {d.replace('_', ' ')}", _enum(DisabilityLevel))
      for d in DISABILITY_DOMAINS],
    FactSpec("person.severe_disability", "boolean", "Washington Group cut-off: a lot of difficulty or cannot do, in any domain"),
    FactSpec("person.employment_status", "text", "Employment status", _enum(EmploymentStatus)),
    FactSpec("person.monthly_income", "integer", "Monthly income (KHR)"),
    FactSpec("person.school_enrolled", "boolean", "Enrolled in school"),
    FactSpec("person.school_attendance_percent", "integer", "School attendance (%)"),
    FactSpec("person.nssf_member", "boolean", "Member of the National Social Security Fund"),
    FactSpec("person.nssf_contribution_months", "integer", "Months of NSSF contributions"),
    FactSpec("household.size", "integer", "Number of members"),
    FactSpec("household.area_type", "text", "Urban or rural", _enum(AreaType)),
    FactSpec("household.village_code", "text", "Village code (8 digits)"),
    FactSpec("household.idpoor_level", "integer", "IDPoor level (1 or 2; 0 when the household has none)"),
    FactSpec("household.idpoor_valid", "boolean", "An IDPoor level is recorded and the equity card has not expired"),
    FactSpec("household.female_headed", "boolean", "The head of household is a woman"),
    FactSpec("household.monthly_income", "integer", "Total monthly income of the members (KHR); unknown when nobody's is recorded"),
    FactSpec("household.monthly_income_per_person", "integer", "Monthly income per member (KHR)"),
    FactSpec("household.members_under_2", "integer", "Members aged under 2"),
    FactSpec("household.members_under_6", "integer", "Members aged 5 or under"),
    FactSpec("household.members_under_18", "integer", "Members aged under 18"),
    FactSpec("household.members_60_plus", "integer", "Members aged 60 or over"),
    FactSpec("household.members_with_severe_disability", "integer", "Members with a severe disability (Washington Group cut-off)"),
    FactSpec("household.members_pregnant", "integer", "Pregnant members"),
    FactSpec("household.members_living_with_hiv", "integer", "Members whose attributes say living_with_hiv"),
    FactSpec("household.vulnerable_members", "integer", "Members aged 5 or under, aged 60 or over, with a severe disability or living with HIV"),
    FactSpec("household.female_nssf_members", "integer", "Women of the household who are NSSF members"),
    FactSpec("household.female_civil_servants", "integer", "Women of the household whose attributes say civil_servant"),
    FactSpec("household.single_woman_raising_children", "boolean", "A woman heads the household without a spouse and raises children under 18"),
]
FACTS: dict[str, FactSpec] = {spec.name: spec for spec in _SPECS}


def fact_spec(name: str) -> FactSpec | None:
    if name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX):
        return FactSpec(name, "any", f"Attribute '{name[len(ATTRIBUTE_PREFIX):]}' recorded on the person")
    return FACTS.get(name)


def is_person_fact(name: str) -> bool:
    return name.startswith("person.")


# ---- deriving the facts ------------------------------------------------------------------------------


_DISABILITY_FACTS = tuple((f"disability_{d}", f"person.disability.{d}") for d in DISABILITY_DOMAINS)
_NO_DIFFICULTY = DisabilityLevel.none.value
_HEAD, _SPOUSE, _FEMALE = Relationship.head.value, Relationship.spouse.value, Sex.female.value


def person_facts(person: Any, as_of: date) -> dict[str, Any]:
    """`person` is anything with the person table's attribute names (an ORM row, a Core row, a preview
    member flattened by `flatten_member`)."""
    birth_date = person.birth_date
    months = age_in_months(birth_date, person.birth_year, as_of)
    disability = [(name, getattr(person, column) or _NO_DIFFICULTY) for column, name in _DISABILITY_FACTS]
    facts: dict[str, Any] = {
        "person.age_years": months // 12,
        "person.age_months": months,
        "person.birth_date_approximate": bool(person.birth_date_approximate),
        "person.birth_date": birth_date or date(person.birth_year, 7, 1),
        "person.national_id": person.national_id,
        "person.sex": person.sex,
        "person.relationship": person.relationship,
        "person.pregnant": bool(person.pregnant),
        "person.severe_disability": any(level in SEVERE_DISABILITY_LEVELS for _, level in disability),
        "person.employment_status": person.employment_status,
        "person.monthly_income": person.monthly_income,
        "person.school_enrolled": person.school_enrolled,
        "person.school_attendance_percent": person.school_attendance_percent,
        "person.nssf_member": person.nssf_member,
        "person.nssf_contribution_months": person.nssf_contribution_months,
    }
    facts.update(disability)
    attributes = person.attributes
    if attributes:
        for key, value in attributes.items():
            facts[ATTRIBUTE_PREFIX + key] = value
    return facts


def household_facts(household: Any, members: list[dict[str, Any]], as_of: date) -> dict[str, Any]:
    """`members` are the members' person facts (from `person_facts`). One pass over the members: a
    re-screen derives these for every household of an office."""
    idpoor_level = household.idpoor_level
    valid_until = household.idpoor_valid_until
    idpoor_valid = idpoor_level is not None and (valid_until is None or valid_until >= as_of)
    head = None
    income = None
    has_spouse = False
    children = under_2 = under_6 = under_18 = over_60 = severe = pregnant = hiv = vulnerable = female_nssf = female_civil = 0
    for m in members:
        relationship = m["person.relationship"]
        if relationship == _HEAD:
            head = head or m
        elif relationship == _SPOUSE:
            has_spouse = True
        if m["person.monthly_income"] is not None:
            income = (income or 0) + m["person.monthly_income"]
        years = m["person.age_years"]
        living_with_hiv = m.get(ATTRIBUTE_PREFIX + "living_with_hiv") is True
        under_2 += m["person.age_months"] < 24
        under_6 += years <= 5
        under_18 += years < 18
        children += years < 18 and relationship != _HEAD
        over_60 += years >= 60
        severe += bool(m["person.severe_disability"])
        pregnant += bool(m["person.pregnant"])
        hiv += living_with_hiv
        vulnerable += years <= 5 or years >= 60 or bool(m["person.severe_disability"]) or living_with_hiv
        if m["person.sex"] == _FEMALE:
            female_nssf += m["person.nssf_member"] is True
            female_civil += m.get(ATTRIBUTE_PREFIX + "civil_servant") is True
    size = len(members)
    female_head = head is not None and head["person.sex"] == _FEMALE
    return {
        "household.size": size,
        "household.area_type": household.area_type,
        "household.village_code": household.village_code,
        "household.idpoor_level": idpoor_level or 0,
        "household.idpoor_valid": idpoor_valid,
        "household.female_headed": female_head,
        "household.monthly_income": income,
        "household.monthly_income_per_person": income // size if income is not None and size else None,
        "household.members_under_2": under_2,
        "household.members_under_6": under_6,
        "household.members_under_18": under_18,
        "household.members_60_plus": over_60,
        "household.members_with_severe_disability": severe,
        "household.members_pregnant": pregnant,
        "household.members_living_with_hiv": hiv,
        "household.vulnerable_members": vulnerable,
        "household.female_nssf_members": female_nssf,
        "household.female_civil_servants": female_civil,
        "household.single_woman_raising_children": female_head and not has_spouse and children > 0,
    }


class FlatMember:
    """A member of a preview body (MemberCreate) seen with the person table's attribute names."""

    __slots__ = ("_member",)

    def __init__(self, member: Any):
        self._member = member

    def __getattr__(self, name: str) -> Any:
        if name.startswith("disability_"):
            return getattr(self._member.disability, name.removeprefix("disability_")).value
        value = getattr(self._member, name)
        return value.value if hasattr(value, "value") else value


def jsonable(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in facts.items()}
