"""Name folding for search and transliteration-tolerant keys for duplicate matching and search.

Khmer names reach us in Khmer script and in several Latin transliterations ("Chanthou", "Chanthu",
"Chantou"). `fold` makes search case- and accent-insensitive without touching Khmer script (its
vowel signs are combining marks too, so only the Latin combining diacritics are dropped); `part_key`
and `name_key` also erase the spelling variations of romanised Khmer and meet a Khmer-script name in
its romanised form (app/text/khmer.py); `name_keys` is what a search looks in (docs/khmer.md)."""

import re
import unicodedata
from functools import lru_cache

from sqlalchemy import and_, or_, text

from app.text import khmer

_LATIN_DIACRITICS = re.compile("[\u0300-\u036f]")
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


_DOUBLED = re.compile(r"(.)\1+")


def _sound_keys(name: str) -> list[str]:
    """The phonetic keys of a name's words in either script (Khmer romanised first), or its folded words
    when none has a Latin letter to key (a name in another script)."""
    return khmer.search_keys(name).phonetic.split() or fold(name).split()


@lru_cache(maxsize=16384)  # names recur endlessly (Sok, Chea, Dara): keyed once
def part_key(name: str) -> str:
    """The key of one name in either script, spaces dropped: "Srey Mom", "Sreymom" and "ស្រីមុំ" give
    one key, and "ម៉ៅ" the key of "Mao"."""
    return _DOUBLED.sub(r"\1", "".join(_sound_keys(name)))[:PART_KEY_LENGTH]


def name_key(given_name: str, family_name: str) -> str:
    """Order-free ("Sok Chanthou" = "Chanthou Sok"), spelling-tolerant and cross-script key."""
    return " ".join(sorted(_sound_keys(f"{family_name} {given_name}")))


def search_terms(query: str) -> list[str]:
    """What a clerk typed, as folded terms that must each appear in the name."""
    return fold(query).split()[:5]


# ---- stored search keys ---------------------------------------------------------------------------------

# A row's names as one string of segments, each starting with "|", that SQL LIKE searches on both databases
# (PostgreSQL through a trigram index). A segment is, for each name (family then given, in each script):
# - the Khmer key of its words joined, from each word on ("|សុខចន្ធូ|ចន្ធូ"): Khmer compared with Khmer;
# - the phonetic keys of its Latin form (typed, or romanised from Khmer) joined, from each word on
#   ("|sokcanto|canto"): Latin compared with either script, spelling variants folded;
# - its folded words ("|sok|chanthou"): the plain substring search of what was typed, letters the keys fold
#   away ("hou" in Chanthou) and scripts they do not key.
# A search term found in the string is found within a segment (terms have no "|"), and a segment that
# starts at a word start makes "|term" a prefix search. Cut at a segment's end to fit the column.
NAME_KEYS_LENGTH = 800


def _starts(words: list[str]) -> list[str]:
    return [_DOUBLED.sub(r"\1", "".join(words[i:])) for i in range(len(words))]


@lru_cache(maxsize=65536)
def name_keys(*names: str | None, phonetic: bool = True) -> str:
    """The stored search keys of a person ("family given" in each script) or a place (its names: Khmer
    and folded only, `phonetic` False: a gazetteer's spelling is one, and sound-alike places are many)."""
    segments: list[str] = []
    for name in filter(None, names):
        keys = khmer.search_keys(name)
        sounds = _starts(keys.phonetic.split()) if phonetic else []
        for part in (_starts(keys.khmer.split()), sounds, fold(khmer.normalise(name)).split()):
            segments += (s for s in part if s not in segments)
    text = ""
    for segment in segments:
        if len(text) + len(segment) + 1 > NAME_KEYS_LENGTH:
            break
        text += "|" + segment
    return text


def name_condition(column, query: str):
    """Whether the name keys in `column` match what a clerk typed, in either script: its Khmer key, or all
    its phonetic keys, or all its folded words found in them; None when the query has nothing to look for
    (punctuation alone). Substring search, which finds prefixes too."""
    return _condition(column, query, prefix=False)


def place_name_condition(column, query: str):
    """Whether a place's name keys match what was typed: its Khmer key, or each of its folded words, from
    where a word of the place's name starts (Khmer words joined: អង្គរជុំ is found as អង្គរ); None
    when the query has nothing to look for."""
    return _condition(column, query, prefix=True, phonetic=False)


def _condition(column, query: str, *, prefix: bool, phonetic: bool = True):
    ways = search_ways(query, prefix=prefix, phonetic=phonetic)
    return or_(*(and_(*(column.contains(term, autoescape=True) for term in way)) for way in ways)) if ways else None


def search_ways(query: str, *, prefix: bool = False, phonetic: bool = True) -> list[list[str]]:
    """What a search looks for in the stored keys (name_keys): ways to match, each a list of terms that must
    all be found in them (LIKE '%term%'); the query matches when one way does. With `prefix`, each term
    starts with "|", the start of a segment, so of a word."""
    keys = khmer.search_keys(query[:200])
    start = "|" if prefix else ""
    ways = []
    if keys.khmer:
        ways.append([start + keys.khmer.replace(" ", "")])
    if keys.phonetic and phonetic:
        ways.append([start + _DOUBLED.sub(r"\1", k) for k in keys.phonetic.split()[:5]])
    if (terms := search_terms(khmer.normalise(query[:200]))) and [start + t for t in terms] not in ways:
        ways.append([start + term for term in terms])
    return ways


# ---- Khmer collation ------------------------------------------------------------------------------------

# ICU's Khmer collation, as PostgreSQL built with ICU names it. SQLite has no ICU: names and places sort
# there in code-point order, which follows the Khmer alphabet for the first consonant of a name but not
# the dictionary's order of vowels and subscripts (docs/khmer.md).
KHMER_COLLATION = "km-x-icu"
_has_khmer_collation: dict[str, bool] = {}


def prefers_khmer(accept_language: str | None) -> bool:
    """Whether the language a request prefers most is Khmer (Accept-Language, quality values honoured)."""
    best, best_quality = "", 0.0
    for part in (accept_language or "").split(","):
        tag, *parameters = (p.strip() for p in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > best_quality:
            best, best_quality = tag, quality
    return best.lower().split("-")[0] in ("km", "khm")


async def khmer_collated(session, *columns) -> list:
    """The columns to ORDER BY in Khmer collation: PostgreSQL's ICU `km` when the server has it (asked
    once per database), code-point order otherwise."""
    if session.bind.dialect.name != "postgresql":
        return list(columns)
    url = session.bind.url.render_as_string(hide_password=True)
    if url not in _has_khmer_collation:
        found = await session.execute(text("SELECT 1 FROM pg_collation WHERE collname = :name"), {"name": KHMER_COLLATION})
        _has_khmer_collation[url] = found.first() is not None
    return [column.collate(KHMER_COLLATION) for column in columns] if _has_khmer_collation[url] else list(columns)
