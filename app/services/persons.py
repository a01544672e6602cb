"""Persons (household members): search, reads, changes and duplicate candidates."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import clock
from app.principal import Principal
from app.errors import InvalidInput
from app.etag import check_if_match
from app.models import Household, Office, Person
from app.models.base import utcnow
from app.schemas.common import SEARCH_COUNT_LIMIT
from app.schemas.households import MatchCandidate, MatchQuery, PersonRead, PersonSummary, PersonUpdate
from app.services import activity, audit, matching, names, plausibility
from app.services.demography import disability_levels
from app.services.households import (
    bounded_sample,
    head_facts,
    head_of,
    name_filters,
    person_columns,
    person_read,
    refuse,
    stop_unless_confirmed,
    warnings_of,
)
from app.services.national_ids import check_national_ids
from app.services.scoping import load_scoped, office_filters
from app.vocabulary import Relationship

# Changing one of these changes the person's breakdowns at central, or the facts schemes look at.
_PERSON_FACTS = tuple(f for f in PersonUpdate.model_fields if f != "confirm_unlikely")


async def load_person(session: AsyncSession, actor: Principal, person_id: uuid.UUID) -> Person:
    return await load_scoped(session, actor, Person, person_id, missing="No such person.")


async def get_person(session: AsyncSession, actor: Principal, person_id: uuid.UUID) -> PersonRead:
    person = await load_person(session, actor, person_id)
    audit.record(session, actor, action="read", entity_type="person", entity_id=person.id, office_id=person.office_id)
    return person_read(person, clock.today())


# What a search hit shows (PersonSummary), read as columns: loading whole people to show these costs
# several times the CPU.
_SUMMARY = (Person.id, Person.household_id, Person.given_name, Person.family_name, Person.given_name_latin,
            Person.family_name_latin, Person.sex, Person.birth_date,
            Person.birth_year, Person.birth_date_approximate, Person.national_id, Person.relationship,
            Household.village_code)


async def search_persons(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str | None,
    national_id: str | None,
    location: str | None,
    sex: str | None,
    household_id: uuid.UUID | None,
    limit: int,
    offset: int,
    khmer_order: bool = False,
) -> tuple[list[PersonSummary], int, bool]:
    """The page, the total and whether the total is exact (it stops at SEARCH_COUNT_LIMIT). In name order:
    Khmer collation (family name, then given name) with `khmer_order`, else the folded name's."""
    filters = name_filters(name) + office_filters(Person.office_id, actor)
    if national_id:
        filters.append(Person.national_id == national_id.strip())
    if sex:
        filters.append(Person.sex == sex)
    if household_id:
        filters.append(Person.household_id == household_id)
    query = select(*_SUMMARY).join(Household, Household.id == Person.household_id).where(*filters)
    if location:
        query = query.where(matching.within_location(Household.village_code, location))
    if name:
        candidates = select(Person.id, Person.search_name, Person.family_name, Person.given_name).where(*filters)
        if location:  # the household is only read when the place is asked for
            candidates = candidates.join(Household, Household.id == Person.household_id).where(
                matching.within_location(Household.village_code, location))
        rows, total = await _name_page(session, candidates, limit=limit, offset=offset, khmer_order=khmer_order)
    elif national_id:
        # A national ID is unique: the whole result is one row at most, read in one round trip.
        found = (await session.execute(query)).all()
        total, rows = len(found), found[offset:offset + limit]
    else:
        total = (await session.execute(select(func.count()).select_from(
            query.with_only_columns(Person.id).limit(SEARCH_COUNT_LIMIT + 1).subquery()))).scalar_one()
        order = await _name_order(session, Person, khmer_order)
        rows = (await session.execute(query.order_by(*order).limit(limit).offset(offset))).all()
    exact = total <= SEARCH_COUNT_LIMIT
    total = min(total, SEARCH_COUNT_LIMIT)
    items = [PersonSummary.model_validate(row._mapping) for row in rows]
    audit.record(session, actor, action="search", entity_type="person", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"name": name, "national_id": national_id, "location": location, "sex": sex,
                                      "household_id": str(household_id) if household_id else None},
                          "results": [str(i.id) for i in items], "total": total})
    return items, total, exact


