"""The household registry: registration with its members and consent, search, reads and changes.

Every function runs inside the request's transaction, scopes what it touches to the caller's office
(another office's record is "not found", exactly like a missing one), audits reads as well as
writes, and writes an activity event for every change."""

import uuid
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import distinct, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app import clock
from app.principal import Principal
from app.errors import DomainError, Forbidden, InvalidInput
from app.etag import check_if_match
from app.bulk import insert_rows, with_defaults
from app.models import ActivityEvent, AuditEvent, ConsentRecord, Household, Location, Office, Person
from app.models.base import new_id, utcnow
from app.schemas.common import SEARCH_COUNT_LIMIT
from app.schemas.households import (
    ConsentIn,
    ConsentRead,
    DisabilityRead,
    HouseholdCreate,
    HouseholdRead,
    HouseholdSummary,
    HouseholdUpdate,
    IdPoorRead,
    LocationPath,
    MAX_MEMBERS,
    MemberAdd,
    MemberCreate,
    PersonRead,
)
from app.services import activity, audit, consents, matching, plausibility
from app.services.demography import age_in_years, disability_levels, has_severe_disability, idpoor_valid
from app.services.locations import location_path, require_village
from app.services.names import name_condition, name_keys, part_key, search_name
from app.services.national_ids import check_national_ids
from app.services.scoping import is_scoped, load_scoped, scoped
from app.vocabulary import DISABILITY_DOMAINS, ConsentPurpose, Relationship

# ---- reading --------------------------------------------------------------------------------------


def person_read(person: Person, today: date) -> PersonRead:
    return PersonRead.model_validate(
        {
            **{c: getattr(person, c) for c in PersonRead.model_fields if hasattr(person, c) and c != "disability"},
            "disability": DisabilityRead(**disability_levels(person)),
            "severe_disability": has_severe_disability(person),
            "age_years": age_in_years(person.birth_date, person.birth_year, today),
        }
    )


def head_of(household: Household) -> Person | None:
    return next((m for m in household.members if m.relationship == Relationship.head), None)


async def household_read(
    session: AsyncSession, household: Household, *, consent: ConsentRecord | None = None, office_code: str | None = None
) -> HouseholdRead:
    """The household as the API shows it; `consent` and `office_code` save queries when the caller
    knows them."""
    today = clock.today()
    head = head_of(household)
    consent = consent or await consents.consent_in_force(session, household.id)
    office_code = office_code or (await session.get(Office, household.office_id)).code
    return HouseholdRead(
        id=household.id,
        version=household.version,
        office_code=office_code,
        village_code=household.village_code,
        location=LocationPath(**await location_path(session, household.village_code)),
        address=household.address,
        area_type=household.area_type,
        idpoor=IdPoorRead(
            level=household.idpoor_level,
            card_number=household.idpoor_card_number,
            valid_until=household.idpoor_valid_until,
            valid=idpoor_valid(household, today),
        ),
        consent=ConsentRead.model_validate(consent) if consent else None,
        head_id=head.id if head else None,
        size=len(household.members),
        female_headed=head is not None and head.sex == "female",
        members=[person_read(m, today) for m in household.members],
        created_at=household.created_at,
        updated_at=household.updated_at,
    )


async def load_household(session: AsyncSession, actor: Principal, household_id: uuid.UUID) -> Household:
    """The household with its members, if the caller's office may see it."""
    return await load_scoped(session, actor, Household, household_id, missing="No such household.",
                             options=(selectinload(Household.members),))


async def get_household(session: AsyncSession, actor: Principal, household_id: uuid.UUID) -> HouseholdRead:
    household = await load_household(session, actor, household_id)
    audit.record(session, actor, action="read", entity_type="household", entity_id=household.id, office_id=household.office_id,
                 details={"members": [str(m.id) for m in household.members]})
    return await household_read(session, household)


