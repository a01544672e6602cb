"""Name folding for search and transliteration-tolerant keys for duplicate matching.

Khmer names reach us in Khmer script and in several Latin transliterations ("Chanthou", "Chanthu",
"Chantou"). `fold` makes search case- and accent-insensitive without touching Khmer script (its
vowel signs are combining marks too, so only the Latin combining diacritics are dropped); `name_key`
also erases the spelling variations of romanised Khmer."""

import re
import unicodedata

_LATIN_DIACRITICS = re.compile("[\u0300-\u036f]")
# Applied in order to each folded Latin token.
_ROMANISATION_RULES = [
    (re.compile(r"([bcdfgjklmnpqrstvwxz])h"), r"\1"),  # kh, ch, th, ph, chh -> k, c, t, p, c
    (re.compile(r"h$"), ""),  # Sokh -> Sok
    (re.compile(r"(ou|oo|uo|ow)"), "u"),
    (re.compile(r"(ea|ia|ae|ai|ay|ei|ey)"), "e"),
    (re.compile(r"(ie|iy|y)"), "i"),
    (re.compile(r"w"), "v"),
    (re.compile(r"(.)\1+"), r"\1"),  # Vannak -> Vanak
]


def _is_name_char(char: str) -> bool:
    # Letters, digits and combining marks (Khmer vowel signs and subscripts are marks).
    return unicodedata.category(char)[0] in "LMN"


def fold(text: str) -> str:
    text = _LATIN_DIACRITICS.sub("", unicodedata.normalize("NFKD", text)).casefold()
    return " ".join("".join(c if _is_name_char(c) else " " for c in text).split())


# The columns' sizes. Compatibility decomposition can lengthen a name (a Hangul syllable becomes two or
# three letters, a ligature several), so a folded name or key is cut to fit rather than overflow.
SEARCH_NAME_LENGTH = 210
PART_KEY_LENGTH = 100


def search_name(given_name: str, family_name: str) -> str:
    return fold(f"{family_name} {given_name}")[:SEARCH_NAME_LENGTH]


def _token_key(token: str) -> str:
    if not token.isascii():
        return token
    for pattern, replacement in _ROMANISATION_RULES:
        token = pattern.sub(replacement, token)
    return token


def part_key(name: str) -> str:
    """The key of one name, spaces dropped ("Srey Mom" and "Sreymom" both give "sremom")."""
    return "".join(_token_key(t) for t in fold(name).split())[:PART_KEY_LENGTH]


def name_key(given_name: str, family_name: str) -> str:
    """Order-free ("Sok Chanthou" = "Chanthou Sok") and spelling-tolerant key."""
    return " ".join(sorted(_token_key(t) for t in fold(f"{family_name} {given_name}").split()))


def search_terms(query: str) -> list[str]:
    """What a clerk typed, as folded terms that must each appear in the name."""
    return fold(query).split()[:5]
