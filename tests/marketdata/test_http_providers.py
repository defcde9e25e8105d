"""The HTTP providers against recorded responses served by respx: no request ever leaves the process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import respx

from stockyard.marketdata import build_provider
from stockyard.marketdata.alphavantage import QUERY_URL, AlphaVantageProvider
from stockyard.marketdata.chain import FallbackChain, UnservedSymbolError
from stockyard.marketdata.http import HttpProvider, RequestBudget
from stockyard.marketdata.schema import MarketDataError
from stockyard.marketdata.settings import MarketDataSettings
from stockyard.marketdata.stooq import CSV_URL, StooqProvider
from stockyard.marketdata.yahoo import CHART_URL, YahooProvider

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "recorded"
API_KEY = "TESTKEY123"  # also inside information_rate_limit.json, as Alpha Vantage echoes the key


def recorded(name: str, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=(RECORDED / name).read_bytes(), headers=headers)


def chart_url(symbol: str) -> str:
    return CHART_URL.format(symbol=symbol)


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # Unmatched requests fail the test (assert_all_mocked), so nothing reaches the network.
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def yahoo(sleeps: list[float], *symbols: str, **options: Any) -> YahooProvider:
    return YahooProvider(list(symbols) or ["TROW"], sleep=sleeps.append, **options)


def alphavantage(sleeps: list[float], *symbols: str) -> AlphaVantageProvider:
    return AlphaVantageProvider(list(symbols) or ["UNP"], api_key=API_KEY, sleep=sleeps.append)


def stooq(sleeps: list[float], *symbols: str) -> StooqProvider:
    return StooqProvider(list(symbols) or ["UNP"], sleep=sleeps.append)


# --- Yahoo -------------------------------------------------------------------------------------------------


def test_yahoo_chart_becomes_bars_as_traded_with_actions(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/TROW_chart.json"))

    history = yahoo(sleeps).history(["TROW"], date(2006, 6, 20), date(2006, 6, 28))

    params = route.calls.last.request.url.params
    assert params["period1"] == "1150675200"  # 2006-06-19 00:00 UTC: a day of margin
    assert (params["interval"], params["events"]) == ("1d", "div,splits")
    bars = history.bars.set_index("date")
    # The all-null bar of 06-27 is skipped; the partly null bar of 06-28 is rejected below.
    assert list(bars.index) == [
        day(d) for d in ("2006-06-20", "2006-06-21", "2006-06-22", "2006-06-23", "2006-06-26")
    ]
    # Yahoo halves pre-split prices and doubles volumes; the provider undoes the 2:1 split of 06-26.
    assert list(bars.loc["2006-06-20", ["open", "high", "low", "close"]]) == pytest.approx(
        [74.09, 75.05, 74.04, 74.30]
    )
    assert bars.loc["2006-06-20", "volume"] == 544_900
    assert list(bars.loc["2006-06-26", ["open", "close", "volume"]]) == pytest.approx([36.76, 36.67, 618_850])
    assert bars["source_row"].tolist() == [1, 2, 3, 4, 5]
    assert set(bars["source"]) == {str(route.calls.last.request.url)}
    assert set(bars["provider"]) == {"yahoo"}

    actions = history.actions.set_index("ex_date")
    assert list(actions.index) == [day("2006-06-22"), day("2006-06-26")]
    assert list(actions.loc["2006-06-22", ["cash_dividend", "split_ratio"]]) == pytest.approx([0.14, 1.0])
    assert list(actions.loc["2006-06-26", ["cash_dividend", "split_ratio"]]) == pytest.approx([0.0, 2.0])
    assert actions["source_row"].tolist() == [3, 5]

    assert history.rejects[["date", "rule", "source_row"]].values.tolist() == [
        [day("2006-06-28"), "missing_price", 7]
    ]
    assert history.failures == []


def test_yahoo_dates_are_the_exchanges_local_dates(router: respx.MockRouter, sleeps: list[float]) -> None:
    # ASX sessions open at 10:00 in Sydney, 23:00 UTC on the previous day.
    router.get(chart_url("BHP.AX")).mock(return_value=recorded("yahoo/BHP.AX_chart.json"))

    bars, actions = yahoo(sleeps, "BHP.AX").fetch_symbol("BHP.AX", date(2021, 1, 4), date(2021, 1, 5))

    assert pd.to_datetime(bars["date"]).tolist() == [day("2021-01-04"), day("2021-01-05")]
    assert bars["close"].tolist() == pytest.approx([43.51, 43.05])
    assert actions.empty


def test_yahoo_metadata_has_currency_and_exchange_only(router: respx.MockRouter, sleeps: list[float]) -> None:
    trow = router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/TROW_chart.json"))
    router.get(chart_url("BHP.AX")).mock(return_value=recorded("yahoo/BHP.AX_chart.json"))
    router.get(chart_url("NOPE")).mock(return_value=recorded("yahoo/unknown_symbol.json"))

    meta = yahoo(sleeps).metadata(["TROW", "BHP.AX", "NOPE"]).set_index("symbol")

    assert trow.calls.last.request.url.params["range"] == "5d"
    assert list(meta.loc["TROW", ["currency", "exchange"]]) == ["USD", "NMS"]
    assert list(meta.loc["BHP.AX", ["currency", "exchange"]]) == ["AUD", "ASX"]
    assert meta.loc["NOPE"].drop("provider").isna().all()
    assert meta[["name", "sector", "industry", "market_cap"]].isna().all().all()
    assert set(meta["provider"]) == {"yahoo"}


def test_yahoo_unknown_symbol_is_a_failure_with_yahoos_description(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get(chart_url("NOPE")).mock(return_value=recorded("yahoo/unknown_symbol.json"))

    history = yahoo(sleeps, "NOPE").history(["NOPE"], date(2021, 1, 4), date(2021, 1, 5))

    [failure] = history.failures
    assert (failure.symbol, failure.provider) == ("NOPE", "yahoo")
    assert "No data found, symbol may be delisted" in failure.message
    assert failure.source.startswith(chart_url("NOPE"))
    assert history.bars.empty


def test_yahoo_unknown_symbol_with_http_404_fails_at_once(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get(chart_url("NOPE")).mock(return_value=recorded("yahoo/unknown_symbol.json", 404))

    with pytest.raises(MarketDataError, match="HTTP 404.*symbol may be delisted"):
        yahoo(sleeps, "NOPE").fetch_symbol("NOPE", date(2021, 1, 4), date(2021, 1, 5))
    assert route.call_count == 1
    assert sleeps == []


def test_yahoo_429_is_retried_with_exponential_backoff(router: respx.MockRouter, sleeps: list[float]) -> None:
    too_many = recorded("yahoo/too_many_requests.txt", 429)
    route = router.get(chart_url("TROW")).mock(
        side_effect=[too_many, too_many, recorded("yahoo/TROW_chart.json")]
    )

    bars, _ = yahoo(sleeps).fetch_symbol("TROW", date(2006, 6, 20), date(2006, 6, 28))

    assert route.call_count == 3
    assert len(bars) == 6
    # Equal jitter: each wait lies between half and all of its exponential step (1s, then 2s).
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0


def test_retry_after_is_honoured(router: respx.MockRouter, sleeps: list[float]) -> None:
    router.get(chart_url("TROW")).mock(
        side_effect=[
            recorded("yahoo/too_many_requests.txt", 429, **{"Retry-After": "7"}),
            recorded("yahoo/TROW_chart.json"),
        ]
    )

    yahoo(sleeps).fetch_symbol("TROW", date(2006, 6, 20), date(2006, 6, 28))

    assert sleeps == [7.0]


def test_a_retry_after_beyond_the_longest_wait_gives_up(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    unavailable = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    router.get(chart_url("TROW")).mock(return_value=unavailable)

    with pytest.raises(MarketDataError, match="HTTP 503, and the service asks to wait"):
        yahoo(sleeps).fetch_symbol("TROW", date(2006, 6, 20), date(2006, 6, 28))
    assert sleeps == []


def test_yahoo_429_forever_fails_after_max_retries(router: respx.MockRouter, sleeps: list[float]) -> None:
    route = router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/too_many_requests.txt", 429))

    with pytest.raises(MarketDataError, match="HTTP 429, still failing after 3 attempts") as raised:
        yahoo(sleeps, max_retries=2).fetch_symbol("TROW", date(2006, 6, 20), date(2006, 6, 28))

    assert raised.value.symbol == "TROW"
    assert route.call_count == 3
    assert len(sleeps) == 2


def test_a_timeout_is_retried(router: respx.MockRouter, sleeps: list[float]) -> None:
    route = router.get(chart_url("TROW")).mock(
        side_effect=[httpx.ReadTimeout("timed out"), recorded("yahoo/TROW_chart.json")]
    )

    bars, _ = yahoo(sleeps).fetch_symbol("TROW", date(2006, 6, 20), date(2006, 6, 28))

    assert route.call_count == 2
    assert len(sleeps) == 1
    assert not bars.empty


def test_request_budget_stops_a_provider(router: respx.MockRouter, sleeps: list[float]) -> None:
    router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/TROW_chart.json"))
    router.get(chart_url("BHP.AX")).mock(return_value=recorded("yahoo/BHP.AX_chart.json"))
    provider = yahoo(sleeps, "TROW", "BHP.AX", "MSFT", request_budget=2)

    history = provider.history(["TROW", "BHP.AX", "MSFT"], date(2006, 1, 1), date(2021, 12, 31))

    assert history.served_by == {"TROW": "yahoo", "BHP.AX": "yahoo"}
    [failure] = history.failures
    assert failure.symbol == "MSFT"
    assert "the budget of 2 requests for provider yahoo is used up" in failure.message


def test_retries_spend_the_budget(router: respx.MockRouter, sleeps: list[float]) -> None:
    route = router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/too_many_requests.txt", 429))

    with pytest.raises(MarketDataError, match="budget of 2 requests for provider yahoo is used up"):
        yahoo(sleeps, request_budget=2).fetch_symbol("TROW", date(2006, 6, 20), date(2006, 6, 28))
    assert route.call_count == 2


def test_request_budget_counts_down() -> None:
    budget = RequestBudget(1)
    budget.spend("stooq")
    assert budget.remaining == 0
    with pytest.raises(MarketDataError, match="budget of 1 requests for provider stooq is used up"):
        budget.spend("stooq", symbol="UNP")


def test_close_closes_only_a_client_the_provider_created() -> None:
    injected = httpx.Client()
    borrowing, owning = YahooProvider(["TROW"], client=injected), YahooProvider(["TROW"])

    borrowing.close()
    owning.close()

    assert not injected.is_closed
    assert owning.http._client.is_closed
    injected.close()


# --- Alpha Vantage -----------------------------------------------------------------------------------------


def test_alphavantage_series_becomes_bars_and_actions(router: respx.MockRouter, sleeps: list[float]) -> None:
    route = router.get(QUERY_URL, params={"function": "TIME_SERIES_DAILY_ADJUSTED", "symbol": "UNP"}).mock(
        return_value=recorded("alphavantage/UNP_daily_adjusted.json")
    )

    history = alphavantage(sleeps).history(["UNP"], date(2014, 6, 5), date(2014, 6, 13))

    request_params = route.calls.last.request.url.params
    assert (request_params["outputsize"], request_params["apikey"]) == ("full", API_KEY)
    bars = history.bars.set_index("date")
    assert len(bars) == 7 and bars.index.is_monotonic_increasing
    # Raw prices (not "5. adjusted close"): the 2:1 split of 06-09 shows as the drop it was.
    assert list(bars.loc["2014-06-05", ["open", "high", "low", "close"]]) == pytest.approx(
        [197.81, 201.29, 197.81, 200.34]
    )
    assert bars.loc["2014-06-05", "volume"] == 1_744_600
    assert bars.loc["2014-06-09", "open"] == pytest.approx(101.87)
    # source_row is the position in the answer, which lists the newest day first.
    assert bars.loc["2014-06-13", "source_row"] == 1
    assert bars.loc["2014-06-05", "source_row"] == 7
    [source] = set(bars["source"])
    assert (
        "function=TIME_SERIES_DAILY_ADJUSTED" in source and "apikey" not in source and API_KEY not in source
    )

    actions = history.actions.set_index("ex_date")
    assert list(actions.index) == [day("2014-06-09"), day("2014-06-12")]
    assert list(actions.loc["2014-06-09", ["split_ratio", "cash_dividend"]]) == pytest.approx([2.0, 0.0])
    assert list(actions.loc["2014-06-12", ["split_ratio", "cash_dividend"]]) == pytest.approx([1.0, 0.455])
    assert history.rejects.empty and history.failures == []


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("alphavantage/error_message.json", "Error Message"),
        ("alphavantage/information_rate_limit.json", "Information"),
        ("alphavantage/note_call_frequency.json", "Note"),
    ],
)
def test_alphavantage_messages_are_errors_without_the_api_key(
    router: respx.MockRouter, sleeps: list[float], caplog: pytest.LogCaptureFixture, body: str, key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    route = router.get(QUERY_URL).mock(return_value=recorded(body))

    with pytest.raises(MarketDataError, match=f"answered with '{key}' instead of data") as raised:
        alphavantage(sleeps).fetch_symbol("UNP", date(2014, 6, 5), date(2014, 6, 13))

    message = str(raised.value)
    assert "symbol UNP" in message and f"source {QUERY_URL}?function=" in message
    assert API_KEY not in message and "apikey" not in message
    assert route.call_count == 1
    # httpx logs each request URL at INFO: the key is blanked out there too.
    assert "apikey=***" in caplog.text
    assert API_KEY not in caplog.text


def test_alphavantage_needs_an_api_key() -> None:
    with pytest.raises(ValueError, match="STOCKYARD_MARKET_DATA_ALPHAVANTAGE_API_KEY"):
        AlphaVantageProvider(["UNP"], api_key=None)
    with pytest.raises(ValueError, match="STOCKYARD_MARKET_DATA_ALPHAVANTAGE_API_KEY"):
        AlphaVantageProvider(["UNP"], api_key="")


def test_alphavantage_metadata_maps_sectors_to_gics(router: respx.MockRouter, sleeps: list[float]) -> None:
    for symbol, body in [
        ("MSFT", "MSFT_overview.json"),
        ("UNP", "UNP_overview.json"),
        ("NOPE", "unknown_overview.json"),
    ]:
        router.get(QUERY_URL, params={"function": "OVERVIEW", "symbol": symbol}).mock(
            return_value=recorded(f"alphavantage/{body}")
        )

    meta = alphavantage(sleeps).metadata(["MSFT", "UNP", "NOPE"]).set_index("symbol")

    msft = meta.loc["MSFT"]
    assert list(msft[["name", "sector", "industry", "currency", "exchange", "provider"]]) == [
        "Microsoft Corporation",
        "Information Technology",
        "SERVICES-PREPACKAGED SOFTWARE",
        "USD",
        "NASDAQ",
        "alphavantage",
    ]
    assert msft["market_cap"] == pytest.approx(1.958317e12)
    # No single GICS sector for this grouping: kept as given. "None" means unknown.
    assert meta.loc["UNP", "sector"] == "ENERGY & TRANSPORTATION"
    assert meta.loc[["UNP"], "market_cap"].isna().all()
    assert meta.loc["NOPE"].drop("provider").isna().all()


# --- Stooq -------------------------------------------------------------------------------------------------


def test_stooq_csv_becomes_adjusted_bars_without_actions(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get(CSV_URL).mock(return_value=recorded("stooq/unp.us.csv"))

    history = stooq(sleeps).history(["UNP"], date(2014, 6, 5), date(2014, 6, 13))

    assert dict(route.calls.last.request.url.params) == {
        "s": "unp.us",
        "i": "d",
        "d1": "20140605",
        "d2": "20140613",
    }
    bars = history.bars.set_index("date")
    assert len(bars) == 7
    assert list(bars.loc["2014-06-05", ["open", "close", "volume"]]) == pytest.approx(
        [84.9119, 85.9979, 3_489_200]
    )
    assert bars["source_row"].tolist() == list(range(1, 8))
    assert history.actions.empty
    assert stooq(sleeps).metadata(["UNP"]).drop(columns=["symbol", "provider"]).isna().all().all()


def test_stooq_no_data_is_an_unknown_symbol(router: respx.MockRouter, sleeps: list[float]) -> None:
    router.get(CSV_URL).mock(return_value=recorded("stooq/no_data.txt"))

    with pytest.raises(MarketDataError, match="Stooq has no data: unknown symbol") as raised:
        stooq(sleeps, "NOPE").fetch_symbol("NOPE", date(2014, 6, 5), date(2014, 6, 13))
    assert raised.value.symbol == "NOPE"


def test_stooq_html_page_with_http_200_is_an_error(router: respx.MockRouter, sleeps: list[float]) -> None:
    route = router.get(CSV_URL).mock(return_value=recorded("stooq/proof_of_work_page.html"))

    with pytest.raises(MarketDataError, match="expected CSV or JSON but got an HTML page: '<!DOCTYPE html>"):
        stooq(sleeps).fetch_symbol("UNP", date(2014, 6, 5), date(2014, 6, 13))
    assert route.call_count == 1


# --- Fallback chain ----------------------------------------------------------------------------------------


def test_chain_falls_back_per_symbol_and_records_who_served(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/TROW_chart.json"))
    router.get(chart_url("UNP")).mock(return_value=recorded("yahoo/unknown_symbol.json"))
    router.get(CSV_URL, params={"s": "unp.us"}).mock(return_value=recorded("stooq/unp.us.csv"))
    chain = FallbackChain([yahoo(sleeps, "TROW", "UNP"), stooq(sleeps, "TROW", "UNP")])

    history = chain.history(["TROW", "UNP"], date(2006, 6, 20), date(2014, 6, 13))

    assert chain.name == "chain(yahoo,stooq)" and not chain.synthetic
    assert chain.symbols() == ["TROW", "UNP"]
    assert history.served_by == {"TROW": "yahoo", "UNP": "stooq"}
    assert history.bars.groupby("symbol").size().to_dict() == {"TROW": 5, "UNP": 7}
    assert set(history.actions["provider"]) == {"yahoo"}
    assert history.rejects[["symbol", "provider"]].values.tolist() == [["TROW", "yahoo"]]
    assert history.failures == []


def test_chain_lists_every_providers_error_for_a_symbol_nobody_serves(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get(chart_url("NOPE")).mock(return_value=recorded("yahoo/unknown_symbol.json"))
    router.get(CSV_URL).mock(return_value=recorded("stooq/no_data.txt"))
    chain = FallbackChain([yahoo(sleeps, "NOPE"), stooq(sleeps, "NOPE")])

    history = chain.history(["NOPE"], date(2014, 6, 5), date(2014, 6, 13))

    assert [(f.symbol, f.provider) for f in history.failures] == [("NOPE", "yahoo"), ("NOPE", "stooq")]
    assert "symbol may be delisted" in history.failures[0].message
    assert "Stooq has no data" in history.failures[1].message
    assert history.bars.empty and history.actions.empty
    with pytest.raises(UnservedSymbolError, match="yahoo: .*delisted.*; stooq: Stooq has no data"):
        chain.fetch_symbol("NOPE", date(2014, 6, 5), date(2014, 6, 13))


def test_chain_metadata_comes_from_the_first_provider_that_knows(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get(chart_url("TROW")).mock(return_value=recorded("yahoo/TROW_chart.json"))
    router.get(chart_url("NOPE")).mock(return_value=recorded("yahoo/unknown_symbol.json"))
    chain = FallbackChain([yahoo(sleeps, "TROW", "NOPE"), stooq(sleeps, "TROW", "NOPE")])

    meta = chain.metadata(["TROW", "NOPE"]).set_index("symbol")

    assert list(meta.loc["TROW", ["currency", "provider"]]) == ["USD", "yahoo"]
    assert meta.loc["NOPE", "provider"] == "chain(yahoo,stooq)"
    assert meta.loc["NOPE"].drop("provider").isna().all()


# --- build_provider ----------------------------------------------------------------------------------------


def settings(**values: Any) -> MarketDataSettings:
    defaults: dict[str, Any] = {
        "provider": "sample",
        "providers": None,
        "symbols": "UNP,trow",
        "alphavantage_api_key": None,
        "csv_dir": None,
        "metadata_csv": None,
        "timeout_seconds": 5.0,
        "max_retries": 2,
        "request_budget": 25,
    }
    return MarketDataSettings(_env_file=None, **(defaults | values))


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [
        ("yahoo", YahooProvider, {}),
        ("alphavantage", AlphaVantageProvider, {"alphavantage_api_key": API_KEY}),
        ("stooq", StooqProvider, {}),
    ],
)
def test_build_provider_makes_http_providers_from_settings(
    name: str, cls: type[HttpProvider], extra: dict[str, Any]
) -> None:
    provider = build_provider(settings(provider=name, **extra))

    assert isinstance(provider, cls)
    assert provider.symbols() == ["UNP", "TROW"]
    assert (provider.http.timeout, provider.http.max_retries, provider.http.budget.limit) == (5.0, 2, 25)


def test_build_provider_makes_a_chain_from_several_names() -> None:
    chain = build_provider(settings(providers="yahoo, stooq"))

    assert isinstance(chain, FallbackChain)
    assert chain.name == "chain(yahoo,stooq)"
    assert [type(p) for p in chain.providers] == [YahooProvider, StooqProvider]


def test_build_provider_makes_the_sample_provider() -> None:
    sample = pytest.importorskip("stockyard.marketdata.sample")
    provider = build_provider(settings(provider="sample", sample_seed=3, sample_symbols=22))

    assert isinstance(provider, sample.SampleProvider)
    assert (provider.seed, provider.n_symbols, provider.synthetic) == (3, 22, True)
    assert build_provider(settings(providers="sample,yahoo")).synthetic


def test_build_provider_makes_the_csv_provider(tmp_path: Path) -> None:
    csv_files = pytest.importorskip("stockyard.marketdata.csv_files")
    provider = build_provider(settings(provider="csv", csv_dir=tmp_path))

    assert isinstance(provider, csv_files.CsvProvider)
    assert provider.directory == tmp_path


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"provider": "bloomberg"},
            "provider 'bloomberg'; known providers: sample, csv, yahoo, alphavantage, stooq",
        ),
        ({"provider": "yahoo", "symbols": None}, "set STOCKYARD_MARKET_DATA_SYMBOLS"),
        ({"providers": "yahoo,stooq", "symbols": " , "}, "set STOCKYARD_MARKET_DATA_SYMBOLS"),
        ({"provider": "alphavantage"}, "STOCKYARD_MARKET_DATA_ALPHAVANTAGE_API_KEY"),
        ({"provider": "csv"}, "STOCKYARD_MARKET_DATA_CSV_DIR"),
    ],
)
def test_build_provider_explains_a_bad_configuration(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_provider(settings(**values))
