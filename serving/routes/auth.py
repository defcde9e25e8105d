"""/auth: register, sign in (OAuth2 password flow), exchange a refresh token, sign out, change the password.

Every attempt is in the audit log, whatever its result.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from serving.account_schemas import PasswordChange, RefreshRequest, Registration, TokenPair, UserPublic
from serving.audit import AuditDep
from serving.auth import (
    CurrentUser,
    User,
    hash_password,
    issue_access_token,
    new_refresh_token,
    refresh_token_hash,
    unauthorized,
    user_by_id,
    verify_password,
)
from serving.deps import ServicesDep
from serving.ratelimit import limit_by_ip
from serving.repositories import accounts
from serving.schemas import ErrorDetail

router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(limit_by_ip)])

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Wrong credentials, or a token that is invalid or used up."},
    429: {"model": ErrorDetail, "description": "Too many attempts; `Retry-After` says when to try again."},
}


async def _issue(services: Any, conn: Any, user: User, family_id: uuid.UUID | None = None) -> TokenPair:
    settings = services.settings
    token, token_hash = new_refresh_token()
    await accounts.store_refresh_token(
        conn,
        token_hash=token_hash,
        user_id=user.user_id,
        family_id=family_id or uuid.uuid4(),
        days=settings.refresh_token_days,
    )
    return TokenPair(
        access_token=issue_access_token(settings, user),
        expires_in=settings.access_token_minutes * 60,
        refresh_token=token,
    )


@router.post(
    "/register",
    response_model=UserPublic,
    status_code=201,
    responses={409: {"model": ErrorDetail, "description": "The email has an account already."}},
    summary="Create an account (role 'user')",
)
async def register(body: Registration, audit: AuditDep) -> UserPublic:
    password_hash = await hash_password(body.password)
    async with audit.write("auth.register") as write:
        user = await accounts.create_user(
            write.conn, email=str(body.email), password_hash=password_hash, display_name=body.display_name
        )
        if user is None:
            raise HTTPException(409, "an account with this email exists already")
        write.user_id, write.target = user.user_id, f"user:{user.user_id}"
    return UserPublic(**{name: getattr(user, name) for name in UserPublic.model_fields})


@router.post("/token", response_model=TokenPair, responses=UNAUTHORIZED, summary="Sign in: a token pair")
async def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    services: ServicesDep,
    audit: AuditDep,
) -> TokenPair:
    """The OAuth2 password flow: `username` is the account's email. The access token goes in
    `Authorization: Bearer ...`; the refresh token gets the next pair at /auth/refresh."""
    await services.limiter.limit_login(request, form.username)
    async with services.engine.connect() as conn:
        found = await accounts.user_by_email(conn, form.username.strip())
    user, password_hash = found if found is not None else (None, None)
    if not await verify_password(password_hash, form.password) or user is None or not user.is_active:
        await audit.record(
            "auth.login",
            result="denied",
            user_id=user.user_id if user is not None else None,
            detail={
                "reason": "disabled account"
                if user is not None and user.is_active is False
                else "wrong email or password"
            },
        )
        raise unauthorized("wrong email or password, or a disabled account")
    async with audit.write("auth.login", target=f"user:{user.user_id}") as write:
        write.user_id = user.user_id
        return await _issue(services, write.conn, user)


@router.post("/refresh", response_model=TokenPair, responses=UNAUTHORIZED, summary="Exchange a refresh token")
async def refresh(body: RefreshRequest, services: ServicesDep, audit: AuditDep) -> TokenPair:
    """Each refresh token works once. Presenting one already exchanged revokes every token of its sign-in."""
    async with audit.write("auth.refresh") as write:
        stored = await accounts.refresh_token(write.conn, refresh_token_hash(body.refresh_token))
        if stored is None:
            raise unauthorized("unknown refresh token")
        write.user_id = user_id = int(stored["user_id"])  # type: ignore[call-overload]
        family_id: uuid.UUID = stored["family_id"]  # type: ignore[assignment]
        if stored["revoked_at"] is not None:
            raise unauthorized("the refresh token was revoked: sign in again")
        if stored["rotated_at"] is not None:
            # Reuse: whoever holds the newer tokens of this sign-in may be a thief. The revocation commits;
            # the entry says the refresh was denied.
            await accounts.revoke_family(write.conn, family_id)
            write.result, write.detail = "denied", {"reason": "reuse of a rotated token: its sign-in revoked"}
            pair = None
        else:
            expires_at: datetime = stored["expires_at"]  # type: ignore[assignment]
            if expires_at <= datetime.now(UTC):
                raise unauthorized("the refresh token has expired: sign in again")
            user = await user_by_id(write.conn, user_id)
            if user is None or not user.is_active:
                raise unauthorized("the account is disabled")
            await accounts.mark_rotated(write.conn, str(stored["token_hash"]))
            pair = await _issue(services, write.conn, user, family_id)
    if pair is None:
        raise unauthorized("the refresh token was used already: every token of its sign-in is revoked")
    return pair


@router.post("/logout", status_code=204, responses=UNAUTHORIZED, summary="Sign out: revoke the refresh token")
async def logout(body: RefreshRequest, audit: AuditDep) -> Response:
    """Revokes the refresh token and every token rotated from the same sign-in."""
    async with audit.write("auth.logout") as write:
        stored = await accounts.refresh_token(write.conn, refresh_token_hash(body.refresh_token))
        if stored is None:
            raise unauthorized("unknown refresh token")
        write.user_id = int(stored["user_id"])  # type: ignore[call-overload]
        await accounts.revoke_family(write.conn, stored["family_id"])  # type: ignore[arg-type]
    return Response(status_code=204)


@router.post(
    "/password",
    response_model=TokenPair,
    responses=UNAUTHORIZED,
    summary="Change the password: every earlier token stops working",
)
async def change_password(
    body: PasswordChange, user: CurrentUser, services: ServicesDep, audit: AuditDep
) -> TokenPair:
    async with services.engine.connect() as conn:
        current_hash = await accounts.password_hash_of(conn, user.user_id)
    if not await verify_password(current_hash, body.current_password):
        await audit.record(
            "auth.password_change", result="denied", detail={"reason": "wrong current password"}
        )
        raise unauthorized("the current password is wrong")
    new_hash = await hash_password(body.new_password)
    async with audit.write("auth.password_change", target=f"user:{user.user_id}") as write:
        changed = await accounts.set_password(write.conn, user.user_id, new_hash)
        assert changed is not None
        return await _issue(services, write.conn, changed)
