"""Scheme catalogue: every scheme this office screens for, its rules and messages, partner health."""

from typing import Annotated

from fastapi import Path, Query, Response

from app.deps import CurrentUser, SchemesDep
from app.i18n import current_language
from app.routers import api_router
from app.schemas.screening import SchemeCode, SchemeDetail, SchemeSummary
from app.services import schemes

router = api_router(tags=["schemes"])

Language = Annotated[str | None, Query(pattern=r"^[a-z]{2,3}$", description="Messages in this language when the scheme has "
                                      "them (else English); by default the one Accept-Language chose.")]


@router.get("/schemes", response_model=list[SchemeSummary])
async def list_schemes(registry: SchemesDep, response: Response, actor: CurrentUser, lang: Language = None) -> list[SchemeSummary]:
    """Every scheme, with the rules version in force today and, for partner schemes, the circuit
    breaker's state and the last call's latency."""
    return schemes.list_schemes(registry, language=_chosen(lang, response))


@router.get("/schemes/{code}", response_model=SchemeDetail)
async def get_scheme(registry: SchemesDep, response: Response, actor: CurrentUser, code: Annotated[SchemeCode, Path()],
                     lang: Language = None) -> SchemeDetail:
    """A scheme's versions, parameters (UNVERIFIED figures flagged), rules and their plain-language messages."""
    return schemes.get_scheme(registry, code, language=_chosen(lang, response))


def _chosen(lang: str | None, response: Response) -> str:
    """`lang` overrides Accept-Language for the scheme's words (an older way to ask); the answer says which."""
    if lang is None:
        return current_language()
    response.headers["Content-Language"] = lang
    return lang
