"""The registration contract: households, their members and consent."""

import math
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainValidator, StringConstraints, WithJsonSchema, field_validator, model_validator

from app import clock
from app.schemas.common import (
    Code,
    InputModel,
    IsoDate,
    LatinName,
    Name,
    Name200,
    ReadModel,
    Text500,
    VillageCode,
    field_error,
    fields_error,
)
from app.services.plausibility import EARLIEST_BIRTH_YEAR, impossible
from app.vocabulary import (
    AreaType,
    ConsentMethod,
    ConsentPurpose,
    DisabilityLevel,
    EmploymentStatus,
    Relationship,
    Sex,
)

NationalId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9-]{4,30}$")]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 -]{5,18}$")]
AttributeKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
MAX_ATTRIBUTE_TEXT = 200
# The largest whole number every client holds exactly (a browser's numbers are doubles); beyond it a
# value would come back changed, and beyond 64 bits PostgreSQL's bulk path could not even write it.
# A number written as a fraction is held to the same bound: past 2**53 a double holds whole numbers only,
# and not every one of them (1e30 is 1000000000000000019884624838656 to the database).
MAX_ATTRIBUTE_NUMBER = 2**53 - 1


def _attribute_value(value: Any) -> bool | int | float | str | None:
    # One check rather than a union of types, whose errors would name each member of the union
    # ("#/attributes/x/bool", "#/attributes/x/int"...) instead of the attribute.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value) and abs(value) <= MAX_ATTRIBUTE_NUMBER:
        return value
    if isinstance(value, str) and len(value) <= MAX_ATTRIBUTE_TEXT:
        return value
    raise ValueError(f"an attribute is a number at most {MAX_ATTRIBUTE_NUMBER:,} either side of zero, true or false, "
                     f"null, or text of at most {MAX_ATTRIBUTE_TEXT} characters")


AttributeValue = Annotated[Any, PlainValidator(_attribute_value), WithJsonSchema({"anyOf": [
    {"type": "boolean"}, {"type": "integer", "minimum": -MAX_ATTRIBUTE_NUMBER, "maximum": MAX_ATTRIBUTE_NUMBER},
    {"type": "number", "not": {"type": "integer"}, "minimum": -MAX_ATTRIBUTE_NUMBER, "maximum": MAX_ATTRIBUTE_NUMBER},
    {"type": "string", "maxLength": MAX_ATTRIBUTE_TEXT}, {"type": "null"}]})]
MAX_MEMBERS = 40
NAME = ("The name as registered: in Khmer script, or in Latin script when that is the only one known. "
        "Khmer is stored in one canonical character order.")
LATIN_NAME = "The Latin-script spelling the person uses (ID card, passport), when the name above is in Khmer."
CONFIRM_UNLIKELY = "Register or change even though some facts are unlikely (after checking them with the client)."


class Disability(InputModel):
    """Washington Group short set: one answer per domain."""

    seeing: DisabilityLevel = DisabilityLevel.none
    hearing: DisabilityLevel = DisabilityLevel.none
    walking: DisabilityLevel = DisabilityLevel.none
    remembering: DisabilityLevel = DisabilityLevel.none
    self_care: DisabilityLevel = DisabilityLevel.none
    communicating: DisabilityLevel = DisabilityLevel.none


def _not_a_boolean(value: Any) -> Any:
    # Pydantic would read JSON true as the level 1 (True == 1); the contract says 1, 2 or null.
    if isinstance(value, bool):
        raise ValueError("1, 2 or null, not true or false")
    return value


class IdPoor(InputModel):
    level: Annotated[Literal[1, 2] | None, BeforeValidator(_not_a_boolean)] = None
    card_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] | None = None
    valid_until: IsoDate | None = None

    @model_validator(mode="after")
    def _card_goes_with_level(self) -> "IdPoor":
        if self.level is None and (self.card_number or self.valid_until):
            raise field_error("an equity card number or validity needs an IDPoor level", "level")
        return self


class ConsentIn(InputModel):
    purposes: Annotated[list[ConsentPurpose], Field(min_length=1, max_length=10)]
    given_by: Name200
    method: ConsentMethod
    note: Text500 | None = None

    @field_validator("purposes")
    @classmethod
    def _unique(cls, purposes: list[ConsentPurpose]) -> list[ConsentPurpose]:
        return list(dict.fromkeys(purposes))


