"""At registration, a clerk asks an external registry (DCI) what it knows of a person by national ID.

The answer is only offered: name, birth date, sex and the household's IDPoor level go back to the
clerk, who confirms them by registering or changing the person with the usual routes; nothing in
Guichet's registry is written here. A registry that is down, slow or refusing answers `unavailable`
or `rejected` quickly (its own timeout), never an error, so registration goes on without it. An
async registry answers later on our `/registry/on-search`; the lookup is `pending` until then."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.dci import records, signing
from app.dci.client import RegistryRejected, RegistryUnavailable, registry_client, search_records
from app.dci.envelope import ERR_BAD_REQUEST, ERR_SENDER_ID, Rejected, new_id
from app.principal import Principal
from app.errors import InvalidInput
from app.models import DciLookup
from app.models.base import utcnow
from app.schemas.dci import LookupCandidate, RegistryLookupCreate, RegistryLookupRead
from app.services import audit
from app.services.scoping import load_scoped

ON_SEARCH_PATH = "/dci/client/registry/on-search"


def _read(lookup: DciLookup) -> RegistryLookupRead:
    return RegistryLookupRead(id=lookup.id, registry=lookup.registry_code, national_id=lookup.national_id,
                              status=lookup.status, candidate=LookupCandidate(**lookup.candidate) if lookup.candidate else None,
                              message=lookup.message, created_at=lookup.created_at, answered_at=lookup.answered_at)


def _settle(lookup: DciLookup, found: list[dict[str, Any]]) -> None:
    match = records.candidate(found, lookup.national_id)
    lookup.status = "found" if match else "not_found"
    lookup.candidate = LookupCandidate(**match).model_dump(mode="json") if match else None
    lookup.message = None if match else "The registry has no person with this national ID."
    lookup.answered_at = utcnow()


async def look_up(session: AsyncSession, settings: Settings, actor: Principal, data: RegistryLookupCreate) -> RegistryLookupRead:
    code = data.registry or settings.dci_lookup_registry
    if code is None or code not in settings.dci_registries:
        known = ", ".join(sorted(settings.dci_registries)) or "none is configured"
        raise InvalidInput(f"There is no registry {code!r} to ask (GUICHET_DCI_REGISTRIES: {known}).", field="#/registry")
    client = registry_client(settings, code)
    # The call may take seconds: it must not hold the request's transaction (on SQLite, the write lock).
    if session.in_transaction():
        await session.commit()
    lookup = DciLookup(id=uuid.uuid4(), office_id=actor.office_id, requested_by=actor.id, registry_code=code,
                       national_id=data.national_id, transaction_id=new_id(), status="pending", created_at=utcnow())
    try:
        if client.config.mode == "sync":
            _settle(lookup, await client.search(lookup.transaction_id, data.national_id))
        else:
            base = (settings.dci_public_url or "").rstrip("/")
            await client.search_async(lookup.transaction_id, data.national_id, base + ON_SEARCH_PATH)
            lookup.message = "Asked; the registry answers later."
    except RegistryUnavailable as exc:
        lookup.status, lookup.message, lookup.answered_at = "unavailable", f"The registry could not answer: {exc}"[:300], utcnow()
    except RegistryRejected as exc:
        lookup.status, lookup.message, lookup.answered_at = "rejected", f"The registry refused: {exc.message}"[:300], utcnow()
    session.add(lookup)
    await session.flush()
    audit.record(session, actor, action="read", entity_type="registry_lookup", entity_id=lookup.id, office_id=actor.office_id,
                 details={"registry": code, "status": lookup.status})
    return _read(lookup)


async def get_lookup(session: AsyncSession, actor: Principal, lookup_id: uuid.UUID) -> RegistryLookupRead:
    lookup = await load_scoped(session, actor, DciLookup, lookup_id, missing="There is no such registry lookup.")
    audit.record(session, actor, action="read", entity_type="registry_lookup", entity_id=lookup.id, office_id=lookup.office_id)
    return _read(lookup)


async def on_search(session: AsyncSession, settings: Settings, body: Any) -> str:
    """A registry's async answer: checked (its keys), then the lookup it answers is settled. Returns the
    correlation id to acknowledge."""
    header = body.get("header") if isinstance(body, dict) else None
    if not isinstance(header, dict) or header.get("action") != "on-search":
        raise Rejected(ERR_BAD_REQUEST, "The body is a DCI message {signature, header, message} with action on-search.")
    sender = header.get("sender_id")
    code = next((c for c, r in settings.dci_registries.items() if sender in (c, r.receiver_id)), None)
    if code is None:
        raise Rejected(ERR_SENDER_ID, "No registry of ours has this sender_id.")
    registry = settings.dci_registries[code]
    # Our callback has no bearer token: the registry's signature, by its pinned keys, is what proves it.
    signing.verify(body, registry.jwks, required=True)
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    lookup = (await session.execute(select(DciLookup).where(
        DciLookup.transaction_id == str(message.get("transaction_id"))[:64], DciLookup.registry_code == code))).scalar_one_or_none()
    if lookup is None:
        raise Rejected(ERR_BAD_REQUEST, "No lookup of ours has this transaction_id.")
    if lookup.status == "pending":
        try:
            _settle(lookup, search_records(message, lookup.transaction_id))
        except RegistryRejected as exc:
            lookup.status, lookup.message, lookup.answered_at = "rejected", f"The registry refused: {exc.message}"[:300], utcnow()
        except RegistryUnavailable as exc:
            raise Rejected(ERR_BAD_REQUEST, str(exc)) from None
    return str(message.get("correlation_id") or new_id())[:99]
