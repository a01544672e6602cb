from collections.abc import Iterator
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_PAGE = 200

# Every free-text input is bounded; these are the few shapes used across the API.
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.-]+$")]
LocationCode = Annotated[str, StringConstraints(pattern=r"^(\d{2}|\d{4}|\d{6}|\d{8})$")]
VillageCode = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]


def field_error(message: str, *loc: str | int, value: Any = None) -> ValidationError:
    """A validation error at one field, raised from a model validator so that the problem's `errors`
    point at that field (a plain ValueError would point at the whole object)."""
    return ValidationError.from_exception_data(
        "validation", [InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)]
    )


class InputModel(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not silently lost."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul_characters(self):
        # PostgreSQL cannot store U+0000 in text; refused here, on both databases, rather than failing there.
        for name, value in self:
            if value is None or isinstance(value, int | float | BaseModel):
                continue  # the common case, checked without walking (nested models check their own)
            for loc, text in _strings(value, (name,)):
                if "\x00" in text:
                    raise field_error("must not contain the NUL character (U+0000)", *loc, value=text)
        return self


def _strings(value: Any, loc: tuple) -> Iterator[tuple[tuple, str]]:
    """The plain strings in a field's value (nested models check their own)."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, (*loc, key))
            yield from _strings(item, (*loc, key))


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# A name fragment can match a good share of a national-scale registry ("so"); searches count that
# far and no further, so that a broad search costs what a narrow one does.
SEARCH_COUNT_LIMIT = 1000


class SearchPage(Page[T], Generic[T]):
    total_exact: bool = Field(
        default=True,
        description=f"False when more than {SEARCH_COUNT_LIMIT} records matched: `total` is then a lower bound. "
        "Narrow the search (more of the name, a location) to see every match.",
    )


class FieldError(BaseModel):
    pointer: str = Field(description="JSON pointer to the field, e.g. #/members/0/sex")
    detail: str
    code: str | None = None
    in_: str | None = Field(default=None, alias="in")


class Problem(BaseModel):
    """RFC 9457 problem details. `type` is stable; match on it, not on `title` or `detail`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


# Declared on every router; the OpenAPI builder gives each of them the problem+json Problem schema.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request or malformed JSON"},
    401: {"description": "Missing, invalid or expired token"},
    403: {"description": "The caller's role may not do this"},
    404: {"description": "Not found (or another office's record)"},
    408: {"description": "The body did not arrive within the read timeout"},
    413: {"description": "Body over 1 MiB"},
    415: {"description": "A body that is not JSON where JSON is expected"},
    422: {"description": "Invalid fields; see errors"},
    500: {"description": "Internal error; nothing was changed"},
    503: {"description": "Database unavailable; retry later"},
}
