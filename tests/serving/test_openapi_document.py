"""The API's OpenAPI document is the one taken before issue 14 moved the tables: clients see no change.

Regenerate `openapi.json` (`create_app().openapi()` as JSON) only for a deliberate change of the API.
"""

from __future__ import annotations

import json
from pathlib import Path

from serving.app import create_app

SNAPSHOT = Path(__file__).with_name("openapi.json")


def test_openapi_document_is_unchanged() -> None:
    assert create_app().openapi() == json.loads(SNAPSHOT.read_text())
