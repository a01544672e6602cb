from typing import Annotated, Literal

from fastapi import Form, Request

from app.deps import ClientAddress, CurrentUser, SessionDep, SettingsDep
from app.errors import BadRequest
from app.routers import api_router
from app.schemas.registry import MeRead, TokenResponse
from app.services import auth, users

router = api_router(tags=["auth"])

FormText = Annotated[str | None, Form(max_length=128)]
FormName = Annotated[str | None, Form(max_length=64)]  # no username or client id is longer


@router.post("/auth/token", response_model=TokenResponse, responses={
    415: {"description": "The body is not a form"},
    429: {"description": "Too many failed sign-ins: wait Retry-After seconds"}})
async def issue_token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    source: ClientAddress,
    grant_type: Annotated[Literal["password", "client_credentials"], Form()],
    username: FormName = None,
    password: FormText = None,
    client_id: FormName = None,
    client_secret: FormText = None,
    scope: Annotated[str | None, Form(max_length=200)] = None,
) -> TokenResponse:
    """OAuth2 token endpoint (form-encoded): `password` grant for people, `client_credentials` for
    service accounts (partner schemes, office relays)."""
    if grant_type == "password":
        if not username or not password:
            raise BadRequest("The password grant needs username and password.")
        name, secret = username, password
    else:
        if not client_id or not client_secret:
            raise BadRequest("The client_credentials grant needs client_id and client_secret.")
        name, secret = client_id, client_secret
    token, expires_in = await auth.sign_in(
        session, request.app.state.sessionmaker, settings, username=name, password=secret, source=source,
        service_account=grant_type == "client_credentials",
    )
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.get("/auth/me", response_model=MeRead)
async def me(session: SessionDep, principal: CurrentUser) -> MeRead:
    user, office_code = await users.get_user(session, principal.id)
    return MeRead(id=user.id, username=user.username, full_name=user.full_name, role=user.role,
                  office_code=office_code, scheme_code=user.scheme_code)
