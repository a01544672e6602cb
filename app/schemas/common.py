import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.text import khmer

MAX_PAGE = 200

# ---- text that is stored, searched and printed ------------------------------------------------------

# Refused in every text of every body: control characters other than tab and line breaks (PostgreSQL
# cannot store U+0000 at all) and bidirectional controls (U+202E makes a printed receipt read backwards,
# so that a name can pass for another).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Dropped from names: they show nothing but split a name for search ("So\u200bk" is not found as "sok").
_INVISIBLE = str.maketrans("", "", "\u00ad\u200b\u200c\u200d\u2060\ufeff")


def unprintable(text: str) -> str | None:
    """Why the text cannot be stored and printed as it is, or None."""
    found = _UNPRINTABLE.search(text)
    if found is None:
        return None
    char = found.group()
    kind = "a control character" if unicodedata.category(char) == "Cc" else "a bidirectional control character"
    return f"must not contain {kind} (U+{ord(char):04X})"


def _khmer_or_latin_letter(char: str) -> bool:
    if char.isascii():
        return char.isalpha()
    return unicodedata.category(char)[0] == "L" and unicodedata.name(char, "").startswith(("KHMER ", "LATIN ", "FULLWIDTH LATIN "))


def clean_name(text: str) -> str:
    """The rules of every name of a person or a place, in one place (issue 15's Khmer normalisation
    extends it). A name is one line of visible characters (zero-width ones are dropped, runs of white
    space made one space), with no control or bidirectional characters, and with at least one Khmer
    or Latin letter: a name of punctuation alone ("!!!") could never be found by name. Raises
    ValueError saying what is wrong."""
    name = " ".join(text.translate(_INVISIBLE).split())
    problem = unprintable(name)
    if problem is not None:
        raise ValueError(problem)
    if not any(map(_khmer_or_latin_letter, name)):
        raise ValueError("a name needs at least one Khmer or Latin letter")
    # Khmer in one canonical character order (khmer.normalise): a name typed in another order is
    # stored, shown and compared as one.
    return khmer.normalise(name)


def clean_latin_name(text: str) -> str:
    """A name's Latin-script spelling: a name with no Khmer letter in it."""
    name = clean_name(text)
    if khmer.khmer_key(name):
        raise ValueError("the Latin-script name must not contain Khmer script (the Khmer name goes in given_name "
                         "and family_name)")
    return name


def clean_place_name(text: str) -> str:
    """A place's name follows a person's rules, but may be a number alone: villages are named so
    (៣៥, "35", is a village of Battambang in the national gazetteer)."""
    try:
        return clean_name(text)
    except ValueError:
        name = " ".join(text.translate(_INVISIBLE).split())
        if unprintable(name) is None and any(char.isdigit() for char in name):
            return name
        raise


# Every free-text input is bounded; these are the few shapes used across the API.
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(clean_name)]
LatinName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                     AfterValidator(clean_latin_name)]
Name200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(clean_name)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.-]+$")]
LocationCode = Annotated[str, StringConstraints(pattern=r"^(\d{2}|\d{4}|\d{6}|\d{8})$")]
VillageCode = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]

# ---- dates and instants, in bodies and query strings --------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    # Pydantic alone would read 0, "0" or "86400" as seconds since 1970, and take a date-time for a date.
    if (isinstance(value, date) and not isinstance(value, datetime)) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date written YYYY-MM-DD (ISO 8601), e.g. 2026-01-31")


def _not_a_number(value: Any) -> Any:
    # Pydantic would read 0 or "1700000000" as seconds since 1970; the contract says an ISO 8601 date-time.
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9.]+\s*", value)):
        raise ValueError("an ISO 8601 date-time with its offset, e.g. 2026-01-31T08:00:00+07:00")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59-12:00 is past the last representable instant
        raise ValueError("the instant is out of range") from None


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]


def field_error(message: str, *loc: str | int, value: Any = None) -> ValidationError:
    """A validation error at one field, raised from a model validator so that the problem's `errors`
    point at that field (a plain ValueError would point at the whole object)."""
    return fields_error([(message, loc, value)])


def fields_error(errors: list[tuple[str, tuple[str | int, ...], Any]]) -> ValidationError:
    """Validation errors at several fields: (message, location, value) each."""
    return ValidationError.from_exception_data("validation", [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
        for message, loc, value in errors
    ])


class InputModel(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not silently lost."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _printable_text(self):
        # Refused here, on both databases, rather than failing in one of them or misleading a reader.
        for name, value in self:
            if value is None or isinstance(value, int | float | BaseModel):
                continue  # the common case, checked without walking (nested models check their own)
            for loc, text in _strings(value, (name,)):
                problem = unprintable(text)
                if problem is not None:
                    raise field_error(problem, *loc, value=text)
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
