"""Duplicate matching at intake: scored candidates the clerk can look at before registering.

Candidates are the people of the same commune born within a year or two of the newcomer; each is
scored on a transliteration-tolerant name, the birth date or year, the village and the sex. Names meet
across scripts: a Khmer name is keyed by its romanised form (names.part_key), so that ម៉ៅ សុភា and
Mao Sophea share their blocks and score as one name."""

import math
import uuid
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher
from functools import lru_cache

from sqlalchemy import CompoundSelect, bindparam, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.principal import Principal
from app.models import Person
from app.services import scoping
from app.services.names import fold, name_key, part_key

LIKELY_DUPLICATE = 0.85  # at or above: registration stops and asks the clerk to confirm
WORTH_SHOWING = 0.6  # at or above: listed by /persons/matches
OTHER_SEX = 0.7  # a candidate of the other sex scores this share at most (a sex mistyped at intake)
ANOTHER_YEAR = 0.7  # the most a candidate born in another year scores, neither birth year approximate
BLOCKS_ROUNDED_TO = 4  # candidates' statements: block counts rounded up to a multiple of this


@dataclass(slots=True)
class Newcomer:
    given_name: str
    family_name: str
    sex: str | None
    birth_date: date | None
    birth_year: int | None
    approximate: bool
    village_code: str
    given_name_latin: str | None = None
    family_name_latin: str | None = None

    def names(self) -> list[tuple[str, str]]:
        """(given, family) in each script the newcomer's name was given in."""
        return [(self.given_name, self.family_name)] + (
            [(self.given_name_latin or "", self.family_name_latin or "")]
            if self.given_name_latin or self.family_name_latin else [])


# What scoring and the answers read of a candidate, as columns: a commune's block can be a few hundred
# people, and loading each as a whole Person costs more CPU than scoring them.
_CANDIDATE = (Person.id, Person.household_id, Person.given_name, Person.family_name, Person.given_name_latin,
              Person.family_name_latin, Person.sex, Person.birth_date,
              Person.birth_year, Person.birth_date_approximate, Person.national_id, Person.family_key, Person.given_key,
              Person.village_code)


@dataclass(slots=True)
class Candidate:
    person: Person  # or a row with the _CANDIDATE columns
    village_code: str
    score: float
    matched_fields: list[str] = field(default_factory=list)


def location_range(code: str) -> tuple[str, str]:
    """The first and last village codes under a location: codes nest by prefix, and a range keeps the
    comparison on an ordinary b-tree index."""
    return code.ljust(8, "0"), code.ljust(8, "9")


def within_location(column, code: str):
    return column.between(*location_range(code))


# A registration scores each member against the commune's people who share a name key: a few hundred
# comparisons of names that recur endlessly (Sok, Chea, Dara...). The pure parts are remembered,
# boundedly, so that a comparison is a few dictionary look-ups rather than regular expressions and
# SequenceMatcher every time.
@lru_cache(maxsize=4096)
def _folded(given: str, family: str) -> str:
    return fold(f"{family} {given}")


_name_key = lru_cache(maxsize=4096)(name_key)


@lru_cache(maxsize=4096)
def _key_ratio(key_a: str, key_b: str, floor: float) -> float:
    """The similarity of two keys, or an upper bound of it below `floor` (then the exact value cannot
    change the outcome, and SequenceMatcher's cheap bounds spare computing it)."""
    matcher = SequenceMatcher(None, key_a.replace(" ", ""), key_b.replace(" ", ""))
    bound = matcher.real_quick_ratio()
    if bound < floor:
        return bound
    bound = matcher.quick_ratio()
    if bound < floor:
        return bound
    return matcher.ratio()


def _name_similarity(a_given: str, a_family: str, b_given: str, b_family: str, floor: float = 0.0) -> tuple[float, bool]:
    if _folded(a_given, a_family) == _folded(b_given, b_family):
        return 1.0, True
    key_a, key_b = _name_key(a_given, a_family), _name_key(b_given, b_family)
    if key_a == key_b:
        return 0.95, True
    # The floor a little lower and coarse: rounding the score to 3 places must not lift a bounded one
    # over the threshold, and few distinct floors keep the cache useful.
    ratio = _key_ratio(key_a, key_b, max(0.0, math.floor(min(floor, 0.85) * 100) / 100 - 0.01))
    return ratio, ratio >= 0.85


