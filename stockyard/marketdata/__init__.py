"""Market data: one provider interface, several sources, and `build_provider` to pick them from settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stockyard.marketdata.base import MarketDataProvider

if TYPE_CHECKING:
    from stockyard.marketdata.http import HttpOptions
    from stockyard.marketdata.settings import MarketDataSettings


def build_provider(settings: MarketDataSettings) -> MarketDataProvider:
    """The provider named by STOCKYARD_MARKET_DATA_PROVIDER(S); several names make a FallbackChain in that
    order."""
    names = settings.provider_chain
    if not names:
        raise ValueError(f"no market-data provider configured; known providers: {', '.join(_BUILDERS)}")
    providers: list[MarketDataProvider] = []
    for name in names:
        builder = _BUILDERS.get(name)
        if builder is None:
            raise ValueError(
                f"unknown market-data provider {name!r}; known providers: {', '.join(_BUILDERS)}"
            )
        providers.append(builder(settings))
    if len(providers) == 1:
        return providers[0]
    from stockyard.marketdata.chain import FallbackChain

    return FallbackChain(providers)


# The builders import their provider lazily: only the configured ones are loaded.


def _sample(settings: MarketDataSettings) -> MarketDataProvider:
    from stockyard.marketdata.sample import sample_provider_from_settings

    return sample_provider_from_settings(settings)


def _csv(settings: MarketDataSettings) -> MarketDataProvider:
    if settings.csv_dir is None:
        raise ValueError(
            "the csv provider needs STOCKYARD_MARKET_DATA_CSV_DIR: the folder holding one CSV per symbol"
        )
    from stockyard.marketdata.csv_files import CsvProvider

    return CsvProvider(settings.csv_dir, settings.metadata_csv)


def _http_symbols(settings: MarketDataSettings, provider: str) -> list[str]:
    if not settings.symbol_list:
        raise ValueError(
            f"the {provider} provider needs its symbols: set STOCKYARD_MARKET_DATA_SYMBOLS (e.g. 'AAPL,MSFT')"
        )
    return settings.symbol_list


def _yahoo(settings: MarketDataSettings) -> MarketDataProvider:
    from stockyard.marketdata.yahoo import YahooProvider

    return YahooProvider(_http_symbols(settings, "yahoo"), **_http_options(settings))


def _alphavantage(settings: MarketDataSettings) -> MarketDataProvider:
    from stockyard.marketdata.alphavantage import AlphaVantageProvider

    return AlphaVantageProvider(
        _http_symbols(settings, "alphavantage"),
        api_key=settings.alphavantage_api_key,
        **_http_options(settings),
    )


def _stooq(settings: MarketDataSettings) -> MarketDataProvider:
    from stockyard.marketdata.stooq import StooqProvider

    return StooqProvider(_http_symbols(settings, "stooq"), **_http_options(settings))


def _http_options(settings: MarketDataSettings) -> HttpOptions:
    return {
        "timeout": settings.timeout_seconds,
        "max_retries": settings.max_retries,
        "request_budget": settings.request_budget,
    }


_BUILDERS: dict[str, Callable[[MarketDataSettings], MarketDataProvider]] = {
    "sample": _sample,
    "csv": _csv,
    "yahoo": _yahoo,
    "alphavantage": _alphavantage,
    "stooq": _stooq,
}

__all__ = ["MarketDataProvider", "build_provider"]
