"""The settings' sections and the variables .env.example lists, for the settings and deployment tests."""

from __future__ import annotations

import importlib
import re

from stockyard.settings import PROJECT_ROOT, StockyardSettings

SECTION_MODULES = (
    "stockyard.settings",
    "stockyard.marketdata.settings",
    "stockyard.quality.settings",
    "stockyard.product_settings",
    "ml.config",
    "serving.settings",
    "orchestration.executors",
    "orchestration.settings",
)
PACKAGES = ("stockyard", "ml", "serving", "orchestration")


def sections() -> list[type[StockyardSettings]]:
    for module in SECTION_MODULES:
        importlib.import_module(module)
    return StockyardSettings.__subclasses__()


def example_variables() -> set[str]:
    text = (PROJECT_ROOT / ".env.example").read_text()
    return set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
