"""Quality of the recommendations: finite scores, ranks 1..n without holes on each date, one row per symbol
and date. The table and its score and rank columns are parameters: the recommendation model names them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import LiteralString

import pandas as pd
import psycopg

from stockyard import rules
from stockyard.quality import expectations as expect
from stockyard.quality.results import QualityResult, Severity, Window
from stockyard.quality.suite import Rule, run_suite

SAMPLE_COLUMNS = ["symbol", "date", "score", "rank"]


def recommendation_rules() -> list[Rule]:
    """Rules on a frame with columns symbol, date, score, rank and contiguous_rank (see `_frame`)."""
    return [
        Rule(
            rules.DUPLICATE_ROW,
            "more than one recommendation for this symbol and date",
            expect.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "date"]),
        ),
        Rule(
            "missing_score", "the score is null or NaN", expect.ExpectColumnValuesToNotBeNull(column="score")
        ),
        Rule(
            "non_finite_score",
            "the score is infinite",
            expect.ExpectColumnValuesToBeBetween(
                column="score", min_value=-sys.float_info.max, max_value=sys.float_info.max
            ),
        ),
        Rule(
            "ranks_not_contiguous",
            "the date's ranks are not 1, 2, ..., n: a rank is missing, repeated or null",
            expect.ExpectColumnPairValuesToBeEqual(column_A="rank", column_B="contiguous_rank"),
            shows=("contiguous_rank",),
        ),
    ]


def check_recommendations(
    conn: psycopg.Connection,
    window: Window,
    *,
    table: LiteralString,
    score_column: LiteralString = "score",
    rank_column: LiteralString = "rank",
    results_dir: Path,
) -> QualityResult:
    """ERROR: a duplicated (symbol, date), a null or infinite score, or a date whose ranks are not 1..n."""
    rows = conn.execute(
        f"""
        select symbol, date, {score_column}, {rank_column} from {table}
        where date between %(first)s and %(last)s order by date, symbol
        """,
        {"first": window.first, "last": window.last},
    ).fetchall()
    frame = recommendation_frame(pd.DataFrame(rows, columns=SAMPLE_COLUMNS))
    name = f"{table}.recommendation_rules"
    findings, path = run_suite(
        name,
        frame,
        recommendation_rules(),
        severity=Severity.ERROR,
        id_columns=["symbol", "date"],
        sample_columns=SAMPLE_COLUMNS,
        results_dir=results_dir,
        window=window,
    )
    return QualityResult(name, Severity.ERROR, len(frame), findings, path, window)


def recommendation_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Recommendations with `contiguous_rank`: the rank each row would have if the date's ranks ran 1..n in
    their order, so a rank differing from it marks a hole, a repeat or a null."""
    frame = frame.assign(
        date=pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d"),
        score=pd.to_numeric(frame["score"]).astype("float64"),
        rank=pd.to_numeric(frame["rank"]).astype("float64"),
    )
    frame = frame.sort_values(["date", "rank"], na_position="last", kind="stable").reset_index(drop=True)
    frame["contiguous_rank"] = (frame.groupby("date").cumcount() + 1).astype("float64")
    return frame