def score(newcomer: Newcomer, person: Person, village_code: str, threshold: float = 0.0) -> Candidate:
    """The candidate's score. With a threshold, a score that cannot reach it may be returned as any
    value below it (the name's similarity is then only bounded)."""
    matched: list[str] = []
    birth = 0.0
    if newcomer.birth_date is not None and person.birth_date is not None and newcomer.birth_date == person.birth_date:
        birth = 1.0
        matched.append("birth_date")
    elif newcomer.birth_year is not None and newcomer.birth_year == person.birth_year:
        birth = 0.8
        matched.append("birth_year")
    elif newcomer.birth_year is not None and abs(newcomer.birth_year - person.birth_year) <= 2 and (
        newcomer.approximate or person.birth_date_approximate
    ):
        birth = 0.6
        matched.append("birth_year_approximate")
    place = 0.6
    if village_code == newcomer.village_code:
        place = 1.0
        matched.append("village")
    else:
        matched.append("commune")
    sex_factor = OTHER_SEX if newcomer.sex is not None and newcomer.sex != person.sex else 1.0
    # The name similarity below which the total cannot reach the threshold.
    floor = (threshold / sex_factor - 0.3 * birth - 0.1 * place) / 0.6 if threshold else 0.0
    if floor > 1.01:
        # Not even the same name would reach it (another sex, or born in another year): most of a common
        # name's block, at a million persons, is spared comparing names. The margin keeps a total that
        # rounds up to the threshold.
        name, name_matched = 0.0, False
    else:
        # The best of the names in each script: ម៉ៅ សុភា meets Mao Sophea through its romanised keys, and a
        # Latin spelling given on both sides is compared as typed too.
        theirs = [(person.given_name, person.family_name)]
        if getattr(person, "given_name_latin", None) or getattr(person, "family_name_latin", None):
            theirs.append((person.given_name_latin or "", person.family_name_latin or ""))
        name, name_matched = max(_name_similarity(given, family, their_given, their_family, floor)
                                 for given, family in newcomer.names() for their_given, their_family in theirs)
    total = (0.6 * name + 0.3 * birth + 0.1 * place) * sex_factor
    if name_matched:
        matched.insert(0, "name")
    if newcomer.sex is not None and newcomer.sex == person.sex:
        matched.append("sex")
    return Candidate(person=person, village_code=village_code, score=round(total, 3), matched_fields=matched)


