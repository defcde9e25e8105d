"""The README's screenshots of the Dagster UI and the MLflow UI, taken with headless Chromium (Debian's
`chromium`) from a real run. With the UIs up on a materialized project (`stockyard run`, or the compose
stack):

    python docs/screenshots.py [--dagster-url http://127.0.0.1:3000] [--mlflow-url http://127.0.0.1:5000]

writes docs/images/*.png. The MLflow pages are the families' runs, best first on the promotion metric.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from ml.config import TrackingConfig
from ml.tracking import experiment_name, runs_url

IMAGES = Path(__file__).resolve().parent / "images"
# The code location's name in workspace.yaml (and deploy/workspace.yaml).
LOCATION = "stockyard"
# Long enough for the UIs to load their data and lay out the graph; Chromium's clock runs virtual meanwhile.
RENDER_MS = 20_000


@dataclass(frozen=True)
class Shot:
    name: str
    url: str
    width: int = 1600
    height: int = 1000


def dagster_shots(base: str) -> list[Shot]:
    groups = f"{base}/locations/{LOCATION}/asset-groups"
    return [
        Shot("dagster-ingestion", f"{groups}/ingestion"),
        Shot("dagster-ml", f"{groups}/ml"),
        Shot("dagster-asset-checks", f"{base}/assets/fct_stock_features?view=checks"),
        Shot("dagster-model-evaluation", f"{base}/assets/model_evaluation"),
        # The schedules and sensors: a short list, so a short window rather than a page of white.
        Shot("dagster-automation", f"{base}/automation", height=500),
    ]


def mlflow_shots(base: str) -> list[Shot]:
    server = TrackingConfig(tracking_uri=base, artifact_root=None, ui_url=base)
    shots = []
    for family in ("xgboost",):
        experiment_id = mlflow_experiment_id(base, experiment_name(family))
        url = runs_url(server, experiment_id)
        shots.append(Shot(f"mlflow-{family}-runs", url, width=1800))
    return shots


def mlflow_experiment_id(base: str, name: str) -> str:
    answer = httpx.get(
        f"{base}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}, timeout=10
    )
    if answer.status_code != 200:
        raise SystemExit(f"no experiment {name!r} at {base} ({answer.status_code}): train the models first")
    experiment_id: str = answer.json()["experiment"]["experiment_id"]
    return experiment_id


def take(shot: Shot, chromium: str, out_dir: Path) -> Path:
    path = out_dir / f"{shot.name}.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            # As root (a container, CI) Chromium refuses to start sandboxed.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={shot.width},{shot.height}",
            f"--virtual-time-budget={RENDER_MS}",
            f"--screenshot={path}",
            shot.url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dagster-url", default="http://127.0.0.1:3000")
    parser.add_argument("--mlflow-url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", type=Path, default=IMAGES)
    parser.add_argument(
        "--ui", choices=("dagster", "mlflow"), action="append", help="only this UI's pages (repeatable)"
    )
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    uis = set(args.ui or ("dagster", "mlflow"))
    shots = [
        *(dagster_shots(args.dagster_url.rstrip("/")) if "dagster" in uis else []),
        *(mlflow_shots(args.mlflow_url.rstrip("/")) if "mlflow" in uis else []),
    ]
    for shot in shots:
        print(take(shot, chromium, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
