"""Splits that Alpha Vantage's split_coefficient column misses, found from its adjusted_close column.

TIME_SERIES_DAILY_ADJUSTED describes corporate actions twice: in the split_coefficient and dividend_amount
columns, and in the factor adjusted_close / close. The pipeline back-adjusts from the columns (the factor
of the day before an ex-date is the ex-date's times close / (close + dividend) / split), so a split they
miss leaves every earlier price off by its ratio. Neither description is trusted alone: the factor is
sometimes wrong where the columns are right. A split is inferred only where the factor steps by a
plausible split ratio the columns do not explain AND the raw close moves by it on that day or the next.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# adjusted_close is rounded, so the factor may drift a little from what the columns imply.
_FACTOR_TOLERANCE = np.log1p(0.005)
_RATIO_TOLERANCE = np.log1p(0.02)
# Splits are p-for-q with small p and q: 2:1, 3:2, 1:2 (reverse), 10:1...
_LARGEST_SPLIT_TERM = 10
_PLAUSIBLE_SPLITS = np.array(
    sorted(
        {
            p / q
            for p in range(1, _LARGEST_SPLIT_TERM + 1)
            for q in range(1, _LARGEST_SPLIT_TERM + 1)
            if p != q
        }
    )
)
_LOG_PLAUSIBLE_SPLITS = np.log(_PLAUSIBLE_SPLITS)


def infer_missing_splits(rows: pd.DataFrame, symbol: str) -> pd.Series:
    """The split ratio each row lacks, for the rows that lack one, indexed by their labels in `rows`.

    `rows` is one symbol's `date`, `close`, `adjusted_close`, `dividend` and `split` as read (text or
    numbers, in any order). A row missing any of them, or holding an impossible value, is not judged. The
    split goes on the row where the raw close moved, which may be the session after the factor's step (a
    stale row), and only on a row that records no split: a recorded split is never overruled. Logs a warning
    per split found, as each one corrects the source.
    """
    rows = pd.DataFrame(
        {
            "date": pd.to_datetime(rows["date"], format="ISO8601", errors="coerce", cache=False),
            **{
                column: pd.to_numeric(rows[column], errors="coerce")
                for column in ("close", "adjusted_close", "dividend", "split")
            },
        }
    ).sort_values("date", kind="stable")
    values = {
        column: rows[column].to_numpy(dtype="float64", na_value=np.nan)
        for column in ("close", "adjusted_close", "dividend", "split")
    }
    readable = (
        rows["date"].notna().to_numpy()
        & np.isfinite(np.stack(list(values.values()))).all(axis=0)
        & (values["close"] > 0)
        & (values["adjusted_close"] > 0)
        & (values["split"] > 0)
        & (values["dividend"] >= 0)
    )
    # Unreadable rows get harmless values, so the arithmetic below never warns; no step touching them counts.
    close, adjusted, split = (
        np.where(readable, values[column], 1.0) for column in ("close", "adjusted_close", "split")
    )
    dividend = np.where(readable, values["dividend"], 0.0)
    judged = readable[1:] & readable[:-1]  # step i is from row i to row i + 1
    unsplit = split[1:] == 1.0
    factor = adjusted / close
    observed_step = np.log(factor[:-1] / factor[1:])
    implied_step = np.log(close[1:] / (close[1:] + dividend[1:]) / split[1:])
    # The log of the split that would reconcile the two, and of the raw move the recorded actions leave.
    missing = implied_step - observed_step
    raw_move = np.log((close[1:] + dividend[1:]) * split[1:] / close[:-1])

    steps = np.flatnonzero(judged & (np.abs(missing) > _FACTOR_TOLERANCE))
    nearest = np.abs(missing[steps, None] - _LOG_PLAUSIBLE_SPLITS).argmin(axis=1)
    plausible = np.abs(missing[steps] - _LOG_PLAUSIBLE_SPLITS[nearest]) < _RATIO_TOLERANCE
    steps, nearest = steps[plausible], nearest[plausible]
    ratio, log_ratio = _PLAUSIBLE_SPLITS[nearest], _LOG_PLAUSIBLE_SPLITS[nearest]

    # A split of s shares for one divides the price by s: the move left unexplained should be near 1 / s.
    def distance(at: np.ndarray) -> np.ndarray:
        inside = at < len(raw_move)
        at = np.minimum(at, len(raw_move) - 1)
        return np.where(inside & judged[at] & unsplit[at], np.abs(raw_move[at] + log_ratio), np.inf)

    same_day, next_day = distance(steps), distance(steps + 1)
    moved = np.minimum(same_day, next_day) < np.abs(log_ratio) / 2
    # Step i ends on row i + 1; the next session is row i + 2.
    positions = (steps + 1 + (next_day < same_day))[moved]
    found = pd.Series(ratio[moved], index=rows.index[positions], name="split_ratio")
    # A stale row's step and the next row's own can both point at that row: one split, not two.
    found = found[~found.index.duplicated(keep="last")]
    days = rows.loc[found.index, "date"].dt.strftime("%Y-%m-%d")
    for day, split_ratio in zip(days, found, strict=True):
        logger.warning(
            "%s: split %s on %s inferred: the adjusted_close factor and the raw close both step by it, "
            "the split_coefficient column does not",
            symbol,
            Fraction(split_ratio).limit_denominator(_LARGEST_SPLIT_TERM),
            day,
        )
    return found
