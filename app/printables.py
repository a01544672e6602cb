"""The printable pages handed to a client: the application receipt, the referral slip and the grievance
acknowledgement. Each is one HTML template in app/templates holding all of the page's words (one file per
page to translate), filled with values that are data, never sentences."""

import html
from functools import cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def _escaped(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "\n".join(f"<li>{_escaped(item)}</li>" for item in value)
    return html.escape(str(value), quote=True)


def render(name: str, **values: object) -> str:
    """The page, UTF-8 (names in Khmer script print as typed), every value HTML-escaped (a name typed with
    markup prints as text); None prints as a dash, a list as the items of the template's list."""
    return _template(name).substitute({key: _escaped(value) for key, value in values.items()})


def long_date(day) -> str:
    """The dates of every printable: 07 December 2026."""
    return f"{day:%d %B %Y}"
