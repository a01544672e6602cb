"""Facts derived from a person's record: age, disability cut-off, age band. Never stored twice."""

from datetime import date

from app.vocabulary import DISABILITY_DOMAINS, SEVERE_DISABILITY_LEVELS, age_band


def age_in_months(birth_date: date | None, birth_year: int, on: date) -> int:
    """Whole months of age on a day. With only a birth year, the person is taken as born on 1 July
    (the middle of the year), the usual convention for approximate ages."""
    born = birth_date or date(birth_year, 7, 1)
    months = (on.year - born.year) * 12 + (on.month - born.month)
    if on.day < born.day:
        months -= 1
    return max(months, 0)


def age_in_years(birth_date: date | None, birth_year: int, on: date) -> int:
    return age_in_months(birth_date, birth_year, on) // 12


def disability_levels(person) -> dict[str, str]:
    return {domain: getattr(person, f"disability_{domain}") for domain in DISABILITY_DOMAINS}


def has_severe_disability(person) -> bool:
    return any(level in SEVERE_DISABILITY_LEVELS for level in disability_levels(person).values())


def person_age_band(person, on: date) -> str:
    return age_band(age_in_years(person.birth_date, person.birth_year, on))


def idpoor_valid(household, on: date) -> bool:
    return household.idpoor_level is not None and (household.idpoor_valid_until is None or household.idpoor_valid_until >= on)
