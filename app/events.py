"""Activity events: what an office tells central, versioned, with pseudonymised dimensions only.

The same models validate what an office emits and what central ingests, so a field that is not
declared here (a name, a national ID, a birth date, free text) cannot travel. Later features add
their event types to EVENT_TYPES."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.vocabulary import AGE_BANDS, AreaType, ConsentPurpose, Sex

Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
AgeBand = Annotated[str, StringConstraints(pattern="^(" + "|".join(a.replace("+", r"\+") for a in AGE_BANDS) + ")$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dimensions(Strict):
    """Breakdowns for the ministry's indicators; none of them identifies a person."""

    province: Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
    district: Annotated[str, StringConstraints(pattern=r"^\d{4}$")] | None = None
    commune: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    village: Annotated[str, StringConstraints(pattern=r"^\d{8}$")] | None = None
    area_type: AreaType | None = None
    sex: Sex | None = None
    age_band: AgeBand | None = None
    disability: bool | None = None
    idpoor_level: int | None = Field(default=None, ge=1, le=2)
    female_headed: bool | None = None


class EventPayload(Strict):
    household: Pseudonym | None = None
    person: Pseudonym | None = None
    dimensions: Dimensions


class HouseholdRegistered(EventPayload):
    size: int = Field(ge=1, le=100)


class HouseholdUpdated(EventPayload):
    fields: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]] = Field(max_length=40)


class PersonRegistered(EventPayload):
    pass


class PersonUpdated(EventPayload):
    fields: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]] = Field(max_length=40)


class ConsentChanged(EventPayload):
    purposes: list[ConsentPurpose] = Field(max_length=10)


# (type, schema_version) -> payload model
EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    ("household.registered", 1): HouseholdRegistered,
    ("household.updated", 1): HouseholdUpdated,
    ("person.registered", 1): PersonRegistered,
    ("person.updated", 1): PersonUpdated,
    ("consent.changed", 1): ConsentChanged,
}


class ActivityEventEnvelope(Strict):
    """One event as it travels from an office to central."""

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
    type: Annotated[str, StringConstraints(max_length=60)]
    schema_version: int = Field(ge=1, le=100)
    occurred_at: datetime
    office_code: Annotated[str, StringConstraints(max_length=20)]
    payload: dict
