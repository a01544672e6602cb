"""A registry officer's checks of the facts typed at the window.

What cannot be true (a pregnant four-year-old, a retired child, a baby due three years from now) is
refused: a 422 naming the field to correct. What is only unlikely (a head of 12, a household of 20, an
IDPoor card already on another household) is a warning: a 409 listing them, which the clerk confirms
with `confirm_unlikely: true` after checking with the client, as a likely duplicate is confirmed with
`confirm_new`.

A rule looks only at a request that sets one of its facts (`changed`; None for a new person): a change
of phone number is neither refused because a pregnancy recorded last year is overdue by now, nor
warned about a household size that was confirmed then."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.services.demography import age_in_years
from app.vocabulary import EmploymentStatus, Relationship, Sex

EARLIEST_BIRTH_YEAR = 1890
MIN_HEAD_AGE, ADULT_HEAD_AGE = 10, 16  # a younger head is refused; one younger than an adult, warned about
PREGNANCY_AGES, USUAL_PREGNANCY_AGES = (10, 60), (15, 50)  # outside the first: refused; the second: warned
DELIVERY_OVERDUE = timedelta(days=14)  # a pregnancy may run two weeks past its expected delivery date
DELIVERY_AHEAD = timedelta(days=300)  # about ten months: 40 weeks from the last period, known weeks later
SCHOOL_AGE = 3  # pre-school
FIRST_WORKING_AGE = 12  # the Labour Law's light work; NSSF contributions cannot start earlier
# Refused below the first age, warned about below the second.
EMPLOYMENT_AGES = {
    EmploymentStatus.formal: (FIRST_WORKING_AGE, 15),
    EmploymentStatus.informal: (5, 15),
    EmploymentStatus.self_employed: (5, 15),
    EmploymentStatus.unemployed: (5, 15),  # looking for work
    EmploymentStatus.student: (SCHOOL_AGE, 0),
    EmploymentStatus.retired: (18, 45),
}
VERY_OLD = 100  # 1920 typed for 1990?
LARGE_HOUSEHOLD = 15  # more members are warned about (the national mean is between 4 and 5)
PARENT_GAP = 12  # fewer years between the head and their child or parent are warned about
_BIRTH = ("birth_date", "birth_year")


@dataclass(frozen=True)
class Finding:
    field: str  # as the request names it: "pregnant", "birth_date"...
    detail: str
    code: str = ""  # a warning's stable code


class _Rules:
    """The facts of one person, and which of them the request sets."""

    def __init__(self, facts: dict[str, Any], today: date, changed: Iterable[str] | None):
        self.facts, self.today = facts, today
        self.changed = None if changed is None else set(changed)
        year = facts.get("birth_year") or (facts["birth_date"].year if facts.get("birth_date") else None)
        self.age = age_in_years(facts.get("birth_date"), year, today) if year is not None else None

    def touches(self, *fields: str) -> bool:
        return self.changed is None or not self.changed.isdisjoint(fields)

    def field(self, *fields: str) -> str:
        """The first of the rule's fields that the request sets: the one to correct."""
        return fields[0] if self.changed is None else next(f for f in fields if f in self.changed)

    def finding(self, fields: tuple[str, ...], detail: str, code: str = "") -> Finding | None:
        return Finding(self.field(*fields), detail, code) if self.touches(*fields) else None


