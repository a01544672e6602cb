"""Registry records as DCI shapes: a household is a Social Registry `Group`, a person a `Member`.

The one place that maps Guichet's fields to the standard's, chooses the language of names and labels
by the request's locale (ISO 639-3: khm, eng, fra; anything else answers in English), and drops every
field outside the partner's field scope. Names: a person's registered name (Khmer script, or Latin when
that is all the registry has) in Khmer, their Latin-script pair `given_name_latin`/`family_name_latin`
in other locales when the registry keeps it (else the registered name); places from the gazetteer's
`name_km`."""

from datetime import datetime
from typing import Any

from app.vocabulary import DISABILITY_DOMAINS, SEVERE_DISABILITY_LEVELS

LOCALES = ("eng", "khm", "fra")
DEFAULT_LOCALE = "eng"

# Every field a partner's scope may name (docs/dci.md): Group fields, then Member fields.
GROUP_FIELDS = ("group_identifier", "place", "poverty_score", "group_size", "group_head_info", "member_list",
                "registration_date")
MEMBER_FIELDS = ("member_identifier", "name", "sex", "birth_date", "phone_number", "is_disabled", "employment_status",
                 "relationship_head", "registration_date")
FIELDS = tuple(dict.fromkeys(GROUP_FIELDS + MEMBER_FIELDS))

LABELS = {
    "group_type": {"eng": "Household", "khm": "គ្រួសារ", "fra": "Ménage"},
    "poverty_score_type": {"eng": "IDPoor level (1: very poor, 2: poor, 0: not IDPoor)",
                           "khm": "កម្រិតក្រីក្រ IDPoor (១៖ ក្រីក្រខ្លាំង ២៖ ក្រីក្រ ០៖ មិនមែន IDPoor)",
                           "fra": "Niveau IDPoor (1 : très pauvre, 2 : pauvre, 0 : hors IDPoor)"},
}


def locale_of(requested: str | None) -> str:
    return requested if requested in LOCALES else DEFAULT_LOCALE


def _label(name: str, locale: str) -> str:
    return LABELS[name][locale]


