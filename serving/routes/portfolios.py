"""/portfolios: a user's portfolios, their transactions (one by one or from a broker's CSV file), positions
at the latest close and analytics.

Another user's portfolio answers 404, as one that does not exist: ids reveal nothing. Every change is
checked against the whole ledger (stockyard.analytics.ledger) and bumps the portfolio's version, which keys
its cached analytics together with the data date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, UploadFile
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from serving import portfolio_analytics
from serving.account_schemas import (
    ImportResult,
    PortfolioAnalytics,
    PortfolioCreate,
    PortfolioPublic,
    PortfolioRename,
    Position,
    Positions,
    TransactionCreate,
    TransactionPublic,
)
from serving.audit import AuditDep
from serving.auth import CurrentUser, User
from serving.broker_csv import CsvProblems, parse_transactions
from serving.database import within
from serving.deps import Services, ServicesDep
from serving.ratelimit import limit_by_ip
from serving.repositories import portfolios as repository
from serving.schemas import ErrorDetail
from serving.state import DataState
from stockyard.analytics.ledger import LedgerConflict, LedgerError, Splits, check_ledger
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/portfolios", tags=["portfolios"], dependencies=[Depends(limit_by_ip)])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Not signed in."},
    404: {"model": ErrorDetail, "description": "No such portfolio (or transaction) of yours."},
}
PortfolioId = Annotated[int, Path(ge=1, le=2**63 - 1)]
TransactionId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# What a schema-valid transaction may still break, which only the warehouse and the ledger know.
REFUSED_TRANSACTION: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorDetail,
        "description": "The rest of the ledger refuses it: it sells more shares than held on its date (or "
        "makes a later sale do so), or takes out more cash than held.",
    },
    422: {
        "model": ErrorDetail,
        "description": "Malformed, dated after today, or naming a symbol the warehouse does not know.",
    },
}
MAX_CSV_BYTES = 1024 * 1024


def _public(row: dict[str, Any]) -> PortfolioPublic:
    return PortfolioPublic(**row)


def _state(services: Services) -> DataState:
    state = services.state.current
    if state is None or state.as_of is None:
        raise HTTPException(503, "the warehouse cannot be reached or holds no prices yet")
    return state


def _symbols(transactions: list[dict[str, Any]]) -> list[str]:
    """The symbols a ledger's transactions name."""
    return sorted({row["symbol"] for row in transactions if row["symbol"]})


async def _owned(
    conn: AsyncConnection, user: User, portfolio_id: int, *, lock: bool = False
) -> dict[str, Any]:
    found = await repository.portfolio(conn, user_id=user.user_id, portfolio_id=portfolio_id, lock=lock)
    if found is None:
        raise HTTPException(404, f"no portfolio {portfolio_id} of yours")
    return found


@router.get("", response_model=list[PortfolioPublic], responses=NOT_FOUND, summary="Your portfolios")
async def list_portfolios(user: CurrentUser, services: ServicesDep) -> list[PortfolioPublic]:
    async with services.engine.connect() as conn:
        return [_public(row) for row in await repository.list_portfolios(conn, user.user_id)]


@router.post(
    "",
    response_model=PortfolioPublic,
    status_code=201,
    responses={**NOT_FOUND, 409: {"model": ErrorDetail, "description": "You have a portfolio of that name."}},
    summary="Create a portfolio",
)
async def create_portfolio(body: PortfolioCreate, user: CurrentUser, audit: AuditDep) -> PortfolioPublic:
    async with audit.write("portfolio.create") as write:
        try:
            async with write.conn.begin_nested():
                created = await repository.create_portfolio(write.conn, user_id=user.user_id, name=body.name)
        except IntegrityError:
            raise HTTPException(409, f"you have a portfolio named {body.name!r} already") from None
        write.target = f"portfolio:{created['portfolio_id']}"
    return _public(created)


@router.get("/{portfolio_id}", response_model=PortfolioPublic, responses=NOT_FOUND, summary="One portfolio")
async def get_portfolio(
    portfolio_id: PortfolioId, user: CurrentUser, services: ServicesDep
) -> PortfolioPublic:
    async with services.engine.connect() as conn:
        return _public(await _owned(conn, user, portfolio_id))


@router.patch(
    "/{portfolio_id}",
    response_model=PortfolioPublic,
    responses={**NOT_FOUND, 409: {"model": ErrorDetail, "description": "You have a portfolio of that name."}},
    summary="Rename a portfolio",
)
async def rename_portfolio(
    portfolio_id: PortfolioId, body: PortfolioRename, user: CurrentUser, audit: AuditDep
) -> PortfolioPublic:
    async with audit.write("portfolio.rename", target=f"portfolio:{portfolio_id}") as write:
        await _owned(write.conn, user, portfolio_id, lock=True)
        try:
            async with write.conn.begin_nested():
                renamed = await repository.change_portfolio(write.conn, portfolio_id, name=body.name)
        except IntegrityError:
            raise HTTPException(409, f"you have a portfolio named {body.name!r} already") from None
        write.detail = {"name": body.name}
    return _public(renamed)


