"""Sector names as providers write them, mapped to today's 11 GICS sectors before the universe is loaded.

A name is compared without regard to case or spacing, so "Health care", "HEALTH CARE" and " Health  Care"
are all Health Care. Historical names map to today's:

- 2018: "Telecommunication Services" became "Communication Services" (it also took media and interactive
  media from Consumer Discretionary and Information Technology). Constituent lists from before then name it,
  sometimes spelled "Telecommunications Services".
- 2016: Real Estate left Financials. No name changed, so a pre-2016 list files REITs under Financials and
  stays so here.
- 2023: industries moved between sectors (payment processors from Information Technology to Financials,
  general merchandise retailers from Consumer Discretionary to Consumer Staples, ...) without any sector
  being renamed. A name map cannot express that: a company is moved only by metadata
  listing its sector as of today.

A name that is neither today's nor a historical one is not guessed: the stock is loaded with no sector, and
the name as given stays beside it in raw.stocks.sector_as_given (so does every mapped name).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from stockyard.marketdata.schema import GICS_SECTORS

# Earlier GICS names, and spellings of them seen in widely used constituent lists.
HISTORICAL_SECTORS = {
    "Telecommunication Services": "Communication Services",
    "Telecommunications Services": "Communication Services",
}


def _folded(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().casefold()


_BY_FOLDED_NAME = {_folded(name): name for name in GICS_SECTORS} | {
    _folded(name): sector for name, sector in HISTORICAL_SECTORS.items()
}


@dataclass
class SectorMapping:
    """Metadata with `sector` in today's GICS names and `sector_as_given` beside it, and what was done."""

    metadata: pd.DataFrame
    #: "given -> GICS sector": rows, for every name that was not already today's GICS name as written.
    mapped: Counter[str] = field(default_factory=Counter)
    #: Names matching no GICS sector, today's or historical: rows loaded without a sector.
    unrecognised: Counter[str] = field(default_factory=Counter)


def gics_sector(name: str) -> str | None:
    """Today's GICS sector meant by `name`, or None when it names none."""
    return _BY_FOLDED_NAME.get(_folded(name))


def map_sectors(metadata: pd.DataFrame) -> SectorMapping:
    """`metadata` (METADATA_COLUMNS) with each sector mapped to today's GICS name (see the module)."""
    given = [(name.strip() or None) if isinstance(name, str) else None for name in metadata["sector"]]
    sectors = [gics_sector(name) if name is not None else None for name in given]
    mapping = SectorMapping(
        metadata.assign(
            sector=pd.Series(sectors, index=metadata.index, dtype=object),
            sector_as_given=pd.Series(given, index=metadata.index, dtype=object),
        )
    )
    for name, sector in zip(given, sectors, strict=True):
        if name is None or name == sector:
            continue
        if sector is None:
            mapping.unrecognised[name] += 1
        else:
            mapping.mapped[f"{name} -> {sector}"] += 1
    return mapping
