"""The printable pages handed to a client: the application receipt, the referral slip and the grievance
acknowledgement. Each is one HTML template in app/templates per language holding all of the page's words
(`receipt.html` in English, `receipt.km.html`, `receipt.fr.html`: one file per page to translate), filled
with values that are data, never sentences: names as typed, references, dates, and the few words of the
record's vocabulary (status, category, channel) from the catalogues. The page is in the request's
language (Accept-Language, docs/i18n.md); a Khmer page writes its dates in Khmer, with Khmer digits. The
Noto Sans Khmer font comes from this instance (the console's vendored copy), never from a CDN."""

import html
from datetime import date
from functools import cache
from pathlib import Path
from string import Template

from app import console
from app.i18n import N_, Message, current_language, gettext, khmer_digits, translate
from app.i18n import long_date as _long_date

TEMPLATES = Path(__file__).resolve().parent / "templates"
FONT = "vendor/fontsource-variable-noto-sans-khmer-5.3.0/noto-sans-khmer-khmer.woff2"

# The record's vocabulary as the services write it on a page (underscores as spaces).
VOCABULARY = (
    N_("submitted"), N_("pending information"), N_("approved"), N_("rejected"), N_("withdrawn"),  # applications
    N_("issued"), N_("accepted"), N_("completed"), N_("declined"), N_("expired"),  # referrals
    N_("received"), N_("in review"), N_("resolved"), N_("escalated"),  # grievances
    N_("exclusion error"), N_("payment"), N_("staff conduct"), N_("data correction"), N_("appeal"), N_("other"),
    N_("in person"), N_("phone"), N_("letter"), N_("hotline"),
)
_WORDS = {"status", "category", "channel"}
# Names the catalogue holds (the built-in referral agencies and their services); free text typed at the
# window (a reason, a complaint) is printed as typed, never looked up.
_NAMES = {"agency", "service"}
# Values holding a date and a time (`07 December 2026, 09:05`): a Khmer page writes the time in Khmer digits too.
_DATED = {"submitted", "received", "issued", "due", "decision_due", "answer_due"}


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def template_name(name: str, language: str) -> str:
    """`receipt.html` in the language: `receipt.km.html`, or the English page when there is none."""
    if language != "en":
        localised = name.replace(".html", f".{language}.html")
        if (TEMPLATES / localised).exists():
            return localised
    return name


def _escaped(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "\n".join(f"<li>{_escaped(item)}</li>" for item in value)
    return html.escape(str(value), quote=True)


def _said(key: str, value: object, language: str) -> object:
    if isinstance(value, list):
        return [translate(item, language) for item in value]
    if isinstance(value, str) and key in _WORDS | _NAMES:
        return gettext(value, language)
    if isinstance(value, Message):
        value = translate(value, language)
    if language == "km" and key in _DATED and isinstance(value, str):
        return khmer_digits(value)
    return value


def render(name: str, **values: object) -> str:
    """The page in the request's language, UTF-8 (names in Khmer script print as typed), every value
    HTML-escaped (a name typed with markup prints as text); None prints as a dash, a list as the items of
    the template's list."""
    language = current_language()
    filled = {key: _escaped(_said(key, value, language)) for key, value in values.items()}
    font = html.escape(f"{console.assets().prefix}/{FONT}", quote=True)
    filled["style"] = _template("printable.css").substitute(font=font)
    return _template(template_name(name, language)).substitute(filled)


def long_date(day: date) -> str:
    """The dates of every printable, in the request's language: 07 December 2026, 7 décembre 2026,
    ថ្ងៃទី៧ ខែធ្នូ ឆ្នាំ២០២៦."""
    return _long_date(day)
