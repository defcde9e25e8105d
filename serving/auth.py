"""Who is calling: argon2 password hashes, short-lived JWT access tokens, rotating refresh tokens, and the
`CurrentUser` and `AdminUser` dependencies of every route that acts for someone.

Access tokens are HS256 JWTs signed with the settings' secret, with issuer, audience, issue and expiry times
all required; any other algorithm (`none` included) is refused. Each names its user and the time of the
user's last password change: a change (or a disabled account) ends every access token issued before it, as
the user is read on each request anyway. Refresh tokens are random strings of which only a SHA-256 is kept;
each is exchanged once for a new pair (rotation), and presenting one already exchanged revokes its whole
family (every token descended from that sign-in), as it means one of them was stolen.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.audit import audit_of
from serving.deps import API_PREFIX, Services
from serving.settings import ApiSettings
from stockyard.db.catalogue import users

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
# argon2id with the library's defaults (RFC 9106's low-memory choice); hashes keep their own parameters.
_hasher = PasswordHasher()
bearer = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)


@dataclass(frozen=True)
class User:
    user_id: int
    email: str
    display_name: str | None
    role: str
    is_active: bool
    password_changed_at: datetime
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# --- passwords ----------------------------------------------------------------------------------------------


async def hash_password(password: str) -> str:
    # Deliberately slow (tens of ms of CPU): off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; an unknown user (None) costs the same time as a wrong password."""
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _unknown_user_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _unknown_user_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


# --- tokens -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    password_changed_at: float


def issue_access_token(settings: ApiSettings, user: User, *, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(user.user_id),
        "pwd": user.password_changed_at.timestamp(),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.access_token_minutes)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def read_access_token(settings: ApiSettings, token: str) -> AccessClaims:
    """The claims of a valid access token; jwt.InvalidTokenError (saying why) for any other."""
    claims = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=[ALGORITHM],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": REQUIRED_CLAIMS},
    )
    try:
        return AccessClaims(user_id=int(claims["sub"]), password_changed_at=float(claims["pwd"]))
    except (KeyError, TypeError, ValueError) as error:
        raise jwt.InvalidTokenError(f"malformed claims: {error}") from None


def new_refresh_token() -> tuple[str, str]:
    """(the token for the client, the hash kept of it)."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_hash(token)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- dependencies -------------------------------------------------------------------------------------------


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def user_by_id(conn: AsyncConnection, user_id: int) -> User | None:
    row = (await conn.execute(select(*user_columns()).where(users.c.user_id == user_id))).mappings().first()
    return User(**row) if row is not None else None


def user_columns() -> list[Column[Any]]:
    return [users.c[name] for name in User.__dataclass_fields__]


async def current_user(request: Request, token: Annotated[str | None, Depends(bearer)]) -> User:
    """The signed-in, active user the bearer token names: 401 for a missing, invalid or outdated token."""
    services: Services = request.app.state.services
    if token is None:
        raise unauthorized("not signed in: send 'Authorization: Bearer <access token>' (see /auth/token)")
    try:
        claims = read_access_token(services.settings, token)
    except jwt.InvalidTokenError as error:
        await audit_of(request).record("auth.token", result="denied", detail={"reason": str(error)})
        raise unauthorized(f"invalid access token: {error}") from None
    async with services.engine.connect() as conn:
        user = await user_by_id(conn, claims.user_id)
    if (
        user is None
        or not user.is_active
        or user.password_changed_at.timestamp() != claims.password_changed_at
    ):
        await audit_of(request).record(
            "auth.token", result="denied", detail={"reason": "account gone, disabled or password changed"}
        )
        raise unauthorized("the access token is no longer valid: sign in again")
    request.state.user_id = user.user_id
    await services.limiter.limit_user(user.user_id)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(403, "this needs the admin role")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