async def search_households(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str | None,
    national_id: str | None,
    phone: str | None = None,
    idpoor_card: str | None = None,
    location: str | None,
    idpoor_level: str | None,
    limit: int,
    offset: int,
) -> tuple[list[HouseholdSummary], int, bool]:
    """The page, the total and whether the total is exact (it stops at SEARCH_COUNT_LIMIT)."""
    household_filters = []
    if location:
        household_filters.append(matching.within_location(Household.village_code, location))
    if idpoor_level == "none":
        household_filters.append(Household.idpoor_level.is_(None))
    elif idpoor_level is not None:
        household_filters.append(Household.idpoor_level == int(idpoor_level))
    if idpoor_card:
        household_filters.append(Household.idpoor_card_number == idpoor_card.strip())
    member_filters = name_filters(name)
    if national_id:
        member_filters.append(Person.national_id == national_id.strip())
    if phone:
        member_filters.append(Person.phone == phone.strip())
    query = scoped(select(Household.id).where(*household_filters), Household, actor)
    newest_first = (Household.created_at.desc(), Household.id.desc())
    if member_filters:
        # The households of the people who match, as the name index finds them, no further than the
        # limit (see bounded_sample): up to it, every match, newest first; beyond it, a fixed sample.
        await bounded_sample(session)
        hits = scoped(select(Person.household_id).where(*member_filters), Person, actor)  # a person's office is their household's
        if household_filters:
            hits = hits.join(Household, Household.id == Person.household_id).where(*household_filters)
        hits = hits.limit(SEARCH_COUNT_LIMIT + 1).cte("hits")
        people = select(func.count()).select_from(hits).scalar_subquery()
        matched = select(func.count(distinct(hits.c.household_id))).scalar_subquery()
        rows = (await session.execute(
            select(Household.id, people, matched).where(Household.id.in_(select(hits.c.household_id)))
            .order_by(*newest_first).limit(limit).offset(offset)
        )).all()
        if rows:
            found, total = rows[0][1], rows[0][2]
        else:
            found, total = (await session.execute(select(people, matched))).one()
        ids = [row[0] for row in rows]
        exact = found <= SEARCH_COUNT_LIMIT
    else:
        total = (await session.execute(
            select(func.count()).select_from(query.limit(SEARCH_COUNT_LIMIT + 1).subquery())
        )).scalar_one()
        exact = total <= SEARCH_COUNT_LIMIT
        total = min(total, SEARCH_COUNT_LIMIT)
        ids = list((await session.execute(query.order_by(*newest_first).limit(limit).offset(offset))).scalars())
    summaries = await household_summaries(session, ids)
    audit.record(session, actor, action="search", entity_type="household", entity_id=None, office_id=actor.office_id,
                 details={"filters": {"name": name, "national_id": national_id, "phone": phone, "idpoor_card": idpoor_card,
                                      "location": location, "idpoor_level": idpoor_level},
                          "results": [str(i) for i in ids], "total": total})
    return summaries, total, exact


