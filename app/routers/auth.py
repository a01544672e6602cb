from typing import Annotated, Literal

from fastapi import Cookie, Form, Request, Response

from app.deps import ClientAddress, CurrentUser, PersonUser, SessionDep, SettingsDep, require_same_origin
from app.errors import BadRequest
from app.routers import api_router
from app.schemas.registry import MeRead, PasswordChange, TokenResponse
from app.services import auth, users

router = api_router(tags=["auth"])

FormText = Annotated[str | None, Form(max_length=128)]
FormName = Annotated[str | None, Form(max_length=64)]  # no username or client id is longer
FormRefreshToken = Annotated[str | None, Form(max_length=64)]  # 43 characters as issued
# The browser's refresh token (docs/sessions.md): HttpOnly, so the page's scripts never see it, and sent
# only to the token and sign-out routes.
REFRESH_COOKIE = "guichet_refresh"
COOKIE_PATH = "/api/v1/auth"
RefreshCookie = Annotated[str | None, Cookie(alias=REFRESH_COOKIE, max_length=64, include_in_schema=False)]
NO_STORE = {"Cache-Control": "no-store"}  # RFC 6749 5.1: tokens are never cached


def _set_refresh_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(REFRESH_COOKIE, token, max_age=max_age, path=COOKIE_PATH, secure=True, httponly=True,
                        samesite="strict")


def _clear_refresh_cookie(response: Response) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")


@router.post("/auth/token", response_model=TokenResponse, response_model_exclude_none=True,
             responses={415: {"description": "The body is not a form"},
                        429: {"description": "Too many failed sign-ins: wait Retry-After seconds"}})
async def issue_token(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    source: ClientAddress,
    grant_type: Annotated[Literal["password", "client_credentials", "refresh_token"], Form()],
    username: FormName = None,
    password: FormText = None,
    client_id: FormName = None,
    client_secret: FormText = None,
    refresh_token: FormRefreshToken = None,
    refresh_token_delivery: Annotated[Literal["body", "cookie"], Form(
        description="`cookie`: the refresh token goes in an HttpOnly cookie, not the body (browsers).")] = "body",
    scope: Annotated[str | None, Form(max_length=200)] = None,
    cookie: RefreshCookie = None,
) -> TokenResponse:
    """OAuth2 token endpoint (form-encoded): `password` grant for people, `client_credentials` for
    service accounts (partner schemes, office relays), `refresh_token` to renew a person's session with
    the refresh token of the last answer (or the session cookie), which is then used up (docs/sessions.md)."""
    delivery = refresh_token_delivery
    if grant_type == "refresh_token":
        if not refresh_token:
            refresh_token, delivery = cookie, "cookie"  # the browser's: renewed in the cookie again
        if not refresh_token:
            raise BadRequest("The refresh_token grant needs refresh_token (or the session cookie).")
    elif grant_type == "password":
        if not username or not password:
            raise BadRequest("The password grant needs username and password.")
    elif not client_id or not client_secret:
        raise BadRequest("The client_credentials grant needs client_id and client_secret.")
    if delivery == "cookie":  # before a token is used up or a password counted
        require_same_origin(request)
    sessionmaker = request.app.state.sessionmaker
    if grant_type == "refresh_token":
        tokens = await auth.refresh(session, sessionmaker, settings, refresh_token=refresh_token)
    elif grant_type == "password":
        tokens = await auth.sign_in(session, sessionmaker, settings, username=username, password=password, source=source,
                                    service_account=False)
    else:
        tokens = await auth.sign_in(session, sessionmaker, settings, username=client_id, password=client_secret,
                                    source=source, service_account=True)
    response.headers.update(NO_STORE)
    body = TokenResponse(access_token=tokens.access_token, expires_in=tokens.expires_in,
                         refresh_token=tokens.refresh_token, refresh_expires_in=tokens.refresh_expires_in)
    if tokens.refresh_token is not None and delivery == "cookie":
        _set_refresh_cookie(response, tokens.refresh_token, tokens.refresh_expires_in)
        body.refresh_token = None
    return body


@router.post("/auth/revoke", response_class=Response, responses={
    200: {"description": "The refresh token's session has ended (or the token was unknown: RFC 7009)"},
    415: {"description": "The body is not a form"}})
async def revoke(
    request: Request,
    session: SessionDep,
    token: FormRefreshToken = None,
    cookie: RefreshCookie = None,
) -> Response:
    """Sign out (RFC 7009): the session of the refresh token in `token`, or of the session cookie, ends,
    and the cookie is cleared. The access token still works until it expires; forget it."""
    if token is None:
        if cookie is None:
            raise BadRequest("Send the refresh token (form field token) or the session cookie.")
        require_same_origin(request)
    await auth.revoke(session, refresh_token=token if token is not None else cookie)
    response = Response(status_code=200, headers=NO_STORE)
    _clear_refresh_cookie(response)
    return response


@router.post("/auth/password", status_code=204, response_class=Response, responses={
    422: {"description": "The current password is wrong, or the new one is not allowed"},
    429: {"description": "Too many wrong current passwords: wait Retry-After seconds"}})
async def change_password(
    request: Request, session: SessionDep, settings: SettingsDep, actor: PersonUser, body: PasswordChange,
    source: ClientAddress,
) -> Response:
    """Change your own password (people; service accounts' secrets are reset by an administrator). Every
    token and session of yours ends, this one too: sign in again with the new password."""
    await auth.change_password(session, request.app.state.sessionmaker, settings, actor,
                               current_password=body.current_password.get_secret_value(),
                               new_password=body.new_password.get_secret_value(), source=source)
    response = Response(status_code=204)
    _clear_refresh_cookie(response)
    return response


@router.get("/auth/me", response_model=MeRead)
async def me(session: SessionDep, principal: CurrentUser) -> MeRead:
    user, office_code = await users.get_user(session, principal.id)
    return MeRead(id=user.id, username=user.username, full_name=user.full_name, role=user.role,
                  office_code=office_code, scheme_code=user.scheme_code)