async def _name_order(session: AsyncSession, source, khmer_order: bool) -> list:
    """Name order over `source` (the Person entity or a subquery's columns)."""
    if khmer_order:
        return [*await names.khmer_collated(session, source.family_name, source.given_name), source.id]
    return [source.search_name, source.id]


async def _name_page(session: AsyncSession, candidates, *, limit: int, offset: int, khmer_order: bool) -> tuple[list, int]:
    """People matching a name, in name order, looking at no more than SEARCH_COUNT_LIMIT + 1 of them
    (households.bounded_sample): up to the limit, every match in name order; beyond it, a fixed
    sample of them (total_exact false tells the clerk to narrow the search). Returns the page rows
    and how many matched (at most the limit + 1)."""
    await bounded_sample(session)
    matched = candidates.limit(SEARCH_COUNT_LIMIT + 1).subquery()
    shown = min(limit, SEARCH_COUNT_LIMIT - offset)  # the extra match only says that there are more
    page = (await session.execute(
        select(matched.c.id, func.count().over()).order_by(*await _name_order(session, matched.c, khmer_order))
        .limit(shown).offset(offset)
    )).all() if shown > 0 else []
    if not page:
        return [], (await session.execute(select(func.count()).select_from(matched))).scalar_one()
    order = {person_id: i for i, (person_id, _) in enumerate(page)}
    rows = (await session.execute(
        select(*_SUMMARY).join(Household, Household.id == Person.household_id).where(Person.id.in_(order))
    )).all()
    return sorted(rows, key=lambda row: order[row.id]), page[0][1]


