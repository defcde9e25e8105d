"""/ws: live updates over a websocket, the recommendations' refreshes and the signed-in user's hits.

The access token comes in the first message, `{"type": "auth", "token": "<access token>"}`, within
AUTH_SECONDS of connecting: not in the URL, where proxies and access logs would keep it, and browsers cannot
set an Authorization header on a websocket. The token is checked as every request's is (serving.auth:
signature, algorithm, audience, issuer, expiry, and an account still active whose password has not changed
since); a refusal closes with code 4401 and the reason. The server then answers `{"type": "ready", ...}`
and pushes `{"type": "hit", ...}` and `{"type": "recommendations.refreshed", ...}` messages (stockyard.live).
It closes the connection (4401 again) when the token expires, unless the client sent a newer token of the
same user as another `auth` message before then. Anything else a client sends is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import MutableMapping
from typing import Any, cast

import jwt
from fastapi import APIRouter, HTTPException, Request, WebSocket

from serving.audit import audit_of
from serving.auth import read_access_token, user_by_id
from serving.deps import Services
from serving.live import LiveHub

router = APIRouter(tags=["live updates"])

AUTH_SECONDS = 10.0
# Closing codes in the private range: 4401 mirrors HTTP 401 (sign in again), 4429 HTTP 429.
REFUSED = 4401
TOO_MANY = 4429
MAX_MESSAGE_CHARS = 8192


class Refused(Exception):
    """The token is missing, invalid, expired or no longer valid; the message says which."""


async def _authenticate(services: Services, message: MutableMapping[str, Any]) -> tuple[int, float]:
    """(user id, expiry as a Unix time) of the token an `auth` message carries."""
    text = message.get("text")
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise Refused('send {"type": "auth", "token": "<access token>"} as a text message')
    try:
        body = json.loads(text)
    except ValueError:
        raise Refused("the auth message is not JSON") from None
    if not isinstance(body, dict) or body.get("type") != "auth" or not isinstance(body.get("token"), str):
        raise Refused('the first message must be {"type": "auth", "token": "<access token>"}')
    token: str = body["token"]
    try:
        claims = read_access_token(services.settings, token)
    except jwt.InvalidTokenError as error:
        raise Refused(f"invalid access token: {error}") from None
    # Verified just above; read again only for its expiry, which AccessClaims leaves out.
    expires_at = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    async with services.engine.connect() as conn:
        user = await user_by_id(conn, claims.user_id)
    if (
        user is None
        or not user.is_active
        or user.password_changed_at.timestamp() != claims.password_changed_at
    ):
        raise Refused("the access token is no longer valid: sign in again")
    return user.user_id, expires_at


async def _refuse(websocket: WebSocket, reason: str) -> None:
    # The audit reads what it needs (client, headers, state) from any connection, a websocket's too.
    await audit_of(cast(Request, websocket)).record(
        "auth.websocket", result="denied", detail={"reason": reason}
    )
    await websocket.close(code=REFUSED, reason=reason[:120])


@router.websocket("/ws", name="live_updates")
async def live_updates(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    hub: LiveHub = websocket.app.state.live_hub
    try:
        await services.limiter.limit_ip(cast(Request, websocket))
    except HTTPException as error:
        await websocket.close(code=TOO_MANY, reason=str(error.detail)[:120])
        return
    await websocket.accept()
    try:
        async with asyncio.timeout(AUTH_SECONDS):
            first = await websocket.receive()
    except TimeoutError:
        await _refuse(websocket, f"no auth message within {AUTH_SECONDS:g} s")
        return
    if first["type"] == "websocket.disconnect":
        return
    try:
        user_id, expires_at = await _authenticate(services, first)
    except Refused as refused:
        await _refuse(websocket, str(refused))
        return

    hub.add(user_id, websocket)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AUTH_SECONDS):
                await hub.subscribed.wait()
        await websocket.send_json(
            {
                "type": "ready",
                "user_id": user_id,
                "expires_at": int(expires_at),
                "live": hub.subscribed.is_set(),
            }
        )
        while True:
            remaining = expires_at - time.time()
            if remaining <= 0:
                await websocket.close(code=REFUSED, reason="the access token expired: connect with a new one")
                return
            try:
                async with asyncio.timeout(remaining):
                    message = await websocket.receive()
            except TimeoutError:
                continue
            if message["type"] == "websocket.disconnect":
                return
            expires_at = await _renewed(services, message, user_id, expires_at)
    finally:
        hub.remove(user_id, websocket)


async def _renewed(
    services: Services,
    message: MutableMapping[str, Any],
    user_id: int,
    expires_at: float,
) -> float:
    """The later expiry of a newer token of the same user sent as an `auth` message; else `expires_at`."""
    text = message.get("text")
    if not isinstance(text, str) or '"auth"' not in text:
        return expires_at
    try:
        renewed_user, renewed_expiry = await _authenticate(services, message)
    except Refused:
        return expires_at
    return max(expires_at, renewed_expiry) if renewed_user == user_id else expires_at
