"""Input types of the routes: each declares in the OpenAPI document exactly what it accepts, and rejects the
rest with a message saying what was wrong (the 422 handler prefixes the parameter's place).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from stockyard.marketdata.schema import GICS_SECTORS

# Dates as YYYY-MM-DD only (no timestamps, no week dates), in years a price history can hold; the bound keeps
# the date arithmetic of a window (a year before `end`) within Python's dates.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
ISO_DATE_PATTERN = r"^(19\d\d|2[01]\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
# Larger than any company's market cap, and finite.
MAX_MARKET_CAP = 1e15
# A search: some text that is not only spaces, without control characters (PostgreSQL refuses NUL in text).
SEARCH_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
SEARCH_MAX_LENGTH = 64


def _iso_date(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(ISO_DATE_PATTERN, value):
        return value
    raise PydanticCustomError(
        "iso_date",
        "'{value}' is not a date written YYYY-MM-DD from {first} to {last}",
        {"value": value, "first": FIRST_DATE.isoformat(), "last": LAST_DATE.isoformat()},
    )


def _gics_sector(value: str) -> str:
    if value not in GICS_SECTORS:
        raise PydanticCustomError(
            "gics_sector",
            "unknown sector '{value}'; known: {known}",
            {"value": value, "known": ", ".join(GICS_SECTORS)},
        )
    return value


def _search_text(value: str) -> str:
    if len(value) > SEARCH_MAX_LENGTH or not re.fullmatch(SEARCH_PATTERN, value):
        raise PydanticCustomError(
            "search_text",
            "give some text of at most {max_length} characters, without control characters",
            {"max_length": SEARCH_MAX_LENGTH},
        )
    return value


IsoDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": ISO_DATE_PATTERN}),
]
GicsSector = Annotated[
    str, AfterValidator(_gics_sector), WithJsonSchema({"type": "string", "enum": list(GICS_SECTORS)})
]
SearchText = Annotated[
    str,
    AfterValidator(_search_text),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": SEARCH_MAX_LENGTH, "pattern": SEARCH_PATTERN}
    ),
]