@router.delete("/{portfolio_id}", status_code=204, responses=NOT_FOUND, summary="Delete a portfolio")
async def delete_portfolio(portfolio_id: PortfolioId, user: CurrentUser, audit: AuditDep) -> Response:
    """Deletes the portfolio with its transactions."""
    async with audit.write("portfolio.delete", target=f"portfolio:{portfolio_id}") as write:
        await _owned(write.conn, user, portfolio_id, lock=True)
        await repository.delete_portfolio(write.conn, portfolio_id)
    return Response(status_code=204)


@router.get(
    "/{portfolio_id}/transactions",
    response_model=list[TransactionPublic],
    responses=NOT_FOUND,
    summary="A portfolio's transactions, by date",
)
async def list_transactions(
    portfolio_id: PortfolioId, user: CurrentUser, services: ServicesDep
) -> list[TransactionPublic]:
    async with services.engine.connect() as conn:
        await _owned(conn, user, portfolio_id)
        return [TransactionPublic(**row) for row in await repository.list_transactions(conn, portfolio_id)]


async def _add(
    conn: AsyncConnection, services: Services, portfolio_id: int, new: list[tuple[str, TransactionCreate]]
) -> list[dict[str, Any]]:
    """Check `new` (reference, transaction) against the symbols and the whole ledger, then store them."""
    known = _state(services).symbol_sources
    rows = [item.row() for _, item in new]
    unknown = [
        f"{reference}: unknown symbol {row['symbol']}"
        for (reference, _), row in zip(new, rows, strict=True)
        if row["symbol"] and row["symbol"] not in known
    ]
    if unknown:
        raise HTTPException(422, "; ".join(unknown[:20]))
    existing = await repository.list_transactions(conn, portfolio_id)
    candidates = existing + [
        {**row, "reference": reference} for row, (reference, _) in zip(rows, new, strict=True)
    ]
    splits = await repository.splits(conn, _symbols(candidates))
    try:
        check_ledger(repository.entries(candidates), today=datetime.now(UTC).date(), splits=splits)
    except LedgerConflict as error:
        raise HTTPException(409, str(error)) from None
    except LedgerError as error:
        raise HTTPException(422, str(error)) from None
    stored = await repository.add_transactions(conn, portfolio_id, rows)
    await repository.change_portfolio(conn, portfolio_id)
    return stored


@router.post(
    "/{portfolio_id}/transactions",
    response_model=TransactionPublic,
    status_code=201,
    responses={**NOT_FOUND, **REFUSED_TRANSACTION},
    summary="Record a transaction",
)
async def add_transaction(
    portfolio_id: PortfolioId,
    body: TransactionCreate,
    user: CurrentUser,
    services: ServicesDep,
    audit: AuditDep,
) -> TransactionPublic:
    """Refused (422) when it is dated after today or names an unknown symbol; refused (409) when it sells
    more than held on its date (or makes a later sale do so), or takes out more cash than held."""
    async with audit.write("transaction.create", target=f"portfolio:{portfolio_id}") as write:
        await _owned(write.conn, user, portfolio_id, lock=True)
        (stored,) = await _add(write.conn, services, portfolio_id, [("the transaction", body)])
        write.detail = {"transaction_id": stored["transaction_id"], "kind": body.kind}
    return TransactionPublic(**stored)


@router.post(
    "/{portfolio_id}/transactions/import",
    response_model=ImportResult,
    status_code=201,
    responses={
        **NOT_FOUND,
        409: REFUSED_TRANSACTION[409],
        413: {"model": ErrorDetail, "description": "The file is larger than 1 MiB."},
        422: {
            "model": ErrorDetail,
            "description": "Every bad line, by number: the file's content is CSV a schema cannot describe.",
        },
    },
    summary="Import transactions from a broker's CSV file",
)
async def import_transactions(
    portfolio_id: PortfolioId,
    file: UploadFile,
    user: CurrentUser,
    services: ServicesDep,
    audit: AuditDep,
) -> ImportResult:
    """Columns by name: date, action (buy, sell, dividend, deposit, withdrawal), symbol, quantity, price,
    fees, amount. All or nothing: one bad line imports none, and the answer lists every bad line."""
    async with audit.write("transaction.import", target=f"portfolio:{portfolio_id}") as write:
        await _owned(write.conn, user, portfolio_id, lock=True)
        content = await file.read(MAX_CSV_BYTES + 1)
        if len(content) > MAX_CSV_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_CSV_BYTES // 1024} KiB: split it")
        try:
            parsed = parse_transactions(content.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise HTTPException(422, "the file is not UTF-8 text") from None
        except CsvProblems as problems:
            raise HTTPException(422, str(problems)) from None
        stored = await _add(
            write.conn, services, portfolio_id, [(f"line {line}", item) for line, item in parsed]
        )
        write.detail = {"imported": len(stored)}
        portfolio = await _owned(write.conn, user, portfolio_id)
    return ImportResult(imported=len(stored), portfolio=_public(portfolio))


@router.delete(
    # `:int` leaves .../transactions/import to its own route: a DELETE there answers 405, not 422.
    "/{portfolio_id}/transactions/{transaction_id:int}",
    status_code=204,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorDetail, "description": "The ledger without it would break a rule."},
    },
    summary="Delete a transaction",
)
async def delete_transaction(
    portfolio_id: PortfolioId, transaction_id: TransactionId, user: CurrentUser, audit: AuditDep
) -> Response:
    """Refused (409) when the ledger without it breaks a rule (a later sale of shares it bought)."""
    async with audit.write("transaction.delete", target=f"portfolio:{portfolio_id}") as write:
        write.detail = {"transaction_id": transaction_id}
        await _owned(write.conn, user, portfolio_id, lock=True)
        if not await repository.delete_transaction(
            write.conn, portfolio_id=portfolio_id, transaction_id=transaction_id
        ):
            raise HTTPException(404, f"no transaction {transaction_id} in portfolio {portfolio_id}")
        remaining = await repository.list_transactions(write.conn, portfolio_id)
        splits = await repository.splits(write.conn, _symbols(remaining))
        try:
            check_ledger(repository.entries(remaining), today=datetime.now(UTC).date(), splits=splits)
        except LedgerError as error:
            raise HTTPException(409, f"without transaction {transaction_id}: {error}") from None
        await repository.change_portfolio(write.conn, portfolio_id)
    return Response(status_code=204)