async def find_candidates(
    session: AsyncSession, actor: Principal, newcomers: list[Newcomer], *, threshold: float,
    exclude_household: uuid.UUID | None = None,
) -> list[list[Candidate]]:
    """For each newcomer, the visible people who may be the same person, best first."""
    windows = [_birth_years(n) for n in newcomers]
    if not any(windows):
        return [[] for _ in newcomers]
    # Blocking: only people sharing the transliteration key of either name (in either order, for a
    # family name typed as given name) and born in the newcomer's window are scored. A commune holds
    # thousands; this keeps it to a few. Each key is looked for in the years of the newcomers who carry
    # it only: a household's ten members would otherwise cross every name with every member's years.
    # Above what a candidate could score otherwise (registration's threshold, not the matches list's),
    # only the newcomer's sex is looked for, and other years than the newcomer's only among people
    # whose birth year is approximate: at a million persons, most of a common name's block.
    by_sex = threshold > OTHER_SEX and all(n.sex is not None for n in newcomers)
    by_year = threshold > ANOTHER_YEAR
    keys = [{part_key(name) for names in n.names() for name in names if name} for n in newcomers]
    windows_of: dict[tuple[str, str, str | None], set[int]] = {}  # block -> years looked in
    exact_of: dict[tuple[str, str, str | None], set[int]] = {}  # -> years where anyone may match
    for newcomer, newcomer_keys, window in zip(newcomers, keys, windows, strict=True):
        exact = {newcomer.birth_year} if window and by_year and not newcomer.approximate else window
        for key in newcomer_keys:
            block = (key, newcomer.village_code[:6], newcomer.sex if by_sex else None)
            windows_of.setdefault(block, set()).update(window)
            exact_of.setdefault(block, set()).update(exact)
    params: dict[str, object] = {}
    blocks = [(block, first, last) for block, years in sorted(windows_of.items()) for first, last in _runs(years)]
    for i, ((key, commune, sex), first, last) in enumerate(blocks):
        exact_years = [year for year in exact_of[(key, commune, sex)] if first <= year <= last]
        params.update({f"key_{i}": key, f"first_{i}": first, f"last_{i}": last,
                       # an empty range (1, 0) when no one of the block was born in these very years
                       f"exact_first_{i}": min(exact_years, default=1), f"exact_last_{i}": max(exact_years, default=0)})
        params[f"commune_{i}_from"], params[f"commune_{i}_to"] = location_range(commune)
        if by_sex:
            params[f"sex_{i}"] = sex
    # Block counts rounded up with blocks that match nothing: a handful of statement shapes, each compiled
    # and prepared once per connection, rather than one per count.
    shape = -(-len(blocks) // BLOCKS_ROUNDED_TO) * BLOCKS_ROUNDED_TO
    for i in range(len(blocks), shape):
        params.update({f"key_{i}": "", f"first_{i}": 1, f"last_{i}": 0, f"exact_first_{i}": 1, f"exact_last_{i}": 0,
                       f"commune_{i}_from": "", f"commune_{i}_to": "", f"sex_{i}": ""})
    params.update(scoping.office_params(actor))
    if exclude_household is not None:
        params["exclude_household"] = exclude_household
    query = _candidate_query(shape, by_sex, by_year, scoping.is_scoped(actor), exclude_household is not None)
    # Core rather than the ORM session: the rows are plain columns, and the ORM's handling of each row showed
    # at a million persons, where a common name's blocks are dozens of rows. Core does not flush the session
    # first: callers look for duplicates before they change anything.
    rows = list({row.id: row for row in (await (await session.connection()).execute(query, params)).all()}.values())
    results = []
    for newcomer, newcomer_keys, window in zip(newcomers, keys, windows, strict=True):
        scored = [
            score(newcomer, person, person.village_code, threshold)
            for person in rows
            if person.birth_year in window and person.village_code[:6] == newcomer.village_code[:6]
            and (person.family_key in newcomer_keys or person.given_key in newcomer_keys)
        ]
        results.append(sorted((c for c in scored if c.score >= threshold), key=lambda c: -c.score)[:10])
    return results


@lru_cache(maxsize=256)
def _candidate_query(blocks: int, by_sex: bool, by_year: bool, scoped: bool, excluding: bool) -> CompoundSelect:
    """The candidates' statement for a shape (how many blocks), values as parameters: built, keyed and
    compiled once per shape rather than once per registration, and one prepared statement in the database.

    A block is the people sharing a name key, in the newcomer's commune (and of their sex, by_sex), born
    in those years (by_year: the newcomers' own years, or the years around them for people whose birth
    year is approximate). Each member carries the household's village, so that a block is one range of a
    (name key, village, sex, birth year) index. A common family name is thousands of people in a
    province; filtering them by their households' commune read thousands of index entries for a few
    dozen candidates. The approximate-year test is an OR checked on the rows the index found: as UNION
    branches of their own, with an index condition on the flag, it was planned badly while a new registry
    was empty and the prepared statements kept those plans as it grew (20 ms of PostgreSQL a registration
    at 4,000 persons). UNION ALL: a person found through two keys comes twice and is kept once by the caller."""
    branches = []
    for i in range(blocks):
        for column in (Person.family_key, Person.given_key):
            block = select(*_CANDIDATE).where(
                column == bindparam(f"key_{i}"),
                Person.village_code.between(bindparam(f"commune_{i}_from"), bindparam(f"commune_{i}_to")),
            )
            if by_sex:
                block = block.where(Person.sex == bindparam(f"sex_{i}"))
            block = scoping.where_office_param(block, Person.office_id, scoped)
            if excluding:
                block = block.where(Person.household_id != bindparam("exclude_household"))
            block = block.where(Person.birth_year.between(bindparam(f"first_{i}"), bindparam(f"last_{i}")))
            if by_year:
                exact = Person.birth_year.between(bindparam(f"exact_first_{i}"), bindparam(f"exact_last_{i}"))
                block = block.where(or_(exact, Person.birth_date_approximate))
            branches.append(block)
    return union_all(*branches)


def _runs(years: set[int]) -> list[tuple[int, int]]:
    """Years as runs of consecutive years: 1979-1981 and 2010-2012 rather than six values."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and year == runs[-1][1] + 1:
            runs[-1][1] = year
        else:
            runs.append([year, year])
    return [(first, last) for first, last in runs]


def _birth_years(newcomer: Newcomer) -> set[int]:
    if newcomer.birth_year is None:
        return set()
    spread = 2 if newcomer.approximate else 1
    return set(range(newcomer.birth_year - spread, newcomer.birth_year + spread + 1))

