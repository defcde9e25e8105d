"""Response models: what the API promises, never table rows. Each response says what data it is from."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from stockyard.features import served_features


class Adjustment(StrEnum):
    adjusted = "adjusted"
    raw = "raw"


class Interval(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


class Action(StrEnum):
    buy = "buy"
    hold = "hold"
    sell = "sell"


class Provenance(BaseModel):
    as_of: dt.date | None = Field(description="The data date: the latest trading date the warehouse holds.")
    data_source: str = Field(
        description="'synthetic' when the sample provider generated the data, else the providers' names."
    )


class ModelProvenance(Provenance):
    model_version: str | None = Field(description="The model version that produced the figures.")


# --- health ---------------------------------------------------------------------------------------------


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ready", "degraded", "unavailable"] = Field(
        description="'unavailable': PostgreSQL does not answer or holds no prices. 'degraded': prices are "
        "served, but no model has been promoted yet (the model endpoints answer 503) or Redis does not "
        "answer (responses come uncached)."
    )
    postgres: bool = Field(description="A new connection to the warehouse answered in time.")
    prices: bool = Field(description="The marts hold prices (see latest_data_date).")
    latest_data_date: dt.date | None
    models: bool = Field(description="A model has been promoted (see champion_models).")
    champion_models: dict[str, str] = Field(description="Champion version per registered model.")
    recommendations_date: dt.date | None
    redis: bool


# --- stocks ---------------------------------------------------------------------------------------------


class Stock(BaseModel):
    symbol: str
    company_name: str | None
    sector: str | None
    industry: str | None
    market_cap: float | None
    currency: str | None
    exchange: str | None
    first_date: dt.date | None = Field(description="First trading date with a price.")
    last_date: dt.date | None = Field(description="Latest trading date with a price.")


class LatestPrice(BaseModel):
    date: dt.date
    close: float | None = Field(description="Close as traded.")
    adj_close: float = Field(description="Close adjusted for splits and dividends.")
    volume: float | None
    change_1d: float | None = Field(description="Adjusted close minus the previous trading day's.")
    return_1d: float | None


class StockPage(Provenance):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2024-06-28",
                    "data_source": "synthetic",
                    "total": 110,
                    "limit": 1,
                    "offset": 0,
                    "items": [
                        {
                            "symbol": "ALD",
                            "company_name": "Alida Apparel Co.",
                            "sector": "Consumer Discretionary",
                            "industry": "Textiles, Apparel & Luxury Goods",
                            "market_cap": 10619248150.0,
                            "currency": "USD",
                            "exchange": "XNYS",
                            "first_date": "2019-01-02",
                            "last_date": "2024-06-28",
                        }
                    ],
                }
            ]
        }
    )

    total: int = Field(description="Stocks matching the filters, over all pages.")
    limit: int
    offset: int
    items: list[Stock]


class StockMatch(Stock):
    match: Literal["symbol", "symbol_prefix", "name"]


class StockSearch(Provenance):
    query: str
    items: list[StockMatch]


class TopStocks(Provenance):
    items: list[Stock] = Field(description="Largest market cap first.")


class StockDetail(Provenance):
    stock: Stock
    latest_price: LatestPrice | None


class Sector(BaseModel):
    sector: str
    symbols_count: int = Field(description="Symbols of the sector trading on the date.")
    total_market_cap: float | None
    mean_return_1d: float | None = Field(description="Equal-weight mean daily return.")
    advancers_share: float | None = Field(description="Share of the symbols whose price rose.")


class Sectors(Provenance):
    date: dt.date | None
    items: list[Sector]


# --- prices ---------------------------------------------------------------------------------------------


class PriceBar(BaseModel):
    date: dt.date = Field(description="The trading date; for a week or month, its last trading date.")
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None


class PriceSeries(BaseModel):
    symbol: str
    bars: list[PriceBar]


class Prices(Provenance):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2024-06-28",
                    "data_source": "synthetic",
                    "symbol": "ALD",
                    "adjustment": "adjusted",
                    "interval": "weekly",
                    "start": "2024-06-17",
                    "end": "2024-06-28",
                    "bars": [
                        {
                            "date": "2024-06-21",
                            "open": 41.2,
                            "high": 43.9,
                            "low": 40.8,
                            "close": 43.1,
                            "volume": 5120000,
                        },
                        {
                            "date": "2024-06-28",
                            "open": 43.0,
                            "high": 44.2,
                            "low": 42.5,
                            "close": 42.9,
                            "volume": 4870000,
                        },
                    ],
                }
            ]
        }
    )

    symbol: str
    adjustment: Adjustment
    interval: Interval
    start: dt.date
    end: dt.date
    bars: list[PriceBar]


class BulkPrices(Provenance):
    adjustment: Adjustment
    interval: Interval
    start: dt.date
    end: dt.date
    series: list[PriceSeries] = Field(description="One series per symbol asked for, in the order asked.")


class SymbolLatestPrice(LatestPrice):
    symbol: str


class BulkLatestPrices(Provenance):
    items: list[SymbolLatestPrice] = Field(description="In the order asked; symbols without prices left out.")


# --- recommendations ------------------------------------------------------------------------------------


class Contribution(BaseModel):
    feature: str
    value: float | None = None
    contribution: float


class Recommendation(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    date: dt.date
    symbol: str
    company_name: str | None
    sector: str | None
    rank: int = Field(description="1 is the best; contiguous within a date.")
    score: float
    percentile: float
    expected_excess_return: float
    confidence: float
    action: Action
    top_contributions: list[Contribution] = Field(description="Largest absolute contribution first.")
    model_name: str
    model_version: str
    data_date: dt.date


class RecommendationList(ModelProvenance):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2024-06-28",
                    "data_source": "synthetic",
                    "model_version": "3",
                    "model_name": "stockyard-xgboost",
                    "date": "2024-06-28",
                    "total": 110,
                    "items": [
                        {
                            "date": "2024-06-28",
                            "symbol": "ALD",
                            "company_name": "Alida Apparel Co.",
                            "sector": "Consumer Discretionary",
                            "rank": 1,
                            "score": 0.0123,
                            "percentile": 1.0,
                            "expected_excess_return": 0.0041,
                            "confidence": 0.71,
                            "action": "buy",
                            "top_contributions": [
                                {"feature": "return_21d_rank", "value": 0.93, "contribution": 0.0021}
                            ],
                            "model_name": "stockyard-xgboost",
                            "model_version": "3",
                            "data_date": "2024-06-28",
                        }
                    ],
                }
            ]
        },
    )

    model_name: str | None
    date: dt.date
    total: int = Field(description="Recommendations of the date matching the filters (before the limit).")
    items: list[Recommendation]


class RecommendationHistory(ModelProvenance):
    symbol: str
    items: list[Recommendation] = Field(description="Newest first.")


# --- models ---------------------------------------------------------------------------------------------


class BacktestSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    backtest_id: int
    model_version: str
    start_date: dt.date
    end_date: dt.date
    top_k: int
    rebalance_days: int
    cost_bps: float
    annual_return: float
    annual_volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    turnover: float
    hit_rate: float
    benchmark_annual_return: float
    excess_annual_return: float
    data_date: dt.date


class ModelVersion(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    family: str
    version: str
    alias: Literal["champion", "challenger"]
    run_id: str
    run_url: str
    evaluation_start: dt.date
    evaluation_end: dt.date
    metrics: dict[str, float | None]
    promotion_reason: str
    registered_at: dt.datetime
    data_source: str
    latest_backtest: BacktestSummary | None


class RegisteredModel(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    champion: ModelVersion | None
    challenger: ModelVersion | None


class Models(ModelProvenance):
    models: list[RegisteredModel]


# --- analysis -------------------------------------------------------------------------------------------


# The date, then a nullable float per feature the features mart's yml marks served (stockyard.features), in
# its order: built once at import. mypy sees the one field every feature list has.
if TYPE_CHECKING:

    class Indicators(BaseModel):
        date: dt.date

else:
    Indicators = create_model(
        "Indicators",
        date=(dt.date, ...),
        **dict.fromkeys(served_features(), (float | None, ...)),
    )


class ForecastPoint(BaseModel):
    date: dt.date
    step: int = Field(description="Trading days after the data date.")
    predicted_close: float
    lower_close: float
    upper_close: float


class Forecast(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    data_date: dt.date
    interval_width: float
    points: list[ForecastPoint]


class Holding(BaseModel):
    rebalance_date: dt.date
    weight: float


class BacktestContext(BaseModel):
    backtest: BacktestSummary
    holdings: list[Holding] = Field(description="The stock's weight at each rebalance that held it.")


class MissingPart(BaseModel):
    part: Literal["indicators", "recommendation", "forecast", "backtest"]
    reason: Literal["timeout", "error", "no_model"] = Field(
        description="'no_model': no model has been promoted yet, so there is nothing a model made to show."
    )


class Analysis(ModelProvenance):
    symbol: str
    latest_price: LatestPrice | None
    indicators: Indicators | None
    recommendation: Recommendation | None
    forecast: Forecast | None
    backtest: BacktestContext | None
    missing: list[MissingPart] = Field(
        description="Parts that failed or timed out, or that no model made yet; the others are complete. A "
        "part that is null and not listed here has no data yet."
    )


# --- errors ---------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    detail: str = Field(description="What was wrong, and where.")
    request_id: str | None = Field(description="The request's X-Request-ID, which its log lines carry.")