async def bounded_sample(session: AsyncSession) -> None:
    """A name fragment can match much of a national-scale registry ("sok"): searches look at no more
    than SEARCH_COUNT_LIMIT + 1 matching people, taken as the name index finds them, and order those.
    Sorting every match, or walking an ordered index until a page of matches turns up (slow when they
    sit late in the alphabet, "yim"), costs a scan of the registry. On PostgreSQL, for this transaction:
    the matches are found in physical order (no synchronized or parallel scans), so that a broad
    search gives the same sample from one page to the next; and the query is planned for the name
    typed (a prepared statement's generic plan cannot tell "so", best read in table order until
    enough match, from "vibol", best found through the trigram index)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT set_config('synchronize_seqscans', 'off', true), "
                                   "set_config('max_parallel_workers_per_gather', '0', true), "
                                   "set_config('plan_cache_mode', 'force_custom_plan', true)"))


def name_filters(name: str | None) -> list:
    """The name the clerk typed, in Khmer or Latin script, found in the person's names in either script:
    "chanth" finds Chanthou, "Sophia" finds សុភា and Sophea, "សុភា" finds Sophea (names.name_condition)."""
    if not name or not name.strip():
        return []
    condition = name_condition(Person.name_keys, name)
    if condition is None:
        # Punctuation alone folds to nothing, which would match everyone.
        raise InvalidInput("Type some letters or digits of the name to search for.", field="#/query/name")
    return [condition]


async def household_summaries(session: AsyncSession, ids: list[uuid.UUID]) -> list[HouseholdSummary]:
    """A page of households as lists show them, in one query of columns (no entities): a page of 50
    read as households, heads and sizes apart took three round trips and several times the CPU."""
    if not ids:
        return []
    head = aliased(Person)
    size = select(func.count()).where(Person.household_id == Household.id).scalar_subquery()
    rows = (await session.execute(
        select(Household.id, Household.version, Office.code, Household.village_code, Household.address,
               Household.idpoor_level, Household.created_at, head.family_name, head.given_name, head.national_id,
               head.family_name_latin, head.given_name_latin, head.sex, size.label("size"),
               Location.name.label("village_name"), Location.name_km.label("village_name_km"))
        .join(Office, Office.id == Household.office_id)
        .outerjoin(Location, Location.code == Household.village_code)
        .outerjoin(head, (head.household_id == Household.id) & (head.relationship == Relationship.head))
        .where(Household.id.in_(ids))
    )).all()
    found = {row.id: row for row in rows}
    return [
        HouseholdSummary(
            id=row.id, version=row.version, office_code=row.code, village_code=row.village_code, address=row.address,
            village_name=row.village_name, village_name_km=row.village_name_km, idpoor_level=row.idpoor_level,
            head_name=f"{row.family_name} {row.given_name}" if row.family_name is not None else None,
            head_name_latin=_full_name(row.family_name_latin, row.given_name_latin),
            head_national_id=row.national_id, size=row.size, female_headed=row.sex == "female",
            created_at=row.created_at,
        )
        for row in map(found.__getitem__, ids)
    ]


def _full_name(family: str | None, given: str | None) -> str | None:
    return " ".join(filter(None, (family, given))) or None


# ---- registering ----------------------------------------------------------------------------------


def person_columns(facts: dict[str, Any]) -> dict[str, Any]:
    """Flatten the API's person facts into the person table's columns."""
    columns = {k: v for k, v in facts.items() if k not in ("disability", "confirm_new")}
    disability = facts.get("disability")
    if disability is not None:
        for domain in DISABILITY_DOMAINS:
            columns[f"disability_{domain}"] = disability[domain]
    if "given_name" in columns or "family_name" in columns:
        columns["search_name"] = search_name(facts["given_name"], facts["family_name"])
        # Blocks for duplicate matching: the registered name's keys (a Khmer name romanised), which the
        # Latin spelling usually shares; a newcomer is looked for under the keys of both (matching.py).
        columns["given_key"] = part_key(facts["given_name"])
        columns["family_key"] = part_key(facts["family_name"])
        columns["name_keys"] = name_keys(f"{facts['family_name']} {facts['given_name']}",
                                         _full_name(facts.get("family_name_latin"), facts.get("given_name_latin")))
    return columns


async def _registering_office(session: AsyncSession, actor: Principal, office_code: str | None) -> tuple[uuid.UUID, str]:
    """The office's id and code: staff register for their own (known from the sign-in, no query)."""
    if not is_scoped(actor):
        if office_code is None:
            raise InvalidInput("An admin registering a household names the office (office_code).", field="#/office_code")
        office = (await session.execute(select(Office.id, Office.code).where(Office.code == office_code))).first()
        if office is None:
            raise InvalidInput(f"There is no office with code {office_code}.", field="#/office_code")
        return office.id, office.code
    if office_code is not None and office_code != actor.office_code:
        raise Forbidden("Staff register households for their own office only.")
    return actor.office_scope, actor.office_code


# ---- unlikely facts -------------------------------------------------------------------------------


