"""Locations, offices and users."""

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, SecretStr, StringConstraints, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from app.schemas.common import Code, InputModel, LocationCode, Name200, ReadModel, field_error
from app.vocabulary import OFFICE_ROLES, LocationLevel, Role

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,63}$"
PASSWORD_LENGTH = (10, 128)


# Said in words, not as the pattern or pydantic's "items after validation": an operator reads these at
# the CLI and a clerk in the console.
def _username(value: str) -> str:
    if not re.match(USERNAME_PATTERN, value):
        raise PydanticCustomError("username", "a username is 3 to 64 characters: lower-case letters a-z, digits, "
                                              "'.', '_' or '-', beginning with a letter or a digit")
    return value


def _password(value: SecretStr) -> SecretStr:
    shortest, longest = PASSWORD_LENGTH
    if not shortest <= len(value.get_secret_value()) <= longest:
        raise PydanticCustomError("password", f"a password is {shortest} to {longest} characters long")
    return value


Username = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_username),
                     WithJsonSchema({"type": "string", "pattern": USERNAME_PATTERN})]
Password = Annotated[SecretStr, AfterValidator(_password),
                     WithJsonSchema({"type": "string", "format": "password", "writeOnly": True,
                                     "minLength": PASSWORD_LENGTH[0], "maxLength": PASSWORD_LENGTH[1]})]


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


class PasswordChange(InputModel):
    current_password: Password
    new_password: Password

    @model_validator(mode="after")
    def _a_new_one(self) -> "PasswordChange":
        if self.new_password.get_secret_value() == self.current_password.get_secret_value():
            raise field_error("the new password must differ from the current one", "new_password")
        return self


class TokenResponse(ReadModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    # People's sign-ins only, and only in the body when the client did not ask for the cookie (docs/sessions.md).
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


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