class PersonFacts(InputModel):
    """The facts of a person that every scheme may ask about. Shared by registration and updates."""

    given_name: Name = Field(description=NAME)
    family_name: Name = Field(description=NAME)
    given_name_latin: LatinName | None = Field(default=None, description=LATIN_NAME)
    family_name_latin: LatinName | None = Field(default=None, description=LATIN_NAME)
    sex: Sex
    birth_date: IsoDate | None = None
    birth_year: int | None = Field(strict=True, default=None, ge=EARLIEST_BIRTH_YEAR, le=2200)
    birth_date_approximate: bool = Field(default=False, strict=True)
    national_id: NationalId | None = None
    phone: Phone | None = None
    relationship: Relationship
    disability: Disability = Field(default_factory=Disability)
    pregnant: bool = Field(default=False, strict=True)
    expected_delivery_date: IsoDate | None = None
    employment_status: EmploymentStatus | None = None
    monthly_income: int | None = Field(strict=True, default=None, ge=0, le=1_000_000_000, description="KHR per month")
    school_enrolled: bool | None = Field(default=None, strict=True)
    school_attendance_percent: int | None = Field(strict=True, default=None, ge=0, le=100)
    nssf_member: bool | None = Field(default=None, strict=True)
    nssf_contribution_months: int | None = Field(strict=True, default=None, ge=0, le=900)
    attributes: Annotated[dict[AttributeKey, AttributeValue], Field(max_length=50)] = Field(default_factory=dict)


class MemberCreate(PersonFacts):
    @model_validator(mode="after")
    def _possible(self) -> "MemberCreate":
        found = impossible(self.model_dump(), clock.today())
        if found:
            raise fields_error([(f.detail, (f.field,), getattr(self, f.field)) for f in found])
        if self.birth_year is None:
            self.birth_year = self.birth_date.year
        if self.birth_date is None:
            self.birth_date_approximate = True  # only the year is known, whatever the flag said
        return self


class MemberAdd(MemberCreate):
    confirm_new: bool = Field(strict=True, default=False, description="Register even though likely duplicates exist.")
    confirm_unlikely: bool = Field(strict=True, default=False, description=CONFIRM_UNLIKELY)


class HouseholdCreate(InputModel):
    village_code: VillageCode
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    area_type: AreaType
    idpoor: IdPoor | None = None
    consent: ConsentIn
    members: Annotated[list[MemberCreate], Field(min_length=1, max_length=MAX_MEMBERS)]
    office_code: Code | None = Field(default=None, description="Only for admins; staff register for their own office.")
    confirm_new: bool = Field(strict=True, default=False, description="Register even though likely duplicates exist.")
    confirm_unlikely: bool = Field(strict=True, default=False, description=CONFIRM_UNLIKELY)

    @model_validator(mode="after")
    def _household_rules(self) -> "HouseholdCreate":
        heads = [i for i, m in enumerate(self.members) if m.relationship is Relationship.head]
        if not heads:
            raise field_error("a household has exactly one head; none given", "members", value=len(self.members))
        if len(heads) > 1:
            raise field_error(f"a household has exactly one head; {len(heads)} given", "members", heads[1],
                              "relationship", value="head")
        seen: set[str] = set()
        for i, member in enumerate(self.members):
            if member.national_id and member.national_id in seen:
                raise field_error("two members have the same national_id", "members", i, "national_id",
                                  value=member.national_id)
            seen.add(member.national_id)
        if ConsentPurpose.registry not in self.consent.purposes:
            raise field_error("consent for the 'registry' purpose is required to register a household",
                              "consent", "purposes", value=[str(p) for p in self.consent.purposes])
        return self


class HouseholdUpdate(InputModel):
    village_code: VillageCode | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    area_type: AreaType | None = None
    idpoor: IdPoor | None = None
    head_id: uuid.UUID | None = Field(default=None, description="Make this member the head.")
    former_head_relationship: Relationship | None = Field(
        default=None, description="The former head's relationship to the new head (default other_relative)."
    )
    confirm_unlikely: bool = Field(strict=True, default=False, description=CONFIRM_UNLIKELY)


class PersonUpdate(InputModel):
    """Fields present are changed; null clears an optional field."""

    given_name: Name | None = None
    family_name: Name | None = None
    given_name_latin: LatinName | None = Field(default=None, description=LATIN_NAME)
    family_name_latin: LatinName | None = Field(default=None, description=LATIN_NAME)
    sex: Sex | None = None
    birth_date: IsoDate | None = None
    birth_year: int | None = Field(strict=True, default=None, ge=EARLIEST_BIRTH_YEAR, le=2200)
    birth_date_approximate: bool | None = Field(default=None, strict=True)
    national_id: NationalId | None = None
    phone: Phone | None = None
    relationship: Relationship | None = None
    disability: Disability | None = None
    pregnant: bool | None = Field(default=None, strict=True)
    expected_delivery_date: IsoDate | None = None
    employment_status: EmploymentStatus | None = None
    monthly_income: int | None = Field(strict=True, default=None, ge=0, le=1_000_000_000)
    school_enrolled: bool | None = Field(default=None, strict=True)
    school_attendance_percent: int | None = Field(strict=True, default=None, ge=0, le=100)
    nssf_member: bool | None = Field(default=None, strict=True)
    nssf_contribution_months: int | None = Field(strict=True, default=None, ge=0, le=900)
    attributes: Annotated[dict[AttributeKey, AttributeValue], Field(max_length=50)] | None = None
    confirm_unlikely: bool = Field(strict=True, default=False, description=CONFIRM_UNLIKELY)