def refuse(found: list[plausibility.Finding], prefix: str = "#") -> DomainError:
    """The 422 of facts that cannot be true, naming each field."""
    errors = [{"pointer": f"{prefix}/{f.field}", "detail": f.detail} for f in found]
    return DomainError(found[0].detail if len(found) == 1 else "The request has invalid fields.", slug="validation",
                       errors=errors)


def warnings_of(found: list[plausibility.Finding | None], prefix: str = "#") -> list[dict[str, str]]:
    return [{"pointer": f"{prefix}/{f.field}" if f.field else prefix, "code": f.code, "detail": f.detail}
            for f in found if f is not None]


def stop_unless_confirmed(warnings: list[dict[str, str]], confirmed: bool) -> None:
    """Unlikely facts stop the request until the clerk confirms them (then audited as unlikely_confirmed)."""
    if warnings and not confirmed:
        raise DomainError("Some facts are unlikely; check them with the client. If they are right, send the request "
                          "again with confirm_unlikely: true.", slug="unlikely-facts", warnings=warnings)


async def idpoor_card_elsewhere(session: AsyncSession, actor: Principal, card_number: str | None,
                                household_id: uuid.UUID | None) -> plausibility.Finding | None:
    """One IDPoor card on two households is a typing error or a household that split: warned about, among
    the households the caller may see (another office's would tell what is registered there)."""
    if not card_number:
        return None
    query = select(Household.id).where(Household.idpoor_card_number == card_number).limit(1)
    if household_id is not None:
        query = query.where(Household.id != household_id)
    query = scoped(query, Household, actor)
    other = (await session.execute(query)).scalar()
    if other is None:
        return None
    return plausibility.Finding("idpoor/card_number", f"IDPoor card {card_number} is already on household {other}",
                                "idpoor-card-shared")


def head_facts(person: Any) -> dict[str, Any]:
    return {"relationship": person.relationship, "birth_date": person.birth_date, "birth_year": person.birth_year}


def _newcomer(member: MemberCreate, village_code: str) -> matching.Newcomer:
    return matching.Newcomer(
        given_name=member.given_name,
        family_name=member.family_name,
        given_name_latin=member.given_name_latin,
        family_name_latin=member.family_name_latin,
        sex=member.sex,
        birth_date=member.birth_date,
        birth_year=member.birth_year,
        approximate=member.birth_date_approximate,
        village_code=village_code,
    )


