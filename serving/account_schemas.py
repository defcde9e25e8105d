"""Request and response models of the accounts: users and tokens, portfolios and their transactions and
analytics, the GDPR export, the audit log and the admin's answers.

Request models list the fields a client may set and nothing else: anything more in a body (`role`, a
`user_id`, `created_at`) is ignored, never stored; a transaction's body, whose fields follow its kind, refuses
them instead.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
)

from stockyard.api_cache import CacheNamespace

Password = Annotated[str, Field(min_length=12, max_length=256, description="12 to 256 characters.")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Symbol = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}$")
]
# Strict: `true` or "12" is not an amount (an integer is).
Money = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False, strict=True)]


class Role(StrEnum):
    user = "user"
    admin = "admin"


class TransactionKind(StrEnum):
    buy = "buy"
    sell = "sell"
    dividend = "dividend"
    cash_in = "cash_in"
    cash_out = "cash_out"


# --- users and tokens ---------------------------------------------------------------------------------------


class Registration(BaseModel):
    email: EmailStr
    password: Password
    display_name: Name | None = None


class UserPublic(BaseModel):
    user_id: int
    email: str
    display_name: str | None
    role: Role
    is_active: bool
    created_at: dt.datetime


class UserUpdate(BaseModel):
    display_name: Name | None = None


class PasswordChange(BaseModel):
    current_password: Annotated[str, Field(max_length=256)]
    new_password: Password


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid for.")
    refresh_token: str = Field(description="Exchange it once at /auth/refresh for a new pair.")


class RefreshRequest(BaseModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


# --- portfolios ---------------------------------------------------------------------------------------------


class PortfolioCreate(BaseModel):
    name: Name


class PortfolioRename(BaseModel):
    name: Name


class PortfolioPublic(BaseModel):
    portfolio_id: int
    name: str
    version: int = Field(description="Changes with every change of the portfolio or its transactions.")
    created_at: dt.datetime
    updated_at: dt.datetime


def _written_as_a_date(value: object) -> object:
    # What the schema says (a YYYY-MM-DD string); pydantic alone would also read 0 as 1970-01-01.
    written = isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
    if not written and not isinstance(value, dt.date):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


TradeDate = Annotated[dt.date, BeforeValidator(_written_as_a_date), Field(description="Not after today.")]


class _TransactionFields(BaseModel):
    # A field of another kind (an amount on a buy, a symbol on a deposit) is refused, not dropped: the client
    # meant something this kind cannot record.
    model_config = ConfigDict(extra="forbid")

    trade_date: TradeDate
    fees: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False, strict=True)] = 0.0
    note: Annotated[str, Field(max_length=500)] | None = None

    def row(self) -> dict[str, Any]:
        """The transaction's columns, those of other kinds empty."""
        return {"symbol": None, "quantity": None, "price": None, "amount": None, **self.model_dump()}


class TradeCreate(_TransactionFields):
    kind: Literal["buy", "sell"]
    symbol: Symbol = Field(description="A symbol the warehouse knows.")
    quantity: Money = Field(description="Shares, as traded.")
    price: Money = Field(description="Per share, as traded.")


class DividendCreate(_TransactionFields):
    kind: Literal["dividend"]
    symbol: Symbol = Field(description="A symbol the warehouse knows.")
    amount: Money = Field(description="Cash received.")


class CashCreate(_TransactionFields):
    kind: Literal["cash_in", "cash_out"]
    amount: Money


# The fields a transaction takes follow its kind, in the schema too.
TransactionCreate = Annotated[TradeCreate | DividendCreate | CashCreate, Field(discriminator="kind")]
TRANSACTION_CREATE: TypeAdapter[TradeCreate | DividendCreate | CashCreate] = TypeAdapter(TransactionCreate)


class TransactionPublic(BaseModel):
    transaction_id: int
    kind: TransactionKind
    trade_date: dt.date
    symbol: str | None
    quantity: float | None
    price: float | None
    amount: float | None
    fees: float
    note: str | None
    created_at: dt.datetime


class ImportResult(BaseModel):
    imported: int
    portfolio: PortfolioPublic


