"""/admin (the admin role only): users, the tracked symbols, the audit log, the response cache, and launching
a data refresh.

The refresh launches the Dagster job through the webserver's GraphQL API over HTTP: the API never imports
Dagster.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from redis.exceptions import RedisError
from sqlalchemy import select

from serving.account_schemas import (
    AuditEntry,
    AuditPage,
    CachePurge,
    CacheStatistics,
    FailedRun,
    RefreshLaunched,
    SymbolAdd,
    SymbolOverride,
    UserAdminUpdate,
    UserPublic,
)
from serving.audit import AuditDep
from serving.auth import AdminUser, user_by_id
from serving.deps import ServicesDep, SymbolPath
from serving.ratelimit import limit_by_ip
from serving.repositories import accounts, symbol_overrides
from serving.routes.me import public
from serving.schemas import ErrorDetail
from stockyard.api_cache import CacheNamespace, purge_api_cache
from stockyard.calendar import latest_closed_session
from stockyard.db.catalogue import audit_log, run_failures

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(limit_by_ip)])
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Not signed in."},
    403: {"model": ErrorDetail, "description": "Not an admin."},
}
UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# What a 503 for an orchestrator that does not answer tells the admin to wait (Retry-After): a webserver
# restart's worth.
ORCHESTRATOR_RETRY_AFTER_SECONDS = 30

# The code location (workspace.yaml's location_name) and its one repository, whose job the refresh launches.
DAGSTER_LOCATION = "stockyard"
DAGSTER_REPOSITORY = "__repository__"
# Launches a partition of a job; the answer's __typename says how it went.
LAUNCH_RUN = """
mutation LaunchRun($location: String!, $repository: String!, $job: String!, $partition: String!) {
  launchPipelineExecution(
    executionParams: {
      selector: {repositoryLocationName: $location, repositoryName: $repository, jobName: $job}
      runConfigData: {}
      executionMetadata: {tags: [{key: "dagster/partition", value: $partition}]}
    }
  ) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


@router.get("/users", response_model=list[UserPublic], responses=ADMIN_ONLY, summary="Every user")
async def list_users(
    admin: AdminUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[UserPublic]:
    async with services.engine.connect() as conn:
        return [public(user) for user in await accounts.list_users(conn, limit=limit, offset=offset)]


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses={
        **ADMIN_ONLY,
        404: {"model": ErrorDetail, "description": "No such user."},
        409: {"model": ErrorDetail, "description": "An admin cannot disable or demote itself."},
    },
    summary="Disable or enable a user, or change its role",
)
async def update_user(
    user_id: UserId, body: UserAdminUpdate, admin: AdminUser, audit: AuditDep
) -> UserPublic:
    """A disabled user's tokens stop working at once, and its refresh tokens are revoked."""
    changes = body.model_dump(exclude_none=True)
    if user_id == admin.user_id and (changes.get("is_active") is False or changes.get("role") == "user"):
        # Refused so that an admin always remains to undo it.
        raise HTTPException(409, "an admin cannot disable or demote itself")
    async with audit.write("admin.user_update", target=f"user:{user_id}") as write:
        write.detail = dict(changes)
        updated = (
            await accounts.update_user(write.conn, user_id, **changes)
            if changes
            else await user_by_id(write.conn, user_id)
        )
        if updated is None:
            raise HTTPException(404, f"no user {user_id}")
        if changes.get("is_active") is False:
            await accounts.revoke_user_tokens(write.conn, user_id)
    return public(updated)


@router.get(
    "/symbols",
    response_model=list[SymbolOverride],
    responses=ADMIN_ONLY,
    summary="The symbols admins added to or retired from the provider's universe",
)
async def list_symbol_overrides(admin: AdminUser, services: ServicesDep) -> list[SymbolOverride]:
    async with services.engine.connect() as conn:
        return [SymbolOverride(**row) for row in await symbol_overrides.list_overrides(conn)]


@router.post(
    "/symbols",
    response_model=SymbolOverride,
    status_code=201,
    responses=ADMIN_ONLY,
    summary="Track a symbol: the next ingestion fetches it",
)
async def add_symbol(body: SymbolAdd, admin: AdminUser, audit: AuditDep) -> SymbolOverride:
    async with audit.write("admin.symbol_add", target=f"symbol:{body.symbol}") as write:
        row = await symbol_overrides.set_tracked(
            write.conn, body.symbol, tracked=True, changed_by=admin.user_id
        )
    return SymbolOverride(**row)


@router.delete(
    "/symbols/{symbol}",
    response_model=SymbolOverride,
    responses={**ADMIN_ONLY, 404: {"model": ErrorDetail, "description": "Not a tracked symbol."}},
    summary="Retire a symbol: the next ingestions stop fetching it; its history is kept",
)
async def retire_symbol(symbol: SymbolPath, admin: AdminUser, audit: AuditDep) -> SymbolOverride:
    symbol = symbol.upper()
    async with audit.write("admin.symbol_retire", target=f"symbol:{symbol}") as write:
        if not await symbol_overrides.is_known(write.conn, symbol):
            raise HTTPException(404, f"{symbol} is neither in the warehouse's universe nor added by an admin")
        row = await symbol_overrides.set_tracked(write.conn, symbol, tracked=False, changed_by=admin.user_id)
    return SymbolOverride(**row)


@router.get("/audit", response_model=AuditPage, responses=ADMIN_ONLY, summary="The audit log, newest first")
async def audit_entries(
    admin: AdminUser,
    services: ServicesDep,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only this user's.")] = None,
    action: Annotated[str | None, Query(max_length=100, description="Only this action.")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Older than this entry.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    statement = select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit)
    if user_id is not None:
        statement = statement.where(audit_log.c.user_id == user_id)
    if action is not None:
        statement = statement.where(audit_log.c.action == action)
    if before_id is not None:
        statement = statement.where(audit_log.c.audit_id < before_id)
    async with services.engine.connect() as conn:
        rows = [dict(row) for row in (await conn.execute(statement)).mappings()]
    items = [
        AuditEntry(
            **{
                **row,
                "pseudonym": str(row["pseudonym"]) if row["pseudonym"] else None,
                "client_ip": str(row["client_ip"]) if row["client_ip"] else None,
            }
        )
        for row in rows
    ]
    return AuditPage(items=items, next_before_id=items[-1].audit_id if len(items) == limit else None)


@router.get(
    "/runs/failed",
    response_model=list[FailedRun],
    responses=ADMIN_ONLY,
    summary="Recent failed Dagster runs, newest first, as the run-failure sensor recorded them",
)
async def failed_runs(
    admin: AdminUser, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[FailedRun]:
    statement = select(run_failures).order_by(run_failures.c.failed_at.desc()).limit(limit)
    async with services.engine.connect() as conn:
        return [FailedRun(**row) for row in (await conn.execute(statement)).mappings()]


@router.get("/cache", response_model=CacheStatistics, responses=ADMIN_ONLY, summary="The response cache")
async def cache_statistics(admin: AdminUser, services: ServicesDep) -> CacheStatistics:
    cache = services.cache
    keys = used_memory = None
    try:
        keys = 0
        async for _ in cache.redis.scan_iter(match=f"{cache.prefix}:*", count=1000):
            keys += 1
        used_memory = int((await cache.redis.info("memory"))["used_memory"])
        available = True
    except RedisError:
        keys, available = None, False
    return CacheStatistics(
        redis_available=available,
        redis_keys=keys,
        redis_used_memory_bytes=used_memory,
        memory_tier_entries=len(cache.memory),
        memory_tier_bytes=cache.memory.bytes,
    )


@router.post(
    "/cache/purge",
    response_model=CachePurge,
    responses={**ADMIN_ONLY, 503: {"model": ErrorDetail, "description": "Redis does not answer."}},
    summary="Clear the API's response cache, or one namespace of it",
)
async def purge_cache(
    admin: AdminUser,
    services: ServicesDep,
    audit: AuditDep,
    namespace: Annotated[
        CacheNamespace | None, Query(description="Only the answers of this route family; all when absent.")
    ] = None,
) -> CachePurge:
    """Every worker stops serving the old answers within its state refresh (the purge generation, the whole
    cache's or the namespace's, changes)."""
    settings = services.settings
    detail: dict[str, object] = {"namespace": namespace.value if namespace else None}
    try:
        deleted = await asyncio.to_thread(
            purge_api_cache, settings.redis_url, prefix=settings.cache_prefix, namespace=namespace
        )
    except RedisError as error:
        await audit.record("admin.cache_purge", result="failed", detail={**detail, "reason": str(error)})
        raise HTTPException(503, f"Redis does not answer: {error}") from None
    if namespace is None:
        services.cache.memory.clear()
    await services.state.refresh()
    await audit.record("admin.cache_purge", result="success", detail={**detail, "deleted_keys": deleted})
    return CachePurge(namespace=namespace, deleted_keys=deleted)


@router.post(
    "/refresh",
    response_model=RefreshLaunched,
    status_code=202,
    responses={
        **ADMIN_ONLY,
        502: {"model": ErrorDetail, "description": "Dagster answered, but not with a launched run."},
        503: {
            "model": ErrorDetail,
            "description": "The orchestrator is unavailable (its webserver does not answer); `Retry-After` "
            "says when to try again.",
        },
    },
    summary="Launch the data refresh (the Dagster job)",
)
async def launch_refresh(admin: AdminUser, services: ServicesDep, audit: AuditDep) -> RefreshLaunched:
    settings = services.settings
    job = settings.refresh_job
    # The trading day that closed last: the partition a schedule's tick would ask for now.
    partition = latest_closed_session(datetime.now(UTC)).isoformat()
    variables = {
        "location": DAGSTER_LOCATION,
        "repository": DAGSTER_REPOSITORY,
        "job": job,
        "partition": partition,
    }
    try:
        async with httpx.AsyncClient(base_url=settings.dagster_webserver_url, timeout=10) as client:
            answer = await client.post("/graphql", json={"query": LAUNCH_RUN, "variables": variables})
    except httpx.TransportError as error:
        # Not running, restarting or hung: a dependency down, not a fault of this request or of the API.
        await audit.record("admin.refresh", result="failed", detail={"job": job, "reason": str(error)})
        raise HTTPException(
            503,
            f"the orchestrator is unavailable: the Dagster webserver at {settings.dagster_webserver_url} "
            f"does not answer ({error or type(error).__name__})",
            headers={"Retry-After": str(ORCHESTRATOR_RETRY_AFTER_SECONDS)},
        ) from None
    try:
        answer.raise_for_status()
        launched = answer.json()["data"]["launchPipelineExecution"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        await audit.record("admin.refresh", result="failed", detail={"job": job, "reason": str(error)})
        raise HTTPException(
            502, f"the Dagster webserver at {settings.dagster_webserver_url} failed: {error}"
        ) from None
    if launched.get("__typename") != "LaunchRunSuccess":
        reason = launched.get("message") or str(launched.get("errors") or launched.get("__typename"))
        await audit.record("admin.refresh", result="failed", detail={"job": job, "reason": reason})
        raise HTTPException(502, f"Dagster did not launch {job}: {reason}")
    run_id = str(launched["run"]["runId"])
    await audit.record(
        "admin.refresh", result="success", target=f"run:{run_id}", detail={"job": job, "partition": partition}
    )
    return RefreshLaunched(run_id=run_id, job=job)