async def _screen_duplicates(
    session: AsyncSession, actor: Principal, members: list[MemberCreate], village_code: str, *, confirm_new: bool,
    pointer: str, exclude_household: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Stop a likely duplicate unless the clerk confirmed it is a new person; return what was
    overridden so that the override can be audited."""
    found = await matching.find_candidates(
        session, actor, [_newcomer(m, village_code) for m in members], threshold=matching.LIKELY_DUPLICATE,
        exclude_household=exclude_household,
    )
    flagged = [
        {
            "member": pointer.format(index=i),
            "candidates": [
                {"person_id": str(c.person.id), "household_id": str(c.person.household_id), "score": c.score,
                 "matched_fields": c.matched_fields, "given_name": c.person.given_name,
                 "family_name": c.person.family_name, "given_name_latin": c.person.given_name_latin,
                 "family_name_latin": c.person.family_name_latin, "birth_date": c.person.birth_date.isoformat() if c.person.birth_date else None,
                 "birth_year": c.person.birth_year, "village_code": c.village_code}
                for c in candidates
            ],
        }
        for i, candidates in enumerate(found)
        if candidates
    ]
    if flagged and not confirm_new:
        raise DomainError(
            "Some members look like people already registered. Check the candidates; if they are different "
            "people, send the request again with confirm_new: true.",
            slug="possible-duplicate",
            duplicates=flagged,
        )
    return flagged


async def _registration_warnings(session: AsyncSession, actor: Principal, data: HouseholdCreate,
                                 members: list[dict[str, Any]]) -> list[dict[str, str]]:
    today = clock.today()
    head = next(m for m in members if m["relationship"] == Relationship.head)
    found = warnings_of([plausibility.large_household(len(members), "members")])
    for i, member in enumerate(members):
        found += warnings_of([*plausibility.unlikely(member, today),
                              plausibility.relative_to_head(member, head, today, "relationship")], f"#/members/{i}")
    if data.idpoor is not None:
        found += warnings_of([await idpoor_card_elsewhere(session, actor, data.idpoor.card_number, None)])
    return found


async def register_household(session: AsyncSession, actor: Principal, data: HouseholdCreate) -> HouseholdRead:
    office_id, office_code = await _registering_office(session, actor, data.office_code)
    await require_village(session, data.village_code, field="#/village_code")
    await check_national_ids(
        session, actor, {f"#/members/{i}/national_id": m.national_id for i, m in enumerate(data.members) if m.national_id}
    )
    member_facts = [member.model_dump() for member in data.members]
    unlikely = await _registration_warnings(session, actor, data, member_facts)
    stop_unless_confirmed(unlikely, data.confirm_unlikely)
    overridden = await _screen_duplicates(
        session, actor, data.members, data.village_code, confirm_new=data.confirm_new, pointer="#/members/{index}"
    )
    # Written as rows in one statement with its members, consent, audit and events (app.bulk): the
    # ORM's unit of work would take a round trip per table and build an object per row.
    now = utcnow()
    idpoor = data.idpoor
    household = {
        "id": new_id(), "office_id": office_id, "village_code": data.village_code, "address": data.address,
        "area_type": data.area_type, "idpoor_level": idpoor.level if idpoor else None,
        "idpoor_card_number": idpoor.card_number if idpoor else None,
        "idpoor_valid_until": idpoor.valid_until if idpoor else None, "registered_by": actor.id, "version": 1,
        "created_at": now, "updated_at": now,
    }
    members = with_defaults(Person.__table__, [
        # Distinct creation instants keep the members in the order the clerk entered them.
        {"id": new_id(), "household_id": household["id"], "office_id": office_id, "village_code": data.village_code,
         "registered_by": actor.id, "version": 1,
         "created_at": now + timedelta(microseconds=i), "updated_at": now, **person_columns(facts)}
        for i, facts in enumerate(member_facts)
    ])
    consent = {"id": new_id(), "household_id": household["id"], "recorded_by": actor.id, "recorded_at": now,
               **data.consent.model_dump()}
    audits = [audit.row(actor, action="create", entity_type="household", entity_id=household["id"], office_id=office_id,
                        details={"members": [str(m["id"]) for m in members]})]
    if overridden:
        audits.append(audit.row(actor, action="dedup_override", entity_type="household", entity_id=household["id"],
                                office_id=office_id, details={"duplicates": overridden}))
    if unlikely:
        audits.append(audit.row(actor, action="unlikely_confirmed", entity_type="household", entity_id=household["id"],
                                office_id=office_id, details={"warnings": unlikely}))
    # Attribute views of the rows, for the code that reads households and persons.
    registered = SimpleNamespace(**household, members=[SimpleNamespace(**m) for m in members])
    events = _registration_events(office_code, registered, registered.members)
    await insert_rows(session, (Household.__table__, [household]), (Person.__table__, members),
                      (ConsentRecord.__table__, [consent]), (AuditEvent.__table__, audits), (ActivityEvent.__table__, events))
    return await household_read(session, registered, consent=SimpleNamespace(**consent), office_code=office_code)


def _registration_events(office_code: str, household: Any, new_members: list[Any]) -> list[dict[str, Any]]:
    today = clock.today()
    head = head_of(household)
    events = []
    if len(new_members) == len(household.members):
        events.append(activity.event("household.registered", office_code=office_code, household_id=household.id,
                                     dimensions=activity.household_dimensions(household, today, head),
                                     size=len(household.members)))
    for person in new_members:
        events.append(activity.event("person.registered", office_code=office_code, household_id=household.id,
                                     person_id=person.id, dimensions=activity.person_dimensions(person, household, today, head)))
    return events


async def add_member(session: AsyncSession, actor: Principal, household_id: uuid.UUID, data: MemberAdd) -> PersonRead:
    household = await load_household(session, actor, household_id)
    if data.relationship is Relationship.head:
        raise InvalidInput("The household already has a head; add the member, then make them head with PATCH "
                           "/households/{id} and head_id.", field="#/relationship")
    if len(household.members) >= MAX_MEMBERS:
        raise InvalidInput(f"A household has at most {MAX_MEMBERS} members.", field="#")
    if data.national_id:
        await check_national_ids(session, actor, {"#/national_id": data.national_id})
    facts = data.model_dump(exclude={"confirm_new", "confirm_unlikely"})
    today = clock.today()
    head = head_of(household)
    unlikely = warnings_of([*plausibility.unlikely(facts, today), plausibility.large_household(len(household.members) + 1, ""),
                            plausibility.relative_to_head(facts, head_facts(head), today, "relationship") if head else None])
    stop_unless_confirmed(unlikely, data.confirm_unlikely)
    overridden = await _screen_duplicates(session, actor, [data], household.village_code, confirm_new=data.confirm_new,
                                          pointer="#", exclude_household=None)
    person = Person(household_id=household.id, office_id=household.office_id, village_code=household.village_code,
                    registered_by=actor.id, **person_columns(facts))
    session.add(person)
    household.updated_at = utcnow()  # the household's representation changed: new ETag
    await session.flush()
    set_committed_value(household, "members", [*household.members, person])
    audit.record(session, actor, action="create", entity_type="person", entity_id=person.id, office_id=household.office_id,
                 details={"household_id": str(household.id)})
    if overridden:
        audit.record(session, actor, action="dedup_override", entity_type="person", entity_id=person.id,
                     office_id=household.office_id, details={"duplicates": overridden})
    if unlikely:
        audit.record(session, actor, action="unlikely_confirmed", entity_type="person", entity_id=person.id,
                     office_id=household.office_id, details={"warnings": unlikely})
    office = await session.get(Office, household.office_id)
    session.add_all(ActivityEvent(**event) for event in _registration_events(office.code, household, [person]))
    return person_read(person, clock.today())


# ---- changing -------------------------------------------------------------------------------------


async def update_household(
    session: AsyncSession, actor: Principal, household_id: uuid.UUID, data: HouseholdUpdate, if_match: str | None
) -> HouseholdRead:
    household = await load_household(session, actor, household_id)
    check_if_match(if_match, household.version)
    changes = data.model_dump(exclude_unset=True, exclude={"confirm_unlikely"})
    unlikely = await _household_change_warnings(session, actor, household, data, changes)
    stop_unless_confirmed(unlikely, data.confirm_unlikely)
    changed: list[str] = []
    if "village_code" in changes:
        if data.village_code is None:
            raise InvalidInput("village_code cannot be cleared.", field="#/village_code")
        await require_village(session, data.village_code, field="#/village_code")
        household.village_code = data.village_code
        # The members carry the village for duplicate matching; not a change of their records (no new ETag).
        await session.execute(update(Person).where(Person.household_id == household.id)
                              .values(village_code=data.village_code).execution_options(synchronize_session=False))
        for member in household.members:
            set_committed_value(member, "village_code", data.village_code)
        changed.append("village_code")
    if "address" in changes:
        household.address = data.address
        changed.append("address")
    if "area_type" in changes:
        if data.area_type is None:
            raise InvalidInput("area_type cannot be cleared.", field="#/area_type")
        household.area_type = data.area_type
        changed.append("area_type")
    if "idpoor" in changes:
        idpoor = data.idpoor
        household.idpoor_level = idpoor.level if idpoor else None
        household.idpoor_card_number = idpoor.card_number if idpoor else None
        household.idpoor_valid_until = idpoor.valid_until if idpoor else None
        changed.append("idpoor")
    if changes.get("head_id") is not None:
        _change_head(household, data.head_id, data.former_head_relationship or Relationship.other_relative)
        changed.append("head")
    elif "former_head_relationship" in changes:
        raise InvalidInput("former_head_relationship goes with head_id.", field="#/former_head_relationship")
    if changed:
        household.updated_at = utcnow()
        await session.flush()
        audit.record(session, actor, action="update", entity_type="household", entity_id=household.id,
                     office_id=household.office_id, details={"fields": changed})
        if unlikely:
            audit.record(session, actor, action="unlikely_confirmed", entity_type="household", entity_id=household.id,
                         office_id=household.office_id, details={"warnings": unlikely})
        office = await session.get(Office, household.office_id)
        activity.emit(session, "household.updated", office_code=office.code, household_id=household.id,
                      dimensions=activity.household_dimensions(household, clock.today(), head_of(household)), fields=changed)
    return await household_read(session, household)


async def _household_change_warnings(session: AsyncSession, actor: Principal, household: Household,
                                     data: HouseholdUpdate, changes: dict[str, Any]) -> list[dict[str, str]]:
    """A new head too young to be one is refused; one under an adult's age, or an IDPoor card already on
    another household, is warned about."""
    found = []
    new_head = next((m for m in household.members if m.id == changes.get("head_id")), None)
    if new_head is not None and new_head.relationship != Relationship.head:
        facts = head_facts(new_head) | {"relationship": Relationship.head}
        today = clock.today()
        too_young = plausibility.impossible(facts, today, changed={"relationship"})
        if too_young:
            raise refuse([plausibility.Finding("head_id", f.detail) for f in too_young])
        found += warnings_of([plausibility.Finding("head_id", f.detail, f.code)
                              for f in plausibility.unlikely(facts, today, changed={"relationship"})])
    if data.idpoor is not None and data.idpoor.card_number not in (None, household.idpoor_card_number):
        found += warnings_of([await idpoor_card_elsewhere(session, actor, data.idpoor.card_number, household.id)])
    return found


def _change_head(household: Household, new_head_id: uuid.UUID, former_head_relationship: Relationship) -> None:
    new_head = next((m for m in household.members if m.id == new_head_id), None)
    if new_head is None:
        raise InvalidInput("head_id is not a member of this household.", field="#/head_id")
    if former_head_relationship is Relationship.head:
        raise InvalidInput("The former head cannot stay head.", field="#/former_head_relationship")
    old_head = head_of(household)
    if old_head is not None and old_head.id != new_head.id:
        old_head.relationship = former_head_relationship
    new_head.relationship = Relationship.head


async def change_consent(session: AsyncSession, actor: Principal, household_id: uuid.UUID, data: ConsentIn) -> ConsentRead:
    household = await load_household(session, actor, household_id)
    if ConsentPurpose.registry not in data.purposes:
        raise InvalidInput(
            "Consent to keep the record ('registry') cannot be withdrawn here; a supervisor closes the record instead.",
            field="#/purposes",
        )
    consent = ConsentRecord(household_id=household.id, recorded_by=actor.id, **data.model_dump())
    session.add(consent)
    household.updated_at = utcnow()
    await session.flush()
    audit.record(session, actor, action="consent_change", entity_type="household", entity_id=household.id,
                 office_id=household.office_id, details={"purposes": list(data.purposes), "method": data.method})
    office = await session.get(Office, household.office_id)
    activity.emit(session, "consent.changed", office_code=office.code, household_id=household.id,
                  dimensions=activity.household_dimensions(household, clock.today(), head_of(household)),
                  purposes=list(data.purposes))
    return ConsentRead.model_validate(consent)


async def consent_history(session: AsyncSession, actor: Principal, household_id: uuid.UUID) -> list[ConsentRecord]:
    household = await load_household(session, actor, household_id)
    rows = (await session.execute(
        select(ConsentRecord).where(ConsentRecord.household_id == household.id)
        .order_by(*consents.NEWEST_FIRST)
    )).scalars().all()
    audit.record(session, actor, action="read", entity_type="consent", entity_id=household.id, office_id=household.office_id)
    return list(rows)

