"""DCI partner clients (the admin API) and lookups in external registries (the clerk's API)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from app.dci.query import ID_TYPES
from app.dci.records import FIELDS
from app.schemas.common import Code, InputModel, ReadModel, Text200
from app.schemas.households import NationalId

ClientId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$")]
Url = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^https?://[^\s]+$", max_length=500)]
QueryType = Literal["idtype-value", "predicate", "expression"]
Field_ = Literal[FIELDS]  # type: ignore[valid-type]


class Jwks(BaseModel):
    """The partner's public signing keys (a JWK Set): each with kid, kty and alg ES256 or RS256."""

    keys: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=10)]

    @field_validator("keys")
    @classmethod
    def _usable(cls, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for key in keys:
            if not isinstance(key.get("kid"), str) or key.get("kty") not in ("EC", "RSA") \
                    or key.get("alg", "ES256" if key.get("kty") == "EC" else "RS256") not in ("ES256", "RS256"):
                raise ValueError("each key needs a kid, kty EC or RSA, and alg ES256 or RS256")
            if "d" in key:
                raise ValueError("send public keys only (this key has its private part 'd')")
        if len({k["kid"] for k in keys}) != len(keys):
            raise ValueError("two keys have the same kid")
        return keys


class DciClientCreate(InputModel):
    client_id: ClientId = Field(description="Also the sender_id the partner puts in every message header.")
    name: Text200
    query_types: Annotated[list[QueryType], Field(min_length=1, max_length=3)]
    fields: Annotated[list[Field_], Field(min_length=1, max_length=len(FIELDS))]
    offices: Annotated[list[Code], Field(min_length=1, max_length=100)]
    callback_url: Url | None = Field(default=None, description="The base of the partner's DCI endpoints: callbacks go "
                                     "to <callback_url>/registry/on-search, /registry/notify...")
    jwks: Jwks | None = None
    signature_required: bool = True


class DciClientUpdate(InputModel):
    name: Text200 | None = None
    query_types: Annotated[list[QueryType], Field(min_length=1, max_length=3)] | None = None
    fields: Annotated[list[Field_], Field(min_length=1, max_length=len(FIELDS))] | None = None
    offices: Annotated[list[Code], Field(min_length=1, max_length=100)] | None = None
    callback_url: Url | None = None
    jwks: Jwks | None = None
    signature_required: bool | None = None
    is_active: bool | None = None
    new_secret: bool = Field(default=False, description="Issue a new client secret (the old one and its tokens stop).")


class DciClientRead(ReadModel):
    id: uuid.UUID
    client_id: str
    name: str
    query_types: list[str]
    fields: list[str]
    offices: list[str]
    callback_url: str | None
    jwks: dict[str, Any] | None
    signature_required: bool
    is_active: bool
    created_at: datetime
    client_secret: str | None = Field(default=None, description="Shown once, when created or renewed.")


class RegistryLookupCreate(InputModel):
    national_id: NationalId
    registry: Code | None = Field(default=None, description="A configured registry; default GUICHET_DCI_LOOKUP_REGISTRY.")


class LookupCandidate(BaseModel):
    """What the registry knows, offered to the clerk: nothing is written until the clerk confirms it by
    registering or changing the person with these values."""

    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    sex: Literal["female", "male", "other"] | None = None
    idpoor_level: int | None = None


class RegistryLookupRead(ReadModel):
    id: uuid.UUID
    registry: str
    national_id: str
    status: Literal["pending", "found", "not_found", "unavailable", "rejected"]
    candidate: LookupCandidate | None
    message: str | None
    created_at: datetime
    answered_at: datetime | None


ID_TYPE_NAMES = tuple(sorted(ID_TYPES))
