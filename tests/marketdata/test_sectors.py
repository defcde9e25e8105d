"""Sector names mapped to today's GICS sectors: historical names, spellings, and names that are no sector."""

from __future__ import annotations

import pandas as pd

from stockyard.marketdata.schema import GICS_SECTORS, METADATA_COLUMNS
from stockyard.marketdata.sectors import gics_sector, map_sectors


def test_every_gics_sector_maps_to_itself_whatever_its_case_and_spacing() -> None:
    for sector in GICS_SECTORS:
        assert gics_sector(sector) == sector
        assert gics_sector(f"  {sector.upper().replace(' ', '   ')} ") == sector


def test_historical_and_unknown_sector_names() -> None:
    given = [
        "Telecommunication Services",  # the GICS name until 2018
        "Telecommunication Services",
        "Telecommunications Services",
        "Health care",
        "Energy",
        "Technology",  # no GICS sector by that name
        None,
        "  ",
    ]
    metadata = pd.DataFrame({"symbol": [f"S{n}" for n in range(len(given))], "sector": given}).reindex(
        columns=METADATA_COLUMNS
    )

    mapping = map_sectors(metadata)

    assert mapping.metadata["sector"].tolist() == [
        "Communication Services",
        "Communication Services",
        "Communication Services",
        "Health Care",
        "Energy",
        None,
        None,
        None,
    ]
    assert mapping.metadata["sector_as_given"].tolist() == [*given[:6], None, None]
    assert dict(mapping.mapped) == {
        "Telecommunication Services -> Communication Services": 2,
        "Telecommunications Services -> Communication Services": 1,
        "Health care -> Health Care": 1,
    }
    assert dict(mapping.unrecognised) == {"Technology": 1}
    assert mapping.metadata["symbol"].tolist() == metadata["symbol"].tolist()
