"""Reading query results into DataFrames through COPY and Arrow.

A window can hold millions of rows: COPY streamed into Arrow's CSV reader needs a fraction of the memory and
time of fetching Python tuples, and never holds the CSV text as a whole (1.8 GB for 2.4M rows of features).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from stockyard.db.copy import copy_file


def read_frame(
    conn: psycopg.Connection,
    query: LiteralString,
    params: Mapping[str, Any],
    types: Mapping[str, pa.DataType] | None = None,
) -> pd.DataFrame:
    """The rows of `query` (bound with `params`); `types` pins columns Arrow should not infer (an all-null
    column would otherwise come back untyped). Dates come back as datetime64[ns], like the calendar's."""
    with conn.cursor().copy(f"copy ({query}) to stdout with (format csv, header)", params) as copy:
        convert = pacsv.ConvertOptions(column_types=dict(types or {}))
        table = pacsv.open_csv(copy_file(copy), convert_options=convert).read_all()
    # Arrow frees each column once pandas holds it: the rows are never in memory twice over.
    frame: pd.DataFrame = table.to_pandas(date_as_object=False, self_destruct=True, split_blocks=True)
    for column in frame.select_dtypes("datetime64").columns:
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame
