r"""Every string the console shows comes from its catalogues (issue 16): each key its modules name, literally
or as a family (`t(\`outcome.${value}\`)` for each value the API may send), is in Khmer, English and French.
The browser tests catch the rest at run time (a missing key is a console error)."""

import json
import re

from app.console import STATIC
from app.vocabulary import (ApplicationStatus, AreaType, CaseStatus, ConsentMethod, ConsentPurpose, DisabilityLevel,
                            GrievanceCategory, GrievanceChannel, GrievanceStatus, Outcome, ReferralStatus, Relationship,
                            Role, Sex)

CONSOLE = STATIC / "console"
SHARED = STATIC / "shared"
# Each family of keys the console builds from a value of the API's vocabulary.
FAMILIES = {"sex": Sex, "relationship": Relationship, "level": DisabilityLevel, "purpose": ConsentPurpose,
            "method": ConsentMethod, "area": AreaType, "outcome": Outcome, "application": ApplicationStatus,
            "referral": ReferralStatus, "grievance": GrievanceStatus, "case": CaseStatus, "category": GrievanceCategory,
            "channel": GrievanceChannel, "role": Role}


def catalogue(code: str) -> dict[str, str]:
    return json.loads((CONSOLE / "i18n" / f"{code}.json").read_text(encoding="utf-8")) | json.loads(
        (SHARED / "i18n" / f"{code}.json").read_text(encoding="utf-8"))


def test_every_key_the_console_names_is_in_every_language():
    source = "\n".join(path.read_text(encoding="utf-8") for path in CONSOLE.glob("*.js"))
    literal = set(re.findall(r"""\bt\("([a-z_.0-9]+)"\)""", source))
    families = {f"{prefix}.{value}" for prefix, vocabulary in FAMILIES.items() for value in vocabulary}
    assert len(literal) > 150
    for code in ("km", "en", "fr"):
        messages = catalogue(code)
        missing = sorted((literal | families) - set(messages))
        assert not missing, f"{code}: {missing}"
        assert all(text.strip() for text in messages.values()), code


def test_khmer_is_khmer():
    """The Khmer catalogue is translated, not English left in place."""
    km, en = catalogue("km"), catalogue("en")
    untranslated = [key for key, text in km.items() if text == en[key] and re.search(r"[a-z]{4}", text)]
    assert untranslated == [], untranslated
    assert sum(bool(re.search(r"[\u1780-\u17FF]", text)) for text in km.values()) / len(km) > 0.95
