"""Users and their refresh tokens in app.users and app.refresh_tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.auth import User, user_columns
from stockyard.db.catalogue import refresh_tokens, users


async def user_by_email(conn: AsyncConnection, email: str) -> tuple[User, str] | None:
    """The user and its password hash."""
    row = (
        (
            await conn.execute(
                select(*user_columns(), users.c.password_hash).where(users.c.email == email.lower())
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    values = dict(row)
    password_hash = values.pop("password_hash")
    return User(**values), password_hash


async def password_hash_of(conn: AsyncConnection, user_id: int) -> str | None:
    return (await conn.execute(select(users.c.password_hash).where(users.c.user_id == user_id))).scalar()


async def create_user(
    conn: AsyncConnection, *, email: str, password_hash: str, display_name: str | None
) -> User | None:
    """The new user (role 'user'), or None when the email is taken."""
    statement = (
        pg_insert(users)
        .values(email=email.lower(), password_hash=password_hash, display_name=display_name)
        .on_conflict_do_nothing(index_elements=[users.c.email])
        .returning(*user_columns())
    )
    row = (await conn.execute(statement)).mappings().first()
    return User(**row) if row is not None else None


async def update_user(conn: AsyncConnection, user_id: int, **values: object) -> User | None:
    statement = update(users).where(users.c.user_id == user_id).values(**values).returning(*user_columns())
    row = (await conn.execute(statement)).mappings().first()
    return User(**row) if row is not None else None


async def set_password(conn: AsyncConnection, user_id: int, password_hash: str) -> User | None:
    """New hash; every access and refresh token issued before stops working."""
    user = await update_user(
        conn, user_id, password_hash=password_hash, password_changed_at=func.clock_timestamp()
    )
    await revoke_user_tokens(conn, user_id)
    return user


async def list_users(conn: AsyncConnection, *, limit: int, offset: int) -> list[User]:
    statement = select(*user_columns()).order_by(users.c.user_id).limit(limit).offset(offset)
    return [User(**row) for row in (await conn.execute(statement)).mappings()]


async def store_refresh_token(
    conn: AsyncConnection, *, token_hash: str, user_id: int, family_id: uuid.UUID, days: int
) -> None:
    await conn.execute(
        insert(refresh_tokens).values(
            token_hash=token_hash,
            user_id=user_id,
            family_id=family_id,
            expires_at=datetime.now(UTC) + timedelta(days=days),
        )
    )


async def refresh_token(conn: AsyncConnection, token_hash: str) -> dict[str, object] | None:
    """The stored token, locked until the transaction ends (two exchanges of one token are serialized)."""
    statement = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
    row = (await conn.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def mark_rotated(conn: AsyncConnection, token_hash: str) -> None:
    await conn.execute(
        update(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).values(rotated_at=func.now())
    )


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def revoke_user_tokens(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
