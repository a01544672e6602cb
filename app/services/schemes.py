"""The scheme catalogue as the API shows it: what each scheme is, its rules and messages, and the
health of partner schemes. No personal data, so nothing to audit."""

from app import clock
from app.errors import NotFound
from app.schemas.screening import SchemeDetail, SchemeHealthRead, SchemeSummary
from app.schemes.base import SchemeAdapter, can_submit, say
from app.schemes.facts import fact_spec
from app.schemes.registry import SchemeRegistry


def _summary(adapter: SchemeAdapter, language: str) -> dict:
    meta = adapter.metadata
    version = meta.version_on(clock.today())
    health = adapter.health()
    return {
        "code": meta.code, "name": meta.name_in(language), "kind": meta.kind, "level": meta.level.value, "agency": meta.agency_in(language),
        "legal_reference": meta.legal_reference, "adapter": meta.adapter, "in_force": version is not None,
        "rules_version": version.version if version else None,
        "effective_from": version.effective_from if version else None, "effective_to": version.effective_to if version else None,
        "facts": list(meta.facts), "sources": list(meta.sources), "description": say(meta.description, language),
        "service_level_days": meta.service_level_days, "can_submit": can_submit(adapter),
        "health": SchemeHealthRead.model_validate(health, from_attributes=True) if health is not None else None,
    }


def list_schemes(registry: SchemeRegistry, *, language: str = "en") -> list[SchemeSummary]:
    return [SchemeSummary(**_summary(a, language)) for a in registry]


def get_scheme(registry: SchemeRegistry, code: str, *, language: str = "en") -> SchemeDetail:
    adapter = registry.get(code)
    if adapter is None:
        raise NotFound(f"There is no scheme {code}.")
    described = adapter.describe(language) or {}
    return SchemeDetail(
        **_summary(adapter, language), versions=described.get("versions", []), partner=described.get("partner"),
        fact_catalogue={name: spec.description for name in adapter.metadata.facts if (spec := fact_spec(name))},
    )
