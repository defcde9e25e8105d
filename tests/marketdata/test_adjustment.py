"""Splits Alpha Vantage's split_coefficient column misses, inferred where its adjusted_close factor and the
raw close both show them. The rows are real TIME_SERIES_DAILY_ADJUSTED data of the cases that motivated it."""

from __future__ import annotations

import io
import logging
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest
import respx

from stockyard.marketdata.adjustment import infer_missing_splits
from stockyard.marketdata.alphavantage import QUERY_URL, AlphaVantageProvider
from stockyard.marketdata.csv_files import CsvProvider

HEADER = "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
# 2:1 split missing; the factor steps on a stale row (02-23), the raw close the session after.
TRMB = (
    "2007-02-21,54.366,55.79,54.366,55.72,13.93,408900,0.0,1.0\n"
    "2007-02-22,55.8,56.09,55.58,56.09,14.0225,328700,0.0,1.0\n"
    "2007-02-23,56.09,56.09,56.09,56.09,28.045,327350,0.0,1.0\n"
    "2007-02-26,27.9,27.99,27.4,27.62,13.81,699000,0.0,1.0\n"
    "2007-02-27,27.24,27.3,25.89,26.05,13.025,1231100,0.0,1.0\n"
)
# MetroPCS: a 1-for-2 reverse split plus cash, booked only as the cash.
TMUS = (
    "2013-04-29,11.85,11.99,11.8,11.95,16.0368805849,13888800,0.0,1.0\n"
    "2013-04-30,11.9,11.99,11.55,11.84,15.8892607636,81129800,0.0,1.0\n"
    "2013-05-01,16.25,16.99,16.01,16.52,16.52,11345196,8.1,1.0\n"
    "2013-05-02,16.7,18.0,16.55,17.72,17.72,13535900,0.0,1.0\n"
)
# The factor steps by 1.5 a day early with no raw move; the 3:2 split the column records explains 08-22.
ZBRA = (
    "2003-08-20,80.68,81.23,80.2,80.65,16.0105169175,248444,0.0,1.0\n"
    "2003-08-21,80.86,80.99,80.17,80.33,23.8014791013,176844,0.0,1.0\n"
    "2003-08-22,53.46,53.75,52.46,52.47,23.319997668,134267,0.0,1.5\n"
    "2003-08-25,52.46,52.58,51.66,52.46,23.315553224,171667,0.0,1.0\n"
)
# A dividend the column records, which the factor agrees with.
UNP = (
    "2014-06-11,102.06,102.31,101.3,102.18,87.7235,2491500,0.0,1.0\n"
    "2014-06-12,101.76,101.95,100.43,100.67,86.8178,3307900,0.455,1.0\n"
    "2014-06-13,100.68,101.24,100.33,100.9,87.0161,1837800,0.0,1.0\n"
)


def rows(lines: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(HEADER + lines), parse_dates=["timestamp"])
    return frame.rename(
        columns={"timestamp": "date", "dividend_amount": "dividend", "split_coefficient": "split"}
    )


def inferred(lines: str, symbol: str = "AAA") -> dict[str, float]:
    frame = rows(lines)
    days = frame["date"].dt.strftime("%Y-%m-%d")
    return {days[label]: ratio for label, ratio in infer_missing_splits(frame, symbol).items()}


def test_a_split_goes_on_the_day_the_raw_close_moves(caplog: pytest.LogCaptureFixture) -> None:
    assert inferred(TRMB, "TRMB") == {"2007-02-26": 2.0}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "TRMB: split 2 on 2007-02-26 inferred: the adjusted_close factor and the raw close both step by it, "
        "the split_coefficient column does not"
    )


def test_a_reverse_split_booked_as_a_dividend() -> None:
    assert inferred(TMUS) == {"2013-05-01": 0.5}


def test_a_factor_step_without_a_raw_move_infers_nothing(caplog: pytest.LogCaptureFixture) -> None:
    assert inferred(ZBRA) == {}
    assert caplog.records == []


def test_a_recorded_dividend_infers_nothing() -> None:
    assert inferred(UNP) == {}


@pytest.mark.parametrize("missing_at", ["2007-02-22", "2007-02-23", "2007-02-26"])
def test_a_row_without_adjusted_close_is_not_judged(missing_at: str) -> None:
    frame = rows(TRMB)
    frame.loc[frame["date"] == missing_at, "adjusted_close"] = float("nan")

    assert infer_missing_splits(frame, "TRMB").empty


def test_csv_provider_adds_the_split_to_the_dividend_row_of_its_file(tmp_path: Path) -> None:
    path = tmp_path / "DA-TMUS-T-2021-04-21.csv"
    # Newest first, as Alpha Vantage writes it; a bad adjusted_close elsewhere makes the file read as text.
    path.write_text(HEADER + "".join(reversed(TMUS.splitlines(keepends=True))).replace("16.0368805849", "-"))

    # The window's only day is the ex-date: the row before it is still compared.
    history = CsvProvider(tmp_path).history(["TMUS"], date(2013, 5, 1), date(2013, 5, 1))

    assert history.actions[["ex_date", "split_ratio", "cash_dividend", "source", "source_row"]].to_dict(
        "records"
    ) == [
        {
            "ex_date": pd.Timestamp("2013-05-01"),
            "split_ratio": 0.5,
            "cash_dividend": 8.1,
            "source": str(path),
            "source_row": 2,
        }
    ]
    assert history.bars["close"].tolist() == [16.52]
    assert history.rejects.empty and history.failures == []


def test_alphavantage_provider_adds_the_split_to_its_answer_row() -> None:
    series = {
        row["timestamp"]: {
            "1. open": row["open"],
            "2. high": row["high"],
            "3. low": row["low"],
            "4. close": row["close"],
            "5. adjusted close": row["adjusted_close"],
            "6. volume": row["volume"],
            "7. dividend amount": row["dividend_amount"],
            "8. split coefficient": row["split_coefficient"],
        }
        for row in pd.read_csv(io.StringIO(HEADER + TRMB), dtype=str).iloc[::-1].to_dict("records")
    }
    provider = AlphaVantageProvider(["TRMB"], api_key="TESTKEY123", sleep=lambda seconds: None)

    with respx.mock:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json={"Time Series (Daily)": series}))
        history = provider.history(["TRMB"], date(2007, 2, 21), date(2007, 2, 27))

    actions = history.actions[["ex_date", "split_ratio", "cash_dividend", "source_row"]]
    assert actions.to_dict("records") == [
        {"ex_date": pd.Timestamp("2007-02-26"), "split_ratio": 2.0, "cash_dividend": 0.0, "source_row": 2}
    ]
    assert history.rejects.empty and history.failures == []