class Position(BaseModel):
    symbol: str
    shares: float = Field(description="Shares held today: the splits since they were bought applied.")
    close: float | None = Field(description="The latest close (as traded); null without a price.")
    close_date: dt.date | None
    market_value: float | None
    weight: float | None = Field(description="Share of the holdings' value.")


class Positions(BaseModel):
    as_of: dt.date | None
    portfolio_id: int
    version: int
    cash: float
    deposited: float = Field(description="Money put in, including buys the cash did not cover.")
    withdrawn: float
    holdings_value: float
    total_value: float
    positions: list[Position]


class ValuePoint(BaseModel):
    date: dt.date
    holdings_value: float
    cash: float
    total_value: float
    flow: float = Field(description="Money put in (negative: taken out) that day.")
    cumulative_return: float = Field(description="Time-weighted, from the first day.")


class DrawdownOut(BaseModel):
    depth: float = Field(description="A return: -0.2 is a 20% fall from the peak.")
    peak_date: dt.date
    trough_date: dt.date
    recovery_date: dt.date | None


class Statistics(BaseModel):
    days: int = Field(description="Daily returns the statistics are made of.")
    total_return: float
    annual_return: float
    annual_volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: DrawdownOut
    beta: float | None = Field(description="Against the equal-weight market of every symbol.")
    alpha: float | None = Field(description="Annualized, against the same market.")
    value_at_risk_95: float = Field(description="Historical daily VaR at 95%, negative for a loss.")
    conditional_value_at_risk_95: float


class Concentration(BaseModel):
    herfindahl: float
    effective_holdings: float
    top_n: int
    top_n_weight: float


class PortfolioAnalytics(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": "Valued at closes as traded with the shares held after each split."}
    )

    as_of: dt.date | None
    data_source: str
    portfolio_id: int
    version: int
    value_history: list[ValuePoint]
    statistics: Statistics | None = Field(description="Null until there are two days of returns.")
    correlation: dict[str, dict[str, float | None]] | None = Field(
        description="Of the held symbols' daily returns; null with fewer than two held."
    )
    sector_exposure: dict[str, float] = Field(description="Weight per sector, of the holdings today.")
    concentration: Concentration | None


# --- GDPR, audit, admin -------------------------------------------------------------------------------------


class DataExport(BaseModel):
    exported_at: dt.datetime
    user: UserPublic
    data: dict[str, list[dict[str, Any]]] = Field(description="Every row of the user's, per table.")


class AuditEntry(BaseModel):
    audit_id: int
    occurred_at: dt.datetime
    user_id: int | None
    pseudonym: str | None = Field(description="Stands for a deleted user.")
    action: str
    target: str | None
    result: Literal["success", "denied", "failed"]
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before_id: int | None = Field(description="Pass as before_id for the next (older) page.")


class FailedRun(BaseModel):
    run_id: str = Field(description="The Dagster run: open it in the Dagster UI at /runs/{run_id}.")
    job_name: str
    failed_at: dt.datetime
    error: str
    step_keys: list[str] = Field(description="The steps that failed; empty when the run failed to start.")


class UserAdminUpdate(BaseModel):
    is_active: StrictBool | None = None  # `0` is not `false`
    role: Role | None = None


class CacheStatistics(BaseModel):
    redis_available: bool
    redis_keys: int | None = Field(description="Keys under the API's prefix; null when Redis is down.")
    redis_used_memory_bytes: int | None
    memory_tier_entries: int = Field(description="In this worker's memory tier.")
    memory_tier_bytes: int


class CachePurge(BaseModel):
    namespace: CacheNamespace | None = Field(description="The route family cleared; null: the whole cache.")
    deleted_keys: int


class SymbolAdd(BaseModel):
    symbol: Symbol = Field(description="Fetched from the next ingestion on, listed or not by the provider.")


class SymbolOverride(BaseModel):
    symbol: str
    tracked: bool = Field(description="True: added to the provider's universe; false: retired.")
    changed_by: int | None = Field(description="The admin who last changed it (null once deleted).")
    changed_at: dt.datetime


class RefreshLaunched(BaseModel):
    run_id: str
    job: str