def _instant(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def _name(person: Any, locale: str) -> dict[str, str]:
    given, family = person.given_name, person.family_name
    if locale != "khm" and (getattr(person, "given_name_latin", None) or getattr(person, "family_name_latin", None)):
        given, family = person.given_name_latin or given, person.family_name_latin or family
    return {"@type": "Name", "given_name": given, "surname": family}


def place_name(village_code: str, names: dict[str, tuple[str, str | None]], locale: str) -> str:
    """Village, commune, district, province, in the locale's script where the gazetteer has it."""
    parts = []
    for length in (8, 6, 4, 2):
        latin, khmer = names.get(village_code[:length], (village_code[:length], None))
        parts.append(khmer if locale == "khm" and khmer else latin)
    return ", ".join(parts)


def member(person: Any, fields: frozenset[str], locale: str) -> dict[str, Any]:
    identifiers = [{"@type": "Identifier", "identifier_type": "MEMBER_ID", "identifier_value": str(person.id)}]
    national = ([{"@type": "Identifier", "identifier_type": "NID", "identifier_value": person.national_id}]
                if person.national_id else [])
    severe = any(getattr(person, f"disability_{d}") in SEVERE_DISABILITY_LEVELS for d in DISABILITY_DOMAINS)
    demographic: dict[str, Any] = {"@type": "SRPerson"}
    if "member_identifier" in fields:
        demographic["identifier"] = national
    if "name" in fields:
        demographic["name"] = _name(person, locale)
    if "sex" in fields:
        demographic["sex"] = person.sex
    if "birth_date" in fields:
        demographic["birth_date"] = person.birth_date.isoformat() if person.birth_date else f"{person.birth_year}"
    if "phone_number" in fields and person.phone:
        demographic["phone_number"] = [person.phone]
    record: dict[str, Any] = {"@type": "Member"}
    if "member_identifier" in fields:
        record["member_identifier"] = identifiers + national
    record["demographic_info"] = demographic
    if "relationship_head" in fields:
        record["relationship_head"] = person.relationship
    if "is_disabled" in fields:
        record["is_disabled"] = severe
        record["disability_info"] = {d: getattr(person, f"disability_{d}") for d in DISABILITY_DOMAINS}
    if "employment_status" in fields and person.employment_status:
        record["employment_status"] = person.employment_status
    if "registration_date" in fields:
        record["registration_date"] = _instant(person.created_at)
    return record


def group(household: Any, members: list[Any], places: dict[str, tuple[str, str | None]], fields: frozenset[str],
          locale: str) -> dict[str, Any]:
    record: dict[str, Any] = {"@type": "Group"}
    if "group_identifier" in fields:
        record["group_identifier"] = [{"@type": "Identifier", "identifier_type": "HOUSEHOLD_ID",
                                       "identifier_value": str(household.id)}]
        if household.idpoor_card_number:
            record["group_identifier"].append({"@type": "Identifier", "identifier_type": "IDPOOR_CARD",
                                               "identifier_value": household.idpoor_card_number})
    record["group_type"] = _label("group_type", locale)
    if "place" in fields:
        record["place"] = {"@type": "Place", "geocode": household.village_code, "area_type": household.area_type,
                           "address": place_name(household.village_code, places, locale)}
    if "poverty_score" in fields:
        record["poverty_score"] = household.idpoor_level or 0
        record["poverty_score_type"] = _label("poverty_score_type", locale)
    head = next((m for m in members if m.relationship == "head"), None)
    if "group_head_info" in fields and head is not None:
        record["group_head_info"] = member(head, fields, locale)
    if "group_size" in fields:
        record["group_size"] = len(members)
    if "member_list" in fields:
        record["member_list"] = [member(m, fields, locale) for m in members]
    if "registration_date" in fields:
        record["registration_date"] = _instant(household.created_at)
    return record


def place_codes(village_codes: set[str]) -> set[str]:
    """The gazetteer codes whose names a page of households needs."""
    return {code[:length] for code in village_codes for length in (8, 6, 4, 2)}


# ---- the other way: what an external registry's record says about a person ----------------------------

SEX_CODES = {"male": "male", "female": "female", "other": "other", "m": "male", "f": "female", "1": "male", "2": "female"}


def _person_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Name, sex and birth date of a Member (SR), a Beneficiary's member (IBR) or a Person (CRVS)."""
    person = record.get("demographic_info") or record.get("person") or record
    person = person.get("person", person) if isinstance(person, dict) else {}
    name = person.get("name") if isinstance(person.get("name"), dict) else {}
    sex = SEX_CODES.get(str(person.get("sex") or "").lower())
    birth = person.get("birth_date") or person.get("birthdate")
    return {"given_name": name.get("given_name") or name.get("first_name"), "family_name": name.get("surname"),
            "sex": sex, "birth_date": str(birth)[:10] if isinstance(birth, str) and len(birth) >= 10 else None}


def _identifiers(record: dict[str, Any]) -> set[str]:
    found = set()
    demographic = record.get("demographic_info") if isinstance(record.get("demographic_info"), dict) else {}
    for key in ("member_identifier", "identifier"):
        for source in (record, demographic):
            for identifier in source.get(key) or [] if isinstance(source.get(key), list) else []:
                if isinstance(identifier, dict) and identifier.get("identifier_value") is not None:
                    found.add(str(identifier["identifier_value"]))
    return found


def candidate(found: list[dict[str, Any]], national_id: str) -> dict[str, Any] | None:
    """The person with this national ID in a registry's answer (a Group with its members, or persons),
    with the household's IDPoor level when the answer is a Group: the fields offered to the clerk."""
    for record in found:
        members = [record.get("group_head_info")] + list(record.get("member_list") or []) if "member_list" in record or \
            "group_head_info" in record else [record.get("member", record)]
        for person in (m for m in members if isinstance(m, dict)):
            if national_id in _identifiers(person) or len(found) == 1 and len(members) == 1:
                fields = _person_fields(person)
                score = record.get("poverty_score")
                fields["idpoor_level"] = int(score) if isinstance(score, int | float) and score in (0, 1, 2) else None
                return fields
    return None
