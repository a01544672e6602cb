"""Languages: Khmer, English and French, chosen per request by Accept-Language (docs/i18n.md).

The code and the database speak English; text is put into the reader's language when the answer is
rendered (problem+json, response serialisation, printables), from the gettext catalogues in
app/locale (Babel). So a service raises with English text, as it always did:
- a constant detail (`NotFound("No such case.")`) is looked up in the catalogue as it is;
- a detail built with an f-string is found by its pattern: `scripts/i18n.py extract` records the f-string
  as a template (`There is no scheme {code}.`), and `translate` matches the English text against it to
  carry the values into the translation;
- a sentence that is not an error (a receipt's next steps) is marked `_("... {days} days", days=n)`: a
  `Message` is a str (the English text, so logs, audit rows and stored records stay English) that
  remembers its template and values.
Machine-readable fields (`type`, `code`, `rule`, value sets) never go through here."""

import re
from contextvars import ContextVar
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from babel.support import NullTranslations, Translations
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

LANGUAGES = ("km", "en", "fr")  # what the catalogues and the scheme files hold; the first is the country's
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "guichet"

_default_language = "km"
language_var: ContextVar[str | None] = ContextVar("language", default=None)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def set_default_language(language: str) -> None:
    global _default_language
    _default_language = language


def default_language() -> str:
    return _default_language


def current_language() -> str:
    """The request's language (set by the middleware from Accept-Language), else the instance's default."""
    return language_var.get() or _default_language


# ---- negotiation (RFC 9110 section 12.5.4) ------------------------------------------------------------------


def negotiate(accept_language: str | None, default: str | None = None) -> str:
    """The language of the answer: the supported one the client ranks highest (quality values honoured,
    `fr-CA` taken as `fr`, `*` as the default, `q=0` as "not this one"); the default when none fits."""
    default = default or _default_language
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for position, item in enumerate(accept_language.split(",")[:32]):  # a header of hundreds of ranges is abuse
        tag, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0 <= quality <= 1:
                    quality = 0.0
        primary = tag.split("-")[0].lower()
        if primary == "*":
            primary = default
        elif primary == "khm":  # ISO 639-3, as DCI messages write it
            primary = "km"
        if primary not in LANGUAGES:
            continue
        if quality == 0:
            refused.add(primary)
            continue
        ranked.append((-quality, position, primary))
    for _, _, language in sorted(ranked):
        if language not in refused:
            return language
    return default


# ---- catalogues ---------------------------------------------------------------------------------------------


@cache
def translations(language: str) -> NullTranslations:
    if language == "en":
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], DOMAIN)


@cache
def _patterns(language: str) -> list[tuple[re.Pattern, str, str]]:
    """The catalogue's templates with placeholders, as patterns matching their English text: (pattern,
    English template, translated template)."""
    catalog = getattr(translations(language), "_catalog", {})
    patterns = []
    for msgid, msgstr in catalog.items():
        if not isinstance(msgid, str) or not msgid or "{" not in msgid or not msgstr:
            continue
        names = _PLACEHOLDER.findall(msgid)
        if not names:
            continue
        regex, position = [], 0
        for match in _PLACEHOLDER.finditer(msgid):
            regex.append(re.escape(msgid[position:match.start()]))
            regex.append("(.+?)")
            position = match.end()
        regex.append(re.escape(msgid[position:]))
        patterns.append((re.compile("".join(regex), re.DOTALL), msgid, msgstr))
    # The most specific first: the template with the most literal text wins when two match.
    patterns.sort(key=lambda p: -len(_PLACEHOLDER.sub("", p[1])))
    return patterns


# ---- dates ---------------------------------------------------------------------------------------------------

KHMER_DIGITS = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")
KHMER_MONTHS = ("មករា", "កុម្ភៈ", "មីនា", "មេសា", "ឧសភា", "មិថុនា", "កក្កដា", "សីហា", "កញ្ញា", "តុលា", "វិច្ឆិកា", "ធ្នូ")
ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December")
FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre")


def khmer_digits(text: str) -> str:
    return text.translate(KHMER_DIGITS)


def long_date(day: date, language: str | None = None) -> str:
    """A date as a letter or receipt writes it: 07 December 2026, 7 décembre 2026, ថ្ងៃទី៧ ខែធ្នូ ឆ្នាំ២០២៦
    (Khmer digits and month names, as Cambodian official documents write dates)."""
    language = language or current_language()
    if language == "km":
        return khmer_digits(f"ថ្ងៃទី{day.day} ខែ{KHMER_MONTHS[day.month - 1]} ឆ្នាំ{day.year}")
    if language == "fr":
        return f"{'1er' if day.day == 1 else day.day} {FRENCH_MONTHS[day.month - 1]} {day.year}"
    return f"{day.day:02d} {ENGLISH_MONTHS[day.month - 1]} {day.year}"