@router.get(
    "/{portfolio_id}/positions",
    response_model=Positions,
    responses=NOT_FOUND,
    summary="What the portfolio holds, valued at the latest close",
)
async def positions(portfolio_id: PortfolioId, user: CurrentUser, services: ServicesDep) -> Positions:
    state = _state(services)
    async with services.engine.connect() as conn:
        portfolio = await _owned(conn, user, portfolio_id)
        transactions = await repository.list_transactions(conn, portfolio_id)
        splits = await repository.splits(conn, _symbols(transactions))
        holdings = check_ledger(
            repository.entries(transactions), today=datetime.now(UTC).date(), splits=splits
        )
        symbols = sorted(holdings.shares)
        closes = await repository.latest_closes(conn, symbols) if symbols else {}
    values = {symbol: holdings.shares[symbol] * closes[symbol][1] for symbol in symbols if symbol in closes}
    holdings_value = sum(values.values())
    return Positions(
        as_of=state.as_of,
        portfolio_id=portfolio_id,
        version=portfolio["version"],
        cash=holdings.cash,
        deposited=holdings.deposited,
        withdrawn=holdings.withdrawn,
        holdings_value=holdings_value,
        total_value=holdings_value + holdings.cash,
        positions=[
            Position(
                symbol=symbol,
                shares=holdings.shares[symbol],
                close=closes[symbol][1] if symbol in closes else None,
                close_date=closes[symbol][0] if symbol in closes else None,
                market_value=values.get(symbol),
                weight=values[symbol] / holdings_value if symbol in values and holdings_value > 0 else None,
            )
            for symbol in symbols
        ],
    )


@router.get(
    "/{portfolio_id}/analytics",
    response_model=PortfolioAnalytics,
    responses=NOT_FOUND,
    summary="Value history, returns, risk, beta and alpha, VaR, correlation, sectors, concentration",
)
async def analytics(
    portfolio_id: PortfolioId, request: Request, user: CurrentUser, services: ServicesDep
) -> Response:
    """Time-weighted returns from the first transaction to the data date (deposits and withdrawals are not
    returns), on closes as traded times the shares held after each split; beta and alpha against the
    equal-weight market of every symbol. Cached per portfolio version and data date."""
    state = _state(services)
    async with services.engine.connect() as conn:
        portfolio = await _owned(conn, user, portfolio_id)

    async def load() -> bytes:
        async def compute() -> PortfolioAnalytics:
            async with services.engine.connect() as conn:
                transactions = await repository.list_transactions(conn, portfolio_id)
                ledger = repository.entries(transactions)
                symbols = _symbols(transactions)
                closes, market, sectors = pd.DataFrame(), pd.Series(dtype="float64"), {}
                splits: Splits = {}
                if ledger and state.as_of is not None:
                    start = min(entry.trade_date for entry in ledger)
                    closes = await repository.close_panel(conn, symbols, start=start, end=state.as_of)
                    splits = await repository.splits(conn, symbols)
                    market = await repository.market_returns(conn, start=start, end=state.as_of)
                    sectors = await repository.sectors(conn, symbols)
            return portfolio_analytics.analytics(
                ledger,
                closes,
                splits,
                market,
                sectors,
                as_of=state.as_of,
                data_source=state.data_source,
                portfolio_id=portfolio_id,
                version=portfolio["version"],
            )

        model = await within(
            services.settings.request_deadline_seconds, compute(), what="portfolio analytics"
        )
        return model.model_dump_json().encode()

    key = services.cache.key(
        state, CacheNamespace.portfolio_analytics, f"{portfolio_id}|{portfolio['version']}"
    )
    answer = await services.cache.fetch(key, load)
    # Private: never kept by a shared cache, nor by the memory tier's URL aliases (which skip routing).
    return Response(
        answer.body.plain,
        media_type="application/json",
        headers={"Cache-Control": "private, no-store", "X-Cache": answer.outcome},
    )