def impossible(facts: dict[str, Any], today: date, changed: Iterable[str] | None = None) -> list[Finding]:
    """What cannot be true of a person (a new one, or one after a change)."""
    birth_date, birth_year = facts.get("birth_date"), facts.get("birth_year")
    if birth_date is None and birth_year is None:
        return [Finding("birth_date", "give birth_date, or birth_year with birth_date_approximate")]
    if birth_date is not None:
        if birth_date > today:
            return [Finding("birth_date", "birth_date is in the future")]
        if birth_date.year < EARLIEST_BIRTH_YEAR:
            return [Finding("birth_date", f"birth_date is before {EARLIEST_BIRTH_YEAR}")]
        if birth_year is not None and birth_year != birth_date.year:
            return [Finding("birth_year", "birth_year does not match birth_date")]
    elif birth_year > today.year:
        return [Finding("birth_year", "birth_year is in the future")]
    rules = _Rules(facts, today, changed)
    age = rules.age
    found = []
    if facts.get("relationship") == Relationship.head and age < MIN_HEAD_AGE:
        found.append(rules.finding(("relationship", *_BIRTH), f"the head of a household is at least {MIN_HEAD_AGE}; "
                                   f"this person is {age}"))
    if facts.get("pregnant"):
        if facts.get("sex") == Sex.male:
            found.append(Finding("pregnant", "pregnant is only recorded for a woman"))
        elif not PREGNANCY_AGES[0] <= age <= PREGNANCY_AGES[1]:
            found.append(rules.finding(("pregnant", *_BIRTH), f"a pregnancy is recorded between the ages of "
                                       f"{PREGNANCY_AGES[0]} and {PREGNANCY_AGES[1]}; this person is {age}"))
    delivery = facts.get("expected_delivery_date")
    if delivery is not None:
        if not facts.get("pregnant"):
            found.append(Finding("expected_delivery_date", "expected_delivery_date needs pregnant: true"))
        elif delivery < today - DELIVERY_OVERDUE:
            found.append(rules.finding(("expected_delivery_date",), f"expected_delivery_date is more than "
                                       f"{DELIVERY_OVERDUE.days} days past: record the birth, or the new date"))
        elif delivery > today + DELIVERY_AHEAD:
            found.append(rules.finding(("expected_delivery_date",), f"expected_delivery_date is more than "
                                       f"{DELIVERY_AHEAD.days} days (about ten months) ahead"))
    status = facts.get("employment_status")
    if status is not None and age < EMPLOYMENT_AGES.get(status, (0, 0))[0]:
        found.append(rules.finding(("employment_status", *_BIRTH), f"employment_status {status} is for ages "
                                   f"{EMPLOYMENT_AGES[status][0]} and over; this person is {age}"))
    if facts.get("school_enrolled") and age < SCHOOL_AGE:
        found.append(rules.finding(("school_enrolled", *_BIRTH), f"school starts at {SCHOOL_AGE}; this child is {age}"))
    months = facts.get("nssf_contribution_months")
    if months and months > 12 * max(age - FIRST_WORKING_AGE, 0):
        found.append(rules.finding(("nssf_contribution_months", *_BIRTH), f"{months} months of contributions is more "
                                   f"than the months since this person turned {FIRST_WORKING_AGE}"))
    return [f for f in found if f is not None]


def unlikely(facts: dict[str, Any], today: date, changed: Iterable[str] | None = None) -> list[Finding]:
    """What is possible but unlikely of a person whose facts are possible (see `impossible`)."""
    rules = _Rules(facts, today, changed)
    age = rules.age
    found = []
    if facts.get("relationship") == Relationship.head and age < ADULT_HEAD_AGE:
        found.append(rules.finding(("relationship", *_BIRTH), f"the head of the household is {age}", "young-head"))
    if facts.get("pregnant") and not USUAL_PREGNANCY_AGES[0] <= age <= USUAL_PREGNANCY_AGES[1]:
        found.append(rules.finding(("pregnant", *_BIRTH), f"a pregnant woman of {age}", "pregnancy-age"))
    status = facts.get("employment_status")
    if status is not None and age < EMPLOYMENT_AGES.get(status, (0, 0))[1]:
        found.append(rules.finding(("employment_status", *_BIRTH), f"employment_status {status} at {age}", "employment-age"))
    if age >= VERY_OLD:
        found.append(rules.finding(_BIRTH, f"{age} years old", "very-old"))
    return [f for f in found if f is not None]


def relative_to_head(member: dict[str, Any], head: dict[str, Any], today: date, field: str) -> Finding | None:
    """A child of the head born less than PARENT_GAP years after the head, or a parent less than
    PARENT_GAP years before: a birth date or a relationship typed wrong, more likely than not."""
    relationship = member.get("relationship")
    if relationship not in (Relationship.child, Relationship.parent):
        return None
    member_age, head_age = (age_in_years(p.get("birth_date"), p["birth_year"], today) for p in (member, head))
    gap = head_age - member_age if relationship == Relationship.child else member_age - head_age
    if gap >= PARENT_GAP:
        return None
    return Finding(field, f"a {relationship} of the head who is {member_age} while the head is {head_age}", "parent-age-gap")


def large_household(size: int, field: str) -> Finding | None:
    return Finding(field, f"a household of {size} members", "large-household") if size > LARGE_HOUSEHOLD else None
