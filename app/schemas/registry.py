"""Locations, offices and users."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints, model_validator

from app.schemas.common import Code, InputModel, LocationCode, Name200, ReadModel, field_error
from app.vocabulary import OFFICE_ROLES, LocationLevel, Role

Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_.-]{2,63}$")]
Password = Annotated[SecretStr, Field(min_length=10, max_length=128)]


class LocationRead(ReadModel):
    code: str
    name: str
    name_km: str | None
    level: LocationLevel
    parent_code: str | None


class OfficeCreate(InputModel):
    code: Code
    name: Name200
    location_code: LocationCode


class OfficeRead(ReadModel):
    id: uuid.UUID
    code: str
    name: str
    location_code: str
    created_at: datetime


class UserCreate(InputModel):
    username: Username
    password: Password
    role: Role
    full_name: Name200 | None = None
    office_code: Code | None = None
    scheme_code: Code | None = None

    @model_validator(mode="after")
    def _binding(self) -> "UserCreate":
        error = role_binding_error(self.role, self.office_code, self.scheme_code)
        if error is not None:
            field, reason = error
            raise field_error(reason, field, value=getattr(self, field))
        return self


def role_binding_error(role: Role, office_code: str | None, scheme_code: str | None) -> tuple[str, str] | None:
    """Supervisors and clerks belong to one office, partners to one scheme, the others to neither:
    (field, reason) when the binding is wrong."""
    if role in OFFICE_ROLES and not office_code:
        return "office_code", f"a {role} must belong to an office (office_code)"
    if role not in OFFICE_ROLES and office_code:
        return "office_code", f"a {role} does not belong to an office"
    if role is Role.partner and not scheme_code:
        return "scheme_code", "a partner account is bound to one scheme (scheme_code)"
    if role is not Role.partner and scheme_code:
        return "scheme_code", f"a {role} is not bound to a scheme"
    return None


class UserUpdate(InputModel):
    is_active: bool | None = None
    password: Password | None = None
    full_name: Name200 | None = None


class UserRead(ReadModel):
    id: uuid.UUID
    version: int
    username: str
    full_name: str | None
    role: Role
    office_code: str | None
    scheme_code: str | None
    is_active: bool
    created_at: datetime


class TokenResponse(ReadModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeRead(ReadModel):
    id: uuid.UUID
    username: str
    full_name: str | None
    role: Role
    office_code: str | None
    scheme_code: str | None


class AuditRead(ReadModel):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_username: str | None
    actor_role: str | None
    office_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str | None
    request_id: str | None
    details: dict