async def update_person(
    session: AsyncSession, actor: Principal, person_id: uuid.UUID, data: PersonUpdate, if_match: str | None
) -> PersonRead:
    person = await load_person(session, actor, person_id)
    check_if_match(if_match, person.version)
    changes = data.model_dump(exclude_unset=True, exclude={"confirm_unlikely"})
    if not changes:
        return person_read(person, clock.today())
    household = (await session.execute(
        select(Household).options(selectinload(Household.members)).where(Household.id == person.household_id)
    )).scalar_one()
    for required in ("given_name", "family_name", "sex", "relationship", "birth_date_approximate", "pregnant"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be cleared.", field=f"#/{required}")
    if "relationship" in changes:
        if changes["relationship"] == Relationship.head and person.relationship != Relationship.head:
            raise InvalidInput("Make a member head with PATCH /households/{id} and head_id.", field="#/relationship")
        if person.relationship == Relationship.head and changes["relationship"] != Relationship.head:
            raise InvalidInput("The head stays head until another member is made head.", field="#/relationship")
    facts = {c: getattr(person, c) for c in _PERSON_FACTS if c != "disability"} | {"disability": disability_levels(person)}
    facts |= changes
    if facts["disability"] is None:  # clearing the answers means "no difficulty" in every domain
        facts["disability"] = {domain: "none" for domain in disability_levels(person)}
    if facts["attributes"] is None:
        facts["attributes"] = {}
    if changes.get("birth_date") is not None and "birth_year" not in changes:
        facts["birth_year"] = changes["birth_date"].year
    today = clock.today()
    found = plausibility.impossible(facts, today, changes)
    if found:
        raise refuse(found)
    if changes.get("national_id"):
        await check_national_ids(session, actor, {"#/national_id": changes["national_id"]}, except_person=person.id)
    unlikely = warnings_of([*plausibility.unlikely(facts, today, changes), *_relatives(household, person, facts, changes, today)])
    stop_unless_confirmed(unlikely, data.confirm_unlikely)
    to_write = {k: facts[k] for k in changes}
    if "birth_date" in changes:
        to_write["birth_year"] = facts["birth_year"]
    if facts["birth_date"] is None and not facts["birth_date_approximate"]:
        to_write["birth_date_approximate"] = True  # only the year is known
    names = ("given_name", "family_name", "given_name_latin", "family_name_latin")
    if set(names) & changes.keys():  # all are needed to refold the search name and keys
        to_write |= {name: facts[name] for name in names}
    columns = person_columns(to_write)
    for column, value in columns.items():
        setattr(person, column, value)
    person.updated_at = utcnow()
    await session.flush()
    audit.record(session, actor, action="update", entity_type="person", entity_id=person.id, office_id=person.office_id,
                 details={"fields": sorted(changes)})
    if unlikely:
        audit.record(session, actor, action="unlikely_confirmed", entity_type="person", entity_id=person.id,
                     office_id=person.office_id, details={"warnings": unlikely})
    office = await session.get(Office, person.office_id)
    activity.emit(session, "person.updated", office_code=office.code, household_id=household.id, person_id=person.id,
                  dimensions=activity.person_dimensions(person, household, clock.today(), head_of(household)),
                  fields=sorted(changes))
    return person_read(person, clock.today())


def _relatives(household, person, facts: dict, changes: dict, today) -> list[plausibility.Finding | None]:
    """A new birth date or relationship, checked against the head's age (or, for the head, each child's
    and parent's)."""
    field = next((f for f in ("relationship", "birth_date", "birth_year") if f in changes), None)
    if field is None:
        return []
    if person.relationship == Relationship.head:
        return [plausibility.relative_to_head(head_facts(m), facts, today, field) for m in household.members if m.id != person.id]
    head = head_of(household)
    return [plausibility.relative_to_head(facts, head_facts(head), today, field)] if head else []


async def find_matches(session: AsyncSession, actor: Principal, query: MatchQuery) -> list[MatchCandidate]:
    newcomer = matching.Newcomer(
        given_name=query.given_name, family_name=query.family_name, given_name_latin=query.given_name_latin,
        family_name_latin=query.family_name_latin, sex=query.sex, birth_date=query.birth_date,
        birth_year=query.birth_year or (query.birth_date.year if query.birth_date else None), approximate=query.birth_date is None,
        village_code=query.village_code,
    )
    [candidates] = await matching.find_candidates(session, actor, [newcomer], threshold=matching.WORTH_SHOWING)
    results = [
        MatchCandidate(
            person_id=c.person.id, household_id=c.person.household_id, score=c.score, matched_fields=c.matched_fields,
            given_name=c.person.given_name, family_name=c.person.family_name,
            given_name_latin=c.person.given_name_latin, family_name_latin=c.person.family_name_latin, sex=c.person.sex,
            birth_date=c.person.birth_date, birth_year=c.person.birth_year, village_code=c.village_code,
            national_id=c.person.national_id,
        )
        for c in candidates
    ]
    if query.national_id:
        exact = (await session.execute(
            select(Person, Household.village_code).join(Household, Household.id == Person.household_id)
            .where(Person.national_id == query.national_id,
                   *office_filters(Person.office_id, actor))
        )).first()
        if exact is not None and all(r.person_id != exact[0].id for r in results):
            p, village = exact
            results.insert(0, MatchCandidate(
                person_id=p.id, household_id=p.household_id, score=1.0, matched_fields=["national_id"], given_name=p.given_name,
                family_name=p.family_name, given_name_latin=p.given_name_latin, family_name_latin=p.family_name_latin, sex=p.sex, birth_date=p.birth_date, birth_year=p.birth_year, village_code=village,
                national_id=p.national_id,
            ))
    audit.record(session, actor, action="match", entity_type="person", entity_id=None, office_id=actor.office_id,
                 details={"results": [str(r.person_id) for r in results]})
    return results
