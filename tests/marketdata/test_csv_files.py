"""The CSV-folder provider: each file layout, symbols from columns and file names, per-file failures, bad rows
set aside with their file and line, metadata, and the date window. Every test writes its own small files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from stockyard.marketdata import csv_files
from stockyard.marketdata.csv_files import CsvProvider, symbol_from_filename
from stockyard.marketdata.schema import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    LINEAGE_COLUMNS,
    METADATA_COLUMNS,
    History,
    MarketDataError,
)

START, END = date(2000, 1, 1), date(2030, 12, 31)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load(folder: Path, *symbols: str, start: date = START, end: date = END) -> History:
    provider = CsvProvider(folder)
    return provider.history(list(symbols) or provider.symbols(), start, end)


def bars_of(history: History, symbol: str) -> pd.DataFrame:
    return history.bars.loc[history.bars["symbol"] == symbol].reset_index(drop=True)


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("AAPL.csv", "AAPL"),
        ("msft.CSV", "MSFT"),
        ("aapl.us.txt", "AAPL"),
        ("aapl.us.csv", "AAPL"),
        ("brk-b.us.txt", "BRK-B"),
        ("DA-BF.B-T-2021-04-21.csv", "BF.B"),
        ("DA-AAPL-T-2021-04-21.csv", "AAPL"),
        ("AAPL_data.csv", "AAPL"),
        ("BF.B.csv", "BF.B"),
    ],
)
def test_symbol_from_filename(name: str, symbol: str) -> None:
    assert symbol_from_filename(name) == symbol


def test_plain_layout_with_symbol_column_holds_several_symbols(tmp_path: Path) -> None:
    write(
        tmp_path,
        "prices.csv",
        "date,open,high,low,close,volume,symbol\n"
        "2021-01-04,10,11,9,10.5,1000,aaa\n"
        "2021-01-04,20,21,19,20.5,2000,BBB\n"
        "2021-01-05,10.5,12,10,11,1100, aaa \n",
    )
    provider = CsvProvider(tmp_path)

    assert provider.symbols() == ["AAA", "BBB"]
    history = provider.history(["AAA", "BBB"], START, END)
    assert list(history.bars.columns) == [*BAR_COLUMNS, *LINEAGE_COLUMNS, "provider"]
    aaa = bars_of(history, "AAA")
    assert aaa["date"].tolist() == [pd.Timestamp("2021-01-04"), pd.Timestamp("2021-01-05")]
    assert aaa["source_row"].tolist() == [1, 3]
    assert aaa["source"].tolist() == [str(tmp_path / "prices.csv")] * 2
    assert bars_of(history, "BBB")["close"].tolist() == [20.5]
    assert history.failures == [] and history.rejects.empty and history.actions.empty


def test_plain_layout_with_kaggle_name_column(tmp_path: Path) -> None:
    write(
        tmp_path,
        "AAL_data.csv",
        "date,open,high,low,close,volume,Name\n"
        "2013-02-08,15.07,15.12,14.63,14.75,8407500,AAL\n"
        "2013-02-11,14.89,15.01,14.26,14.46,8882000,AAL\n",
    )

    history = load(tmp_path, "AAL")

    assert bars_of(history, "AAL")["close"].tolist() == [14.75, 14.46]
    assert bars_of(history, "AAL")["volume"].tolist() == [8407500, 8882000]


def test_plain_layout_without_symbol_column_takes_the_file_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        "msft.CSV",
        " Date , OPEN,High,low,Close,Volume\r\n2021-01-04,222.5,223,214.8,217.7,37130100\r\n",
    )

    history = load(tmp_path)

    assert history.bars[["symbol", "open", "close", "volume"]].to_dict("records") == [
        {"symbol": "MSFT", "open": 222.5, "close": 217.7, "volume": 37130100}
    ]


def test_yahoo_layout_keeps_raw_ohlc_and_ignores_adj_close(tmp_path: Path) -> None:
    write(
        tmp_path,
        "AAPL.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-08-28,504.05,505.77,498.31,499.23,124.81,46907500\n"
        "2020-08-31,127.58,131.00,126.00,129.04,129.04,225702700\n",
    )

    history = load(tmp_path)

    assert history.bars["close"].tolist() == [499.23, 129.04]
    assert history.actions.empty


def test_alpha_vantage_layout_derives_splits_and_dividends(tmp_path: Path) -> None:
    write(
        tmp_path,
        "DA-AAPL-T-2021-04-21.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2020-08-06,441.62,457.65,439.19,455.61,113.4,62365204,0.0,1.0\n"
        "2020-08-07,452.82,454.7,441.17,444.45,110.82,49511403,0.82,1.0\n"
        "2020-08-31,127.58,131.0,126.0,129.04,128.62,223505733,0.0,4.0\n"
        "2020-09-01,132.76,134.8,130.53,134.18,133.75,152470142,0.2,2.0\n",
    )

    history = load(tmp_path, "AAPL")

    assert history.bars["close"].tolist() == [455.61, 444.45, 129.04, 134.18]  # as traded, not adjusted
    assert list(history.actions.columns) == [*ACTION_COLUMNS, *LINEAGE_COLUMNS, "provider"]
    actions = history.actions[["symbol", "ex_date", "split_ratio", "cash_dividend", "source_row"]]
    assert actions.to_dict("records") == [
        {
            "symbol": "AAPL",
            "ex_date": pd.Timestamp("2020-08-07"),
            "split_ratio": 1.0,
            "cash_dividend": 0.82,
            "source_row": 2,
        },
        {
            "symbol": "AAPL",
            "ex_date": pd.Timestamp("2020-08-31"),
            "split_ratio": 4.0,
            "cash_dividend": 0.0,
            "source_row": 3,
        },
        {
            "symbol": "AAPL",
            "ex_date": pd.Timestamp("2020-09-01"),
            "split_ratio": 2.0,
            "cash_dividend": 0.2,
            "source_row": 4,
        },
    ]


@pytest.mark.parametrize(
    ("name", "header", "row"),
    [
        (
            "ibm.us.txt",
            "Date,Open,High,Low,Close,Volume,OpenInt",
            "2021-01-04,125.85,126.6,123.04,123.94,5179161,0",
        ),
        ("ibm.us.csv", "Date,Open,High,Low,Close,Volume", "2021-01-04,125.85,126.6,123.04,123.94,5179161"),
    ],
)
def test_stooq_layout_with_and_without_openint(tmp_path: Path, name: str, header: str, row: str) -> None:
    write(tmp_path, name, f"{header}\n{row}\n")

    history = load(tmp_path, "IBM")

    assert history.bars[["symbol", "close", "volume", "source_row"]].to_dict("records") == [
        {"symbol": "IBM", "close": 123.94, "volume": 5179161, "source_row": 1}
    ]


def test_a_layout_is_told_by_the_columns_it_needs_and_other_columns_are_ignored_and_reported(
    tmp_path: Path,
) -> None:
    # Stooq's US history as commonly redistributed: an id column where Stooq's own files have OpenInt.
    xom = write(
        tmp_path,
        "xom.us.txt",
        "Date,Open,High,Low,Close,Volume,stock_id\n2021-01-04,41.5,42.0,41.0,41.5,27000000,17\n",
    )
    ibm = write(
        tmp_path, "ibm.us.txt", "stock_id,Volume,Close,Low,High,Open,Date\n3,100,10,9,11,10,2021-01-04\n"
    )
    # A column bearing a standard name that the layout does not use.
    aaa = write(
        tmp_path,
        "DA-AAA-T-2021-04-21.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient,date\n"
        "2021-01-04,10,11,9,10.5,10.5,100,0.0,1.0,yesterday\n",
    )

    history = load(tmp_path)

    assert history.failures == [] and history.rejects.empty
    assert history.bars[["symbol", "date", "close", "volume"]].to_dict("records") == [
        {"symbol": "AAA", "date": pd.Timestamp("2021-01-04"), "close": 10.5, "volume": 100},
        {"symbol": "IBM", "date": pd.Timestamp("2021-01-04"), "close": 10.0, "volume": 100},
        {"symbol": "XOM", "date": pd.Timestamp("2021-01-04"), "close": 41.5, "volume": 27000000},
    ]
    assert history.ignored_columns == {"date": [str(aaa)], "stock_id": [str(ibm), str(xom)]}


def test_other_files_in_the_folder_are_not_data(tmp_path: Path) -> None:
    write(tmp_path, "AAA.csv", "date,open,high,low,close,volume\n2021-01-04,1,1,1,1,1\n")
    write(tmp_path, "README.txt", "not data")
    write(tmp_path, ".AAA.csv", "editor backup")
    metadata = write(tmp_path, "constituents.csv", "Symbol,Name,Sector\nAAA,Aaa Inc,Energy\n")

    assert CsvProvider(tmp_path, metadata).symbols() == ["AAA"]


def test_unknown_layout_names_the_file_and_its_header(tmp_path: Path) -> None:
    path = write(tmp_path, "XYZ.csv", "day,price\n2021-01-04,1\n")

    with pytest.raises(MarketDataError, match=r"unknown CSV layout, header: 'day,price'") as raised:
        CsvProvider(tmp_path).fetch_symbol("XYZ", START, END)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("body", "kind", "excerpt"),
    [
        (
            '{\n    "Error Message": "Invalid API call."\n}\n',
            "a JSON document",
            '{ "Error Message": "Invalid API call." }',
        ),
        (
            '{\n    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5"\n}',
            "a JSON document",
            '{ "Note": "Thank you for using Alpha Vantage!',
        ),
        ("{\nError Message\n}\n", "a JSON document", "{ Error Message }"),
        (
            "<!DOCTYPE html>\n<html><body>Service Unavailable</body></html>",
            "an HTML page",
            "<!DOCTYPE html> <html><body>Service Unavailable",
        ),
    ],
)
def test_error_bodies_fail_their_symbol_and_the_others_load(
    tmp_path: Path, body: str, kind: str, excerpt: str
) -> None:
    broken = write(tmp_path, "DA-BF.B-T-2021-04-21.csv", body)
    write(
        tmp_path,
        "DA-AAA-T-2021-04-21.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2021-04-21,10,11,9,10.5,10.5,100,0.0,1.0\n",
    )

    history = load(tmp_path, "AAA", "BF.B")

    assert history.bars["symbol"].tolist() == ["AAA"]
    [failure] = history.failures
    assert (failure.symbol, failure.source, failure.provider) == ("BF.B", str(broken), "csv")
    assert f"file is {kind}, not CSV" in failure.message
    assert excerpt in failure.message


def test_unknown_layout_and_missing_symbol_are_failures_in_history(tmp_path: Path) -> None:
    write(tmp_path, "XYZ.csv", "day,price\n2021-01-04,1\n")
    write(tmp_path, "AAA.csv", "date,open,high,low,close,volume\n2021-01-04,1,1,1,1,1\n")

    history = load(tmp_path, "XYZ", "AAA", "NOPE")

    assert history.bars["symbol"].tolist() == ["AAA"]
    assert {f.symbol: f.message.split(" (")[0] for f in history.failures} == {
        "XYZ": "unknown CSV layout, header: 'day,price'",
        "NOPE": "no CSV file holds this symbol",
    }


def test_bad_rows_are_set_aside_with_rule_file_and_line(tmp_path: Path) -> None:
    lines = [
        "date,open,high,low,close,volume",
        "2021-01-04,10,11,9,10.5,100",  # line 1: good
        "2021-01-05,-10,11,9,10.5,100",  # 2: negative price
        "",  # 3: blank, still counted
        "2021-01-06,ten,11,9,10.5,100",  # 4: not a number
        "2021-01-07,10,11,9,10.5,100",  # 5: differs from 6
        "2021-01-07,10,11,9,10.6,100",  # 6
        "2021-01-08,10,11,9,10.5,100",  # 7: good
        "2021-01-11,10,11,9,10.5,100",  # 8: the same bar as 9, kept
        "2021-01-11,10.0,11,9,10.50,100",  # 9: an identical copy of 8
    ]
    path = write(tmp_path, "AAA.csv", "\n".join(lines) + "\n")

    history = load(tmp_path, "AAA")

    assert history.bars["date"].tolist() == [
        pd.Timestamp("2021-01-04"),
        pd.Timestamp("2021-01-08"),
        pd.Timestamp("2021-01-11"),
    ]
    assert history.bars["source_row"].tolist() == [1, 7, 8]
    rejects = history.rejects.sort_values("source_row")
    assert rejects[["rule", "source_row"]].to_dict("records") == [
        {"rule": "non_positive_price", "source_row": 2},
        {"rule": "not_numeric", "source_row": 4},
        {"rule": "duplicate_row", "source_row": 5},
        {"rule": "duplicate_row", "source_row": 6},
        {"rule": "duplicate_identical", "source_row": 9},
    ]
    assert set(rejects["source"]) == {str(path)}
    assert set(rejects["symbol"]) == {"AAA"}
    assert history.failures == []


def test_an_identical_copy_of_a_day_with_a_dividend_keeps_the_bar_and_the_dividend(tmp_path: Path) -> None:
    row = "2021-04-20,10,11,9,10.5,10.5,100,0.2,1.0"
    write(
        tmp_path,
        "DA-AAA-T-2021-04-21.csv",
        f"timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n{row}\n{row}\n",
    )

    history = load(tmp_path, "AAA")

    assert history.bars["source_row"].tolist() == [1]
    assert history.actions[["cash_dividend", "source_row"]].to_dict("records") == [
        {"cash_dividend": 0.2, "source_row": 1}
    ]
    assert history.rejects[["dataset", "rule", "source_row"]].to_dict("records") == [
        {"dataset": "daily_prices", "rule": "duplicate_identical", "source_row": 2},
        {"dataset": "corporate_actions", "rule": "duplicate_identical", "source_row": 2},
    ]


def test_unparseable_date_is_set_aside_with_its_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "AAA.csv",
        "date,open,high,low,close,volume\n2021-01-04,10,11,9,10.5,100\n2021-13-45,10,11,9,10.5,100\n",
    )

    history = load(tmp_path, "AAA")

    assert history.bars["date"].tolist() == [pd.Timestamp("2021-01-04")]
    [reject] = history.rejects.to_dict("records")
    assert (reject["rule"], reject["source"], reject["source_row"]) == ("unparseable_date", str(path), 2)
    assert reject["record"]["date"] == "2021-13-45"


def test_bad_action_values_are_set_aside(tmp_path: Path) -> None:
    write(
        tmp_path,
        "DA-AAA-T-2021-04-21.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2021-04-20,10,11,9,10.5,10.5,100,abc,1.0\n"
        "2021-04-21,10,11,9,10.5,10.5,100,-0.5,1.0\n",
    )

    history = load(tmp_path, "AAA")

    assert len(history.bars) == 2
    assert history.actions.empty
    assert history.rejects[["dataset", "rule", "source_row"]].to_dict("records") == [
        {"dataset": "corporate_actions", "rule": "not_numeric", "source_row": 1},
        {"dataset": "corporate_actions", "rule": "negative_dividend", "source_row": 2},
    ]


def test_non_iso_dates_are_left_to_validation(tmp_path: Path) -> None:
    write(
        tmp_path, "AAA.csv", "date,open,high,low,close,volume\n01/04/2021,1,1,1,1,1\n2021-01-05,1,1,1,1,1\n"
    )

    history = load(tmp_path, "AAA")

    assert history.bars["date"].tolist() == [pd.Timestamp("2021-01-04"), pd.Timestamp("2021-01-05")]


def test_date_window(tmp_path: Path) -> None:
    write(
        tmp_path,
        "DA-AAA-T-2021-04-21.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2021-01-04,10,11,9,10.5,10.5,100,0.1,1.0\n"
        "2021-01-05,-1,11,9,10.5,10.5,100,0.0,1.0\n"
        "2021-01-06,10,11,9,10.5,10.5,100,0.0,2.0\n"
        "2021-01-07,10,11,9,10.5,10.5,100,0.0,1.0\n",
    )
    provider = CsvProvider(tmp_path)

    history = provider.history(["AAA"], date(2021, 1, 5), date(2021, 1, 6))

    assert history.bars["date"].tolist() == [pd.Timestamp("2021-01-06")]
    assert history.actions["ex_date"].tolist() == [pd.Timestamp("2021-01-06")]
    assert history.rejects["source_row"].tolist() == [2]
    bars, actions = provider.fetch_symbol("aaa", date(2021, 1, 7), date(2021, 1, 7))
    assert bars["source_row"].tolist() == [4] and actions.empty


def test_history_reads_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        "prices.csv",
        "date,open,high,low,close,volume,symbol\n"
        "2021-01-04,1,1,1,1,1,AAA\n2021-01-04,2,2,2,2,2,BBB\n2021-01-04,3,3,3,3,3,CCC\n",
    )
    reads: list[Path] = []
    read_rows = csv_files._read_rows

    def counting(path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
        reads.append(path)
        return read_rows(path)

    monkeypatch.setattr(csv_files, "_read_rows", counting)
    history = load(tmp_path, "AAA", "CCC")

    assert reads == [tmp_path / "prices.csv"]
    assert history.bars["symbol"].tolist() == ["AAA", "CCC"]


def test_two_files_with_one_symbol_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "AAPL.csv", "date,open,high,low,close,volume\n2021-01-04,1,1,1,1,1\n")
    write(tmp_path, "aapl.us.txt", "Date,Open,High,Low,Close,Volume,OpenInt\n2021-01-04,1,1,1,1,1,0\n")

    with pytest.raises(MarketDataError, match=r"two files hold this symbol: AAPL.csv and aapl.us.txt"):
        CsvProvider(tmp_path).symbols()


@pytest.mark.parametrize(
    "text",
    [
        "Symbol,Name,Sector\nAAA,Aaa Inc.,Energy\nBBB,Bbb Corp,Utilities\n",
        "symbol , name,GICS Sector,GICS Sub-Industry\naaa,Aaa Inc.,Energy,Oil\nbbb,Bbb Corp,Utilities,Gas\n",
    ],
)
def test_metadata_from_constituents_style_files(tmp_path: Path, text: str) -> None:
    metadata = write(tmp_path, "constituents.csv", text)

    frame = CsvProvider(tmp_path, metadata).metadata(["BBB", "AAA", "ZZZ"])

    assert list(frame.columns) == METADATA_COLUMNS
    assert frame["symbol"].tolist() == ["BBB", "AAA", "ZZZ"]
    assert frame["name"].tolist()[:2] == ["Bbb Corp", "Aaa Inc."]
    assert frame["sector"].tolist()[:2] == ["Utilities", "Energy"]
    assert frame.drop(columns="symbol").iloc[2].isna().all()  # not listed: symbol only
    assert frame[["industry", "market_cap", "currency", "exchange"]].isna().all().all()


def test_metadata_with_all_columns(tmp_path: Path) -> None:
    metadata = write(
        tmp_path,
        "meta.csv",
        "symbol,name,sector,industry,market_cap,currency,exchange\n"
        "AAA,Aaa Inc.,Energy,Oil & Gas,1.5e9,USD,NYSE\n",
    )

    frame = CsvProvider(tmp_path, metadata).metadata(["AAA"])

    assert frame.to_dict("records") == [
        {
            "symbol": "AAA",
            "name": "Aaa Inc.",
            "sector": "Energy",
            "industry": "Oil & Gas",
            "market_cap": 1.5e9,
            "currency": "USD",
            "exchange": "NYSE",
        }
    ]


def test_metadata_without_a_file_is_symbols_only(tmp_path: Path) -> None:
    frame = CsvProvider(tmp_path).metadata(["AAA"])

    assert frame["symbol"].tolist() == ["AAA"]
    assert frame.drop(columns="symbol").isna().all().all()


def test_metadata_missing_columns_names_the_file_and_what_it_has(tmp_path: Path) -> None:
    metadata = write(tmp_path, "meta.csv", "Ticker,Company\nAAA,Aaa Inc.\n")

    with pytest.raises(
        MarketDataError, match=r"lacks symbol, name, sector; columns found: \['Ticker', 'Company'\]"
    ) as raised:
        CsvProvider(tmp_path, metadata).metadata(["AAA"])
    assert str(metadata) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Symbol,Name,Sector,market_cap\nAAA,Aaa,Energy,1e9\nBBB,Bbb,Energy,lots\n",
            "market_cap is not a number",
        ),
        ("Symbol,Name,Sector\nAAA,Aaa,Energy\nBBB,Bbb,Energy\naaa,Aaa again,Energy\n", "symbol listed twice"),
    ],
)
def test_metadata_bad_values_name_the_row(tmp_path: Path, text: str, message: str) -> None:
    metadata = write(tmp_path, "meta.csv", text)

    with pytest.raises(MarketDataError, match=message) as raised:
        CsvProvider(tmp_path, metadata).metadata(["AAA"])
    assert raised.value.row == len(text.splitlines()) - 1


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="CSV directory not found"):
        CsvProvider(tmp_path / "nowhere").symbols()
