"""The stock, sector and price endpoints against the warehouse dbt built, checked against the marts."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.serving.support import MARKET_SYMBOLS, RECOMMENDED_SYMBOLS, Warehouse

V1 = "/api/v1"


def marts_frame(url: str, query: str, params: tuple[object, ...] = ()) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(query, params)
        columns = [column.name for column in cursor.description or []]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def test_every_response_says_what_data_it_is(client: TestClient, api_warehouse: Warehouse) -> None:
    body = client.get(f"{V1}/stocks").json()
    assert body["as_of"] == str(api_warehouse.latest_date)
    assert body["data_source"] == "synthetic"


def test_list_pages_through_the_universe_in_symbol_order(client: TestClient) -> None:
    first = client.get(f"{V1}/stocks", params={"limit": 40}).json()
    second = client.get(f"{V1}/stocks", params={"limit": 40, "offset": 40}).json()
    assert first["total"] == RECOMMENDED_SYMBOLS
    symbols = [item["symbol"] for item in first["items"] + second["items"]]
    assert symbols == sorted(symbols) and len(set(symbols)) == 80


def test_list_filters_by_sector_and_market_cap(client: TestClient, api_warehouse: Warehouse) -> None:
    caps = marts_frame(
        api_warehouse.url, "select market_cap from marts.dim_stocks where sector = 'Energy' order by 1"
    )["market_cap"]
    low, high = caps.iloc[1], caps.iloc[-2]
    body = client.get(
        f"{V1}/stocks",
        params={"sector": "Energy", "min_market_cap": low, "max_market_cap": high, "limit": 500},
    ).json()
    assert body["total"] == len(caps) - 2
    assert all(item["sector"] == "Energy" and low <= item["market_cap"] <= high for item in body["items"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_market_cap": 10, "max_market_cap": 1}, "min_market_cap (10) exceeds max_market_cap (1)"),
        ({"sector": "Astrology"}, "unknown sector 'Astrology'"),
        ({"limit": 501}, "query.limit: Input should be less than or equal to 500"),
        ({"offset": -1}, "query.offset: Input should be greater than or equal to 0"),
    ],
)
def test_bad_list_parameters_are_422_with_the_reason(
    client: TestClient, params: dict[str, Any], message: str
) -> None:
    response = client.get(f"{V1}/stocks", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_search_puts_the_exact_symbol_first_then_prefixes_then_names(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    symbol = api_warehouse.symbols[0]
    body = client.get(f"{V1}/stocks/search", params={"q": symbol.lower()}).json()
    assert body["items"][0] == {**body["items"][0], "symbol": symbol, "match": "symbol"}
    name = client.get(f"{V1}/stocks/{symbol}").json()["stock"]["company_name"]
    words = name.split()
    by_name = client.get(f"{V1}/stocks/search", params={"q": f"{words[0][:3]} {words[1][:2]}"}).json()
    assert symbol in [item["symbol"] for item in by_name["items"]]
    assert client.get(f"{V1}/stocks/search", params={"q": "zzqx"}).json()["items"] == []


def test_top_is_by_market_cap(client: TestClient) -> None:
    items = client.get(f"{V1}/stocks/top", params={"limit": 5}).json()["items"]
    caps = [item["market_cap"] for item in items]
    assert len(items) == 5 and caps == sorted(caps, reverse=True)
    energy = client.get(f"{V1}/stocks/top", params={"sector": "Energy"}).json()["items"]
    assert {item["sector"] for item in energy} == {"Energy"}


def test_sectors_on_the_data_date(client: TestClient, api_warehouse: Warehouse) -> None:
    body = client.get(f"{V1}/sectors").json()
    expected = marts_frame(
        api_warehouse.url,
        "select sector, symbols_count from marts.fct_sector_daily where date = %s order by sector",
        (api_warehouse.latest_date,),
    )
    assert [(item["sector"], item["symbols_count"]) for item in body["items"]] == list(
        expected.itertuples(index=False, name=None)
    )


def test_detail_has_the_latest_price(client: TestClient, api_warehouse: Warehouse) -> None:
    symbol = api_warehouse.symbols[3]
    body = client.get(f"{V1}/stocks/{symbol.lower()}").json()
    assert body["stock"]["symbol"] == symbol
    latest = marts_frame(
        api_warehouse.url, "select date, adj_close from marts.fct_latest_prices where symbol = %s", (symbol,)
    ).iloc[0]
    assert body["latest_price"]["date"] == str(latest["date"])
    assert body["latest_price"]["adj_close"] == pytest.approx(latest["adj_close"])


def test_unknown_symbol_is_404_naming_it(client: TestClient) -> None:
    for path in ("/stocks/NOPE", "/stocks/NOPE/prices", "/analysis/NOPE", "/recommendations/symbols/NOPE"):
        response = client.get(V1 + path)
        assert response.status_code == 404
        assert response.json()["detail"] == "unknown symbol 'NOPE'"


@pytest.mark.parametrize("adjustment", ["adjusted", "raw"])
def test_daily_prices_match_the_mart(client: TestClient, api_warehouse: Warehouse, adjustment: str) -> None:
    symbol = api_warehouse.symbols[5]
    body = client.get(
        f"{V1}/stocks/{symbol}/prices",
        params={"start": "2023-03-01", "end": "2023-03-31", "adjustment": adjustment},
    ).json()
    prefix = "adj_" if adjustment == "adjusted" else ""
    expected = marts_frame(
        api_warehouse.url,
        f"select date, {prefix}open, {prefix}close from marts.fct_daily_prices"
        " where symbol = %s and date between '2023-03-01' and '2023-03-31' order by date",
        (symbol,),
    )
    assert [bar["date"] for bar in body["bars"]] == [str(day) for day in expected["date"]]
    assert [bar["close"] for bar in body["bars"]] == pytest.approx(list(expected[f"{prefix}close"]))
    assert [bar["open"] for bar in body["bars"]] == pytest.approx(list(expected[f"{prefix}open"]))


@pytest.mark.parametrize(("interval", "rule"), [("weekly", "W-SUN"), ("monthly", "MS")])
def test_resampled_prices_match_pandas(
    client: TestClient, api_warehouse: Warehouse, interval: str, rule: str
) -> None:
    symbol = api_warehouse.symbols[7]
    body = client.get(
        f"{V1}/stocks/{symbol}/prices",
        params={"start": "2023-01-01", "end": "2023-12-31", "interval": interval},
    ).json()
    daily = marts_frame(
        api_warehouse.url,
        "select date, adj_open, adj_high, adj_low, adj_close, adj_volume from marts.fct_daily_prices"
        " where symbol = %s order by date",
        (symbol,),
    )
    daily["date"] = pd.to_datetime(daily["date"])
    grouped = daily.groupby(daily["date"].dt.to_period("W-SUN" if interval == "weekly" else "M"))
    expected = pd.DataFrame(
        {
            "date": grouped["date"].max().dt.strftime("%Y-%m-%d"),
            "open": grouped["adj_open"].first(),
            "high": grouped["adj_high"].max(),
            "low": grouped["adj_low"].min(),
            "close": grouped["adj_close"].last(),
            "volume": grouped["adj_volume"].sum(),
        }
    )
    bars = pd.DataFrame(body["bars"])
    assert list(bars["date"]) == list(expected["date"])
    for column in ("open", "high", "low", "close", "volume"):
        assert list(bars[column]) == pytest.approx(list(expected[column]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2023-05-01", "end": "2023-04-01"}, "start (2023-05-01) is after end (2023-04-01)"),
        ({"start": "2023-02-30"}, "query.start: Input should be a valid date"),
        ({"interval": "hourly"}, "query.interval: Input should be 'daily', 'weekly' or 'monthly'"),
        ({"adjustment": "split"}, "query.adjustment: Input should be 'adjusted' or 'raw'"),
    ],
)
def test_bad_price_parameters_are_422(
    client: TestClient, api_warehouse: Warehouse, params: dict[str, str], message: str
) -> None:
    response = client.get(f"{V1}/stocks/{api_warehouse.symbols[0]}/prices", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_bulk_prices_answer_each_symbol_in_the_order_asked(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    symbols = api_warehouse.symbols[::-1][:12]
    body = client.get(
        f"{V1}/prices", params={"symbols": ",".join(symbols), "start": "2023-06-01", "end": "2023-06-30"}
    ).json()
    assert [series["symbol"] for series in body["series"]] == symbols
    single = client.get(
        f"{V1}/stocks/{symbols[4]}/prices", params={"start": "2023-06-01", "end": "2023-06-30"}
    ).json()
    assert body["series"][4]["bars"] == single["bars"]


def test_bulk_latest_prices(client: TestClient, api_warehouse: Warehouse) -> None:
    symbols = [*api_warehouse.symbols[::-1], api_warehouse.extra_symbols[0]]
    body = client.get(f"{V1}/prices/latest", params={"symbols": ",".join(symbols)}).json()
    priced = set(marts_frame(api_warehouse.url, "select symbol from marts.fct_latest_prices")["symbol"])
    # Symbols not listed yet (and the extra ones) have no prices and are left out.
    assert [item["symbol"] for item in body["items"]] == [symbol for symbol in symbols if symbol in priced]
    assert 0 < len(body["items"]) <= MARKET_SYMBOLS


def test_bulk_requests_name_unknown_symbols_and_bound_their_size(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    unknown = client.get(f"{V1}/prices/latest", params={"symbols": f"{api_warehouse.symbols[0]},NOPE,NADA"})
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown symbols: NOPE, NADA"
    every = ",".join(api_warehouse.symbols + api_warehouse.extra_symbols)
    too_long = client.get(f"{V1}/prices", params={"symbols": every, "start": "2020-01-01"})
    assert (
        too_long.status_code == 422
        and "ask for fewer symbols or a shorter range" in too_long.json()["detail"]
    )


def test_legacy_paths_answer_the_same_marked_deprecated(client: TestClient, api_warehouse: Warehouse) -> None:
    symbol = api_warehouse.symbols[2]
    legacy = client.get(f"/stocks/{symbol}/prices", params={"interval": "monthly"})
    current = client.get(f"{V1}/stocks/{symbol}/prices", params={"interval": "monthly"})
    assert legacy.json() == current.json()
    assert legacy.headers["Deprecation"].startswith("@")
    assert (
        legacy.headers["Link"] == f'<{V1}/stocks/{symbol}/prices?interval=monthly>; rel="successor-version"'
    )
    assert "Deprecation" not in current.headers
    operations = client.get("/openapi.json").json()["paths"]
    assert operations["/stocks/{symbol}"]["get"]["deprecated"] is True
    assert operations["/stocks/{symbol}"]["get"]["operationId"] == "legacy_get_stock"
    assert operations[f"{V1}/stocks/{{symbol}}"]["get"]["operationId"] == "get_stock"
