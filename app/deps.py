"""Request dependencies: the session of the request's unit of work, the settings, the scheme registry
and the caller."""

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Forbidden, Unauthenticated
from app.models import Office, User
from app.principal import Principal
from app.schemes.registry import SchemeRegistry
from app.security import InvalidToken, verify_token
from app.vocabulary import Role


# Both are `async def` so that FastAPI calls them in the event loop: a plain `def` dependency is run in
# the thread pool, a thread hop on every request for a dictionary lookup.
async def get_session(request: Request) -> AsyncSession:
    return request.state.session


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_schemes(request: Request) -> SchemeRegistry:
    return request.app.state.schemes


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# The scheme registry the app loaded at start-up (app.main), typed, so that routers never reach into app.state.
SchemesDep = Annotated[SchemeRegistry, Depends(get_schemes)]


async def client_address(request: Request) -> str:
    """Where the request comes from, as sign-in throttling counts it: the peer's address, which uvicorn
    takes from X-Forwarded-For only when the peer is a proxy it trusts (FORWARDED_ALLOW_IPS,
    docs/operations.md). An IPv6 address counts by its /64, the share one subscriber usually holds."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


ClientAddress = Annotated[str, Depends(client_address)]


def require_same_origin(request: Request) -> None:
    """A request that sets or uses the session cookie must come from Guichet's own pages: a browser
    names the page's origin on every POST (Origin, Sec-Fetch-Site), and another site's form or script
    is refused even if the cookie's SameSite=Strict were ignored (docs/sessions.md)."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    # Host names, not ports: a proxy's Host header ($host) drops the port the browser's Origin keeps.
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname
    if (origin is not None and urlsplit(origin).hostname != host) or site not in (None, "same-origin", "none"):
        raise Forbidden("The session cookie is only used by Guichet's own pages (same origin).")


_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

# Every request reads its user: one statement built once (columns, not the whole account with its
# password hash), so that SQLAlchemy neither rebuilds nor re-keys it each time.
_USER = (
    select(User.id, User.username, User.role, User.office_id, User.scheme_code, User.is_active, User.tokens_valid_after,
           Office.code.label("office_code"))
    .outerjoin(Office, Office.id == User.office_id)
    .where(User.id == bindparam("user_id"))
)


async def current_principal(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    if not token:
        raise Unauthenticated("Sign in first: send 'Authorization: Bearer <token>'.")
    try:
        claims = verify_token(settings, token)
    except InvalidToken:
        raise Unauthenticated("The token is invalid or expired; sign in again.") from None
    user = (await session.execute(_USER, {"user_id": claims.subject})).first()
    if user is None:
        raise Unauthenticated("The token's user no longer exists.")
    if not user.is_active or claims.issued_at < user.tokens_valid_after.timestamp() or claims.role != user.role:
        raise Unauthenticated("The token was revoked; sign in again.")
    principal = Principal(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        office_id=user.office_id,
        office_code=user.office_code,
        scheme_code=user.scheme_code,
    )
    request.state.principal = principal
    return principal


def require_roles(*roles: Role):
    allowed = frozenset(roles)

    async def _check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"The {principal.role} role may not do this.")
        return principal

    _check.allowed_roles = allowed  # read by the role-matrix test
    return Depends(_check)


CurrentUser = Annotated[Principal, Depends(current_principal)]
AdminUser = Annotated[Principal, require_roles(Role.admin)]
SupervisorUser = Annotated[Principal, require_roles(Role.admin, Role.supervisor)]
OfficeUser = Annotated[Principal, require_roles(Role.admin, Role.supervisor, Role.clerk)]
PartnerUser = Annotated[Principal, require_roles(Role.partner)]
MonitorUser = Annotated[Principal, require_roles(Role.admin, Role.monitor)]
PersonUser = Annotated[Principal, require_roles(Role.admin, Role.supervisor, Role.clerk, Role.monitor)]  # not service accounts