def _fill(template: str, values: dict[str, Any], language: str = "en") -> str:
    def show(match: re.Match) -> str:
        value = values.get(match.group(1), match.group(0))
        return long_date(value, language) if isinstance(value, date) else str(value)

    return _PLACEHOLDER.sub(show, template)


class Message(str):
    """An English sentence (the str itself) that knows its template and values, to be said again in
    another language when rendered. `_("You may appeal within {days} days.", days=90)`."""

    __slots__ = ("template", "values")

    def __new__(cls, template: str, **values: Any) -> "Message":
        message = super().__new__(cls, _fill(template, values))
        message.template = template
        message.values = values
        return message


_ = Message


def N_(text: str) -> str:
    """Marks a constant for the catalogue (scripts/i18n.py extract) without translating it here."""
    return text


def gettext(msgid: str, language: str | None = None) -> str:
    language = language or current_language()
    if language == "en":
        return msgid
    return translations(language).gettext(msgid)


def translate(text: Any, language: str | None = None) -> Any:
    """`text` in the language (the request's by default): a Message by its template, a constant by the
    catalogue, a sentence built from a template by its pattern; anything else (not text, or not in the
    catalogue) as it is."""
    if not isinstance(text, str) or not text:
        return text
    language = language or current_language()
    if language == "en":
        return str(text)
    if isinstance(text, Message):
        return _fill(gettext(text.template, language), text.values, language)
    found = gettext(text, language)
    if found != text:
        return found
    for pattern, msgid, msgstr in _patterns(language):
        match = pattern.fullmatch(text)
        if match:
            return _fill(msgstr, dict(zip(_PLACEHOLDER.findall(msgid), match.groups())))
    return str(text)


def _keep_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a text")
    return value  # a Message stays one (Pydantic's str would make it a plain str)


# A response field of text for people: serialised in the request's language.
LocalisedStr = Annotated[str, PlainValidator(_keep_text), PlainSerializer(lambda value: translate(value), return_type=str),
                         WithJsonSchema({"type": "string"})]


# A name the catalogue may hold (a built-in referral agency, a service): looked up as it is, never by pattern,
# so that a name an operator configured is shown as configured.
LocalisedName = Annotated[str, PlainValidator(_keep_text), PlainSerializer(lambda value: gettext(value), return_type=str),
                          WithJsonSchema({"type": "string"})]


# ---- Pydantic's validation messages, by error type ----------------------------------------------------------

# Pydantic's own English messages, keyed by the error's `type` (stable), with its `ctx` values as
# placeholders; a type not listed here keeps Pydantic's English message.
VALIDATION_MESSAGES: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "enum": N_("Input should be {expected}"),
    "literal_error": N_("Input should be {expected}"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or instance of {class_name}"),
    "model_attributes_type": N_("Input should be a valid dictionary or object to extract fields from"),
    "too_short": N_("{field_type} should have at least {min_length} items after validation, not {actual_length}"),
    "too_long": N_("{field_type} should have at most {max_length} items after validation, not {actual_length}"),
    "uuid_type": N_("UUID input should be a string, bytes or UUID object"),
    "uuid_parsing": N_("Input should be a valid UUID, {error}"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, {error}"),
    "date_from_datetime_parsing": N_("Input should be a valid date or datetime, {error}"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime, {error}"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date, {error}"),
    "timezone_aware": N_("Input should have timezone info"),
    "json_invalid": N_("Invalid JSON: {error}"),
    "json_type": N_("JSON input should be string, bytes or bytearray"),
    "url_parsing": N_("Input should be a valid URL, {error}"),
    "url_scheme": N_("URL scheme should be {expected_schemes}"),
    "union_tag_invalid": N_("Input tag '{tag}' found using {discriminator} does not match any of the expected tags: {expected_tags}"),
}

_VALUE_ERROR = "Value error, "


def validation_message(error: dict[str, Any], language: str | None = None) -> str:
    """One of Pydantic's errors in the language: by its type and context; a validator's own ValueError
    ("Value error, <our sentence>") by our sentence."""
    language = language or current_language()
    message = error.get("msg", "invalid")
    if language == "en":
        return message
    kind = error.get("type")
    if kind == "value_error" and message.startswith(_VALUE_ERROR):
        said = translate(message[len(_VALUE_ERROR):], language)
        return said if said != message[len(_VALUE_ERROR):] else message
    template = VALIDATION_MESSAGES.get(kind)
    if template is None:
        return message
    context = {key: value for key, value in (error.get("ctx") or {}).items()}
    return _fill(gettext(template, language), context, language)