class MatchQuery(InputModel):
    given_name: Name = Field(description=NAME)
    family_name: Name = Field(description=NAME)
    given_name_latin: LatinName | None = Field(default=None, description=LATIN_NAME)
    family_name_latin: LatinName | None = Field(default=None, description=LATIN_NAME)
    sex: Sex | None = None
    birth_date: IsoDate | None = None
    birth_year: int | None = Field(strict=True, default=None, ge=EARLIEST_BIRTH_YEAR, le=2200)
    village_code: VillageCode
    national_id: NationalId | None = None


# ---- responses -------------------------------------------------------------------------------


class DisabilityRead(ReadModel):
    seeing: DisabilityLevel
    hearing: DisabilityLevel
    walking: DisabilityLevel
    remembering: DisabilityLevel
    self_care: DisabilityLevel
    communicating: DisabilityLevel


class PersonRead(ReadModel):
    id: uuid.UUID
    household_id: uuid.UUID
    version: int
    given_name: str
    family_name: str
    given_name_latin: str | None
    family_name_latin: str | None
    sex: Sex
    birth_date: date | None
    birth_year: int
    birth_date_approximate: bool
    age_years: int = Field(description="Age today (from the birth year when the date is unknown).")
    national_id: str | None
    phone: str | None
    relationship: Relationship
    disability: DisabilityRead
    severe_disability: bool = Field(description="Washington Group cut-off: a lot of difficulty or cannot, in any domain.")
    pregnant: bool
    expected_delivery_date: date | None
    employment_status: EmploymentStatus | None
    monthly_income: int | None
    school_enrolled: bool | None
    school_attendance_percent: int | None
    nssf_member: bool | None
    nssf_contribution_months: int | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class IdPoorRead(ReadModel):
    level: int | None
    card_number: str | None
    valid_until: date | None
    valid: bool = Field(description="A level is recorded and the card has not expired.")


class ConsentRead(ReadModel):
    id: uuid.UUID
    purposes: list[ConsentPurpose]
    given_by: str
    method: ConsentMethod
    note: str | None
    recorded_at: datetime
    recorded_by: uuid.UUID | None


class LocationPath(ReadModel):
    village: str | None
    commune: str | None
    district: str | None
    province: str | None
    village_km: str | None = Field(default=None, description="The same places' names in Khmer.")
    commune_km: str | None = None
    district_km: str | None = None
    province_km: str | None = None


class HouseholdRead(ReadModel):
    id: uuid.UUID
    version: int
    office_code: str
    village_code: str
    location: LocationPath
    address: str | None
    area_type: AreaType
    idpoor: IdPoorRead
    consent: ConsentRead | None
    head_id: uuid.UUID | None
    size: int
    female_headed: bool
    members: list[PersonRead]
    created_at: datetime
    updated_at: datetime


class HouseholdSummary(ReadModel):
    """A search hit: enough for the clerk to pick the right household."""

    id: uuid.UUID
    version: int
    office_code: str
    village_code: str
    village_name: str | None = Field(description="The village's name in Latin script, for lists (codes mean nothing to a client).")
    village_name_km: str | None = Field(description="The village's name in Khmer.")
    address: str | None
    idpoor_level: int | None
    head_name: str | None
    head_name_latin: str | None = Field(description="The head's name in Latin script, when registered.")
    head_national_id: str | None
    size: int
    female_headed: bool
    created_at: datetime


class PersonSummary(ReadModel):
    id: uuid.UUID
    household_id: uuid.UUID
    given_name: str
    family_name: str
    given_name_latin: str | None
    family_name_latin: str | None
    sex: Sex
    birth_date: date | None
    birth_year: int
    birth_date_approximate: bool
    national_id: str | None
    relationship: Relationship
    village_code: str


class MatchCandidate(ReadModel):
    person_id: uuid.UUID
    household_id: uuid.UUID
    score: float = Field(ge=0, le=1)
    matched_fields: list[str]
    given_name: str
    family_name: str
    given_name_latin: str | None
    family_name_latin: str | None
    sex: Sex
    birth_date: date | None
    birth_year: int
    village_code: str
    national_id: str | None


class MatchResult(ReadModel):
    items: list[MatchCandidate]
